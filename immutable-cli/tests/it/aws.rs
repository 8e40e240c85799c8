//! The CLI on moto's server: `plan` makes no mutating call and reports refusals; a `deploy`
//! killed with SIGKILL during the bake is resumed by a new process once its lease expired,
//! with nothing leaked.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::moto::{Moto, MotoCli, is_read};
use crate::common::{Cli, REFUSED, SUCCEEDED, deployment_id};
use immutable_core::tags;

const MINUTE: Duration = Duration::from_secs(60);

/// `demo-setup` on moto, then the CLI with the world's flags and quick polls.
fn world(moto: &Moto, store: &Path) -> Cli {
    moto.demo_cli(store)
}

fn deploy_v1(cli: &Cli) {
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
    assert!(v1.stdout.contains("succeeded"), "{v1:?}");
}

#[test]
fn plan_makes_only_read_calls_and_reports_refusals() {
    let _machine = immutable_testkit::serial::shared_blocking();
    let moto = Moto::start();
    let store = tempfile::tempdir().unwrap();
    let cli = world(&moto, store.path());
    deploy_v1(&cli);

    moto.start_recording();
    let plan = cli.run(&["plan", "--image", "web-v2", "--output", "json"], MINUTE);
    assert_eq!(plan.code, SUCCEEDED, "{plan:?}");
    let doc = plan.json();
    assert_eq!(doc["result"], "would_run", "{doc}");
    assert!(doc["plan"]["blue"]["fleet"].is_string(), "{doc}");
    // The budget is computed from the costs the AWS backend declares.
    assert!(
        doc["plan"]["budget"]["total"]["least"].as_u64().unwrap() > 0,
        "{doc}"
    );
    assert!(doc["plan"]["eta"]["least"].is_string(), "{doc}");

    let bad = cli.run(&["plan", "--image", "web-v9", "--output", "json"], MINUTE);
    assert_eq!(bad.code, REFUSED, "{bad:?}");
    let doc = bad.json();
    let refusals = doc["plan"]["refusals"].as_array().unwrap();
    assert!(
        refusals
            .iter()
            .any(|r| r["refusal"] == "invalid_input" && r["field"] == "image"),
        "{doc}"
    );
    let text = cli.run(&["plan", "--image", "web-v9"], MINUTE);
    assert_eq!(text.code, REFUSED, "{text:?}");
    assert!(text.stdout.contains("deploy would be refused"), "{text:?}");

    let actions = moto.stop_recording();
    assert!(!actions.is_empty(), "nothing was recorded");
    let writes: Vec<_> = actions.iter().filter(|a| !is_read(a)).collect();
    assert!(
        writes.is_empty(),
        "plan made mutating calls: {writes:?} of {actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_killed_during_the_bake_is_resumed_once_its_lease_expired() {
    let _machine = immutable_testkit::serial::shared().await;
    let moto = Moto::start();
    let store = tempfile::tempdir().unwrap();
    let cli = world(&moto, store.path());
    deploy_v1(&cli);

    let mut deploy = cli.spawn(&[
        "deploy",
        "--image",
        "web-v2",
        "--capacity",
        "2",
        "--bake-time",
        "15s",
        // Long enough that the plan, deploy and early resume below all run while the dead
        // run's lease is live (it was renewed at most a third of a TTL before the kill).
        "--lease-ttl",
        "20s",
    ]);
    let id = deployment_id(&deploy.expect_line(MINUTE, |l| l.contains(" of web: planned")));
    deploy.expect_line(MINUTE, |l| l.ends_with("phase bake"));
    let killed = deploy.kill();
    assert!(!killed.stdout.contains("succeeded"), "{killed:?}");

    // The plan says why a deployment cannot start now, and what continues the dead one.
    let plan = cli.run(&["plan", "--image", "web-v2", "--output", "json"], MINUTE);
    assert_eq!(plan.code, REFUSED, "{plan:?}");
    let doc = plan.json();
    let kinds: Vec<_> = doc["plan"]["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["refusal"].as_str().unwrap().to_owned())
        .collect();
    assert!(kinds.contains(&"locked".to_owned()), "{doc}");
    assert!(kinds.contains(&"unfinished".to_owned()), "{doc}");
    assert!(
        doc["continue_with"]
            .to_string()
            .contains(&format!("resume {id}")),
        "{doc}"
    );

    // A new deploy is refused, naming the command that continues the dead one.
    let again = cli.run(&["deploy", "--image", "web-v2"], MINUTE);
    assert_eq!(again.code, REFUSED, "{again:?}");
    assert!(
        again.stderr.contains("continue with: immutable "),
        "{again:?}"
    );
    assert!(again.stderr.contains(&format!("resume {id}")), "{again:?}");

    // While the dead run's lease is live, resume says how long until it expires.
    let early = cli.run(&["resume", &id], MINUTE);
    assert_eq!(early.code, REFUSED, "{early:?}");
    assert!(early.stderr.contains("its lease expires in"), "{early:?}");
    assert!(early.stderr.contains(&format!("resume {id}")), "{early:?}");

    // Once it expired, resume finishes the deployment.
    let deadline = Instant::now() + 2 * MINUTE;
    let done = loop {
        let run = cli.run(&["resume", &id], 2 * MINUTE);
        if run.code != REFUSED {
            break run;
        }
        assert!(run.stderr.contains("lease"), "{run:?}");
        assert!(
            Instant::now() < deadline,
            "the lease never expired: {run:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(done.code, SUCCEEDED, "{done:?}");
    assert!(
        done.stdout.contains(&format!("deployment {id} succeeded")),
        "{done:?}"
    );
    assert_nothing_leaked(&moto, &cli).await;
}

/// One target group, all traffic on it, two running instances of the service, nothing else.
async fn assert_nothing_leaked(moto: &Moto, cli: &Cli) {
    let clients = moto.clients().await;
    let groups = clients.elbv2.describe_target_groups().send().await.unwrap();
    let groups: Vec<_> = groups
        .target_groups()
        .iter()
        .map(|g| g.target_group_arn().unwrap().to_owned())
        .collect();
    assert_eq!(groups.len(), 1, "target groups left: {groups:?}");
    let listener =
        cli.args[cli.args.iter().position(|a| a == "--listener-arn").unwrap() + 1].clone();
    let listeners = clients
        .elbv2
        .describe_listeners()
        .listener_arns(listener)
        .send()
        .await
        .unwrap();
    let forwards: Vec<_> = listeners.listeners()[0]
        .default_actions()
        .iter()
        .filter_map(|a| a.forward_config())
        .flat_map(|f| f.target_groups())
        .map(|t| {
            (
                t.target_group_arn().unwrap().to_owned(),
                t.weight().unwrap_or(1),
            )
        })
        .collect();
    assert_eq!(forwards, vec![(groups[0].clone(), 100)]);
    let reservations = clients
        .ec2
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{}", tags::SERVICE))
                .values("web")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let states: Vec<_> = reservations
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| i.state().unwrap().name().unwrap().as_str().to_owned())
        .collect();
    let running = states.iter().filter(|s| *s == "running").count();
    assert_eq!(running, 2, "instances of web: {states:?}");
    assert!(
        states.iter().all(|s| s == "running" || s == "terminated"),
        "{states:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fleet_asg_each_fleet_is_an_auto_scaling_group() {
    let _machine = immutable_testkit::serial::shared().await;
    let moto = Moto::start();
    let store = tempfile::tempdir().unwrap();
    let mut cli = world(&moto, store.path());
    // moto has no DeleteLaunchTemplateVersions.
    for flag in [
        "--fleet",
        "asg",
        "--min-size",
        "1",
        "--max-size",
        "4",
        "--keep-template-versions",
    ] {
        cli.args.push(flag.to_owned());
    }
    deploy_v1(&cli);
    let v2 = cli.run(
        &[
            "deploy",
            "--image",
            "web-v2",
            "--capacity",
            "3",
            "--bake-time",
            "0s",
        ],
        MINUTE,
    );
    assert_eq!(v2.code, SUCCEEDED, "{v2:?}");
    let clients = moto.clients().await;
    let groups = clients
        .autoscaling
        .describe_auto_scaling_groups()
        .send()
        .await
        .unwrap();
    let groups = groups.auto_scaling_groups();
    assert_eq!(groups.len(), 1, "one group serves: {groups:?}");
    let g = &groups[0];
    assert_eq!(
        (g.min_size(), g.max_size(), g.desired_capacity()),
        (Some(1), Some(4), Some(3)),
        "the v1 group's limits were copied; the capacity is desired"
    );
    let image = g
        .tags()
        .iter()
        .find(|t| t.key() == Some(tags::IMAGE))
        .and_then(|t| t.value())
        .unwrap();
    let named = clients
        .ec2
        .describe_images()
        .image_ids(image)
        .send()
        .await
        .unwrap();
    assert_eq!(named.images()[0].name(), Some("web-v2"));

    let too_big = cli.run(
        &[
            "deploy",
            "--image",
            "web-v1",
            "--capacity",
            "5",
            "--bake-time",
            "0s",
        ],
        MINUTE,
    );
    assert_ne!(too_big.code, SUCCEEDED, "{too_big:?}");
    assert!(
        too_big.stdout.contains("1..4") || too_big.stderr.contains("1..4"),
        "the refusal names the limits: {too_big:?}"
    );
}
