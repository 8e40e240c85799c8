//! [`WebhookNotifier`]: the [`Notification`] as JSON, POSTed to an address.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::{Notification, Notifier};
use crate::{Error, Result};

/// POSTs each [`Notification`] as JSON (its documented payload) to an `http` or `https`
/// address; any 2xx answer is a delivery.
///
/// Errors map as the engine's retries expect: 429 is throttled, 5xx and connection failures
/// are transient (retried within the notifier's timeout), other answers are final. The
/// address may carry a secret (Slack's do): errors and `Debug` show only its scheme, host
/// and port, and header values (tokens) are never shown.
#[derive(Clone)]
pub struct WebhookNotifier {
    url: reqwest::Url,
    client: reqwest::Client,
    headers: HeaderMap,
}

impl fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("WebhookNotifier")
            .field("endpoint", &endpoint(&self.url))
            .field("headers", &names)
            .finish_non_exhaustive()
    }
}

/// `scheme://host:port/…`: an address without what may be secret in it.
pub(super) fn endpoint(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}/…", url.scheme()),
        None => format!("{}://{host}/…", url.scheme()),
    }
}

impl WebhookNotifier {
    /// A notifier for `url`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `notify.url` unless it is an `http` or `https` address with
    /// a host (the message does not repeat the address, which may be secret).
    pub fn new(url: &str) -> Result<Self> {
        let url = parse_url(url)?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("immutable/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::invalid("notify.url", format!("no HTTP client: {e}")))?;
        Ok(WebhookNotifier {
            url,
            client,
            headers: HeaderMap::new(),
        })
    }

    /// Sends `name: value` with every request (an `Authorization` token, say; never shown).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `notify.headers` for a name or value HTTP does not allow.
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self> {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            Error::invalid("notify.headers", format!("`{name}` is not a header name"))
        })?;
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            Error::invalid(
                "notify.headers",
                format!("the value of `{name}` is not a valid header value"),
            )
        })?;
        value.set_sensitive(true);
        self.headers.insert(name, value);
        Ok(self)
    }

    /// The address without its path: what may be shown of it.
    pub fn endpoint(&self) -> String {
        endpoint(&self.url)
    }

    /// POSTs `body` as JSON and maps the answer.
    pub(super) async fn post(&self, body: &serde_json::Value) -> Result<()> {
        let sent = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await;
        let at = self.endpoint();
        let response = sent.map_err(|e| {
            let e = e.without_url();
            Error::transient(format!("could not reach {at}: {e}"))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let message = format!("{at} answered {status}");
        Err(match status.as_u16() {
            429 => Error::throttled(message),
            500..=599 => Error::transient(message),
            _ => Error::provider(message),
        })
    }
}

pub(super) fn parse_url(url: &str) -> Result<reqwest::Url> {
    let bad = |why: &str| Error::invalid("notify.url", why.to_owned());
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        bad(&format!(
            "not an address ({e}); expected http(s)://host/path"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("must be an http or https address"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(parsed)
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn send(&self, notification: &Notification) -> Result<()> {
        let body = serde_json::to_value(notification)
            .map_err(|e| Error::provider(format!("the notification is not JSON: {e}")))?;
        self.post(&body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_addresses_are_refused_without_repeating_them() {
        for url in [
            "",
            "ftp://x/secret-token",
            "https://",
            "not a url/secret-token",
        ] {
            let e = WebhookNotifier::new(url).unwrap_err().to_string();
            assert!(e.contains("notify.url"), "{e}");
            assert!(!e.contains("secret-token"), "{e}");
        }
    }

    #[test]
    fn debug_shows_no_path_and_no_header_value() {
        let n = WebhookNotifier::new("https://hooks.example.com:8443/services/T0/B0/secret-token")
            .unwrap()
            .with_header("Authorization", "Bearer hunter2")
            .unwrap();
        let shown = format!("{n:?}");
        assert!(
            shown.contains("https://hooks.example.com:8443/…"),
            "{shown}"
        );
        assert!(
            !shown.contains("secret-token") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
