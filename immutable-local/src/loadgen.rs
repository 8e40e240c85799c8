//! A bounded HTTP load generator for loopback entry points: keep-alive clients and
//! new-connection clients, each request recorded with the image that answered it.
//!
//! ```no_run
//! # async fn demo() -> immutable_core::Result<()> {
//! use std::time::Duration;
//! use immutable_local::LoadGen;
//!
//! let load = LoadGen::new("http://127.0.0.1:8080/")
//!     .keep_alive_clients(4)
//!     .new_connection_clients(4)
//!     .max_requests(20_000)
//!     .max_duration(Duration::from_secs(60))
//!     .start()?;
//! // ... deploy ...
//! let report = load.stop().await;
//! assert_eq!(report.failed(), 0, "{}", report.summary());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use immutable_core::{BoxError, Error, Result};
use tokio::task::JoinHandle;

/// How a load run is shaped. Every run is bounded by a request count and a wall time.
#[derive(Debug, Clone)]
#[must_use]
pub struct LoadGen {
    url: String,
    keep_alive: usize,
    fresh: usize,
    max_requests: u64,
    max_duration: Duration,
    timeout: Duration,
    pause: Duration,
    header: String,
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Which client sent it.
    pub client: usize,
    /// Whether that client keeps its connection alive (else one connection per request).
    pub keep_alive: bool,
    /// When it was sent.
    pub sent: Instant,
    /// How long until the whole answer arrived (or the failure).
    pub latency: Duration,
    /// The image that answered (the header's value), or why the request failed.
    pub result: std::result::Result<String, String>,
}

/// What a run saw.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Every request, in no particular order.
    pub samples: Vec<Sample>,
    /// How long the run lasted.
    pub elapsed: Duration,
}

/// A run in progress; [`stop`](Self::stop) ends it and returns the report.
#[derive(Debug)]
pub struct RunningLoad {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    tasks: Vec<JoinHandle<Vec<Sample>>>,
    started: Instant,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    served: AtomicU64,
    failed: AtomicU64,
}

impl LoadGen {
    /// Load on `url`: 4 keep-alive and 4 new-connection clients, at most 50,000 requests and
    /// 60 s, 5 s per request, 2 ms between a client's requests, the image read from `X-Image`.
    pub fn new(url: impl Into<String>) -> Self {
        LoadGen {
            url: url.into(),
            keep_alive: 4,
            fresh: 4,
            max_requests: 50_000,
            max_duration: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            pause: Duration::from_millis(2),
            header: "x-image".into(),
        }
    }

    /// Clients that reuse one connection.
    pub fn keep_alive_clients(mut self, n: usize) -> Self {
        self.keep_alive = n;
        self
    }

    /// Clients that open a new connection for every request.
    pub fn new_connection_clients(mut self, n: usize) -> Self {
        self.fresh = n;
        self
    }

    /// Requests in all, across clients.
    pub fn max_requests(mut self, n: u64) -> Self {
        self.max_requests = n;
        self
    }

    /// Wall time of the run.
    pub fn max_duration(mut self, d: Duration) -> Self {
        self.max_duration = d;
        self
    }

    /// Time allowed for one request.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Pause between one client's requests.
    pub fn pause(mut self, d: Duration) -> Self {
        self.pause = d;
        self
    }

    /// The response header naming the image. Default `X-Image`.
    pub fn image_header(mut self, name: impl Into<String>) -> Self {
        self.header = name.into().to_ascii_lowercase();
        self
    }

    /// Starts the clients.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `url` when it is not an http URL, or on `clients` when there
    /// are none.
    pub fn start(self) -> Result<RunningLoad> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| Error::invalid("url", format!("`{}` is not a URL: {e}", self.url)))?;
        if self.keep_alive + self.fresh == 0 {
            return Err(Error::invalid("clients", "at least one client is needed"));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let started = Instant::now();
        let shared = Arc::new(self);
        let mut tasks = Vec::new();
        for client in 0..shared.keep_alive + shared.fresh {
            let keep_alive = client < shared.keep_alive;
            let http = reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(usize::from(keep_alive))
                .timeout(shared.timeout)
                .build()
                .map_err(|e| Error::Provider {
                    message: format!("cannot build an HTTP client: {e}"),
                    source: Some(Box::new(e) as BoxError),
                })?;
            let run = ClientRun {
                id: client,
                keep_alive,
                http,
                url: url.clone(),
                shape: Arc::clone(&shared),
                stop: Arc::clone(&stop),
                counters: Arc::clone(&counters),
                deadline: started + shared.max_duration,
            };
            tasks.push(tokio::spawn(run.run()));
        }
        Ok(RunningLoad {
            stop,
            counters,
            tasks,
            started,
        })
    }
}

struct ClientRun {
    id: usize,
    keep_alive: bool,
    http: reqwest::Client,
    url: reqwest::Url,
    shape: Arc<LoadGen>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    deadline: Instant,
}

impl ClientRun {
    async fn run(self) -> Vec<Sample> {
        let mut samples = Vec::new();
        while !self.stop.load(Ordering::Relaxed) && Instant::now() < self.deadline {
            if self.counters.sent.fetch_add(1, Ordering::Relaxed) >= self.shape.max_requests {
                break;
            }
            let sent = Instant::now();
            let result = self.once().await;
            let counter = if result.is_ok() {
                &self.counters.served
            } else {
                &self.counters.failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
            samples.push(Sample {
                client: self.id,
                keep_alive: self.keep_alive,
                sent,
                latency: sent.elapsed(),
                result,
            });
            tokio::time::sleep(self.shape.pause).await;
        }
        samples
    }

    async fn once(&self) -> std::result::Result<String, String> {
        let resp = self
            .http
            .get(self.url.clone())
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status();
        let image = resp
            .headers()
            .get(self.shape.header.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("body failed: {e}"))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(format!("status {status}: {}", text.trim()));
        }
        image.ok_or_else(|| format!("no {} header", self.shape.header))
    }
}

impl RunningLoad {
    /// Requests answered successfully so far.
    pub fn served(&self) -> u64 {
        self.counters.served.load(Ordering::Relaxed)
    }

    /// Requests failed so far.
    pub fn failed(&self) -> u64 {
        self.counters.failed.load(Ordering::Relaxed)
    }

    /// When the run started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Stops every client after its current request and gathers the samples.
    pub async fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        let mut samples = Vec::new();
        for t in self.tasks {
            samples.extend(t.await.unwrap_or_default());
        }
        samples.sort_by_key(|s| s.sent);
        LoadReport {
            samples,
            elapsed: self.started.elapsed(),
        }
    }
}

impl LoadReport {
    /// Requests answered successfully.
    pub fn served(&self) -> usize {
        self.samples.iter().filter(|s| s.result.is_ok()).count()
    }

    /// Requests that failed.
    pub fn failed(&self) -> usize {
        self.samples.len() - self.served()
    }

    /// The failures' reasons, counted.
    pub fn failures(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in &self.samples {
            if let Err(reason) = &s.result {
                *out.entry(reason.clone()).or_default() += 1;
            }
        }
        out
    }

    /// How many successful requests sent at or after `since` each image answered.
    pub fn images_since(&self, since: Instant) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in self.samples.iter().filter(|s| s.sent >= since) {
            if let Ok(image) = &s.result {
                *out.entry(image.clone()).or_default() += 1;
            }
        }
        out
    }

    /// Requests sent by keep-alive clients and by new-connection clients.
    pub fn by_connection_kind(&self) -> (usize, usize) {
        let keep = self.samples.iter().filter(|s| s.keep_alive).count();
        (keep, self.samples.len() - keep)
    }

    /// The `p`-th percentile (0 to 100) latency of requests sent in `[from, to)`.
    pub fn latency_percentile(&self, p: f64, from: Instant, to: Instant) -> Option<Duration> {
        let mut l: Vec<Duration> = self
            .samples
            .iter()
            .filter(|s| s.sent >= from && s.sent < to)
            .map(|s| s.latency)
            .collect();
        if l.is_empty() {
            return None;
        }
        l.sort();
        let rank = ((p / 100.0) * (l.len() - 1) as f64).round() as usize;
        Some(l[rank.min(l.len() - 1)])
    }

    /// One line: served, failed, clients by kind, duration, failure reasons.
    pub fn summary(&self) -> String {
        let (keep, fresh) = self.by_connection_kind();
        format!(
            "{} requests served, {} failed ({keep} on keep-alive, {fresh} on new connections) \
             in {:.1?}{}",
            self.served(),
            self.failed(),
            self.elapsed,
            if self.failed() > 0 {
                let kinds: Vec<String> = self
                    .failures()
                    .iter()
                    .map(|(kind, n)| format!("{n} x {kind}"))
                    .collect();
                format!("; failures: {}", kinds.join(", "))
            } else {
                String::new()
            }
        )
    }
}
