//! Waves: one image deployed to many places in ordered waves (see [`WaveRunner`]).

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
