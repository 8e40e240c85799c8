//! What to deploy, and how: the [`DeploymentRequest`] a caller builds, and the validated
//! [`DeploymentSpec`] the record keeps.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cause::OnBlueLost;
use crate::{Error, ImageRef, Result, ServiceName, StrategySpec, limits};

/// What to deploy, and how.
///
/// ```
/// use std::time::Duration;
/// use immutable_core::{DeploymentRequest, ImageRef};
///
/// let request = DeploymentRequest::new("web", ImageRef::name("web-v2"))
///     .capacity(4)
///     .min_healthy(3)
///     .bake_time(Duration::from_secs(600));
/// assert_eq!(request.capacity, 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeploymentRequest {
    /// The service; validated by [`ServiceName::new`].
    pub service: String,
    /// The image to deploy.
    pub image: ImageRef,
    /// Instances in the new fleet. Default 2.
    pub capacity: u32,
    /// Healthy instances the new fleet needs before it takes traffic. Defaults to `capacity`.
    pub min_healthy: Option<u32>,
    /// How traffic moves. Default [`Steps::blue_green`](crate::Steps::blue_green).
    pub strategy: StrategySpec,
    /// How long the new fleet may take to become healthy before the deployment rolls back.
    /// Default 10 minutes.
    pub health_timeout: Duration,
    /// How long the old fleet is kept after the switch, for a fast rollback. Default 15 minutes.
    pub bake_time: Duration,
    /// What happens when the old fleet drops below `min_healthy` during the bake. Default
    /// [`OnBlueLost::KeepBaking`].
    pub on_blue_lost: OnBlueLost,
}

impl DeploymentRequest {
    /// A request with defaults for everything but the service and the image.
    pub fn new(service: impl Into<String>, image: ImageRef) -> Self {
        DeploymentRequest {
            service: service.into(),
            image,
            capacity: 2,
            min_healthy: None,
            strategy: StrategySpec::default(),
            health_timeout: Duration::from_secs(600),
            bake_time: Duration::from_secs(900),
            on_blue_lost: OnBlueLost::default(),
        }
    }

    /// Sets the capacity.
    pub fn capacity(mut self, capacity: u32) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets the healthy instances needed before traffic moves.
    pub fn min_healthy(mut self, min_healthy: u32) -> Self {
        self.min_healthy = Some(min_healthy);
        self
    }

    /// Sets the strategy.
    pub fn strategy(mut self, strategy: impl Into<StrategySpec>) -> Self {
        self.strategy = strategy.into();
        self
    }

    /// Sets the health timeout.
    pub fn health_timeout(mut self, timeout: Duration) -> Self {
        self.health_timeout = timeout;
        self
    }

    /// Sets the bake time.
    pub fn bake_time(mut self, bake_time: Duration) -> Self {
        self.bake_time = bake_time;
        self
    }

    /// Sets what happens when the old fleet is lost during the bake.
    pub fn on_blue_lost(mut self, policy: OnBlueLost) -> Self {
        self.on_blue_lost = policy;
        self
    }

    /// Checks every field against [`limits`](crate::limits) and returns the spec a record
    /// keeps; nothing is touched. [`Engine::deploy`](crate::Engine::deploy) and
    /// [`Engine::plan`](crate::Engine::plan) do it first; a tool may do it before it opens
    /// anything.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field.
    pub fn validate(&self) -> Result<DeploymentSpec> {
        let service = ServiceName::new(self.service.clone())?;
        if self.capacity == 0 {
            return Err(Error::invalid("capacity", "must be at least 1"));
        }
        limits::count("capacity", self.capacity, 1, limits::MAX_CAPACITY)?;
        limits::duration(
            "health_timeout",
            self.health_timeout,
            limits::MIN_HEALTH_TIMEOUT,
            limits::MAX_HEALTH_TIMEOUT,
        )?;
        limits::duration(
            "bake_time",
            self.bake_time,
            Duration::ZERO,
            limits::MAX_BAKE_TIME,
        )?;
        let min_healthy = self.min_healthy.unwrap_or(self.capacity);
        if min_healthy == 0 {
            return Err(Error::invalid("min_healthy", "must be at least 1"));
        }
        if min_healthy > self.capacity {
            return Err(Error::invalid(
                "min_healthy",
                format!("is {min_healthy}, above the capacity of {}", self.capacity),
            ));
        }
        match &self.image {
            ImageRef::Id(id) if id.as_str().is_empty() => {
                return Err(Error::invalid("image", "id must not be empty"));
            }
            ImageRef::Name(name) if name.is_empty() => {
                return Err(Error::invalid("image", "name must not be empty"));
            }
            _ => {}
        }
        if let StrategySpec::Steps(steps) = &self.strategy {
            steps.validate()?;
        }
        Ok(DeploymentSpec {
            service,
            image: self.image.clone(),
            capacity: self.capacity,
            min_healthy,
            strategy: self.strategy.clone(),
            health_timeout: self.health_timeout,
            bake_time: self.bake_time,
            on_blue_lost: self.on_blue_lost,
        })
    }
}

/// A validated request, as persisted in the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeploymentSpec {
    /// The service.
    pub service: ServiceName,
    /// The image as requested.
    pub image: ImageRef,
    /// Instances in the new fleet.
    pub capacity: u32,
    /// Healthy instances needed before traffic moves.
    pub min_healthy: u32,
    /// How traffic moves.
    pub strategy: StrategySpec,
    /// Health timeout.
    #[serde(with = "crate::serde_duration")]
    pub health_timeout: Duration,
    /// Bake time.
    #[serde(with = "crate::serde_duration")]
    pub bake_time: Duration,
    /// What happens when the old fleet is lost during the bake.
    #[serde(default)]
    pub on_blue_lost: OnBlueLost,
}
