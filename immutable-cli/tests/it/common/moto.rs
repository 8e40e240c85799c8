//! moto's server on a free loopback port (as the immutable-aws tests start it), with its
//! request recorder, and a demo world built by `immutable demo-setup`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use immutable_aws::{AwsClients, AwsConfig};

use super::Cli;

/// A moto server process, killed on drop.
pub struct Moto {
    child: Child,
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

impl Moto {
    /// Starts moto's server on a port it picks; panics (never skips) when it cannot.
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
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
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
            url,
            port,
            recording,
            _dir: dir,
        }
    }

    /// `immutable` with this server as its AWS endpoint, and fake credentials.
    pub fn cli(&self, store: &std::path::Path) -> Cli {
        Cli::new([
            "--backend",
            "aws",
            "--service",
            "web",
            "--endpoint-url",
            &self.url,
            "--region",
            "us-east-1",
            "--store",
            &format!("file:{}", store.display()),
        ])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
    }

    /// `demo-setup` on moto, then the CLI with the world's flags and quick polls.
    pub fn demo_cli(&self, store: &std::path::Path) -> Cli {
        let setup = self
            .cli(store)
            .run(&["demo-setup", "--output", "json"], Duration::from_secs(60));
        assert_eq!(setup.code, super::SUCCEEDED, "{setup:?}");
        let w = setup.json();
        let mut cli = self.cli(store);
        let subnets: Vec<&str> = w["subnets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        for (flag, value) in [
            ("--listener-arn", w["listener_arn"].as_str().unwrap()),
            (
                "--preview-listener-arn",
                w["preview_listener_arn"].as_str().unwrap(),
            ),
            ("--launch-template", w["launch_template"].as_str().unwrap()),
            ("--vpc-id", w["vpc_id"].as_str().unwrap()),
            ("--subnets", &subnets.join(",")),
            ("--poll-interval", "200ms"),
        ] {
            cli.args.extend([flag.to_owned(), value.to_owned()]);
        }
        cli
    }

    /// Clients on this server, to read back what the CLI did.
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

    /// Records every request from now on.
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
