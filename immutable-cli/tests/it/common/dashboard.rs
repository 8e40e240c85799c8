//! `immutable dashboard` as a child process on a free loopback port: where it listens and the
//! token it printed, read from its stderr.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use reqwest::StatusCode;

use super::BIN;

/// A running dashboard, killed when dropped.
pub struct Dashboard {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The token printed at start, if one was.
    pub printed_token: Option<String>,
    /// The URL printed with the token (`http://127.0.0.1:PORT/#token=...`), if one was.
    pub link: Option<String>,
    _stderr: Receiver<String>,
}

impl Dashboard {
    /// `immutable --store STORE dashboard ... ARGS`.
    pub fn start(store: &str, args: &[&str]) -> Dashboard {
        Dashboard::start_with(&["--store", store], args)
    }

    /// `immutable GLOBAL... dashboard ... ARGS` (a service file, say), on a free loopback
    /// port, polling every 200 ms.
    pub fn start_with<S: AsRef<std::ffi::OsStr>>(global: &[S], args: &[&str]) -> Dashboard {
        let mut child = Command::new(BIN)
            .args(global)
            .args(["dashboard", "--listen", "127.0.0.1:0", "--poll", "200ms"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the dashboard said where it listens");
        let base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .trim_end_matches('/')
            .to_owned();
        let link = lines
            .recv_timeout(Duration::from_millis(500))
            .ok()
            .and_then(|l| {
                l.split_whitespace()
                    .find(|w| w.starts_with("http://") && w.contains("#token="))
                    .map(str::to_owned)
            });
        let printed_token = link
            .as_deref()
            .and_then(|l| l.split("#token=").nth(1))
            .map(str::to_owned);
        Dashboard {
            child,
            base,
            printed_token,
            link,
            _stderr: lines,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let res = reqwest::get(self.url(path)).await.unwrap();
        (res.status(), res.text().await.unwrap())
    }

    /// POSTs `body` to `path` with `headers`.
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, String) {
        let mut req = reqwest::Client::new()
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        (res.status(), res.text().await.unwrap())
    }
}

impl Dashboard {
    /// Sends SIGTERM, as a service manager stopping it would.
    pub fn terminate(&self) {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        )
        .unwrap();
    }

    /// Its exit status, once it exits within `limit` (None if it runs on).
    pub fn exited_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
