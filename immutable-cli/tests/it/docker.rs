//! The CLI on the Docker backend (containers on the system dockerd behind the managed
//! HAProxy): the demo images deployed and switched through the proxy, listed, rolled back and
//! collected, with a container of someone else's left alone; a `deploy` killed mid-canary
//! under load and resumed by a new process without a failed request; published ports and
//! limits; a fleet over two hosts, one over TLS; bad Docker options refused naming the flag,
//! with nothing made.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use bollard::models::ContainerSummaryStateEnum;
use immutable_testkit::docker::{PrivateDaemon, SYSTEM_SOCKET, system};
use immutable_testkit::load::{assert_zero_downtime, warm_up};
use immutable_testkit::local::{answer, until_answered};

use crate::common::docker::{DockerLab, Foreign, service_containers, suffix};
use crate::common::lab::MINUTE;
use crate::common::{Cli, REFUSED, SUCCEEDED, deployment_id};

/// Five answers in a row from `url`, all from `image`.
async fn answers_only(url: &str, image: &str) {
    for _ in 0..5 {
        assert_eq!(answer(url).await.as_deref(), Some(image), "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_images_are_deployed_switched_rolled_back_and_collected_through_the_managed_proxy()
{
    let _machine = immutable_testkit::serial::shared().await;
    let lab = DockerLab::new("dk-web").await;
    let foreign = Foreign::start(&lab.docker).await;

    let (v1, v2) = lab.with_v1();
    assert_ne!(v1, v2);
    assert!(
        v1.starts_with("sha256:") && v2.starts_with("sha256:"),
        "{v1} {v2}"
    );
    assert_eq!(until_answered(&lab.url()).await, v1);
    foreign
        .assert_untouched("demo-setup, proxy start and deploy v1")
        .await;

    let deployed = lab.deploy("v2");
    assert_eq!(deployed.code, SUCCEEDED, "{deployed:?}");
    answers_only(&lab.url(), &v2).await;
    let running = lab.containers().await;
    assert_eq!(running.len(), 2, "v1's fleet is retired: {running:?}");
    for c in &running {
        assert_eq!(c.state, Some(ContainerSummaryStateEnum::RUNNING), "{c:?}");
        assert_eq!(c.image_id.as_deref(), Some(v2.as_str()), "{c:?}");
    }

    let list = lab.cli.run(&["image", "list", "--output", "json"], MINUTE);
    assert_eq!(list.code, SUCCEEDED, "{list:?}");
    let rows = list.json()["images"].clone();
    let row = |id: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no image {id}: {rows}"))
            .clone()
    };
    assert_eq!(row(&v1)["name"], format!("{}-v1", lab.service));
    assert_eq!(row(&v1)["in_use_by"], serde_json::json!([]));
    assert_eq!(row(&v2)["name"], format!("{}-v2", lab.service));
    assert_eq!(row(&v2)["in_use_by"].as_array().map(Vec::len), Some(1));

    let gc = lab.cli.run(&["gc", "--remove", "--output", "json"], MINUTE);
    assert_eq!(gc.code, SUCCEEDED, "{gc:?}");
    let doc = gc.json();
    for key in ["fleets", "foreign_fleets", "removed_fleets"] {
        assert_eq!(doc[key], serde_json::json!([]), "{key}: {doc}");
    }
    foreign
        .assert_untouched("deploy v2, image list and gc")
        .await;

    // v2's old fleet (v1's) is retired: a rollback redeploys v1.
    let back = lab.cli.run(&["rollback", "--output", "json"], MINUTE);
    assert_eq!(back.code, SUCCEEDED, "{back:?}");
    assert_eq!(
        back.json()["how"],
        "redeployed the previous image",
        "{back:?}"
    );
    answers_only(&lab.url(), &v1).await;
    let gc = lab.cli.run(&["gc", "--output", "json"], MINUTE);
    assert_eq!(gc.json()["fleets"], serde_json::json!([]), "{gc:?}");
    foreign.assert_untouched("rollback and gc").await;
}

/// `immutable deploy` is killed with SIGKILL in the middle of a canary under load; a new
/// `immutable resume` continues it once the dead run's lease lapses, with the fleet that
/// survived (it launches nothing), and no request fails throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_deploy_is_resumed_by_a_new_process_without_a_failed_request() {
    let _alone = immutable_testkit::serial::exclusive().await;
    let lab = DockerLab::new("dk-kill").await;
    let (_, v2) = lab.with_v1();
    let cli = lab.cli.with(["--lease-ttl", "3s"]);
    let load = immutable_local::LoadGen::new(format!("{}/?delay_ms=50", lab.url()))
        .keep_alive_clients(4)
        .new_connection_clients(4)
        .max_requests(200_000)
        .max_duration(Duration::from_secs(90))
        .start()
        .unwrap();
    warm_up(&load, 100).await;
    let image = format!("{}-v2", lab.service);
    let mut deploy = cli.spawn(&[
        "deploy",
        "--image",
        &image,
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
        l.contains("deployment ") && l.contains(&format!(" of {}", lab.service))
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
    println!(
        "killed and resumed under load: served {}, failed {}",
        load.served(),
        load.failed()
    );
    assert_eq!(resumed.code, SUCCEEDED, "{resumed:?}");
    assert!(
        !resumed.stdout.contains("launched fleet"),
        "the resume launched a fleet rather than continue with the one that survived: {resumed:?}"
    );
    assert_zero_downtime("killed and resumed", &load, &v2, done);
    let running = lab.containers().await;
    assert_eq!(
        running.len(),
        2,
        "v1's fleet is retired after the bake: {running:?}"
    );
}

/// `docker_network = "published"` and `cpus` in `[docker]`, `--memory` on the command line:
/// the demo images listen on 0.0.0.0 in their containers, Docker publishes each port on
/// 127.0.0.1 only, HAProxy reaches them there, and every container carries the limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_ports_and_limits_reach_the_containers() {
    let _machine = immutable_testkit::serial::shared().await;
    let mut lab =
        DockerLab::with_keys("dk-pub", "docker_network = \"published\"\ncpus = 0.5").await;
    lab.cli = lab.cli.with(["--memory", "64m"]);
    let (v1, _) = lab.with_v1();
    answers_only(&lab.url(), &v1).await;
    let running = lab.containers().await;
    assert_eq!(running.len(), 2, "{running:?}");
    for c in running {
        let id = c.id.unwrap();
        let inspected = lab.docker.inspect_container(&id, None).await.unwrap();
        let config = inspected.host_config.unwrap();
        assert_ne!(config.network_mode.as_deref(), Some("host"), "{config:?}");
        assert_eq!(config.memory, Some(64 << 20), "{config:?}");
        assert_eq!(config.nano_cpus, Some(500_000_000), "{config:?}");
        let bindings: Vec<_> = config
            .port_bindings
            .unwrap()
            .into_values()
            .flatten()
            .flatten()
            .collect();
        assert_eq!(bindings.len(), 1, "{bindings:?}");
        assert_eq!(
            bindings[0].host_ip.as_deref(),
            Some("127.0.0.1"),
            "{bindings:?}"
        );
    }
}

/// Two Docker hosts on the command line, the second a private daemon over TCP with TLS
/// (`--docker-host` twice, `--docker-tls-dir`): `demo-setup` builds on the first and its
/// imports copy the images to the second, a deploy of two places one instance on each, and
/// HAProxy reaches both (the TLS host's containers at the host of its URL, 127.0.0.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_spreads_over_two_hosts_one_reached_over_tls() {
    let _machine = immutable_testkit::serial::shared().await;
    let daemon = PrivateDaemon::builder().tls().start().await;
    let tls_dir = daemon
        .tls()
        .unwrap()
        .client_dir()
        .to_str()
        .unwrap()
        .to_owned();
    let second = format!("b={}", daemon.tls_url().unwrap());
    let first = format!(
        "a={}",
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| format!("unix://{SYSTEM_SOCKET}"))
    );
    let mut lab = DockerLab::new("dk-two").await;
    lab.cli = lab.cli.with([
        "--docker-host",
        &first,
        "--docker-host",
        &second,
        "--docker-tls-dir",
        &tls_dir,
    ]);
    let (v1, _) = lab.with_v1();
    let on_a = lab.containers().await;
    let on_b = service_containers(&daemon.client(), &lab.service).await;
    assert_eq!((on_a.len(), on_b.len()), (1, 1), "{on_a:?} {on_b:?}");
    let names = |cs: &[bollard::models::ContainerSummary]| {
        cs.iter()
            .flat_map(|c| c.names.clone().unwrap_or_default())
            .map(|n| n.trim_start_matches('/').to_owned())
            .collect::<Vec<_>>()
    };
    let mut expected = [names(&on_a), names(&on_b)].concat();
    expected.sort();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut answered = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let resp = client.get(lab.url()).send().await.unwrap();
        let header = |h: &str| resp.headers()[h].to_str().unwrap().to_owned();
        assert_eq!(header("x-image"), v1);
        answered.insert(header("x-instance"));
    }
    assert_eq!(answered.into_iter().collect::<Vec<_>>(), expected);
}

/// Bad Docker options are refused (exit 2) naming the flag or the key, by every command that
/// takes them, before a store, a catalog or a container is made; a daemon that does not
/// answer is an error (exit 1) naming the host as it was given, and makes no catalog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_docker_options_are_refused_naming_the_flag_and_nothing_is_made() {
    let _machine = immutable_testkit::serial::shared().await;
    let docker = system().await;
    let dir = tempfile::tempdir().unwrap();
    let service = format!("dk-bad-{}", suffix());
    let (root, store) = (dir.path().join("root"), dir.path().join("store"));
    let store_flag = format!("file:{}", store.display());
    let cli = Cli::new([
        "--service",
        service.as_str(),
        "--store",
        store_flag.as_str(),
    ]);
    let on_docker = ["--backend", "docker", "--root", root.to_str().unwrap()];
    let system = "a=unix:///var/run/docker.sock";
    let commands: [&[&str]; 7] = [
        &["deploy", "--image", "v1"],
        &["plan", "--image", "v1"],
        &["demo-setup"],
        &["gc"],
        &["rollback"],
        &["image", "list"],
        &["image", "import", "--name", "v1", "--image", "busybox"],
    ];
    let cases: [(&[&str], &str); 7] = [
        (
            &["--docker-host", "a=ssh://me@10.0.0.5"],
            "--docker-host a=ssh://me@10.0.0.5:",
        ),
        (
            &["--docker-host", system, "--docker-host", system],
            "the name `a` is taken by --docker-host",
        ),
        (
            &["--docker-host", "unix:///var/run/docker.sock"],
            "expected NAME=URL",
        ),
        (
            &["--docker-host", "a.b=unix:///x.sock"],
            "--docker-host a.b=unix:///x.sock:",
        ),
        (&["--memory", "5m"], "'--memory <SIZE>'"),
        (&["--cpus", "0"], "'--cpus <CPUS>'"),
        (
            &["--docker-network", "bridge"],
            "'--docker-network <NETWORK>'",
        ),
    ];
    for command in commands {
        for (flags, says) in cases {
            let mut args = command.to_vec();
            args.extend(on_docker);
            args.extend(flags);
            let run = cli.run(&args, MINUTE);
            assert_eq!(run.code, REFUSED, "{args:?}: {run:?}");
            assert!(run.stderr.contains(says), "{args:?}: {run:?}");
        }
    }

    // The same in the service file's [docker] table, named by key.
    let file = dir.path().join("svc.toml");
    for (table, says) in [
        (
            "docker_host = [\"a=ftp://h\"]",
            "docker_host `a=ftp://h` in [docker]",
        ),
        ("memory = \"1k\"", "memory"),
        ("cpus = 0", "cpus"),
        ("docker_hosts = []", "docker_hosts"),
    ] {
        std::fs::write(
            &file,
            format!("backend = \"docker\"\n[docker]\nroot = {root:?}\n{table}\n"),
        )
        .unwrap();
        let run = cli
            .with(["--service-file", file.to_str().unwrap()])
            .run(&["deploy", "--image", "v1"], MINUTE);
        assert_eq!(run.code, REFUSED, "{table}: {run:?}");
        assert!(run.stderr.contains(says), "{table}: {run:?}");
    }

    // Import options of the other backends, or none of Docker's.
    for (args, says) in [
        (vec!["--name", "v1"], "--image REF or --archive FILE"),
        (vec!["--image", "busybox"], "--name"),
        (
            vec!["--name", "v1", "--image", "busybox", "--command", "x"],
            "--command",
        ),
        (
            vec!["--name", "v1", "--archive", "/nonexistent.tar"],
            "--archive:",
        ),
        (
            vec![
                "--name",
                "v1",
                "--image",
                "busybox",
                "--label",
                "immutable:x=y",
            ],
            "--label:",
        ),
    ] {
        let mut all = vec!["image", "import"];
        all.extend(args);
        all.extend(on_docker);
        let run = cli.run(&all, MINUTE);
        assert_eq!(run.code, REFUSED, "{all:?}: {run:?}");
        assert!(run.stderr.contains(says), "{all:?}: {run:?}");
    }
    assert!(!root.exists(), "a root (a catalog) was made");
    assert!(!store.exists(), "a store was made");

    // A daemon that does not answer: an error naming the host; no catalog, no fleet state.
    let silent = format!("a=unix://{}", dir.path().join("no.sock").display());
    for command in commands {
        let mut args = command.to_vec();
        args.extend(on_docker);
        args.extend(["--docker-host", &silent]);
        let run = cli.run(&args, MINUTE);
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains(&format!("--docker-host {silent}: "))
                && run.stderr.contains("no Docker daemon answers"),
            "{args:?}: {run:?}"
        );
        assert!(
            !root.join("images").exists(),
            "{args:?}: a catalog was made"
        );
        assert!(
            !root.join("fleets").exists(),
            "{args:?}: fleet states were made"
        );
    }
    let made = service_containers(&docker, &service).await;
    assert!(made.is_empty(), "containers were made: {made:?}");
}
