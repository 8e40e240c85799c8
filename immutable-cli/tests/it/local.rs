//! The CLI on the local backend (processes behind a real HAProxy): a `deploy` waiting at an
//! approval gate is approved, or aborted, by a second `immutable` process; SIGTERM suspends it
//! and `resume` continues it; a halt refuses `deploy` until it is lifted. Neighbours: names
//! outside the grammar, a command to another service's deployment, `gc` from another
//! store, HAProxy restarts.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use crate::common::lab::{Lab, MINUTE, lab_settings, wait_at_gate};
use crate::common::{Cli, REFUSED, ROLLED_BACK, SUCCEEDED, SUSPENDED, deployment_id};
use immutable_local::HaproxyOptions;
use immutable_testkit::local::{answer, until_answered};
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_approves_and_the_deploy_succeeds() {
    let _machine = immutable_testkit::serial::shared().await;
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
    let _machine = immutable_testkit::serial::shared().await;
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
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start().await;
    // This time the approval gate comes from the service file.
    let file = lab.dir.path().join("web.toml");
    std::fs::write(
        &file,
        format!(
            "service = \"web\"\n{}[deploy]\ncapacity = 2\nbake_time = \"0s\"\n\
             approval_timeout = \"10m\"\non_approval_timeout = \"roll-back\"\n",
            lab.settings
        ),
    )
    .unwrap();
    let mut deploy = Cli::new(["--service-file", file.to_str().unwrap()])
        .spawn(&["deploy", "--image", "web-v2"]);
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
    let _machine = immutable_testkit::serial::shared().await;
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
    let _machine = immutable_testkit::serial::shared().await;
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
    let halt = lab
        .cli
        .run(&["halt", "--reason", "bad build", "--by", "alice"], MINUTE);
    assert_eq!(halt.code, SUCCEEDED, "{halt:?}");
    let listed = lab.cli.run(&["halts"], MINUTE);
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
    assert!(
        refused.stderr.contains("lift-halt --service web"),
        "{refused:?}"
    );
    let mut json = deploy_v2.to_vec();
    json.extend(["--output", "json"]);
    let refused = lab.cli.run(&json, MINUTE);
    assert_eq!(refused.code, REFUSED, "{refused:?}");
    let doc = refused.json();
    assert_eq!(doc["result"], "refused", "{doc}");
    assert_eq!(doc["details"]["halt"]["by"], "alice", "{doc}");
    assert_eq!(doc["details"]["halt"]["service"], "web", "{doc}");

    let lift = lab.cli.run(&["lift-halt"], MINUTE);
    assert_eq!(lift.code, SUCCEEDED, "{lift:?}");
    assert!(
        lift.stdout.contains("lifted the halt of service web"),
        "{lift:?}"
    );
    let listed = lab.cli.run(&["halts", "--output", "json"], MINUTE);
    assert_eq!(listed.code, SUCCEEDED, "{listed:?}");
    assert_eq!(listed.json()["halts"], serde_json::json!([]), "{listed:?}");
    // -q: the result, and no progress line.
    let mut quiet = deploy_v2.to_vec();
    quiet.push("-q");
    let deployed = lab.cli.run(&quiet, MINUTE);
    assert_eq!(deployed.code, SUCCEEDED, "{deployed:?}");
    assert_eq!(deployed.stdout.lines().count(), 1, "{deployed:?}");
    assert!(deployed.stdout.contains("succeeded"), "{deployed:?}");
}

/// A command refuses the options of a backend it does not call (exit 2, naming the option),
/// before anything is read or created.
#[test]
fn backend_options_are_refused_by_the_commands_that_do_not_use_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file:{}", dir.path().join("store").display());
    let cli = Cli::new(["--store", store.as_str(), "--service", "web"]);
    for (args, flag) in [
        (vec!["approve", "01jd", "--subnets", "x"], "--subnets"),
        (vec!["status", "--root", "/srv"], "--root"),
        (vec!["history", "--backend", "local"], "--backend"),
        (
            vec!["halt", "--reason", "r", "--lease-ttl", "5s"],
            "--lease-ttl",
        ),
        (vec!["watch", "--listener-arn", "arn"], "--listener-arn"),
        (vec!["restore", "--subnets", "x"], "--subnets"),
    ] {
        let run = cli.run(&args, MINUTE);
        assert_eq!(run.code, REFUSED, "{args:?}: {run:?}");
        assert!(
            run.stderr
                .contains(&format!("unexpected argument '{flag}'")),
            "{args:?}: {run:?}"
        );
    }
    assert!(!dir.path().join("store").exists(), "a store was created");
}

/// The image id named `name` in the lab's store root.
fn image_id(lab: &Lab, name: &str) -> String {
    let images = lab
        .base
        .run(&["--service", "web", "history", "--output", "json"], MINUTE);
    let rows = images.json()["deployments"].clone();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["image"]["name"] == name)
        .unwrap_or_else(|| panic!("no deployment of {name}: {rows}"))["image"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `.` and `..` (and other names outside the grammar) are refused by every way a service
/// name comes in, before anything is created.
#[test]
fn dot_and_dotdot_are_refused_everywhere_and_nothing_is_created() {
    let _machine = immutable_testkit::serial::shared_blocking();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let root = dir.path().join("root");
    let settings = lab_settings(
        &format!("file:{}", store.display()),
        &root,
        &dir.path().join("no.sock"),
    );
    let lab_file = dir.path().join("lab.toml");
    std::fs::write(&lab_file, &settings).unwrap();
    let cli = Cli::new(["--service-file", lab_file.to_str().unwrap()]);
    for name in [".", "..", "Web", "web:preview", "_x"] {
        let runs = [
            cli.run(&["--service", name, "status"], MINUTE),
            cli.run(&["--service", name, "deploy", "--image", "v1"], MINUTE),
            cli.run(&["--service", name, "history"], MINUTE),
            cli.run(&["--service", name, "halt", "--reason", "r"], MINUTE),
            cli.run(&["--service", name, "halts"], MINUTE),
            cli.run(&["--service", name, "adopt"], MINUTE),
        ];
        for run in runs {
            assert_eq!(run.code, REFUSED, "{name}: {run:?}");
            assert!(
                run.stderr.contains("is not a service name"),
                "{name}: {run:?}"
            );
        }
        let file = dir.path().join("svc.toml");
        std::fs::write(&file, format!("service = {name:?}\n{settings}")).unwrap();
        let run = Cli::new(["--service-file", file.to_str().unwrap()]).run(&["status"], MINUTE);
        assert_eq!(run.code, REFUSED, "{name}: {run:?}");
        assert!(
            run.stderr.contains("svc.toml: `service`"),
            "{name}: {run:?}"
        );
    }
    for (flags, named) in [
        (
            vec!["--strategy", "linear", "--linear-step", "0"],
            "--linear-step",
        ),
        (
            vec!["--strategy", "linear", "--linear-step", "101"],
            "--linear-step",
        ),
        (vec!["--capacity", "0"], "capacity"),
    ] {
        let mut args = vec!["--service", "web", "deploy", "--image", "v1"];
        args.extend(flags);
        let run = cli.run(&args, MINUTE);
        assert_eq!(run.code, REFUSED, "{args:?}: {run:?}");
        assert!(run.stderr.contains(named), "{args:?}: {run:?}");
    }
    for bad_id in ["../x", "a b", "x;rm"] {
        let run = cli.run(&["--service", "web", "resume", bad_id], MINUTE);
        assert_eq!(run.code, REFUSED, "{bad_id}: {run:?}");
    }
    assert!(!store.exists(), "a store was created");
    assert!(!root.exists(), "a root was created");
}

/// `--service web resume <api's deployment>` (and every command by id) is refused with
/// exit 2 before any backend call; api's deployment goes on untouched and is approved by
/// its own service's command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_to_another_services_deployment_is_refused_and_leaves_it_untouched() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start_with(&["web", "api"]).await;
    let api = lab.base.with(["--service", "api"]);
    let mut deploy = api.spawn(&[
        "deploy",
        "--image",
        "api-v2",
        "--capacity",
        "2",
        "--bake-time",
        "0s",
        "--approval-timeout",
        "10m",
    ]);
    let planned = deploy.expect_line(MINUTE, |l| {
        l.contains("deployment ") && l.contains(" of api")
    });
    let id = deployment_id(&planned);
    deploy.expect_line(MINUTE, |l| l.contains("waiting for approval"));
    let before = api.run(&["status", &id, "--output", "json"], MINUTE).json();

    for args in [
        vec!["resume", &id],
        vec!["approve", &id],
        vec!["reject", &id],
        vec!["promote", &id],
        vec!["abort", &id],
        vec!["status", &id],
        vec!["watch", &id],
    ] {
        let run = lab.cli.run(&args, MINUTE);
        assert_eq!(run.code, REFUSED, "{args:?}: {run:?}");
        assert!(
            run.stderr
                .contains("is a deployment of service api, not of web"),
            "{args:?}: {run:?}"
        );
    }
    let after = api.run(&["status", &id, "--output", "json"], MINUTE).json();
    assert_eq!(
        after["status"]["phase"], before["status"]["phase"],
        "{after}"
    );
    assert_eq!(after["status"]["weight"], 0, "{after}");
    assert!(
        after["status"]["waiting"].is_object(),
        "still at its gate: {after}"
    );

    // Without --service, a command takes the deployment's own service.
    let approve = lab.base.run(&["approve", &id], MINUTE);
    assert_eq!(approve.code, SUCCEEDED, "{approve:?}");
    let done = deploy.wait(MINUTE);
    assert_eq!(done.code, SUCCEEDED, "{done:?}");
    assert!(
        until_answered(&lab.haproxy.url("api")).await
            != until_answered(&lab.haproxy.url("web")).await
    );
}

/// A `gc --remove` run against another store while v2 bakes finds both fleets foreign and
/// removes nothing; the operator's rollback then routes back to v1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_from_a_second_store_during_a_bake_removes_nothing_and_rollback_routes_back() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start().await;
    let v1 = image_id(&lab, "web-v1");
    let mut deploy = lab.cli.spawn(&[
        "deploy",
        "--image",
        "web-v2",
        "--capacity",
        "2",
        "--bake-time",
        "10m",
    ]);
    deploy.expect_line(MINUTE, |l| l.contains("phase bake"));

    // The same service, backend and root, another journal: what `gc` run from another
    // directory did when the default store was `file:.immutable`.
    let other_store = format!("file:{}", lab.dir.path().join("other-store").display());
    let other = lab.cli.with(["--store", &other_store]);
    let gc = other.run(&["gc", "--remove", "--output", "json"], MINUTE);
    assert_eq!(gc.code, SUCCEEDED, "{gc:?}");
    let doc = gc.json();
    assert_eq!(doc["removed_fleets"], serde_json::json!([]), "{doc}");
    assert_eq!(doc["removed_targets"], serde_json::json!([]), "{doc}");
    assert_eq!(doc["fleets"], serde_json::json!([]), "{doc}");
    assert_eq!(
        doc["foreign_targets"].as_array().map(Vec::len),
        Some(1),
        "{doc}"
    );
    let text = other.run(&["gc"], MINUTE);
    assert!(text.stdout.contains("foreign fleet"), "{text:?}");
    assert!(
        text.stdout.contains("does not remove them by itself"),
        "{text:?}"
    );

    let rollback = lab.cli.run(&["rollback"], MINUTE);
    assert_eq!(rollback.code, SUCCEEDED, "{rollback:?}");
    assert!(rollback.stdout.contains("rolled back"), "{rollback:?}");
    let done = deploy.wait(MINUTE);
    assert_eq!(done.code, ROLLED_BACK, "{done:?}");
    assert_eq!(until_answered(&lab.haproxy.url("web")).await, v1);
}

/// HAProxy killed and started again (same configuration) while a deploy run by the CLI
/// bakes: the service answers from v2 again with no command run, and the deploy succeeds.
/// Once nothing runs, a restart leaves 503s until `restore` puts the servers back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_restarts_are_survived_while_a_deploy_runs_and_restored_on_demand() {
    let _machine = immutable_testkit::serial::shared().await;
    // An HAProxy with a backend named after the service and nothing else (no preview).
    let mut lab = Lab::start_with_haproxy(HaproxyOptions::new(["web"]).without_preview()).await;
    let url = lab.haproxy.url("web");
    let mut deploy = lab.cli.spawn(&[
        "deploy",
        "--image",
        "web-v2",
        "--capacity",
        "2",
        "--bake-time",
        "4s",
    ]);
    deploy.expect_line(MINUTE, |l| l.contains("preview skipped"));
    deploy.expect_line(MINUTE, |l| l.contains("phase bake"));
    lab.haproxy.kill();
    lab.haproxy.start_again().await.unwrap();
    let up = Instant::now();
    let answered = until_answered(&url).await;
    println!(
        "the CLI's deploy restored the routing {:.0?} after HAProxy was up",
        up.elapsed()
    );
    let done = deploy.wait(MINUTE);
    assert_eq!(done.code, SUCCEEDED, "{done:?}");
    let v2 = image_id(&lab, "web-v2");
    assert_eq!(answered, v2);

    lab.haproxy.kill();
    lab.haproxy.start_again().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        answer(&url).await,
        None,
        "nothing restores while nothing runs"
    );
    let restore = lab.cli.run(&["restore"], MINUTE);
    assert_eq!(restore.code, SUCCEEDED, "{restore:?}");
    assert!(
        restore.stdout.contains("put 2 server(s) back"),
        "{restore:?}"
    );
    assert_eq!(until_answered(&url).await, v2);
    let again = lab.base.run(&["restore", "--output", "json"], MINUTE);
    assert_eq!(again.code, SUCCEEDED, "{again:?}");
    assert_eq!(again.json()["added"], 0, "{again:?}");
    assert_eq!(again.json()["service"], "web", "{again:?}");
}

/// `immutable deploy` is killed with SIGKILL in the middle of a canary under load; a new
/// `immutable resume` continues it once the dead run's lease lapses, with the fleet that
/// survived (it launches nothing), and no request fails throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_deploy_is_resumed_by_a_new_process_without_a_failed_request() {
    let _alone = immutable_testkit::serial::exclusive().await;
    let lab = Lab::start().await;
    let cli = lab.cli.with(["--lease-ttl", "3s"]);
    let load = immutable_local::LoadGen::new(format!("{}/?delay_ms=50", lab.haproxy.url("web")))
        .keep_alive_clients(4)
        .new_connection_clients(4)
        .max_requests(200_000)
        .max_duration(Duration::from_secs(90))
        .start()
        .unwrap();
    let warm = Instant::now() + Duration::from_secs(10);
    while load.served() < 100 {
        assert!(Instant::now() < warm, "the load never got going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut deploy = cli.spawn(&[
        "deploy",
        "--image",
        "web-v2",
        "--capacity",
        "2",
        "--strategy",
        "canary",
        "--weights",
        "10,50",
        "--pause",
        "2s",
        "--bake-time",
        "500ms",
    ]);
    let planned = deploy.expect_line(MINUTE, |l| {
        l.contains("deployment ") && l.contains(" of web")
    });
    let id = deployment_id(&planned);
    deploy.expect_line(MINUTE, |l| l.contains("routing:") && l.contains(" 10% ->"));
    let killed = deploy.kill();
    assert_ne!(killed.code, SUCCEEDED, "{killed:?}");

    // Refused while the dead run's lease stands (exit 2, locked), then it goes on.
    let deadline = Instant::now() + Duration::from_secs(30);
    let resumed = loop {
        let run = cli.run(&["resume", &id], MINUTE);
        if run.code == REFUSED && run.stderr.contains("is locked") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        }
        break run;
    };
    let done = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let load = load.stop().await;
    println!("killed and resumed under load: {}", load.summary());
    assert_eq!(resumed.code, SUCCEEDED, "{resumed:?}");
    assert!(
        !resumed.stdout.contains("launched fleet"),
        "the resume launched a fleet rather than continue with the one that survived: {resumed:?}"
    );
    assert_eq!(load.failed(), 0, "{}", load.summary());
    let v2 = image_id(&lab, "web-v2");
    let after = load.images_since(done);
    assert_eq!(after.keys().collect::<Vec<_>>(), [&v2], "{after:?}");
}
