//! What a request that did not succeed answers: one typed error, its HTTP status, and a
//! message in words (never a Rust `Debug`): an HTML page for the pages, `{"error": ...}` for
//! the API.

use askama::Template;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use immutable_core::{Error, ErrorCategory};
use serde::Serialize;

/// Why a page or an API call did not do what it was asked.
#[derive(Debug)]
pub(crate) enum Problem {
    /// A name, an id or a field that is not valid: nothing was read.
    BadInput(String),
    /// What the URL names does not exist.
    NotFound(String),
    /// The state of the deployment or service does not allow it (finished, locked, halted,
    /// nothing to roll back), or the dashboard was not started for it.
    Conflict(String),
    /// The store (or a backend) failed.
    Failed(String),
}

impl Problem {
    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Problem::BadInput(_) => StatusCode::BAD_REQUEST,
            Problem::NotFound(_) => StatusCode::NOT_FOUND,
            Problem::Conflict(_) => StatusCode::CONFLICT,
            Problem::Failed(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// What happened, in words.
    pub(crate) fn message(&self) -> &str {
        match self {
            Problem::BadInput(m) | Problem::NotFound(m) | Problem::Conflict(m) => m,
            Problem::Failed(m) => m,
        }
    }

    /// The same problem answered as a page instead of JSON.
    pub(crate) fn page(self) -> PageProblem {
        PageProblem(self)
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        if e.is_not_found() {
            return Problem::NotFound(message);
        }
        match e.category() {
            ErrorCategory::Input => Problem::BadInput(message),
            ErrorCategory::Refused => Problem::Conflict(message),
            _ => Problem::Failed(message),
        }
    }
}

/// The body of an API error.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: self.message(),
        });
        (self.status(), body).into_response()
    }
}

/// A [`Problem`] answered as an HTML page.
#[derive(Debug)]
pub(crate) struct PageProblem(Problem);

impl From<Problem> for PageProblem {
    fn from(p: Problem) -> Self {
        PageProblem(p)
    }
}

impl From<Error> for PageProblem {
    fn from(e: Error) -> Self {
        PageProblem(e.into())
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "dashboard/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for PageProblem {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let page = ErrorPage {
            title: status.canonical_reason().unwrap_or("error"),
            message: self.0.message(),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, self.0.message().to_owned()).into_response(),
        }
    }
}

/// Renders a template, or answers 500 saying the page could not be drawn.
pub(crate) fn render(t: &impl Template) -> Result<String, Problem> {
    t.render()
        .map_err(|e| Problem::Failed(format!("the page could not be drawn: {e}")))
}
