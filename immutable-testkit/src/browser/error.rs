//! What can keep a [`Browser`](super::Browser) from starting or from doing what a test asks.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// What to do when the browser or its driver is missing: the one remedy every error names.
pub const INSTALL: &str = "install Debian's chromium and chromium-driver (scripts/test.sh does)";

/// Why a [`Browser`](super::Browser) could not start, or a command in it failed.
///
/// A missing program is an error, never a skip: the browser tests are part of the suite.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrowserError {
    /// Chromium or chromedriver is not an executable file at the path the harness uses.
    #[error("{program} not found at {path} (set {env} to use another): {INSTALL}")]
    Missing {
        /// `chromium` or `chromedriver`.
        program: &'static str,
        /// Where it was looked for.
        path: PathBuf,
        /// The environment variable that overrides the path.
        env: &'static str,
    },
    /// A scratch directory (profile, driver log) or the driver process could not be created.
    #[error("cannot {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// chromedriver did not answer `GET /status` as ready in time (or exited first).
    #[error(
        "chromedriver at {url} was not ready after {waited:?}{}; its log:\n{log}",
        exited.map(|s| format!(" (it exited: {s})")).unwrap_or_default()
    )]
    DriverNotReady {
        /// The driver's address.
        url: String,
        /// How long the harness waited.
        waited: Duration,
        /// The driver's exit status, if it exited.
        exited: Option<ExitStatus>,
        /// The end of the driver's output.
        log: String,
    },
    /// chromedriver answered but could not start a Chromium session: a browser that does not
    /// start, or a driver of another version than the browser.
    #[error(
        "chromedriver could not start a Chromium session: {reason}; {INSTALL}; its log:\n{log}"
    )]
    Session {
        /// The driver's answer, or that it did not answer in time.
        reason: String,
        /// The end of the driver's output.
        log: String,
    },
    /// No element matched a CSS selector within the time given.
    #[error("no element matched `{selector}` within {waited:?}")]
    Timeout {
        /// The CSS selector.
        selector: String,
        /// How long the harness waited.
        waited: Duration,
    },
    /// A WebDriver command failed.
    #[error("WebDriver command failed: {0}")]
    Command(#[from] fantoccini::error::CmdError),
}

impl BrowserError {
    pub(super) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| BrowserError::Io { what, source }
    }
}
