//! The local backend for the CLI's tests: a store root, a real HAProxy and the demo images,
//! with v1 of each service deployed; and a `deploy` waiting at an approval gate.

use std::time::Duration;

use immutable_local::{Haproxy, HaproxyOptions, LocalImageStore, ProcessFleet};

use super::{Cli, Proc, SUCCEEDED, deployment_id};

pub const MINUTE: Duration = Duration::from_secs(60);

/// A store root, an HAProxy for `web` (and more services), and the CLI pointed at them with
/// the demo images (through a service file, which every command reads what it uses from).
pub struct Lab {
    pub dir: tempfile::TempDir,
    /// The service file's settings: backend, store, root, HAProxy, polls.
    pub settings: String,
    pub haproxy: Haproxy,
    /// The CLI with `--service web`.
    pub cli: Cli,
    /// The CLI without a service.
    pub base: Cli,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Ok(images) = LocalImageStore::open(self.dir.path().join("root"))
            && let Ok(fleet) = ProcessFleet::open(&images)
        {
            fleet.kill_all();
        }
    }
}

impl Lab {
    pub async fn start() -> Lab {
        Lab::start_with(&["web"]).await
    }

    /// HAProxy for `services`; each gets the demo images and v1 deployed.
    pub async fn start_with(services: &[&str]) -> Lab {
        Lab::start_with_haproxy(HaproxyOptions::new(services.iter().copied())).await
    }

    /// HAProxy started with `options`; each of its services gets the demo images and v1.
    pub async fn start_with_haproxy(options: HaproxyOptions) -> Lab {
        let services = options.services.clone();
        let dir = tempfile::tempdir().unwrap();
        let haproxy = Haproxy::start(options).await.unwrap_or_else(|e| {
            panic!("HAProxy must be installed and start (scripts/test.sh installs it): {e}")
        });
        let root = dir.path().join("root");
        let store = format!("file:{}", dir.path().join("store").display());
        let settings = lab_settings(&store, &root, &haproxy.admin_socket());
        let file = dir.path().join("lab.toml");
        std::fs::write(&file, &settings).unwrap();
        let base = Cli::new(["--service-file", file.to_str().unwrap()]);
        for service in &services {
            let cli = base.with(["--service", service.as_str()]);
            let setup = cli.run(&["demo-setup"], MINUTE);
            assert_eq!(setup.code, SUCCEEDED, "{setup:?}");
            let image = format!("{service}-v1");
            let v1 = cli.run(
                &[
                    "deploy",
                    "--image",
                    &image,
                    "--capacity",
                    "2",
                    "--bake-time",
                    "0s",
                ],
                MINUTE,
            );
            assert_eq!(v1.code, SUCCEEDED, "{v1:?}");
        }
        Lab {
            dir,
            settings,
            haproxy,
            cli: base.with(["--service", "web"]),
            base,
        }
    }

    /// `deploy web-v2` with an approval gate, once it waits there; returns its id.
    pub fn deploy_to_the_gate(&self) -> (Proc, String) {
        self.deploy_to_the_gate_with("web-v2", &[])
    }

    /// `deploy IMAGE` with an approval gate and the deploy options `more` (a strategy, say),
    /// once it waits there; returns its id.
    pub fn deploy_to_the_gate_with(&self, image: &str, more: &[&str]) -> (Proc, String) {
        let mut args = vec![
            "deploy",
            "--image",
            image,
            "--capacity",
            "2",
            "--bake-time",
            "0s",
            "--approval-timeout",
            "10m",
        ];
        args.extend_from_slice(more);
        let mut deploy = self.cli.spawn(&args);
        let id = wait_at_gate(&mut deploy);
        (deploy, id)
    }

    /// The journal's directory (`store = "file:..."` in the service file).
    pub fn store_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("store")
    }
}

/// A service file's backend, store and polls (top-level keys first, then tables).
pub fn lab_settings(store: &str, root: &std::path::Path, socket: &std::path::Path) -> String {
    format!(
        "backend = \"local\"\nstore = {store:?}\n[local]\nroot = {root:?}\n\
         haproxy_socket = {socket:?}\nhealth_check_interval = \"100ms\"\n\
         [engine]\npoll_interval = \"100ms\"\n"
    )
}

/// Waits for `deploy` to plan (its id) and to wait at its approval gate; returns the id.
pub fn wait_at_gate(p: &mut Proc) -> String {
    let planned = p.expect_line(MINUTE, |l| {
        l.contains("deployment ") && l.contains(" of web")
    });
    let id = deployment_id(&planned);
    let gate = p.expect_line(MINUTE, |l| l.contains("waiting for approval"));
    assert!(gate.contains(&format!("approve {id}")), "{gate}");
    id
}
