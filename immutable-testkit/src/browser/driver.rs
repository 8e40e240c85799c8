//! chromedriver as a child process of the test: started on a free loopback port in its own
//! process group, awaited until `GET /status` says ready, and killed with the Chromium it
//! started (the whole group) when dropped.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustix::process::{Pid, Signal};

use super::BrowserError;

/// How often the driver's `/status` is asked while it starts.
const POLL: Duration = Duration::from_millis(50);

/// A running chromedriver; dropping it kills its process group.
#[derive(Debug)]
pub(super) struct Driver {
    child: Child,
    pub(super) url: String,
    log: PathBuf,
}

impl Driver {
    /// Starts `program --port=<free port>` with its output in `log`, and waits at most `ready`
    /// for it to answer `GET /status` with `"ready": true`.
    pub(super) async fn start(
        program: &Path,
        log: PathBuf,
        ready: Duration,
    ) -> Result<Driver, BrowserError> {
        let port = crate::local::free_port();
        let out = File::create(&log).map_err(BrowserError::io(format!(
            "create the driver log {}",
            log.display()
        )))?;
        let err = out
            .try_clone()
            .map_err(BrowserError::io("duplicate the driver log"))?;
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(BrowserError::io(format!("start {}", program.display())))?;
        let mut driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        driver.await_ready(ready).await?;
        Ok(driver)
    }

    async fn await_ready(&mut self, within: Duration) -> Result<(), BrowserError> {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let status: hyper::Uri = format!("{}/status", self.url)
            .parse()
            .expect("a loopback URL");
        let started = Instant::now();
        loop {
            if ready(&client, status.clone()).await {
                return Ok(());
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || started.elapsed() >= within {
                return Err(BrowserError::DriverNotReady {
                    url: self.url.clone(),
                    waited: started.elapsed(),
                    exited,
                    log: self.log_tail(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The last lines of the driver's output, for an error message.
    pub(super) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The driver's process id (also its process group's).
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Whether `GET status` answers 200 with `"ready": true`; at most a second per try.
async fn ready(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    status: hyper::Uri,
) -> bool {
    let answer = tokio::time::timeout(Duration::from_secs(1), async {
        let resp = client.get(status).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).ok()?;
        json["value"]["ready"].as_bool()
    })
    .await;
    matches!(answer, Ok(Some(true)))
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group holds the driver and every Chromium process it started.
        let _ = rustix::process::kill_process_group(Pid::from_child(&self.child), Signal::KILL);
        let _ = self.child.wait();
    }
}
