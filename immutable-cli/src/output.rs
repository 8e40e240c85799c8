//! What `--output json` prints: every line on stdout is one [`Document`], an object whose
//! `type` says which. `deploy`, `resume` and `rollback` print `event` lines then their result;
//! `watch` prints a `status` line per change; every other command prints one document; a
//! command that fails prints an `error` document (and exits 1 to 5).
//!
//! The JSON Schema of these documents is `immutable-cli/docs/output.schema.json`, generated
//! from these types (`cargo test -p immutable-cli output` fails when it is out of date;
//! `IMMUTABLE_BLESS=1` rewrites it). Fields that carry an `immutable_core` type (an event, a
//! status, a plan, a record, an outcome, an image, an adoption) hold it as the core library
//! serializes it; their schema says which type and accepts any JSON there.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

mod notify;
mod report;
mod setup;
pub(crate) use notify::{NotifyTestDoc, NotifyTestRow};
pub(crate) use report::{HistoryDoc, HistoryRow, ReportDoc, ReportFormat};
pub(crate) use setup::{
    ImageAction, ImageDoc, ImageRow, ImagesDoc, InitDoc, LocalImageDoc, PackerDoc, ProxyDoc,
    ProxyRouteDoc, ProxyState,
};
pub(crate) use setup::{MigrationRow, StoreMigrateDoc};

/// One line of `--output json`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Document {
    /// A command that failed or was refused.
    Error(ErrorDoc),
    /// An engine event of `deploy`, `resume` or `rollback` (`immutable_core::Event`).
    Event {
        /// `immutable_core::Event`.
        event: Value,
    },
    /// How `deploy` or `resume` ended.
    Result(ResultDoc),
    /// `plan`.
    Plan(PlanDoc),
    /// `status`, and each change `watch` sees (`immutable_core::Status`).
    Status {
        /// `immutable_core::Status`.
        status: Value,
    },
    /// `approve`, `reject`, `promote`, `abort`.
    Command(CommandDoc),
    /// `history`.
    History(HistoryDoc),
    /// `rollback`.
    Rollback(RollbackDoc),
    /// `gc`.
    Gc(GcDoc),
    /// `halt`.
    Halt(HaltDoc),
    /// `lift-halt`.
    LiftHalt(LiftHaltDoc),
    /// `halts`.
    Halts(HaltsDoc),
    /// `adopt` (`immutable_core::Adoption`).
    Adopt {
        /// `immutable_core::Adoption`.
        adoption: Value,
    },
    /// `restore`, once per service it looked at.
    Restore(RestoreDoc),
    /// `demo-setup`: what it made, and the options that use it.
    DemoSetup(DemoSetupDoc),
    /// `image list`.
    Images(ImagesDoc),
    /// `report`.
    Report(ReportDoc),
    /// `image show`, `label`, `retire`, `import`.
    Image(ImageDoc),
    /// `proxy start`, `status`, `stop`.
    Proxy(ProxyDoc),
    /// `init`.
    Init(InitDoc),
    /// `notify test`.
    NotifyTest(NotifyTestDoc),
    /// `store migrate`.
    StoreMigrate(StoreMigrateDoc),
}

impl Document {
    /// Prints it as one line on stdout.
    #[allow(clippy::print_stdout)] // the program's output
    pub(crate) fn print(&self) {
        match serde_json::to_string(self) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("error: cannot write the JSON output: {e}"),
        }
    }
}

/// A core value as JSON (a type that serializes, as every core type here does).
pub(crate) fn core(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// How a command ended, as scripts read it (the exit code says the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Ending {
    /// Exit 0.
    Succeeded,
    /// Exit 1: a provider, the store, the network.
    Error,
    /// Exit 2: bad input, locked, halted, unfinished, nothing to do.
    Refused,
    /// Exit 3: the deployment rolled back.
    RolledBack,
    /// Exit 4: the deployment stopped without a way back.
    Stopped,
    /// Exit 5: suspended by a signal; `continue_with` resumes it.
    Suspended,
}

/// A failed or refused command.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ErrorDoc {
    pub(crate) result: Ending,
    pub(crate) exit_code: i32,
    /// What happened.
    pub(crate) message: String,
    /// The command that continues, when there is one.
    pub(crate) continue_with: Option<String>,
    pub(crate) details: Option<ErrorDetails>,
}

/// Facts about a failure, for scripts.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum ErrorDetails {
    /// The service is locked by a deployment's runner.
    Locked {
        /// The deployment that holds the lease.
        deployment: String,
        /// When the lease expires, if the store says.
        lease_expires_in_ms: Option<u64>,
    },
    /// The service is halted.
    Halted { halt: HaltRow },
}

/// How `deploy` or `resume` ended.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ResultDoc {
    pub(crate) result: Ending,
    pub(crate) exit_code: i32,
    pub(crate) deployment: String,
    /// The service (not when suspended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) service: Option<String>,
    /// `immutable_core::Outcome` (not when suspended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) outcome: Option<Value>,
    /// `immutable_core::DeploymentRecord` (not when suspended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) record: Option<Value>,
    /// When suspended: the command that resumes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) continue_with: Option<String>,
}

/// Whether `deploy` would run.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PlanResult {
    /// Exit 0.
    WouldRun,
    /// Exit 2: `plan.refusals` says why.
    Refused,
}

/// `plan`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct PlanDoc {
    pub(crate) result: PlanResult,
    pub(crate) exit_code: i32,
    /// `immutable_core::Plan`.
    pub(crate) plan: Value,
    /// The commands that clear the refusals (a `resume`).
    pub(crate) continue_with: Vec<String>,
}

/// Which command a deployment was given.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CommandWord {
    Approved,
    Rejected,
    Promoted,
    Aborted,
}

impl CommandWord {
    /// The word, as in JSON.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CommandWord::Approved => "approved",
            CommandWord::Rejected => "rejected",
            CommandWord::Promoted => "promoted",
            CommandWord::Aborted => "aborted",
        }
    }
}

/// A command written to a deployment's record.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct CommandDoc {
    pub(crate) result: Ending,
    pub(crate) exit_code: i32,
    pub(crate) deployment: String,
    pub(crate) command: CommandWord,
}

/// `rollback`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct RollbackDoc {
    pub(crate) result: Ending,
    pub(crate) exit_code: i32,
    /// How: routed back, redeployed, stopped, or aborted the running deployment.
    pub(crate) how: String,
    pub(crate) deployment: String,
    /// `immutable_core::Outcome`, when known.
    pub(crate) outcome: Value,
}

/// `gc`: ids of fleets and targets.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct GcDoc {
    pub(crate) service: String,
    /// Orphan fleets: their deployment is in the journal and ended.
    pub(crate) fleets: Vec<String>,
    pub(crate) targets: Vec<String>,
    /// Fleets of deployments the journal does not know.
    pub(crate) foreign_fleets: Vec<String>,
    pub(crate) foreign_targets: Vec<String>,
    /// Whether it removed (`--remove`, `--remove-fleet`, `--remove-target`).
    pub(crate) removed: bool,
    pub(crate) removed_fleets: Vec<String>,
    pub(crate) removed_targets: Vec<String>,
}

/// What a halt covers.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ScopeRow {
    pub(crate) scope: ScopeWord,
    /// The service, for a service's halt; null for every service.
    pub(crate) service: Option<String>,
}

/// One service or all.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ScopeWord {
    Service,
    All,
}

/// A halt that stands (or stood).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct HaltRow {
    #[serde(flatten)]
    pub(crate) scope: ScopeRow,
    /// Who set it.
    pub(crate) by: String,
    pub(crate) reason: String,
    /// When, RFC 3339 with milliseconds.
    pub(crate) at: String,
}

/// `halt`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct HaltDoc {
    pub(crate) result: Ending,
    pub(crate) exit_code: i32,
    pub(crate) halt: HaltRow,
}

/// `lift-halt`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct LiftHaltDoc {
    pub(crate) result: Ending,
    pub(crate) exit_code: i32,
    pub(crate) scope: ScopeRow,
    /// The halt lifted; null when none stood.
    pub(crate) lifted: Option<HaltRow>,
}

/// `halts`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct HaltsDoc {
    /// The service whose halts are listed; null for every halt.
    pub(crate) service: Option<String>,
    pub(crate) halts: Vec<HaltRow>,
}

/// `restore`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct RestoreDoc {
    pub(crate) service: String,
    /// Servers put back into HAProxy.
    pub(crate) added: usize,
}

/// `demo-setup`: on AWS the options that use the world it made, on the local and Docker
/// backends the root.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub(crate) struct DemoSetupDoc {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) listener_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) preview_listener_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) launch_template: Option<String>,
    /// Left out when empty (the local and Docker backends), so not required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) subnets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) vpc_id: Option<String>,
    /// The local or Docker backend's store root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) root: Option<String>,
    pub(crate) images: Vec<DemoImage>,
}

/// An image `demo-setup` made.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum DemoImage {
    /// An AMI's name.
    Named(String),
    /// A local or Docker image.
    Imported { name: String, id: String },
}

impl DemoSetupDoc {
    /// `--listener-arn ... --subnets a,b ...`: the options that use the AWS world.
    pub(crate) fn flags(&self) -> String {
        let subnets = (!self.subnets.is_empty()).then(|| self.subnets.join(","));
        [
            ("--listener-arn", &self.listener_arn),
            ("--preview-listener-arn", &self.preview_listener_arn),
            ("--launch-template", &self.launch_template),
            ("--subnets", &subnets),
            ("--vpc-id", &self.vpc_id),
        ]
        .into_iter()
        .filter_map(|(flag, v)| v.as_ref().map(|v| format!("{flag} {v}")))
        .collect::<Vec<_>>()
        .join(" ")
    }
}

/// The schema of every document, as committed in `docs/output.schema.json`.
pub(crate) fn schema() -> String {
    let schema = schemars::schema_for!(Document);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_schema_is_the_one_the_types_make() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/output.schema.json");
        let made = schema();
        if std::env::var_os("IMMUTABLE_BLESS").is_some() {
            std::fs::write(path, &made).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        // Compared as JSON values: the order of keys follows serde_json's features, which a
        // workspace build with every feature unifies differently from this crate's own build.
        let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
        assert!(
            parse(&committed).is_some() && parse(&committed) == parse(&made),
            "{path} is out of date: run `IMMUTABLE_BLESS=1 cargo test -p immutable-cli output`"
        );
    }
}
