//! What every handler shares: the store through an [`Operator`], how often live views read
//! it, and what the dashboard was started to allow.

use std::sync::Arc;
use std::time::Duration;

use immutable_core::Operator;

use crate::backend::Ctx;

/// The dashboard's shared state.
#[derive(Debug, Clone)]
pub(crate) struct App {
    /// Reads the store, and writes commands and halts (as `<name> (dashboard)`).
    pub(crate) operator: Operator,
    /// How often live views read the store.
    pub(crate) poll: Duration,
    /// Whether the action buttons are shown (their routes exist only then).
    pub(crate) actions: bool,
    /// The command's context, when backend options were given: only rollback needs it.
    pub(crate) backend: Option<Arc<Ctx>>,
}

impl App {
    /// Whether the rollback button is shown and its endpoint acts.
    pub(crate) fn can_roll_back(&self) -> bool {
        self.actions && self.backend.is_some()
    }

    /// The poll interval in milliseconds, for the page's script.
    pub(crate) fn poll_ms(&self) -> u128 {
        self.poll.as_millis()
    }
}
