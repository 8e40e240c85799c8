//! The CLI on the local backend (processes behind a real HAProxy): a `deploy` waiting at an
//! approval gate is approved, or aborted, by a second `immutable` process; SIGTERM suspends it
//! and `resume` continues it; a halt refuses `deploy` until it is lifted.

mod common;

use std::time::Duration;

use common::{Cli, Proc, REFUSED, ROLLED_BACK, SUCCEEDED, SUSPENDED, deployment_id};
use immutable_local::{Haproxy, HaproxyOptions, LocalImageStore, ProcessFleet};

const MINUTE: Duration = Duration::from_secs(60);

/// A store root, an HAProxy for `web`, and the CLI pointed at them with the demo images.
struct Lab {
    dir: tempfile::TempDir,
    _haproxy: Haproxy,
    cli: Cli,
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
    async fn start() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let haproxy = Haproxy::start(HaproxyOptions::new(["web"]))
            .await
            .unwrap_or_else(|e| {
                panic!("HAProxy must be installed and start (scripts/test.sh installs it): {e}")
            });
        let root = dir.path().join("root");
        let store = format!("file:{}", dir.path().join("store").display());
        let cli = Cli::new([
            "--backend",
            "local",
            "--service",
            "web",
            "--root",
            root.to_str().unwrap(),
            "--haproxy-socket",
            haproxy.admin_socket().to_str().unwrap(),
            "--store",
            &store,
            "--poll-interval",
            "100ms",
            "--health-check-interval",
            "100ms",
        ]);
        let setup = cli.run(&["demo-setup"], MINUTE);
        assert_eq!(setup.code, SUCCEEDED, "{setup:?}");
        let v1 = cli.run(
            &[
                "deploy",
                "--image",
                "web-v1",
                "--capacity",
                "2",
                "--bake-time",
                "0s",
            ],
            MINUTE,
        );
        assert_eq!(v1.code, SUCCEEDED, "{v1:?}");
        Lab {
            dir,
            _haproxy: haproxy,
            cli,
        }
    }

    /// `deploy web-v2` with an approval gate, once it waits there; returns its id.
    fn deploy_to_the_gate(&self) -> (Proc, String) {
        let mut deploy = self.cli.spawn(&[
            "deploy",
            "--image",
            "web-v2",
            "--capacity",
            "2",
            "--bake-time",
            "0s",
            "--approval-timeout",
            "10m",
        ]);
        let id = wait_at_gate(&mut deploy);
        (deploy, id)
    }
}

fn wait_at_gate(p: &mut Proc) -> String {
    let planned = p.expect_line(MINUTE, |l| {
        l.contains("deployment ") && l.contains(" of web")
    });
    let id = deployment_id(&planned);
    let gate = p.expect_line(MINUTE, |l| l.contains("waiting for approval"));
    assert!(gate.contains(&format!("approve {id}")), "{gate}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_approves_and_the_deploy_succeeds() {
    let lab = Lab::start().await;
    let (deploy, id) = lab.deploy_to_the_gate();

    let approve = lab.cli.run(&["approve", &id], MINUTE);
    assert_eq!(approve.code, SUCCEEDED, "{approve:?}");
    let done = deploy.wait(MINUTE);
    assert_eq!(done.code, SUCCEEDED, "{done:?}");
    assert!(
        done.stdout.contains(&format!("deployment {id} succeeded")),
        "{done:?}"
    );

    // A command to a finished deployment is refused.
    let late = lab.cli.run(&["approve", &id, "--output", "json"], MINUTE);
    assert_eq!(late.code, REFUSED, "{late:?}");
    assert_eq!(late.json()["result"], "refused", "{late:?}");
    let status = lab.cli.run(&["status", "--output", "json"], MINUTE);
    assert_eq!(status.code, SUCCEEDED, "{status:?}");
    assert_eq!(status.json()["status"]["phase"], "done", "{status:?}");

    // v2's old fleet is retired: a rollback redeploys v1, and nothing is left for gc.
    let back = lab.cli.run(&["rollback", "--output", "json"], MINUTE);
    assert_eq!(back.code, SUCCEEDED, "{back:?}");
    assert_eq!(
        back.json()["how"],
        "redeployed the previous image",
        "{back:?}"
    );
    let gc = lab.cli.run(&["gc", "--output", "json"], MINUTE);
    assert_eq!(gc.code, SUCCEEDED, "{gc:?}");
    assert_eq!(gc.json()["fleets"], serde_json::json!([]), "{gc:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_from_a_second_process_aborts_the_running_deploy() {
    let lab = Lab::start().await;
    let (deploy, id) = lab.deploy_to_the_gate();

    let rollback = lab.cli.run(&["rollback"], MINUTE);
    assert_eq!(rollback.code, SUCCEEDED, "{rollback:?}");
    assert!(
        rollback
            .stdout
            .contains(&format!("deployment {id} rolled back")),
        "{rollback:?}"
    );
    let done = deploy.wait(MINUTE);
    assert_eq!(done.code, ROLLED_BACK, "{done:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_aborts_and_the_deploy_exits_rolled_back() {
    let lab = Lab::start().await;
    // This time the approval gate comes from the service file.
    let file = lab.dir.path().join("web.toml");
    std::fs::write(
        &file,
        "service = \"web\"\n[deploy]\ncapacity = 2\nbake_time = \"0s\"\n\
         approval_timeout = \"10m\"\non_approval_timeout = \"roll-back\"\n",
    )
    .unwrap();
    let mut deploy = lab.cli.spawn(&[
        "--service-file",
        file.to_str().unwrap(),
        "deploy",
        "--image",
        "web-v2",
    ]);
    let id = wait_at_gate(&mut deploy);

    let abort = lab
        .cli
        .run(&["abort", &id, "--reason", "wrong build"], MINUTE);
    assert_eq!(abort.code, SUCCEEDED, "{abort:?}");
    let done = deploy.wait(MINUTE);
    assert_eq!(done.code, ROLLED_BACK, "{done:?}");
    assert!(done.stdout.contains("wrong build"), "{done:?}");
    let history = lab.cli.run(&["history", "--output", "json"], MINUTE);
    let rows = history.json()["deployments"].clone();
    assert_eq!(rows[0]["deployment"], id.as_str(), "{rows}");
    assert_eq!(rows[0]["phase"], "rolled_back", "{rows}");
    assert_eq!(rows[1]["phase"], "done", "{rows}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_suspends_the_deploy_and_resume_continues_it() {
    let lab = Lab::start().await;
    let (deploy, id) = lab.deploy_to_the_gate();

    deploy.terminate();
    let suspended = deploy.wait(MINUTE);
    assert_eq!(suspended.code, SUSPENDED, "{suspended:?}");
    assert!(
        suspended.stdout.contains(&format!("resume {id}")),
        "{suspended:?}"
    );
    // The lease was released: nobody runs it, and the status says what continues it.
    let status = lab.cli.run(&["status", &id, "--output", "json"], MINUTE);
    let doc = status.json();
    assert_eq!(doc["status"]["phase"], "rollout", "{doc}");
    assert!(doc["status"]["lease"].is_null(), "{doc}");

    let mut resumed = lab.cli.spawn(&["resume", &id]);
    resumed.expect_line(MINUTE, |l| l.contains("waiting for approval"));
    let approve = lab.cli.run(&["approve", &id], MINUTE);
    assert_eq!(approve.code, SUCCEEDED, "{approve:?}");
    let done = resumed.wait(MINUTE);
    assert_eq!(done.code, SUCCEEDED, "{done:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_halt_refuses_deploy_until_it_is_lifted() {
    let lab = Lab::start().await;
    let deploy_v2 = [
        "deploy",
        "--image",
        "web-v2",
        "--capacity",
        "2",
        "--bake-time",
        "0s",
    ];
    let halt = lab.cli.run(
        &["halt", "web", "--reason", "bad build", "--by", "alice"],
        MINUTE,
    );
    assert_eq!(halt.code, SUCCEEDED, "{halt:?}");
    let listed = lab.cli.run(&["halts", "web"], MINUTE);
    assert!(
        listed.stdout.contains("service web") && listed.stdout.contains("by alice"),
        "{listed:?}"
    );
    assert!(listed.stdout.contains("bad build"), "{listed:?}");

    let refused = lab.cli.run(&deploy_v2, MINUTE);
    assert_eq!(refused.code, REFUSED, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("service web halted by alice: bad build"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("lift-halt web"), "{refused:?}");
    let mut json = deploy_v2.to_vec();
    json.extend(["--output", "json"]);
    let refused = lab.cli.run(&json, MINUTE);
    assert_eq!(refused.code, REFUSED, "{refused:?}");
    let doc = refused.json();
    assert_eq!(doc["result"], "refused", "{doc}");
    assert_eq!(doc["details"]["halt"]["by"], "alice", "{doc}");
    assert_eq!(doc["details"]["halt"]["service"], "web", "{doc}");

    let lift = lab.cli.run(&["lift-halt", "web"], MINUTE);
    assert_eq!(lift.code, SUCCEEDED, "{lift:?}");
    assert!(
        lift.stdout.contains("lifted the halt of service web"),
        "{lift:?}"
    );
    let listed = lab.cli.run(&["halts", "web", "--output", "json"], MINUTE);
    assert_eq!(listed.code, SUCCEEDED, "{listed:?}");
    assert_eq!(listed.json()["halts"], serde_json::json!([]), "{listed:?}");
    let deployed = lab.cli.run(&deploy_v2, MINUTE);
    assert_eq!(deployed.code, SUCCEEDED, "{deployed:?}");
}
