//! Halts: one switch, in the shared [`StateStore`](crate::StateStore), that stops every engine
//! deploying a service (or every service) at its next poll.
//!
//! Any process whose engine shares the store sets one with [`Engine::halt`](crate::Engine::halt)
//! and lifts it with [`Engine::lift_halt`](crate::Engine::lift_halt). While a halt stands:
//! - running deployments of the service make no further weight change: at their next poll they
//!   hold where they are, or roll back, as the engine's [`OnHalt`] says;
//! - new deployments of the service are refused with [`Error::Halted`](crate::Error::Halted);
//! - wave plans of the service start no further wave.
//!
//! Going back is never halted: rollbacks (a deployment's own, an operator's
//! [`Engine::rollback`](crate::Engine::rollback), a wave plan's) run under a halt.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::ServiceName;

/// What a halt covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "scope", content = "service", rename_all = "snake_case")]
pub enum HaltScope {
    /// Every service of every engine sharing the store.
    All,
    /// One service, in every region and account whose engine shares the store.
    Service(ServiceName),
}

impl HaltScope {
    /// A scope for one service.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) naming `service` for a bad name.
    pub fn service(service: impl Into<String>) -> crate::Result<Self> {
        Ok(HaltScope::Service(ServiceName::new(service)?))
    }

    /// Whether this scope covers `service`.
    pub fn covers(&self, service: &ServiceName) -> bool {
        match self {
            HaltScope::All => true,
            HaltScope::Service(s) => s == service,
        }
    }

    /// A short key, unique per scope, for stores: `all`, or `service#<name>`.
    pub fn key(&self) -> String {
        match self {
            HaltScope::All => "all".to_owned(),
            HaltScope::Service(s) => format!("service#{s}"),
        }
    }
}

impl fmt::Display for HaltScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HaltScope::All => f.write_str("every service"),
            HaltScope::Service(s) => write!(f, "service {s}"),
        }
    }
}

/// A halt as stored: what it covers, why, who set it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Halt {
    /// What it covers.
    pub scope: HaltScope,
    /// Why, in the words of whoever set it.
    pub reason: String,
    /// Who set it (the engine's identity, or the wave plan that failed).
    pub by: String,
    /// When, on the setter's clock.
    pub at: SystemTime,
}

impl Halt {
    /// A halt of `scope`.
    pub fn new(
        scope: HaltScope,
        reason: impl Into<String>,
        by: impl Into<String>,
        at: SystemTime,
    ) -> Self {
        Halt {
            scope,
            reason: reason.into(),
            by: by.into(),
            at,
        }
    }
}

impl fmt::Display for Halt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} halted by {}: {}", self.scope, self.by, self.reason)
    }
}

/// The halt in `store` that covers `service`: the service's own before the one for every
/// service. A store that keeps no halts has none.
pub(crate) async fn covering(
    store: Option<&dyn crate::HaltStore>,
    service: &ServiceName,
) -> crate::Result<Option<Halt>> {
    let Some(store) = store else {
        return Ok(None);
    };
    let mut halts = store.halts(Some(service)).await?;
    halts.retain(|h| h.scope.covers(service));
    halts.sort_by_key(|h| h.scope == HaltScope::All);
    Ok(halts.into_iter().next())
}

/// [`Error::Halted`](crate::Error::Halted) if a halt in `store` covers `service`: what refuses
/// a new deployment, or a new wave plan.
pub(crate) async fn refuse_if_halted(
    store: Option<&dyn crate::HaltStore>,
    service: &ServiceName,
) -> crate::Result<()> {
    match covering(store, service).await? {
        Some(halt) => Err(crate::Error::Halted {
            service: service.clone(),
            halt: Box::new(halt),
        }),
        None => Ok(()),
    }
}

/// What a running deployment does when a halt of its service stands at its next poll.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnHalt {
    /// Stay where it is (no weight change, no further phase) until the halt is lifted, then
    /// go on; the new fleet's health is still watched while traffic is on it, and an operator
    /// may still abort. The default: a halt freezes, it does not decide.
    #[default]
    Hold,
    /// Roll back, as an abort would (from any phase before Retire).
    RollBack,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_cover_what_they_name() {
        let web = ServiceName::new("web").unwrap();
        let api = ServiceName::new("api").unwrap();
        assert!(HaltScope::All.covers(&web));
        assert!(HaltScope::Service(web.clone()).covers(&web));
        assert!(!HaltScope::Service(web).covers(&api));
        assert_ne!(
            HaltScope::All.key(),
            HaltScope::service("all").unwrap().key()
        );
    }
}
