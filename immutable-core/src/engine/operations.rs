//! What operators and tools do besides deploying: commands and status through the store
//! (`operator`, `command`, `status`, `halt`), an operator's rollback, adoption, garbage
//! collection, and the dry run of a deployment.

pub(super) mod adopt;
pub(super) mod command;
pub(super) mod dry_run;
pub(super) mod gc;
pub(super) mod halt;
pub(super) mod operator;
pub(super) mod rollback;
pub(super) mod status;
