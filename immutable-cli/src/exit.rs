//! Exit codes, and errors turned into what an operator (or a script) does next.

use std::time::{Duration, SystemTime};

use crate::invocation::{Invocation, sh};
use crate::output::{Document, Ending, ErrorDetails, ErrorDoc, HaltRow, ScopeRow, ScopeWord};
use immutable_core::{Error, ErrorCategory, Halt, HaltScope, Outcome, ServiceName, StateStore};

/// How the process ends; documented in `--help` ([`crate::cli::EXIT_CODES`]) and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    Succeeded = 0,
    Error = 1,
    Refused = 2,
    RolledBack = 3,
    Stopped = 4,
    Suspended = 5,
}

impl Code {
    /// The code of a deployment that ended.
    pub(crate) fn of(outcome: &Outcome) -> Code {
        match outcome {
            Outcome::Succeeded => Code::Succeeded,
            Outcome::RolledBack { .. } => Code::RolledBack,
            Outcome::Stopped { .. } => Code::Stopped,
        }
    }

    /// The word scripts read in JSON.
    pub(crate) fn word(self) -> Ending {
        match self {
            Code::Succeeded => Ending::Succeeded,
            Code::Error => Ending::Error,
            Code::Refused => Ending::Refused,
            Code::RolledBack => Ending::RolledBack,
            Code::Stopped => Ending::Stopped,
            Code::Suspended => Ending::Suspended,
        }
    }
}

/// A command that did not do what it was asked, and why (boxed: it travels in every `Err`).
#[derive(Debug)]
pub(crate) struct Failure(Box<Details>);

/// What a [`Failure`] says.
#[derive(Debug)]
pub(crate) struct Details {
    pub(crate) code: Code,
    pub(crate) message: String,
    /// The command that continues, when there is one.
    pub(crate) next: Option<String>,
    /// Facts for scripts (lease expiry, the deployment, the halt).
    pub(crate) details: Option<ErrorDetails>,
}

impl std::ops::Deref for Failure {
    type Target = Details;
    fn deref(&self) -> &Details {
        &self.0
    }
}

impl std::ops::DerefMut for Failure {
    fn deref_mut(&mut self) -> &mut Details {
        &mut self.0
    }
}

impl Failure {
    fn new(code: Code, message: impl Into<String>) -> Self {
        Failure(Box::new(Details {
            code,
            message: message.into(),
            next: None,
            details: None,
        }))
    }

    pub(crate) fn refused(message: impl Into<String>) -> Self {
        Failure::new(Code::Refused, message)
    }

    pub(crate) fn error(message: impl Into<String>) -> Self {
        Failure::new(Code::Error, message)
    }

    pub(crate) fn next(mut self, command: impl Into<String>) -> Self {
        self.next = Some(command.into());
        self
    }

    /// Prints it: to stderr for people, as one JSON object on stdout for scripts.
    pub(crate) fn print(&self, json: bool) {
        if json {
            Document::Error(ErrorDoc {
                result: self.code.word(),
                exit_code: self.code as i32,
                message: self.message.clone(),
                continue_with: self.next.clone(),
                details: self.details.clone(),
            })
            .print();
            return;
        }
        eprintln!("error: {}", self.message);
        if let Some(next) = &self.next {
            eprintln!("continue with: {next}");
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = if refusal(&e) {
            Code::Refused
        } else {
            Code::Error
        };
        Failure::new(code, e.to_string())
    }
}

/// What is wrong with a field, without the core's "invalid input: `field`" prefix, for a
/// message that names the flag or key instead; any other error as it reads.
pub(crate) fn reason(e: Error) -> String {
    match e {
        Error::InvalidInput { reason, .. } => reason,
        e => e.to_string(),
    }
}

/// Whether the error refuses the request (exit 2) rather than failing it (exit 1): bad input,
/// the engine's refusals, and a deployment id the journal does not know.
fn refusal(e: &Error) -> bool {
    matches!(e.category(), ErrorCategory::Input | ErrorCategory::Refused)
        || matches!(e, Error::NotFound { kind, .. } if *kind == immutable_core::ResourceKind::Deployment)
}

/// Turns an engine error into a failure that names the command that continues.
///
/// `cli` is this invocation, so that the printed command reaches the same service through the
/// same backend and store.
pub(crate) async fn explain(e: Error, store: &dyn StateStore, cli: &Invocation) -> Failure {
    match e {
        Error::Locked {
            ref service,
            ref deployment,
            ..
        } => {
            let (service, deployment) = (service.clone(), sh(deployment.as_str()));
            let left = lease_left(store, &service).await;
            let mut f = Failure::from(e);
            let when = match left {
                Some(d) if !d.is_zero() => format!("its lease expires in {}", human(d)),
                _ => "its lease has expired".to_owned(),
            };
            f.message = format!(
                "{}. If its runner is alive, wait for it (`{}`); if it died, {when}, then \
                 resume it",
                f.message.trim_end_matches(['.', ' ']),
                cli.command("watch", &[&deployment]),
            );
            f.details = Some(ErrorDetails::Locked {
                deployment: deployment.to_string(),
                lease_expires_in_ms: left.map(|d| d.as_millis() as u64),
            });
            f.next(cli.command("resume", &[&deployment]))
        }
        Error::UnfinishedDeployment { ref deployment, .. }
        | Error::NotRunningHere { ref deployment, .. } => {
            let deployment = sh(deployment.as_str());
            Failure::from(e).next(cli.command("resume", &[&deployment]))
        }
        Error::BlueUnhealthy { .. } => {
            Failure::from(e).next(cli.command("rollback", &["--redeploy"]))
        }
        Error::ServingTargetNotOwned { ref service, .. } => {
            let service = service.to_string();
            Failure::from(e).next(cli.command("adopt", &["--service", &service]))
        }
        Error::Halted { ref halt, .. } => {
            let halt = (**halt).clone();
            let mut f = Failure::from(e);
            f.message = format!("{} (halted {} ago)", f.message, age(&halt));
            f.details = Some(ErrorDetails::Halted { halt: row(&halt) });
            f.next(cli.command("lift-halt", &scope_words(&halt.scope)))
        }
        other => Failure::from(other),
    }
}

/// How long until the service's lease expires, as the store has it.
pub(crate) async fn lease_left(store: &dyn StateStore, service: &ServiceName) -> Option<Duration> {
    let lease = store.lease(service).await.ok()??;
    Some(
        lease
            .expires_at
            .duration_since(SystemTime::now())
            .unwrap_or_default(),
    )
}

/// A duration to the second (to the millisecond below one second).
pub(crate) fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    humantime::format_duration(Duration::from_secs(d.as_secs_f64().ceil() as u64)).to_string()
}

// How halts are shown, in errors and by the halt commands.

/// The words that name `scope` on the command line.
pub(crate) fn scope_words(scope: &HaltScope) -> Vec<&str> {
    match scope {
        HaltScope::All => vec!["--all"],
        HaltScope::Service(s) => vec!["--service", s.as_str()],
    }
}

/// What a halt covers, for scripts.
pub(crate) fn scope_row(scope: &HaltScope) -> ScopeRow {
    match scope {
        HaltScope::Service(s) => ScopeRow {
            scope: ScopeWord::Service,
            service: Some(s.to_string()),
        },
        // A scope this version cannot name reads as every service: the wider one.
        _ => ScopeRow {
            scope: ScopeWord::All,
            service: None,
        },
    }
}

/// A halt for scripts.
pub(crate) fn row(h: &Halt) -> HaltRow {
    HaltRow {
        scope: scope_row(&h.scope),
        by: h.by.clone(),
        reason: h.reason.clone(),
        at: humantime::format_rfc3339_millis(h.at).to_string(),
    }
}

/// How long the halt has stood, on this machine's clock.
pub(crate) fn age(h: &Halt) -> String {
    human(SystemTime::now().duration_since(h.at).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use immutable_core::{DeploymentId, InMemoryStore};

    /// An id read from the store (a lease file, a record) is outside data: the command printed
    /// to run next quotes it, so pasting it runs `resume` and nothing else.
    #[tokio::test]
    async fn ids_from_the_store_are_quoted_in_the_command_that_continues() {
        let store = InMemoryStore::new();
        let hostile = "01jd; rm -rf ~";
        let locked = Error::Locked {
            service: ServiceName::new("web").unwrap(),
            holder: "runner".into(),
            deployment: DeploymentId::new(hostile),
        };
        let matches = <crate::cli::Cli as clap::CommandFactory>::command().get_matches_from([
            "immutable",
            "--service",
            "web",
            "status",
        ]);
        let f = explain(locked, &store, &Invocation::new(&matches)).await;
        assert_eq!(
            f.next.as_deref(),
            Some("immutable --service web resume '01jd; rm -rf ~'")
        );
        assert!(
            f.message.contains("watch '01jd; rm -rf ~'"),
            "{}",
            f.message
        );
    }
}
