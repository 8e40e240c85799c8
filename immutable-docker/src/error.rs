//! Docker Engine API errors in the core's terms, classified where they arise: 404 is
//! [`Error::NotFound`], 409 [`Error::Conflict`], 5xx answers of a proxy in front of the daemon
//! (502, 503, 504) and broken connections are [`Error::Transient`], a timeout is
//! [`Error::Timeout`]; anything else the daemon refused is [`Error::Provider`] with its
//! message. The bollard error is kept as the source.

use std::time::Duration;

use bollard::errors::Error as Bollard;
use immutable_core::{BoxError, Error, ResourceKind};

/// The HTTP status the daemon answered, when it answered.
pub(crate) fn status(e: &Bollard) -> Option<u16> {
    match e {
        Bollard::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Maps an error of the call `what` on `host`; a 404 is [`Error::NotFound`] of `kind` `id`.
pub(crate) fn map(host: &str, what: &str, kind: ResourceKind, id: &str, e: Bollard) -> Error {
    let source = |e: Bollard| Some(Box::new(e) as BoxError);
    match &e {
        Bollard::DockerResponseServerError {
            status_code,
            message,
        } => {
            let message = format!("Docker host {host}: {what}: {message} (HTTP {status_code})");
            match status_code {
                404 => Error::NotFound {
                    kind,
                    id: id.to_owned(),
                    source: source(e),
                },
                409 => Error::Conflict {
                    message,
                    source: source(e),
                },
                429 => Error::Throttled {
                    message,
                    source: source(e),
                },
                502..=504 => Error::Transient {
                    message,
                    source: source(e),
                },
                _ => Error::Provider {
                    message,
                    source: source(e),
                },
            }
        }
        Bollard::RequestTimeoutError => Error::Timeout {
            what: format!("Docker host {host} to answer {what}"),
            after: REQUEST_TIMEOUT,
        },
        Bollard::HyperResponseError { .. }
        | Bollard::HyperLegacyError { .. }
        | Bollard::IOError { .. }
        | Bollard::SocketNotFoundError(_) => Error::Transient {
            message: format!("Docker host {host}: {what}: {e}"),
            source: source(e),
        },
        _ => Error::Provider {
            message: format!("Docker host {host}: {what}: {e}"),
            source: source(e),
        },
    }
}

/// How long one Engine API request may take (an image copy between hosts streams longer: see
/// `images::copy`).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
