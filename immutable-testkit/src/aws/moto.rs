//! moto's server on a loopback port it picks itself, killed when it is dropped or when the
//! test process ends, whichever comes first.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use immutable_aws::{AwsClients, AwsConfig};

use super::Account;

/// Runs moto's server, and exits when its stdin closes: the test process holds the other end,
/// so a server outlives no test binary, even one killed with SIGKILL.
const WATCHED_SERVER: &str = "\
import os, sys, threading
def watch():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
from moto.server import main
sys.exit(main())
";

/// A moto server process, killed on drop.
pub struct Moto {
    child: Child,
    _lifeline: Option<ChildStdin>,
    /// Its address, `http://127.0.0.1:<port>`.
    pub url: String,
    port: u16,
    /// Where the recorder writes the requests it sees while recording.
    pub recording: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("IMMUTABLE_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cache = std::env::var_os("XDG_CACHE_HOME").map_or(home.join(".cache"), PathBuf::from);
    cache.join("immutable/venv-moto-5.2.5/bin/moto_server")
}

/// The Python of the `moto_server` script (its `#!` line).
fn python_of(script: &std::path::Path) -> PathBuf {
    let text = std::fs::read_to_string(script)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", script.display()));
    let shebang = text.lines().next().and_then(|l| l.strip_prefix("#!"));
    PathBuf::from(
        shebang
            .unwrap_or_else(|| panic!("{} has no #! line", script.display()))
            .trim(),
    )
}

impl Moto {
    /// The server of this test binary, started on first use. Tests share it through
    /// accounts: see [`Account::fresh`].
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(Moto::start)
    }

    /// Starts a server of its own on a port it picks itself (so parallel tests never race for
    /// one) and waits until it answers. Panics (never skips) when it cannot.
    pub fn start() -> Moto {
        let bin = moto_binary();
        assert!(
            bin.exists(),
            "moto_server not found at {}: run ./scripts/test.sh, which installs it, or set \
             IMMUTABLE_MOTO_SERVER",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let recording = dir.path().join("recording.jsonl");
        let mut child = Command::new(python_of(&bin))
            .args(["-c", WATCHED_SERVER, "-H", "127.0.0.1", "-p", "0"])
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let lifeline = child.stdin.take();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Werkzeug announces its address on stderr, then logs every request there: keep
        // draining it so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.split("Running on ").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let Ok(url) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let status = child.wait();
            panic!("moto's server did not start within 60 s ({status:?})");
        };
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto announced {url} but does not answer"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Moto {
            child,
            _lifeline: lifeline,
            url,
            port,
            recording,
            _dir: dir,
        }
    }

    /// A new account on this server, empty but for moto's defaults.
    pub fn account(&self) -> Account {
        Account::on(&self.url)
    }

    /// Clients on this server's default account, to read back what another process did.
    pub async fn clients(&self) -> AwsClients {
        AwsConfig::from_env()
            .with_region("us-east-1")
            .with_endpoint_url(&self.url)
            .with_static_credentials("testing", "testing")
            .load()
            .await
    }

    fn post(&self, path: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
    }

    /// Records every request from now on (on a server of its own: recording is server-wide).
    pub fn start_recording(&self) {
        self.post("/moto-api/recorder/reset-recording");
        self.post("/moto-api/recorder/start-recording");
    }

    /// Stops recording and returns the AWS actions recorded, in order.
    pub fn stop_recording(&self) -> Vec<String> {
        self.post("/moto-api/recorder/stop-recording");
        let text = std::fs::read_to_string(&self.recording).unwrap_or_default();
        text.lines()
            .map(|line| {
                let entry: serde_json::Value = serde_json::from_str(line).unwrap();
                action(&entry).unwrap_or_else(|| panic!("no action in {entry}"))
            })
            .collect()
    }
}

/// The action of a recorded query-protocol request (`Action=DescribeImages&...`), or of a
/// JSON-protocol one (`X-Amz-Target: DynamoDB_20120810.GetItem`).
fn action(entry: &serde_json::Value) -> Option<String> {
    if let Some(target) = entry["headers"]["X-Amz-Target"].as_str() {
        return target.rsplit('.').next().map(str::to_owned);
    }
    let body = entry["body"].as_str().unwrap_or_default();
    let body = if entry["body_encoded"].as_bool() == Some(true) {
        String::from_utf8(decode_base64(body)).unwrap_or_default()
    } else {
        body.to_owned()
    };
    let url = entry["url"].as_str().unwrap_or_default().to_owned();
    [body, url].iter().find_map(|s| {
        s.split(['&', '?'])
            .find_map(|kv| kv.strip_prefix("Action="))
            .map(str::to_owned)
    })
}

fn decode_base64(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let Some(v) = ALPHABET.iter().position(|a| *a == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Whether an AWS action only reads.
pub fn is_read(action: &str) -> bool {
    ["Describe", "Get", "BatchGet", "List", "Scan", "Query"]
        .iter()
        .any(|p| action.starts_with(p))
}
