//! Routing: targets, their health, weights, and the [`TrafficRouter`] trait.

use std::collections::BTreeMap;
use std::fmt::{self, Debug};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::service::string_id;
use crate::{Cost, Error, FleetId, FleetInfo, InstanceId, Operation, Result, ServiceName};

string_id!(
    /// A routing target's id (a target group ARN on AWS).
    TargetId
);

/// A fleet attached to a service's entry point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Target {
    /// The target's id.
    pub id: TargetId,
    /// The fleet behind it.
    pub fleet: FleetId,
    /// The owning service.
    pub service: ServiceName,
}

impl Target {
    /// Builds a target (for backends).
    pub fn new(id: TargetId, fleet: FleetId, service: ServiceName) -> Self {
        Target { id, fleet, service }
    }
}

/// One instance's health as the entry point sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum HealthState {
    /// Registered; health checks have not yet passed.
    Initial,
    /// Passing health checks.
    Healthy,
    /// Failing health checks.
    Unhealthy,
    /// Being deregistered.
    Draining,
    /// Not serving: stopped, terminated, or not registered.
    Unavailable,
}

/// One instance's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceHealth {
    /// The instance.
    pub instance: InstanceId,
    /// Its state.
    pub state: HealthState,
    /// The provider's reason, when it gives one.
    pub reason: Option<String>,
}

/// The health of every instance behind one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// The target.
    pub target: TargetId,
    /// Per instance.
    pub instances: Vec<InstanceHealth>,
}

impl HealthReport {
    /// How many instances pass their health checks.
    pub fn healthy(&self) -> usize {
        self.count(HealthState::Healthy)
    }

    /// How many instances are in `state`.
    pub fn count(&self, state: HealthState) -> usize {
        self.instances.iter().filter(|i| i.state == state).count()
    }
}

/// How a service's traffic is split: percent per target, summing to 100, or empty when the
/// entry point serves nothing yet.
///
/// Deserializing checks the same rules as [`Routing::new`], so a record or state file cannot
/// bring in a split that does not sum to 100.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RoutingFields")]
pub struct Routing {
    weights: BTreeMap<TargetId, u32>,
}

/// A [`Routing`] as stored, before its rules are checked.
#[derive(Deserialize)]
struct RoutingFields {
    weights: BTreeMap<TargetId, u32>,
}

impl TryFrom<RoutingFields> for Routing {
    type Error = Error;
    fn try_from(fields: RoutingFields) -> Result<Self> {
        Routing::new(fields.weights)
    }
}

impl Routing {
    /// No target takes traffic.
    pub fn empty() -> Self {
        Routing::default()
    }

    /// All traffic to one target.
    pub fn all_to(target: &TargetId) -> Self {
        Routing {
            weights: BTreeMap::from([(target.clone(), 100)]),
        }
    }

    /// Builds a split; zero weights are dropped.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on the field `weights` unless they sum to 100 (or there are none),
    /// or when one is above 100.
    pub fn new(weights: impl IntoIterator<Item = (TargetId, u32)>) -> Result<Self> {
        let weights: BTreeMap<_, _> = weights.into_iter().filter(|(_, w)| *w > 0).collect();
        if let Some((target, w)) = weights.iter().find(|(_, w)| **w > 100) {
            return Err(Error::invalid(
                "weights",
                format!("{w} percent to {target} is above 100 percent"),
            ));
        }
        // At most 100 each, so the sum cannot overflow however many targets there are.
        let sum: u64 = weights.values().map(|w| u64::from(*w)).sum();
        if !weights.is_empty() && sum != 100 {
            return Err(Error::invalid(
                "weights",
                format!("must sum to 100 percent, got {sum}"),
            ));
        }
        Ok(Routing { weights })
    }

    /// `percent` to `to`, the rest to `from` (when there is a `from`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `weights` when `percent` is above 100, or below 100 with no
    /// `from` to take the rest.
    pub fn split(from: Option<&TargetId>, to: &TargetId, percent: u32) -> Result<Self> {
        if percent > 100 {
            return Err(Error::invalid(
                "weights",
                format!("{percent} is above 100 percent"),
            ));
        }
        match from {
            Some(from) => Routing::new([(from.clone(), 100 - percent), (to.clone(), percent)]),
            None if percent == 100 => Ok(Routing::all_to(to)),
            None => Err(Error::invalid(
                "weights",
                format!("{percent} percent leaves the rest with no target to take it"),
            )),
        }
    }

    /// The weight of one target, zero when absent.
    pub fn weight(&self, target: &TargetId) -> u32 {
        self.weights.get(target).copied().unwrap_or(0)
    }

    /// Targets with a non-zero weight.
    pub fn weights(&self) -> &BTreeMap<TargetId, u32> {
        &self.weights
    }

    /// Whether no target takes traffic.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// The only target taking traffic, if exactly one takes it all.
    pub fn sole_target(&self) -> Option<&TargetId> {
        match self.weights.iter().next() {
            Some((t, 100)) if self.weights.len() == 1 => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for Routing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.weights.is_empty() {
            return f.write_str("nothing");
        }
        let mut first = true;
        for (t, w) in &self.weights {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{w}% -> {t}")?;
        }
        Ok(())
    }
}

/// One service's entry point: an ALB listener (or listener rule) on AWS.
///
/// # Guarantees expected of an implementation
/// - [`attach`](TrafficRouter::attach) is idempotent per fleet and registers every instance.
/// - [`set_weights`](TrafficRouter::set_weights) changes all weights in one provider call, so
///   no observer ever sees a half-applied split.
/// - [`detach`](TrafficRouter::detach) refuses, with [`Error::Conflict`], a target that takes
///   traffic (I2); otherwise it drains and deletes it. Detaching a deleted target gives
///   [`Error::NotFound`].
/// - Every call is scoped to the service and never touches a target without its ownership tags
///   (I6).
///
/// What only some routers can do is a capability of its own, registered on the
/// [`EngineBuilder`](crate::EngineBuilder) next to the router: [`PreviewRouter`] for a preview
/// entry point, [`TargetAdoption`](crate::TargetAdoption) for taking over a target made by
/// hand.
#[async_trait]
pub trait TrafficRouter: Debug + Send + Sync + 'static {
    /// Creates the fleet's target (or returns the existing one) and registers its instances.
    /// The new target takes no traffic.
    async fn attach(&self, fleet: &FleetInfo) -> Result<Target>;

    /// The service's targets.
    async fn targets(&self, service: &ServiceName) -> Result<Vec<Target>>;

    /// The health of every instance behind a target.
    async fn health(&self, service: &ServiceName, target: &TargetId) -> Result<HealthReport>;

    /// The service's current split.
    async fn routing(&self, service: &ServiceName) -> Result<Routing>;

    /// Replaces the service's split in one call.
    async fn set_weights(&self, service: &ServiceName, routing: &Routing) -> Result<()>;

    /// Deregisters the target's instances, waits for them to drain, and deletes it.
    async fn detach(&self, service: &ServiceName, target: &TargetId) -> Result<()>;

    /// What one of this trait's operations costs in provider calls; `None` (the default)
    /// when the backend does not say. [`Engine::plan`](crate::Engine::plan) adds these up;
    /// the drain of [`detach`](TrafficRouter::detach) is its inner wait.
    fn cost(&self, service: &ServiceName, operation: Operation) -> Option<Cost> {
        let _ = (service, operation);
        None
    }
}

/// A router with a preview entry point: a candidate fleet can be tested there before it
/// takes live traffic. Registered with [`EngineBuilder::preview`](crate::EngineBuilder::preview);
/// an engine without it skips preview steps ([`EventKind::PreviewSkipped`](crate::EventKind::PreviewSkipped)).
#[async_trait]
pub trait PreviewRouter: Debug + Send + Sync + 'static {
    /// Points the service's preview entry point at `target` (or at nothing), so a candidate can
    /// be tested before it takes live traffic.
    ///
    /// A router that has a preview entry point for some services and not this one answers
    /// [`Error::NotSupported`], and only that: the engine then skips the preview step. Any
    /// other error (a misconfigured preview listener, say) rolls the deployment back, since
    /// checks meant for the candidate would otherwise probe whatever the preview entry point
    /// still points at. Clearing (`None`) is idempotent.
    async fn preview(&self, service: &ServiceName, target: Option<&TargetId>) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_must_sum_to_100() {
        let a = TargetId::new("a");
        let b = TargetId::new("b");
        assert!(Routing::new([(a.clone(), 30), (b.clone(), 70)]).is_ok());
        let err = Routing::new([(a.clone(), 30), (b.clone(), 60)]).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { ref field, .. } if field == "weights"));
        let split = Routing::split(Some(&a), &b, 10).unwrap();
        assert_eq!((split.weight(&a), split.weight(&b)), (90, 10));
        assert_eq!(
            Routing::split(Some(&a), &b, 100).unwrap().sole_target(),
            Some(&b)
        );
        assert!(Routing::split(None, &b, 50).is_err());
        assert_eq!(Routing::split(None, &b, 100).unwrap(), Routing::all_to(&b));
    }

    /// Weights that wrap around u32 to 100 are refused, never accepted (release) or a panic
    /// (debug).
    #[test]
    fn an_overflowing_weight_is_refused_naming_the_field() {
        let wraps = [(TargetId::new("a"), u32::MAX), (TargetId::new("b"), 101)];
        let err = Routing::new(wraps).unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { ref field, .. } if field == "weights"),
            "{err}"
        );
        let many = (0..200).map(|i| (TargetId::new(format!("t{i}")), u32::MAX / 100));
        assert!(Routing::new(many).is_err());
        let stored = r#"{"weights":{"a":4294967295,"b":101}}"#;
        assert!(serde_json::from_str::<Routing>(stored).is_err());
        let good = Routing::new([(TargetId::new("a"), 40), (TargetId::new("b"), 60)]).unwrap();
        let back: Routing = serde_json::from_str(&serde_json::to_string(&good).unwrap()).unwrap();
        assert_eq!(back, good);
    }
}
