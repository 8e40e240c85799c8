//! Your own app, start to finish from the command line, on the local backend: a Python app
//! (not ours) imported as two images, a service file from `init`, the managed proxy, a canary
//! under load with no failed request, an image refused retirement while its fleet bakes, the
//! proxy restarted with its routing put back; bad imports refused before anything is written.
#![allow(clippy::print_stdout)]

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{BIN, Cli, REFUSED, SUCCEEDED};
use immutable_local::{LoadGen, LocalImageStore, ProcessFleet};
use immutable_testkit::local::{process_alive, until_answered};

const MINUTE: Duration = Duration::from_secs(60);

/// An HTTP app in Python answering `/` with its version and `/health` with 200, holding a
/// request `?delay_ms=N` for N ms. It listens on `$APP_PORT` (the image's port variable) and
/// names itself `$GREETING-<version>` in `X-Image` (an image's variable).
const APP: &str = r#"#!/usr/bin/env python3
import http.server, os, pathlib, time, urllib.parse
VERSION = pathlib.Path(__file__).with_name("VERSION").read_text().strip()
class App(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        time.sleep(int(q.get("delay_ms", ["0"])[0]) / 1000)
        body = f"hello from {VERSION}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Image", os.environ["GREETING"] + "-" + VERSION)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["APP_PORT"])), App).serve_forever()
"#;

fn write_app(dir: &Path, version: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("VERSION"), version).unwrap();
    std::fs::write(dir.join("app.py"), APP).unwrap();
    std::fs::set_permissions(dir.join("app.py"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A free port whose successor (the preview entry point) is free too, from 30000 to 32767:
/// above the local and Docker fleets' ports and below Linux's ephemeral range, so that no
/// outgoing connection (a load test's new-connection clients churn through ephemeral ports)
/// takes it before the proxy binds it.
pub(crate) fn free_port_pair() -> u16 {
    for _ in 0..200 {
        let mut bytes = [0u8; 2];
        getrandom::fill(&mut bytes).expect("random bytes");
        let port = 30_000 + u16::from_le_bytes(bytes) % 2_767;
        let both = TcpListener::bind(("127.0.0.1", port))
            .and_then(|_a| TcpListener::bind(("127.0.0.1", port + 1)));
        if both.is_ok() {
            return port;
        }
    }
    panic!("no two consecutive free ports on 127.0.0.1 from 30000 to 32767");
}

/// Kills what the root's fleets run when the test ends, however it ends; stops the proxy.
pub(crate) struct Cleanup(pub(crate) std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(images) = LocalImageStore::open(self.0.join(".immutable"))
            && let Ok(fleet) = ProcessFleet::open(&images)
        {
            fleet.kill_all();
        }
        let _ = std::process::Command::new(BIN)
            .args(["proxy", "stop", "--root"])
            .arg(self.0.join(".immutable"))
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_app_is_imported_deployed_canaried_under_load_and_retired_from_the_cli() {
    let _machine = immutable_testkit::serial::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path().to_path_buf());
    let port = free_port_pair();
    for v in ["v1", "v2"] {
        write_app(&dir.path().join(format!("app-{v}")), v);
    }
    let file = dir.path().join("app.toml");
    let bare = Cli::new(Vec::<String>::new());
    let run = |cli: &Cli, args: &[&str]| cli.run(args, MINUTE);
    // init writes a file the other commands read; the root is made absolute.
    let init = std::process::Command::new(BIN)
        .current_dir(dir.path())
        .args(["--service", "app", "init", "--backend", "local", "--port"])
        .arg(port.to_string())
        .args(["--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(&format!("root = \"{}", dir.path().display())),
        "{text}"
    );
    let again = bare.run(
        &[
            "--service",
            "app",
            "init",
            "--backend",
            "local",
            "--file",
            file.to_str().unwrap(),
        ],
        MINUTE,
    );
    assert_eq!(again.code, REFUSED, "init refuses to overwrite: {again:?}");
    let cli = Cli::new(["--service-file", file.to_str().unwrap()]);

    // The managed proxy: started once; a second start finds it running.
    let started = run(&cli, &["proxy", "start", "--output", "json"]);
    assert_eq!(started.code, SUCCEEDED, "{started:?}");
    let doc = started.json();
    assert_eq!(doc["state"], "started", "{doc}");
    let pid = doc["pid"].as_u64().unwrap();
    let second = run(&cli, &["proxy", "start", "--output", "json"]).json();
    assert_eq!(second["state"], "running");
    assert_eq!(second["pid"].as_u64(), Some(pid));

    // Two versions imported; the same content again gives the same id.
    let mut ids = Vec::new();
    for v in ["v1", "v2"] {
        let src = dir.path().join(format!("app-{v}"));
        let args = [
            "image",
            "import",
            src.to_str().unwrap(),
            "--name",
            v,
            "--command",
            "./app.py",
            "--health-path",
            "/health",
            "--port-var",
            "APP_PORT",
            "--env",
            "GREETING=hi",
            "--output",
            "json",
        ];
        let imported = run(&cli, &args);
        assert_eq!(imported.code, SUCCEEDED, "{imported:?}");
        let id = imported.json()["image"]["id"].as_str().unwrap().to_owned();
        assert_eq!(
            run(&cli, &args).json()["image"]["id"].as_str(),
            Some(id.as_str())
        );
        ids.push(id);
    }
    let list = run(&cli, &["image", "list", "--output", "json"]).json();
    let names: Vec<&str> = list["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    assert!(names.contains(&"v1") && names.contains(&"v2"), "{list}");
    let table = run(&cli, &["image", "list"]);
    assert!(table.stdout.starts_with("ID"), "{table:?}");
    assert!(
        !table.stdout.contains("{"),
        "no Debug or JSON in the table: {table:?}"
    );

    // v1 serves.
    let deployed = run(&cli, &["deploy", "--image", "v1", "--bake-time", "0s"]);
    assert_eq!(deployed.code, SUCCEEDED, "{deployed:?}");
    let url = format!("http://127.0.0.1:{port}");
    assert_eq!(until_answered(&format!("{url}/")).await, "hi-v1");
    let shown = run(&cli, &["image", "show", "v1", "--output", "json"]).json();
    assert_eq!(
        shown["image"]["in_use_by"].as_array().unwrap().len(),
        1,
        "{shown}"
    );
    assert_eq!(shown["local"]["health_path"], "/health");
    assert_eq!(shown["local"]["port_var"], "APP_PORT");
    assert_eq!(
        shown["local"]["env"],
        serde_json::json!(["GREETING"]),
        "{shown}"
    );
    let text = run(&cli, &["image", "show", "v1"]);
    assert!(
        text.stdout.contains("GREETING (value not shown)"),
        "{text:?}"
    );
    assert!(
        !text.stdout.contains("GREETING=hi"),
        "a variable's value is never printed: {text:?}"
    );

    // A canary to v2 under load, baking for a while: v1 cannot be retired while it bakes.
    let load = LoadGen::new(format!("{url}/?delay_ms=20"))
        .keep_alive_clients(3)
        .new_connection_clients(3)
        .max_requests(50_000)
        .max_duration(Duration::from_secs(90))
        .start()
        .unwrap();
    let load_started = load.started();
    // A second service added to the running proxy: a new HAProxy takes over with app's
    // servers, and no request of the load fails.
    let other = free_port_pair();
    let (live, preview) = (format!("app={port}"), format!("app={}", port + 1));
    let other_route = format!("other={other}");
    let added = run(
        &cli,
        &[
            "proxy",
            "start",
            "--port",
            &live,
            "--preview-port",
            &preview,
            "--port",
            &other_route,
            "--output",
            "json",
        ],
    );
    assert_eq!(added.code, SUCCEEDED, "{added:?}");
    let added = added.json();
    assert_eq!(added["state"], "started", "{added}");
    assert_eq!(added["routes"].as_array().unwrap().len(), 2, "{added}");
    let pid = added["pid"].as_u64().unwrap();
    assert_eq!(until_answered(&format!("{url}/")).await, "hi-v1");
    let dropped = run(&cli, &["proxy", "start", "--port", &other_route]);
    assert_eq!(
        dropped.code, REFUSED,
        "a route dropped is refused: {dropped:?}"
    );
    let deploy = cli.spawn(&[
        "deploy",
        "--image",
        "v2",
        "--strategy",
        "canary",
        "--weights",
        "50",
        "--pause",
        "1s",
        "--bake-time",
        "6s",
    ]);
    let until = Instant::now() + MINUTE;
    loop {
        let status = run(&cli, &["status", "--output", "json"]).json();
        if status["status"]["phase"] == "bake" {
            break;
        }
        assert!(
            Instant::now() < until,
            "the canary never reached its bake: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refused = run(&cli, &["image", "retire", "v1"]);
    assert_eq!(refused.code, REFUSED, "{refused:?}");
    assert!(refused.stderr.contains("in use by fleet"), "{refused:?}");
    let done = deploy.wait(MINUTE);
    assert_eq!(done.code, SUCCEEDED, "{done:?}");
    let report = load.stop().await;
    println!("canary under load: {}", report.summary());
    assert!(report.served() > 100, "{}", report.summary());
    assert_eq!(report.failed(), 0, "{}", report.summary());
    assert!(
        report.images_since(load_started).contains_key("hi-v2"),
        "{}",
        report.summary()
    );
    let retired = run(&cli, &["image", "retire", "v1", "--output", "json"]);
    assert_eq!(retired.code, SUCCEEDED, "{retired:?}");
    assert_eq!(retired.json()["action"], "retired");
    let left = run(&cli, &["image", "list", "--output", "json"]).json();
    assert_eq!(left["images"].as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left["images"][0]["promoted"], true, "{left}");

    // The proxy stopped leaves no process; started again, it serves v2 at once (routing put
    // back from the router's state).
    let stopped = run(&cli, &["proxy", "stop", "--output", "json"]).json();
    assert_eq!(stopped["state"], "stopped");
    assert!(!process_alive(pid), "HAProxy {pid} outlived proxy stop");
    let restarted = run(&cli, &["proxy", "start", "--output", "json"]).json();
    assert_eq!(restarted["state"], "started");
    assert_eq!(restarted["routes"][0]["restored"], 2, "{restarted}");
    assert_eq!(until_answered(&format!("{url}/")).await, "hi-v2");
    assert_eq!(ids.len(), 2);
}

#[tokio::test]
async fn bad_imports_are_refused_naming_the_path_and_write_nothing() {
    let _machine = immutable_testkit::serial::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let cli = Cli::new([
        "--service",
        "app",
        "--root",
        root.to_str().unwrap(),
        "--backend",
        "local",
    ]);
    let src = dir.path().join("build");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("server"), "#!/bin/sh\n").unwrap();
    let missing = dir.path().join("no-such-dir");
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec![
                missing.display().to_string(),
                "--name".into(),
                "v1".into(),
                "--command".into(),
                "./server".into(),
            ],
            missing.display().to_string(),
        ),
        (
            vec![
                src.display().to_string(),
                "--name".into(),
                "v1".into(),
                "--command".into(),
                "./server".into(),
            ],
            "not executable".into(),
        ),
        (
            vec![
                src.display().to_string(),
                "--name".into(),
                "v1".into(),
                "--command".into(),
                "'./server".into(),
            ],
            "unclosed quote".into(),
        ),
        (
            vec![
                src.display().to_string(),
                "--name".into(),
                "v1".into(),
                "--command".into(),
                "./server".into(),
                "--env".into(),
                "NOVALUE".into(),
            ],
            "KEY=VALUE".into(),
        ),
    ];
    for (args, says) in cases {
        let mut all = vec!["image", "import"];
        all.extend(args.iter().map(String::as_str));
        let r = cli.run(&all, MINUTE);
        assert_eq!(r.code, REFUSED, "{all:?}: {r:?}");
        assert!(r.stderr.contains(&says), "{all:?} should say {says}: {r:?}");
        assert!(!r.stderr.contains("InvalidInput {"), "no Debug: {r:?}");
    }
    std::os::unix::fs::symlink("/etc/passwd", src.join("passwd")).unwrap();
    std::fs::set_permissions(src.join("server"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = cli.run(
        &[
            "image",
            "import",
            src.to_str().unwrap(),
            "--name",
            "v1",
            "--command",
            "./server",
        ],
        MINUTE,
    );
    assert_eq!(r.code, REFUSED, "{r:?}");
    assert!(
        r.stderr.contains(&src.join("passwd").display().to_string()),
        "{r:?}"
    );
    assert!(
        !root.exists(),
        "a refused import creates nothing under the root"
    );
}
