//! Running the real `immutable` binary: processes with bounded waits, moto's server, and
//! HAProxy for the local backend, a service of its own on dockerd for the Docker backend.
#![allow(dead_code, unreachable_pub, clippy::print_stderr)]

pub mod dashboard;
pub mod docker;
pub mod lab;
pub mod moto;
pub mod schema;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_immutable");

/// The exit codes of `immutable --help`.
pub const SUCCEEDED: i32 = 0;
pub const REFUSED: i32 = 2;
pub const ROLLED_BACK: i32 = 3;
pub const SUSPENDED: i32 = 5;

/// A finished run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The last line of stdout, as JSON; every line of stdout is checked against the
    /// output's schema.
    pub fn json(&self) -> serde_json::Value {
        for line in self.stdout.lines() {
            let doc = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{self:?}"));
            schema::check(&doc);
        }
        let last = self.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// `immutable` with fixed arguments (after the ones of each run, where the subcommand's own
/// options go) and environment.
#[derive(Debug, Clone)]
pub struct Cli {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Cli {
    pub fn new<S: Into<String>>(args: impl IntoIterator<Item = S>) -> Cli {
        Cli {
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
        }
    }

    /// The same CLI with more fixed arguments.
    pub fn with<S: Into<String>>(&self, more: impl IntoIterator<Item = S>) -> Cli {
        let mut cli = self.clone();
        cli.args.extend(more.into_iter().map(Into::into));
        cli
    }

    pub fn env(mut self, k: &str, v: &str) -> Cli {
        self.env.push((k.into(), v.into()));
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).args(&self.args).envs(self.env.iter().cloned());
        c.env_remove("AWS_ENDPOINT_URL").env("RUST_LOG", "warn");
        c
    }

    /// Runs to the end, for at most `limit`.
    pub fn run(&self, args: &[&str], limit: Duration) -> Run {
        self.spawn(args).wait(limit)
    }

    /// Starts it, reading its output as it comes.
    pub fn spawn(&self, args: &[&str]) -> Proc {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let (tx, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        let seen = Arc::new(Mutex::new(String::new()));
        let keep = Arc::clone(&seen);
        let out = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                keep.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Proc {
            child,
            lines,
            seen,
            threads: Some((out, err)),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// A running `immutable`.
pub struct Proc {
    pub child: Child,
    lines: Receiver<String>,
    seen: Arc<Mutex<String>>,
    threads: Option<(std::thread::JoinHandle<()>, std::thread::JoinHandle<String>)>,
    args: Vec<String>,
}

impl Proc {
    /// Waits (at most `limit`) for a line of stdout that `pred` accepts, and returns it.
    pub fn expect_line(&mut self, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "immutable {:?}: no expected line within {limit:?}; stdout so far:\n{}",
                        self.args,
                        self.seen.lock().unwrap()
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let run = self.finish();
                    panic!(
                        "immutable {:?} ended before the expected line: {run:?}",
                        self.args
                    );
                }
            }
        }
    }

    /// Waits (at most `limit`) for it to exit; kills it and fails the test past that.
    pub fn wait(mut self, limit: Duration) -> Run {
        let deadline = Instant::now() + limit;
        loop {
            if self.child.try_wait().unwrap().is_some() {
                return self.finish();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let run = self.finish();
                panic!(
                    "immutable {:?} still ran after {limit:?}: {run:?}",
                    self.args
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, as a crash or an OOM kill would.
    pub fn kill(mut self) -> Run {
        self.child.kill().unwrap();
        self.finish()
    }

    /// Sends SIGTERM, as a cancelled CI job does.
    pub fn terminate(&self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    }

    fn finish(&mut self) -> Run {
        let status = self.child.wait().unwrap();
        let (out, err) = self.threads.take().unwrap();
        let _ = out.join();
        let stderr = err.join().unwrap_or_default();
        Run {
            code: status.code().unwrap_or(-1),
            stdout: self.seen.lock().unwrap().clone(),
            stderr,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.threads.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The deployment id in a line printed by `deploy` (`deployment <id> of <service>: ...`).
pub fn deployment_id(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "deployment")
        .unwrap_or_else(|| panic!("no deployment id in {line:?}"));
    words[at + 1].trim_end_matches(':').to_owned()
}
