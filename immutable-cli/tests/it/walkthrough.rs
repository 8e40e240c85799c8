//! The README's "Deploy your own app" walkthrough, run exactly as written: its bash block is
//! read from the README and run in a temporary directory, with this build's `immutable` on
//! PATH and a free port for the entry point.
#![allow(clippy::print_stdout)]

use std::path::Path;

use crate::common::BIN;
use crate::own_app::{Cleanup, free_port_pair};

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let _machine = immutable_testkit::serial::shared_blocking();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let marker = "<!-- walkthrough: local";
    let at = readme
        .find(marker)
        .expect("the README has the local walkthrough");
    let block = &readme[at..];
    let start = block
        .find("```bash\n")
        .expect("a bash block after the marker")
        + "```bash\n".len();
    let end = block[start..].find("\n```").expect("the block ends");
    let script = &block[start..start + end];
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path().to_path_buf());
    std::fs::write(dir.path().join("walkthrough.sh"), script).unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("timeout")
        .args(["300", "bash", "-euo", "pipefail", "walkthrough.sh"])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("APP_PORT", free_port_pair().to_string())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the walkthrough failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let answers: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("hello from"))
        .collect();
    assert_eq!(
        answers,
        ["hello from v1", "hello from v2", "hello from v1"],
        "{stdout}"
    );
    assert!(stdout.contains("retired image v2"), "{stdout}");
    assert!(stdout.contains("HAProxy stopped"), "{stdout}");
}
