//! The phases of a deployment, each in the file named after it, in the order a deployment
//! walks them; `roll_back` is where any of them turns when it fails.

pub(super) mod attach;
pub(super) mod await_healthy;
pub(super) mod bake;
pub(super) mod plan;
pub(super) mod provision;
pub(super) mod retire;
pub(super) mod roll_back;
pub(super) mod rollout;
pub(super) mod step;
