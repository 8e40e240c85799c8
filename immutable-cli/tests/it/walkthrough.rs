//! The README's walkthroughs, run exactly as written: "Deploy your own app" (the local
//! backend, with a free port for the entry point) and "Images from Packer" (on moto). Each
//! bash block is read from the README and run in a temporary directory, with this build's
//! `immutable` first on PATH.
#![allow(clippy::print_stdout)]

use std::path::Path;

use crate::common::BIN;
use crate::own_app::{Cleanup, free_port_pair};

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let _machine = immutable_testkit::serial::shared_blocking();
    let script = readme_block("<!-- walkthrough: local");
    let dir = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup(dir.path().to_path_buf());
    std::fs::write(dir.path().join("walkthrough.sh"), script).unwrap();
    let out = std::process::Command::new("timeout")
        .args(["300", "bash", "-euo", "pipefail", "walkthrough.sh"])
        .current_dir(dir.path())
        .env("PATH", path_with_bin())
        .env("XDG_STATE_HOME", dir.path().join("state"))
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

#[test]
fn the_readme_packer_walkthrough_runs_as_written_on_moto() {
    let _machine = immutable_testkit::serial::shared_blocking();
    let moto = crate::common::moto::Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let script = readme_block("<!-- walkthrough: aws");
    std::fs::write(dir.path().join("walkthrough.sh"), script).unwrap();
    let out = std::process::Command::new("timeout")
        .args(["300", "bash", "-euo", "pipefail", "walkthrough.sh"])
        .current_dir(dir.path())
        .env("PATH", path_with_bin())
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("XDG_STATE_HOME", dir.path().join("state"))
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
    assert!(stdout.contains("imported image web-packer-1"), "{stdout}");
    assert!(stdout.contains("succeeded"), "{stdout}");
    assert!(
        stdout.contains("git_sha=0123abc"),
        "the build's custom data became labels: {stdout}"
    );
    assert!(stdout.contains("promoted   yes"), "{stdout}");
}

/// The bash block after `marker` in the README.
fn readme_block(marker: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let at = readme.find(marker).expect("the README has the walkthrough");
    let block = &readme[at..];
    let start = block
        .find("```bash\n")
        .expect("a bash block after the marker")
        + "```bash\n".len();
    let end = block[start..].find("\n```").expect("the block ends");
    block[start..start + end].to_owned()
}

/// PATH with this build's `immutable` first.
fn path_with_bin() -> String {
    let bin_dir = Path::new(BIN).parent().unwrap();
    format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}
