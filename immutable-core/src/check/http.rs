//! [`HttpCheck`]: an HTTP probe of the new fleet (status, body, consecutive passes).

use std::time::Duration;

use async_trait::async_trait;

use super::url::parse_http_url;
use super::{Check, CheckContext, CheckOutcome};
use crate::Result;

/// Probes a URL until it answers as expected `consecutive` times in a row.
///
/// Each request must return `expect_status`, and, when set, carry a header value and a body
/// containing a string, within `request_timeout`. Requests are `interval` apart; a failure
/// resets the run. After `max_requests` without the run completing, the check fails naming the
/// last failure, so a flapping endpoint fails rather than passing on luck.
///
/// ```
/// use std::time::Duration;
/// use immutable_core::HttpCheck;
///
/// let smoke = HttpCheck::new("http://preview.internal:8080/health")?
///     .expect_status(200)
///     .body_contains("\"status\":\"ok\"")
///     .consecutive_passes(3)
///     .interval(Duration::from_secs(2))
///     .request_timeout(Duration::from_secs(1));
/// # Ok::<(), immutable_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct HttpCheck {
    client: reqwest::Client,
    url: reqwest::Url,
    status: u16,
    body: Option<String>,
    header: Option<(String, String)>,
    consecutive: u32,
    max_requests: u32,
    interval: Duration,
    timeout: Duration,
}

impl HttpCheck {
    /// A check of `url` expecting status 200 once, with a 5 s timeout and 1 s between requests.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) on `url` when it does not parse as an
    /// http(s) URL.
    pub fn new(url: &str) -> Result<Self> {
        let url = parse_http_url(url)?;
        Ok(HttpCheck {
            client: reqwest::Client::new(),
            url,
            status: 200,
            body: None,
            header: None,
            consecutive: 1,
            max_requests: 10,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
        })
    }

    /// The status every answer must have.
    pub fn expect_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// A string the body must contain.
    pub fn body_contains(mut self, needle: impl Into<String>) -> Self {
        self.body = Some(needle.into());
        self
    }

    /// A header the answer must carry, with this exact value.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.header = Some((name.into().to_ascii_lowercase(), value.into()));
        self
    }

    /// Passes needed in a row (at least 1). `max_requests` grows to at least twice this.
    pub fn consecutive_passes(mut self, n: u32) -> Self {
        self.consecutive = n.max(1);
        self.max_requests = self.max_requests.max(2 * self.consecutive);
        self
    }

    /// Requests allowed in all before the check fails.
    pub fn max_requests(mut self, n: u32) -> Self {
        self.max_requests = n.max(self.consecutive);
        self
    }

    /// Time between requests.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Time allowed for one request.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn probe(&self) -> std::result::Result<(), String> {
        let send = async {
            let resp = self.client.get(self.url.clone()).send().await?;
            let status = resp.status().as_u16();
            let header = self.header.as_ref().map(|(name, _)| {
                resp.headers()
                    .get(name.as_str())
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            });
            let body = resp.text().await?;
            Ok::<_, reqwest::Error>((status, header, body))
        };
        let (status, header, body) = match tokio::time::timeout(self.timeout, send).await {
            Err(_) => return Err(format!("no answer within {:?}", self.timeout)),
            Ok(Err(e)) => return Err(format!("request failed: {e}")),
            Ok(Ok(answer)) => answer,
        };
        if status != self.status {
            return Err(format!("status {status}, expected {}", self.status));
        }
        if let (Some((name, want)), Some(got)) = (&self.header, header)
            && got.as_deref() != Some(want.as_str())
        {
            return Err(format!("header {name} is {got:?}, expected {want:?}"));
        }
        if let Some(needle) = &self.body
            && !body.contains(needle.as_str())
        {
            return Err(format!("body does not contain {needle:?}"));
        }
        Ok(())
    }
}

#[async_trait]
impl Check for HttpCheck {
    async fn run(&self, _ctx: &CheckContext<'_>) -> CheckOutcome {
        let mut streak = 0;
        let mut last_failure = String::new();
        for request in 1..=self.max_requests {
            match self.probe().await {
                Ok(()) => {
                    streak += 1;
                    if streak >= self.consecutive {
                        return CheckOutcome::Pass;
                    }
                }
                Err(reason) => {
                    streak = 0;
                    last_failure = reason;
                }
            }
            if request < self.max_requests {
                tokio::time::sleep(self.interval).await;
            }
        }
        CheckOutcome::fail(format!(
            "{} did not pass {} times in a row in {} requests; last failure: {last_failure}",
            self.url, self.consecutive, self.max_requests
        ))
    }
}
