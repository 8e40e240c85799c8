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
/// # The name grammar
/// A service name is 1 to 63 characters of lowercase ASCII letters, digits, `-`, `_` and
/// `.`, and starts with a letter or a digit. So it is never `.` or `..`, never a hidden file,
/// fits in tags, file names, HAProxy proxy names and DNS-like labels, and two names that a
/// case-insensitive file system would fold together (`Web`, `web`) cannot both exist.
///
/// Every name the SDK derives from a service name for something else (a preview backend, a
/// lock file) adds a character outside this grammar (see [`ServiceName::derived`]), so a
/// derived name can never be another service's name, nor another service's derived name.
/// The grammar is enforced wherever a name enters: this constructor, deserialized records
/// and state files, the CLI's flags and service files.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceName(std::sync::Arc<str>);

impl ServiceName {
    /// The longest service name.
    pub const MAX_LEN: usize = 63;

    /// Validates and wraps a service name.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field `service` when the name breaks the
    /// [grammar](Self#the-name-grammar): empty, longer than [`MAX_LEN`](Self::MAX_LEN), not
    /// starting with a letter or digit, or holding another character (an uppercase letter
    /// included). The message says which rule and quotes the character.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        Self::check(&name)?;
        Ok(ServiceName(name.into()))
    }

    /// Whether `name` follows the [grammar](Self#the-name-grammar), with the reason when it
    /// does not (an [`Error::InvalidInput`] naming `service`).
    pub fn check(name: &str) -> Result<()> {
        let invalid = |reason: String| Error::invalid("service", reason);
        let Some(first) = name.chars().next() else {
            return Err(invalid("must not be empty".into()));
        };
        if name.len() > Self::MAX_LEN {
            return Err(invalid(format!(
                "must be at most {} characters, got {}",
                Self::MAX_LEN,
                name.len()
            )));
        }
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(invalid(format!(
                "must start with a lowercase letter or a digit, not {first:?} (in {name:?})"
            )));
        }
        if let Some(c) = name.chars().find(|c| !is_name_char(*c)) {
            let hint = if c.is_ascii_uppercase() {
                " (names are lowercase)"
            } else {
                ""
            };
            return Err(invalid(format!(
                "may hold only lowercase ASCII letters, digits, '-', '_' and '.', found {c:?} \
                 in {name:?}{hint}"
            )));
        }
        Ok(())
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name derived from this one for `purpose` (`preview`, say): `<service>:<purpose>`.
    ///
    /// The `:` is outside the service grammar, so a derived name is never a service's name,
    /// and two services' derived names for one purpose differ as their names do.
    pub fn derived(&self, purpose: &str) -> String {
        format!("{}{DERIVED_SEPARATOR}{purpose}", self.0)
    }
}

/// What joins a service name and the purpose of a name derived from it: a character the
/// service grammar does not allow, and that HAProxy allows in proxy names.
const DERIVED_SEPARATOR: char = ':';

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
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
    /// The longest deployment id [`parse`](Self::parse) accepts.
    pub const MAX_LEN: usize = 64;

    /// Validates an id that comes from outside (a command line, a URL, a file): 1 to
    /// [`MAX_LEN`](Self::MAX_LEN) ASCII letters, digits, `-` and `_`, as the ids
    /// [`generate`](Self::generate) makes (lowercase ULIDs) are. Such an id is safe as a file
    /// name and as one word of a shell command.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field `deployment`.
    pub fn parse(id: &str) -> Result<Self> {
        let invalid = |reason: String| Error::invalid("deployment", reason);
        if id.is_empty() || id.len() > Self::MAX_LEN {
            return Err(invalid(format!(
                "must be 1 to {} characters, got {}",
                Self::MAX_LEN,
                id.len()
            )));
        }
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
        {
            return Err(invalid(format!(
                "{id:?} is not a deployment id: found {c:?} (ids are letters, digits, '-' and '_', \
                 like 01jd7w5kq2h3n4p5r6s7t8v9wx)"
            )));
        }
        Ok(DeploymentId::new(id))
    }

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
        assert!(ServiceName::new("0web").is_ok());
        assert!(ServiceName::new("x".repeat(63)).is_ok());
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "-web",
            "_web",
            "Web",
            "web:preview",
            "has space",
            "slash/y",
            "semi;colon",
            "new\nline",
            &"x".repeat(64),
        ] {
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
    fn deployment_ids_from_outside_are_validated() {
        let id = DeploymentId::generate();
        assert_eq!(DeploymentId::parse(id.as_str()).unwrap(), id);
        for bad in ["", "../etc", "a b", "a;rm", "x'y", &"a".repeat(65)] {
            match DeploymentId::parse(bad) {
                Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "deployment"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn derived_names_are_never_service_names() {
        let web = ServiceName::new("web").unwrap();
        assert_eq!(web.derived("preview"), "web:preview");
        assert!(ServiceName::new(web.derived("preview")).is_err());
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
