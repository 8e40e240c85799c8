//! [`CutoverCheck`]: proves, through real requests, that a weight change took effect.

use std::time::Duration;

use async_trait::async_trait;

use super::{Check, CheckContext, CheckOutcome};
use crate::Result;

/// Verifies a cutover through real requests to the service's entry point: samples `samples`
/// requests, reads which image answered each from a response header (default `X-Image`), and
/// passes when the share answered by the new fleet's image ([`CheckContext::image`]) matches
/// the traffic weight ([`CheckContext::weight`]) within `tolerance` percentage points.
///
/// A router reports success once its API accepts a change; this check proves the change took
/// effect. At 0 % no answer may come from the new image and at 100 % every answer must; a
/// sample that misses is taken again, up to `attempts` times `interval` apart, since some
/// entry points (an ALB, say) take a while to apply a change. More than `max_errors` failed
/// requests in a sample fail it.
///
/// Register it under a name and run it after every shift, e.g. with
/// [`Steps::with_checks`](crate::Steps::with_checks). The service must name the image in a
/// header: on AWS, have the application add its AMI id (from instance metadata) as `X-Image`,
/// and point the check at the listener's own URL.
///
/// ```
/// use std::time::Duration;
/// use immutable_core::CutoverCheck;
///
/// let cutover = CutoverCheck::new("https://web.example.com/")?
///     .header("X-Image")
///     .samples(200)
///     .tolerance_percent(10)
///     .attempts(3)
///     .interval(Duration::from_secs(5));
/// # Ok::<(), immutable_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CutoverCheck {
    client: reqwest::Client,
    url: reqwest::Url,
    header: String,
    samples: u32,
    tolerance: u32,
    attempts: u32,
    interval: Duration,
    timeout: Duration,
    max_errors: u32,
}

/// What one sample saw.
#[derive(Debug, Default)]
struct Sample {
    new: u32,
    answered: u32,
    unlabelled: u32,
    errors: u32,
    first_error: Option<String>,
}

impl CutoverCheck {
    /// A check of `url`: 100 samples, 10 points of tolerance, 3 attempts 1 s apart, 5 s per
    /// request, no failed request allowed, the image read from `X-Image`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) on `url` when it does not parse as
    /// an http(s) URL.
    pub fn new(url: &str) -> Result<Self> {
        let url = super::url::parse_http_url(url)?;
        Ok(CutoverCheck {
            client: reqwest::Client::new(),
            url,
            header: "x-image".into(),
            samples: 100,
            tolerance: 10,
            attempts: 3,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            max_errors: 0,
        })
    }

    /// The response header naming the image that answered.
    pub fn header(mut self, name: impl Into<String>) -> Self {
        self.header = name.into().to_ascii_lowercase();
        self
    }

    /// Requests per sample (at least 1).
    pub fn samples(mut self, n: u32) -> Self {
        self.samples = n.max(1);
        self
    }

    /// Allowed distance, in percentage points, between the observed share and the weight
    /// (at most 100).
    pub fn tolerance_percent(mut self, points: u32) -> Self {
        self.tolerance = points.min(100);
        self
    }

    /// Samples taken before the check fails (at least 1).
    pub fn attempts(mut self, n: u32) -> Self {
        self.attempts = n.max(1);
        self
    }

    /// Time between samples.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Time allowed for one request.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Failed requests tolerated in one sample.
    pub fn max_errors(mut self, n: u32) -> Self {
        self.max_errors = n;
        self
    }

    async fn sample(&self, image: &str) -> Sample {
        let mut s = Sample::default();
        for _ in 0..self.samples {
            match self.probe().await {
                Ok(Some(answered_by)) => {
                    s.answered += 1;
                    s.new += u32::from(answered_by == image);
                }
                Ok(None) => {
                    s.answered += 1;
                    s.unlabelled += 1;
                }
                Err(e) => {
                    s.errors += 1;
                    s.first_error.get_or_insert(e);
                }
            }
        }
        s
    }

    /// One request: the header's value, `None` when absent.
    async fn probe(&self) -> std::result::Result<Option<String>, String> {
        let send = async {
            let resp = self.client.get(self.url.clone()).send().await?;
            let status = resp.status();
            let image = resp
                .headers()
                .get(self.header.as_str())
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, image))
        };
        match tokio::time::timeout(self.timeout, send).await {
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
            Ok(Err(e)) => Err(format!("request failed: {e}")),
            Ok(Ok((status, _))) if !status.is_success() => Err(format!("status {status}")),
            Ok(Ok((_, image))) => Ok(image),
        }
    }

    /// `None` when the sample matches `weight`, else why not.
    fn judge(&self, s: &Sample, weight: u32, image: &str) -> Option<String> {
        if s.errors > self.max_errors {
            return Some(format!(
                "{} of {} requests failed (first: {})",
                s.errors,
                self.samples,
                s.first_error.as_deref().unwrap_or("?")
            ));
        }
        let share = if s.answered == 0 {
            0.0
        } else {
            f64::from(s.new) * 100.0 / f64::from(s.answered)
        };
        let ok = match weight {
            0 => s.new == 0,
            100 => s.answered > 0 && s.new == s.answered,
            w => (share - f64::from(w)).abs() <= f64::from(self.tolerance),
        };
        let unlabelled = if s.unlabelled > 0 {
            format!(", {} without a {} header", s.unlabelled, self.header)
        } else {
            String::new()
        };
        (!ok).then(|| {
            format!(
                "{share:.1} % of {} answers came from image {image}{unlabelled}; expected \
                 {weight} % (± {} points, exact at 0 and 100)",
                s.answered, self.tolerance
            )
        })
    }
}

#[async_trait]
impl Check for CutoverCheck {
    async fn run(&self, ctx: &CheckContext<'_>) -> CheckOutcome {
        let Some(image) = ctx.image else {
            return CheckOutcome::fail(
                "the context names no image for the new fleet (CheckContext::with_image)",
            );
        };
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            let sample = self.sample(image.as_str()).await;
            match self.judge(&sample, ctx.weight, image.as_str()) {
                None => return CheckOutcome::Pass,
                Some(reason) => last = reason,
            }
            if attempt < self.attempts {
                tokio::time::sleep(self.interval).await;
            }
        }
        CheckOutcome::fail(format!(
            "{}: cutover not confirmed after {} samples of {} requests: {last}",
            self.url, self.attempts, self.samples
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        DeploymentId, Error, FleetInfo, HealthReport, ImageId, Routing, ServiceName, Target,
        TargetId, TrafficRouter,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The check never asks the router anything.
    #[derive(Debug)]
    struct NoRouter;

    #[async_trait]
    impl TrafficRouter for NoRouter {
        async fn attach(&self, _: &FleetInfo) -> Result<Target> {
            unreachable!("the cutover check does not route")
        }
        async fn targets(&self, _: &ServiceName) -> Result<Vec<Target>> {
            unreachable!("the cutover check does not route")
        }
        async fn health(&self, _: &ServiceName, _: &TargetId) -> Result<HealthReport> {
            unreachable!("the cutover check does not route")
        }
        async fn routing(&self, _: &ServiceName) -> Result<Routing> {
            unreachable!("the cutover check does not route")
        }
        async fn set_weights(&self, _: &ServiceName, _: &Routing) -> Result<()> {
            unreachable!("the cutover check does not route")
        }
        async fn detach(&self, _: &ServiceName, _: &TargetId) -> Result<()> {
            unreachable!("the cutover check does not route")
        }
    }

    /// A server answering one request in `every` as image `new`, the others as `old`.
    async fn server(every: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for n in 0.. {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let image = if n % every == 0 { "new" } else { "old" };
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => buf.extend_from_slice(&chunk[..k]),
                        }
                    }
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nX-Image: {image}\r\nContent-Length: 2\r\n\
                         Connection: close\r\n\r\nok"
                    );
                    let _ = stream.write_all(resp.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}/")
    }

    async fn run(check: &CutoverCheck, weight: u32, image: Option<&str>) -> CheckOutcome {
        let (d, s, t) = (
            DeploymentId::generate(),
            ServiceName::new("web").unwrap(),
            TargetId::new("t"),
        );
        let image = image.map(ImageId::new);
        let mut ctx = CheckContext::new(&d, &s, &t, weight, &NoRouter);
        if let Some(i) = &image {
            ctx = ctx.with_image(i);
        }
        check.run(&ctx).await
    }

    fn check(url: &str) -> CutoverCheck {
        CutoverCheck::new(url)
            .unwrap()
            .samples(40)
            .attempts(2)
            .interval(Duration::from_millis(10))
    }

    #[tokio::test]
    async fn passes_when_the_share_matches_the_weight() {
        let url = server(4).await;
        assert_eq!(run(&check(&url), 25, Some("new")).await, CheckOutcome::Pass);
        let all_new = server(1).await;
        assert_eq!(
            run(&check(&all_new), 100, Some("new")).await,
            CheckOutcome::Pass
        );
        assert_eq!(
            run(&check(&all_new), 0, Some("other")).await,
            CheckOutcome::Pass
        );
    }

    #[tokio::test]
    async fn fails_when_the_share_is_off() {
        let url = server(4).await;
        let CheckOutcome::Fail { reason } = run(&check(&url), 50, Some("new")).await else {
            panic!("25 % passed for 50 %");
        };
        assert!(reason.contains("25.0 % of 40 answers"), "{reason}");
        assert!(!run(&check(&url), 100, Some("new")).await.passed());
        assert!(!run(&check(&url), 0, Some("new")).await.passed());
        // A tolerance wide enough lets it through.
        let wide = check(&url).tolerance_percent(30);
        assert!(run(&wide, 50, Some("new")).await.passed());
    }

    #[tokio::test]
    async fn fails_without_an_image_or_an_answer() {
        let url = server(1).await;
        let CheckOutcome::Fail { reason } = run(&check(&url), 100, None).await else {
            panic!("passed without an image");
        };
        assert!(reason.contains("names no image"), "{reason}");
        let closed = check("http://127.0.0.1:9/").request_timeout(Duration::from_secs(1));
        let CheckOutcome::Fail { reason } = run(&closed, 100, Some("new")).await else {
            panic!("passed with no server");
        };
        assert!(reason.contains("requests failed"), "{reason}");
    }

    #[test]
    fn bad_urls_are_invalid_input() {
        assert!(matches!(
            CutoverCheck::new("not a url"),
            Err(Error::InvalidInput { .. })
        ));
        assert!(CutoverCheck::new("ftp://x/").is_err());
    }
}
