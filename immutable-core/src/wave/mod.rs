//! Waves: one image deployed to many places (regions, accounts) in ordered waves, each a set
//! of deployments on their own engines, with a bake between waves and one halt for all.
//!
//! # Expected flow
//! 1. [`WaveRunner::run`] validates the [`WavePlan`] against the runner's engines and checks
//!    (nothing starts if anything is wrong), refuses a halted service, and saves the plan's
//!    [`WaveRecord`] in the shared store.
//! 2. **Running**: the current wave's deployments run at once, at most `concurrency` at a time,
//!    each on its engine under an id recorded before it starts.
//! 3. **Baking**: once every deployment of the wave succeeded, the plan bakes for its bake
//!    time, running the gate checks against each of them every interval, and on past that
//!    time until `min_passes` rounds have passed.
//! 4. The next wave, until the last; then **Done**.
//!
//! # Failures and halts
//! A deployment that does not succeed or a failed gate check fails the plan: the service is
//! halted in the shared store ([`Engine::halt`](crate::Engine::halt)), so every engine and
//! runner that reads halts there stops advancing it; the wave's other deployments are aborted;
//! no further wave starts; and, with [`OnWaveFailure::RollBackDone`], every deployment that
//! succeeded is rolled back, newest first. The halt stays until an operator lifts it.
//!
//! A halt set by anyone else stops the plan in [`WaveState::Halted`]: no further wave starts,
//! the bake stops counting, deployments of engines that hold under halts are suspended (those
//! whose engines roll back under halts do so, which fails the plan). Resume it with
//! [`WaveRunner::resume`] once the halt is lifted.
//!
//! # Guarantees
//! The record is saved after every change, so a runner cut off at any point is resumed with
//! [`WaveRunner::resume`] to the same end: deployments it started are resumed, never started
//! twice; a bake counts on from the passes it saved, and a runner down for longer than the
//! bake does not fail it for want of passes; a lease keeps two runners off one plan.
//!
//! # Assumptions
//! Each engine keeps its deployment records in its own store (a service's records and lease
//! are per store), and reads halts from the runner's shared store
//! ([`EngineBuilder::halts_from`](crate::EngineBuilder::halts_from)).
//!
//! # Caveats
//! A deployment's own bake ends before the wave's bake begins, and retires its old fleet: a
//! plan's rollback is a redeployment of the previous image, not one routing call. Keep the
//! deployments' `bake_time` long enough for the fast way back you need.

mod bake;
mod deploy;
mod event;
mod plan;
mod record;
mod roll_back;
mod runner;

pub use event::{WaveEvent, WaveEventKind};
pub use plan::{OnWaveFailure, TargetSpec, WaveBake, WavePlan, WavePlanSpec, WaveSpec, WaveTarget};
pub use record::{
    TargetOutcome, TargetRun, WaveFailure, WaveHistoryEntry, WaveId, WaveRecord, WaveState,
    check_wave_version,
};
pub use runner::{WaveReport, WaveRunner, WaveRunnerBuilder};
