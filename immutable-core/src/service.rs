//! Service names, deployment ids and the ownership tags every backend writes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The tag keys that mark a resource as owned by a service (invariant I6).
///
/// Every backend writes these on what it creates and reads them before it touches anything:
/// a resource without [`tags::SERVICE`] equal to the service is never modified.
pub mod tags {
    /// The owning service's name.
    pub const SERVICE: &str = "immutable:service";
    /// What every tag this SDK writes begins with.
    pub const PREFIX: &str = "immutable:";
    /// The fleet a resource belongs to.
    pub const FLEET: &str = "immutable:fleet";
    /// The deployment that created the resource.
    pub const DEPLOYMENT: &str = "immutable:deployment";
    /// Marks resources created by this SDK.
    pub const MANAGED_BY: &str = "immutable:managed-by";
    /// The value of [`MANAGED_BY`].
    pub const MANAGED_BY_VALUE: &str = "immutable";
    /// Set on an image once a deployment of it succeeded: the deployment id.
    pub const PROMOTED: &str = "immutable:promoted";
    /// A fleet's launch key ([`FleetKey`](crate::FleetKey)), on backends whose fleet is nothing
    /// but its tagged instances: looked up before launching, so a launch is idempotent.
    pub const FLEET_KEY: &str = "immutable:fleet-key";
    /// A fleet's asked-for capacity, on backends whose fleet is nothing but its tagged instances.
    pub const CAPACITY: &str = "immutable:capacity";
    /// The image a fleet runs, on fleets whose instances are launched by the provider (an
    /// Auto Scaling group) rather than by the backend.
    pub const IMAGE: &str = "immutable:image";
    /// The launch template version made for a fleet (`<template id>:<version>`), on fleets
    /// launched from one: deleted with the fleet, and only that version, and only when the
    /// version itself is marked as made for the fleet (a tag can be edited).
    pub const TEMPLATE_VERSION: &str = "immutable:template-version";

    /// The ownership tags of a resource created for `fleet` by `deployment`, in the order
    /// backends write them: [`SERVICE`], [`FLEET`], [`DEPLOYMENT`] and [`MANAGED_BY`].
    pub fn ownership(
        service: &super::ServiceName,
        fleet: &crate::FleetId,
        deployment: &super::DeploymentId,
    ) -> [(&'static str, String); 4] {
        [
            (SERVICE, service.to_string()),
            (FLEET, fleet.to_string()),
            (DEPLOYMENT, deployment.to_string()),
            (MANAGED_BY, MANAGED_BY_VALUE.to_owned()),
        ]
    }
}

/// A service: the unit that owns one entry point, its fleets and its images.
///
/// Names are 1 to 64 characters of ASCII letters, digits, `-`, `_` and `.`, so that they fit
/// in tags, file names and provider resource names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceName(std::sync::Arc<str>);

impl ServiceName {
    /// Validates and wraps a service name.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field `service` when the name is empty, too long or
    /// holds other characters.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        if name.is_empty() {
            return Err(Error::invalid("service", "must not be empty"));
        }
        if name.len() > 64 {
            return Err(Error::invalid(
                "service",
                format!("must be at most 64 characters, got {}", name.len()),
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(Error::invalid(
                "service",
                format!("may hold only ASCII letters, digits, '-', '_' and '.', found {c:?}"),
            ));
        }
        Ok(ServiceName(name.into()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ServiceName {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        ServiceName::new(value)
    }
}

impl From<ServiceName> for String {
    fn from(value: ServiceName) -> Self {
        value.0.to_string()
    }
}

impl From<&ServiceName> for String {
    fn from(value: &ServiceName) -> Self {
        value.0.to_string()
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(::std::sync::Arc<str>);

        impl $name {
            /// Wraps a provider id.
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into().into())
            }

            /// The id as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                $name(value.into())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                $name(value.into())
            }
        }
    };
}
pub(crate) use string_id;

string_id!(
    /// A deployment's id: a ULID, sortable by creation time.
    DeploymentId
);

impl DeploymentId {
    /// A fresh, unique id: a ULID, greater than every id generated before it in this process
    /// (within one millisecond too), so ids sort by creation time.
    pub fn generate() -> Self {
        static GENERATOR: std::sync::Mutex<ulid::Generator> =
            std::sync::Mutex::new(ulid::Generator::new());
        let ulid = GENERATOR
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .generate()
            .unwrap_or_else(|_| ulid::Ulid::new());
        DeploymentId(ulid.to_string().to_lowercase().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_validated() {
        assert!(ServiceName::new("web-api_1.prod").is_ok());
        for bad in ["", "has space", "slash/y", &"x".repeat(65)] {
            match ServiceName::new(bad) {
                Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "service"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn service_names_are_validated_when_deserialized() {
        assert!(serde_json::from_str::<ServiceName>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<ServiceName>("\"\"").is_err());
    }

    #[test]
    fn deployment_ids_are_unique_and_lowercase() {
        let a = DeploymentId::generate();
        let b = DeploymentId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str(), a.as_str().to_lowercase());
    }

    #[test]
    fn deployment_ids_sort_in_the_order_they_were_generated() {
        let ids: Vec<_> = (0..1_000).map(|_| DeploymentId::generate()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
