//! The actions, registered only with `--actions` and behind the token (see [`super::guard`]):
//! approve, reject, promote, abort (commands to a deployment), roll back (which needs the
//! backend), halt and lift a halt. Each is written through the [`Operator`], so the journal
//! says who gave it: `<operator name> (dashboard)`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use immutable_core::{Command, HaltScope, Operator};
use serde::{Deserialize, Serialize};

use super::error::Problem;
use super::read;
use super::state::App;

/// The longest reason accepted, in characters.
pub(crate) const MAX_REASON: usize = 500;
/// The longest operator name accepted, in characters.
pub(crate) const MAX_OPERATOR: usize = 64;

/// What an action's request carries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActionBody {
    /// Who asks: written in the journal as `<operator> (dashboard)`.
    pub(crate) operator: String,
    /// Why (reject, abort, halt).
    #[serde(default)]
    pub(crate) reason: Option<String>,
    /// Halts: the service (or `all`, below).
    #[serde(default)]
    pub(crate) service: Option<String>,
    /// Halts: every service instead of one.
    #[serde(default)]
    pub(crate) all: bool,
    /// Rollback: the deployment the page showed, which must be the service's.
    #[serde(default)]
    pub(crate) deployment: Option<String>,
}

/// What an action answers when it was done.
#[derive(Debug, Serialize)]
pub(crate) struct Done {
    /// What was done, in words.
    pub(crate) message: String,
    /// Who, as journaled.
    pub(crate) by: String,
}

/// The journal's name for `operator`, once it is 1 to 64 printable characters.
pub(crate) fn by(operator: &str) -> Result<String, Problem> {
    let name = operator.trim();
    let count = name.chars().count();
    if count == 0 || count > MAX_OPERATOR || name.chars().any(char::is_control) {
        return Err(Problem::BadInput(format!(
            "the operator name must be 1 to {MAX_OPERATOR} printable characters"
        )));
    }
    Ok(format!("{name} (dashboard)"))
}

/// A reason of at most 500 printable characters; `default` when none is given.
pub(crate) fn reason(given: Option<&str>, default: Option<&str>) -> Result<String, Problem> {
    let given = given.map(str::trim).filter(|r| !r.is_empty());
    let Some(reason) = given.or(default) else {
        return Err(Problem::BadInput("a reason is needed".to_owned()));
    };
    if reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
        return Err(Problem::BadInput(format!(
            "the reason must be at most {MAX_REASON} printable characters"
        )));
    }
    Ok(reason.to_owned())
}

fn operator(app: &App, by: &str) -> Operator {
    app.operator.clone().identity(by)
}

/// `POST /api/deployments/{id}/{approve|reject|promote|abort}`.
pub(crate) async fn command(
    State(app): State<App>,
    Path((id, verb)): Path<(String, String)>,
    Json(body): Json<ActionBody>,
) -> Result<Json<Done>, Problem> {
    let id = read::deployment_id(&id)?;
    let by = by(&body.operator)?;
    let default = Some("operator request");
    let (command, done) = match verb.as_str() {
        "approve" => (Command::Approve, "approved"),
        "promote" => (Command::Promote, "promoted"),
        "reject" => {
            let reason = reason(body.reason.as_deref(), default)?;
            (Command::Reject { reason }, "rejected")
        }
        "abort" => {
            let reason = reason(body.reason.as_deref(), default)?;
            (Command::Abort { reason }, "aborted")
        }
        _ => return Err(Problem::NotFound(format!("no action {verb}"))),
    };
    operator(&app, &by).command(&id, command).await?;
    tracing::info!(deployment = %id, by, action = done, "dashboard action");
    Ok(Json(Done {
        message: format!("{done}: deployment {id} applies it at its next poll"),
        by,
    }))
}

/// `POST /api/halts`: halts the service named in the body, or every service.
pub(crate) async fn halt(
    State(app): State<App>,
    Json(body): Json<ActionBody>,
) -> Result<Json<Done>, Problem> {
    let by = by(&body.operator)?;
    let scope = scope(&body)?;
    let reason = reason(body.reason.as_deref(), None)?;
    let halt = operator(&app, &by).halt(scope, reason).await?;
    tracing::info!(scope = %halt.scope, by, "dashboard halt");
    Ok(Json(Done {
        message: format!(
            "{} halted: running deployments hold (or roll back) at their next poll",
            halt.scope
        ),
        by,
    }))
}

/// `POST /api/halts/lift`.
pub(crate) async fn lift_halt(
    State(app): State<App>,
    Json(body): Json<ActionBody>,
) -> Result<Json<Done>, Problem> {
    let by = by(&body.operator)?;
    let scope = scope(&body)?;
    let lifted = operator(&app, &by).lift_halt(&scope).await?;
    tracing::info!(scope = %scope, by, lifted = lifted.is_some(), "dashboard lift-halt");
    let message = match lifted {
        Some(h) => format!("lifted the halt of {} (set by {})", h.scope, h.by),
        None => format!("no halt of {scope} stood"),
    };
    Ok(Json(Done { message, by }))
}

/// The scope a halt request names: `all`, or one service, never both nor neither.
fn scope(body: &ActionBody) -> Result<HaltScope, Problem> {
    match (body.all, body.service.as_deref().map(str::trim)) {
        (true, None | Some("")) => Ok(HaltScope::All),
        (false, Some(name)) if !name.is_empty() => {
            Ok(HaltScope::Service(read::service_name(name)?))
        }
        _ => Err(Problem::BadInput(
            "name one service, or every service (all), for a halt".to_owned(),
        )),
    }
}

/// How long a rollback request waits for the rollback to end before answering that it runs.
const ROLLBACK_ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// `POST /api/services/{name}/rollback`: needs backend options at start (409 without).
pub(crate) async fn rollback(
    State(app): State<App>,
    Path(name): Path<String>,
    Json(body): Json<ActionBody>,
) -> Result<(StatusCode, Json<Done>), Problem> {
    let service = read::service_name(&name)?;
    let by = by(&body.operator)?;
    if let Some(id) = &body.deployment {
        read::owned_by(&app, &read::deployment_id(id)?, &service).await?;
    }
    let Some(ctx) = app.backend.clone() else {
        return Err(Problem::Conflict(
            "rolling back needs the backend: start the dashboard with backend options \
             (--backend local --root DIR, --backend docker --root DIR, or --backend aws \
             ...) to roll back"
                .to_owned(),
        ));
    };
    tracing::info!(service = %service, by, "dashboard rollback");
    let who = by.clone();
    let task = tokio::spawn(async move { super::rollback::run(&ctx, &service, who).await });
    match tokio::time::timeout(ROLLBACK_ANSWER_WITHIN, task).await {
        Ok(Ok(Ok(message))) => Ok((StatusCode::OK, Json(Done { message, by }))),
        Ok(Ok(Err(problem))) => Err(problem),
        Ok(Err(_)) => Err(Problem::Failed("the rollback task failed".to_owned())),
        Err(_) => Ok((
            StatusCode::ACCEPTED,
            Json(Done {
                message: format!("rolling {name} back; its page shows how it goes"),
                by,
            }),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names_are_bounded_and_printable() {
        assert_eq!(by(" alice ").unwrap(), "alice (dashboard)");
        assert!(by("").is_err());
        assert!(by("   ").is_err());
        assert!(by(&"a".repeat(65)).is_err());
        assert!(by(&"é".repeat(64)).is_ok());
        assert!(by("alice\nbob").is_err());
        assert!(by("alice\u{1b}[31m").is_err());
    }

    #[test]
    fn reasons_are_bounded_and_default_when_allowed() {
        assert_eq!(reason(None, Some("x")).unwrap(), "x");
        assert_eq!(reason(Some("  "), Some("x")).unwrap(), "x");
        assert!(reason(None, None).is_err());
        assert!(reason(Some(&"r".repeat(501)), None).is_err());
        assert!(reason(Some("a\u{7}b"), None).is_err());
        assert_eq!(reason(Some("incident 42"), None).unwrap(), "incident 42");
    }
}
