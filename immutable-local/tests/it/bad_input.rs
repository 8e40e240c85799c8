//! Bad input gets a clear error naming the problem, and leaves nothing behind.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::common::Lab;
use immutable_core::{
    DeploymentId, Error, Fleet, FleetSpec, ImageRef, ImageStore, ResourceKind, ServiceName,
    TrafficRouter,
};
use immutable_local::{
    Haproxy, HaproxyOptions, HaproxyRouter, ImportRequest, LocalImageStore, ProcessFleet,
};

fn web() -> ServiceName {
    ServiceName::new("web").unwrap()
}

/// Entries of a directory, hidden lock files aside.
fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".lock"))
                .collect()
        })
        .unwrap_or_default()
}

fn expect_invalid<T: std::fmt::Debug>(r: immutable_core::Result<T>, field: &str, says: &str) {
    match r {
        Err(Error::InvalidInput {
            field: f, reason, ..
        }) => {
            assert_eq!(f, field, "{reason}");
            assert!(reason.contains(says), "`{reason}` should say `{says}`");
        }
        other => panic!("expected InvalidInput on `{field}`, got {other:?}"),
    }
}

fn store() -> (tempfile::TempDir, LocalImageStore, ProcessFleet) {
    let dir = tempfile::tempdir().unwrap();
    let images = LocalImageStore::open(dir.path().join("root")).unwrap();
    let fleet = ProcessFleet::open(&images).unwrap();
    (dir, images, fleet)
}

/// An image whose command is a script in the image that prints to stderr and exits 3.
async fn crashing_image(dir: &Path, images: &LocalImageStore) -> immutable_core::Image {
    let src = dir.join("crash");
    std::fs::create_dir_all(&src).unwrap();
    let script = src.join("start.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho cannot open config.toml >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    images
        .import(ImportRequest::new("web", "crash", &src, ["./start.sh"]))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_missing_image_directory_is_named() {
    let _machine = immutable_testkit::serial::shared().await;
    let (dir, images, _) = store();
    let missing = dir.path().join("no-such-build");
    let r = images
        .import(ImportRequest::new("web", "v1", &missing, ["/bin/true"]))
        .await;
    expect_invalid(r, "dir", "no-such-build");
    assert!(entries(&dir.path().join("root/images")).is_empty());
}

#[tokio::test]
async fn a_command_that_is_not_executable_is_named() {
    let _machine = immutable_testkit::serial::shared().await;
    let (dir, images, _) = store();
    let src = dir.path().join("build");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("server"), "#!/bin/sh\n").unwrap();
    let r = images
        .import(ImportRequest::new("web", "v1", &src, ["./server"]))
        .await;
    expect_invalid(r, "command", "not executable");
    let r = images
        .import(ImportRequest::new("web", "v1", &src, ["./missing"]))
        .await;
    expect_invalid(r, "command", "does not exist");
    assert!(entries(&dir.path().join("root/images")).is_empty());
    assert!(images.list(&web()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_fifo_or_a_symlink_out_of_the_directory_is_named_and_nothing_is_written() {
    let _machine = immutable_testkit::serial::shared().await;
    let (dir, images, _) = store();
    let src = dir.path().join("build");
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::write(src.join("bin/app"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(src.join("bin/app"), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A link inside the directory is part of the image.
    std::os::unix::fs::symlink("bin/app", src.join("start")).unwrap();
    let fifo = src.join("bin/pipe");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let r = images
        .import(ImportRequest::new("web", "v1", &src, ["./start"]))
        .await;
    expect_invalid(r, "dir", "bin/pipe");
    std::fs::remove_file(&fifo).unwrap();
    for (link, target) in [("secrets", "/etc"), ("up", "../../elsewhere")] {
        std::os::unix::fs::symlink(target, src.join("bin").join(link)).unwrap();
        let r = images
            .import(ImportRequest::new("web", "v1", &src, ["./start"]))
            .await;
        expect_invalid(r, "dir", &format!("bin/{link} is a symlink to {target}"));
        std::fs::remove_file(src.join("bin").join(link)).unwrap();
    }
    // Each link looks inside by its words; followed, the second leads to the parent.
    std::os::unix::fs::symlink("..", src.join("bin/up")).unwrap();
    std::os::unix::fs::symlink("bin/up/..", src.join("escape")).unwrap();
    let r = images
        .import(ImportRequest::new("web", "v1", &src, ["./start"]))
        .await;
    expect_invalid(r, "dir", "escape is a symlink to bin/up/..");
    std::fs::remove_file(src.join("escape")).unwrap();
    std::fs::remove_file(src.join("bin/up")).unwrap();
    for (request, field) in [
        (
            ImportRequest::new("web", "v1", &src, ["./start"]).env("PORT", "1"),
            "env",
        ),
        (
            ImportRequest::new("web", "v1", &src, ["./start"]).env("A-B", "1"),
            "env",
        ),
        (
            ImportRequest::new("web", "v1", &src, ["./start"]).port_var("1X"),
            "port_var",
        ),
        (
            ImportRequest::new("web", "v1", &src, ["./start"]).health_path("health"),
            "health_path",
        ),
        (
            ImportRequest::new("web", "img-0123", &src, ["./start"]),
            "name",
        ),
        (
            ImportRequest::new("web", "v1", &src, ["./start"])
                .env("HTTP_PORT", "1")
                .port_var("HTTP_PORT"),
            "port_var",
        ),
    ] {
        expect_invalid(images.import(request).await, field, "");
    }
    assert!(entries(&dir.path().join("root/images")).is_empty());
    // Once clean, it imports, with the link inside it.
    let image = images
        .import(ImportRequest::new("web", "v1", &src, ["./start"]))
        .await
        .unwrap();
    let files = dir
        .path()
        .join("root/images")
        .join(image.id.as_str())
        .join("files");
    assert_eq!(
        std::fs::read_link(files.join("start")).unwrap(),
        Path::new("bin/app")
    );
}

#[tokio::test]
async fn an_instance_starts_with_the_images_variables_and_its_port_under_port_var() {
    let _machine = immutable_testkit::serial::shared().await;
    let (dir, images, fleet) = store();
    let src = dir.path().join("build");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("app.sh"), "#!/bin/sh\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(src.join("app.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let request = ImportRequest::new("web", "v1", &src, ["./app.sh"])
        .env("APP_MODE", "blue green")
        .port_var("HTTP_PORT")
        .health_path("/healthz");
    let image = images.import(request.clone()).await.unwrap();
    assert_eq!(
        images.import(request).await.unwrap().id,
        image.id,
        "same content, same id"
    );
    let details = images.details(&web(), &image.id).await.unwrap();
    assert_eq!(details.health_path.as_deref(), Some("/healthz"));
    assert_eq!(details.command, ["./app.sh"]);
    let spec = FleetSpec::new(web(), DeploymentId::generate(), image.id.clone(), 1);
    let info = fleet.launch(&spec).await.unwrap();
    let pid = fleet_pid(dir.path(), info.id.as_str());
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let vars: Vec<String> = environ
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    let port = vars
        .iter()
        .find_map(|v| v.strip_prefix("PORT="))
        .unwrap()
        .to_owned();
    assert!(vars.contains(&"APP_MODE=blue green".to_owned()), "{vars:?}");
    assert!(vars.contains(&format!("HTTP_PORT={port}")), "{vars:?}");
    fleet.terminate(&web(), &info.id).await.unwrap();
}

/// The pid of a one-instance fleet, from its state file.
fn fleet_pid(dir: &Path, fleet: &str) -> u64 {
    let path = dir.join("root/fleets").join(fleet).join("fleet.json");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    state["instances"][0]["process"]["pid"].as_u64().unwrap()
}

#[tokio::test]
async fn an_instance_that_exits_at_once_is_reported_with_its_stderr() {
    let _machine = immutable_testkit::serial::shared().await;
    let (dir, images, fleet) = store();
    let image = crashing_image(dir.path(), &images).await;
    let spec = FleetSpec::new(web(), DeploymentId::generate(), image.id, 2);
    let r = fleet.launch(&spec).await;
    expect_invalid(r, "command", "exited at once");
    let again = fleet.launch(&spec).await.unwrap_err().to_string();
    assert!(again.contains("cannot open config.toml"), "{again}");
    assert!(entries(&dir.path().join("root/fleets")).is_empty());
    assert!(fleet.list(&web()).await.unwrap().is_empty());
    assert_eq!(fleet.kill_all(), 0, "no process is left");
}

#[tokio::test]
async fn no_free_port_is_named_and_starts_nothing() {
    let _machine = immutable_testkit::serial::shared().await;
    let (dir, images, fleet) = store();
    let src = dir.path().join("build");
    std::fs::create_dir_all(&src).unwrap();
    let image = images
        .import(ImportRequest::new(
            "web",
            "v1",
            &src,
            [crate::common::DEMO_APP],
        ))
        .await
        .unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let fleet = fleet.with_port_range(port..=port).unwrap();
    let spec = FleetSpec::new(web(), DeploymentId::generate(), image.id, 1);
    expect_invalid(fleet.launch(&spec).await, "port_range", "no free port");
    assert!(entries(&dir.path().join("root/fleets")).is_empty());
    assert_eq!(fleet.kill_all(), 0);
}

#[tokio::test]
async fn a_missing_admin_socket_is_named() {
    let _machine = immutable_testkit::serial::shared().await;
    let (dir, _, fleet) = store();
    let socket = dir.path().join("nowhere.sock");
    let state = dir.path().join("router");
    let r = HaproxyRouter::builder(&socket)
        .service("web")
        .state_dir(&state)
        .instances(fleet)
        .build()
        .await;
    expect_invalid(r, "admin_socket", "nowhere.sock does not exist");
    assert!(!state.exists(), "nothing is created");
}

#[tokio::test]
async fn a_socket_that_is_not_haproxy_is_refused() {
    let _machine = immutable_testkit::serial::shared().await;
    let (dir, _, fleet) = store();
    let socket = dir.path().join("other.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(b"220 smtp.example ESMTP ready\r\n").await;
        }
    });
    let state = dir.path().join("router");
    let r = HaproxyRouter::builder(&socket)
        .service("web")
        .state_dir(&state)
        .instances(fleet)
        .build()
        .await;
    expect_invalid(r, "admin_socket", "is not an HAProxy admin socket");
    assert!(!state.exists(), "nothing is created");
}

#[tokio::test]
async fn haproxy_that_cannot_start_is_a_typed_error() {
    let _machine = immutable_testkit::serial::shared().await;
    let missing = HaproxyOptions::new(["web"]).binary("/nonexistent/haproxy");
    match Haproxy::start(missing).await {
        Err(Error::Provider { message, .. }) => {
            assert!(message.contains("/nonexistent/haproxy"), "{message}");
            assert!(message.contains("apt-get install haproxy"), "{message}");
        }
        other => panic!("expected Error::Provider, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_ids_and_other_services_are_refused() {
    let _machine = immutable_testkit::serial::shared().await;
    let lab = Lab::start(&["web", "billing"]).await;
    let billing = ServiceName::new("billing").unwrap();
    let b1 = lab.import_demo("billing", "v1", false).await;
    lab.import_demo("web", "web-only", false).await;
    // Names are scoped to the service: web has no `v1`, billing's is not web's.
    match lab.images.resolve(&web(), &ImageRef::name("v1")).await {
        Err(Error::NotFound {
            kind: ResourceKind::Image,
            ..
        }) => {}
        other => panic!("web resolved billing's name: {other:?}"),
    }
    assert!(matches!(
        lab.images.retire(&web(), &b1.id).await,
        Err(Error::NotOwned { .. })
    ));
    let fleet = lab
        .fleet
        .launch(&FleetSpec::new(
            billing.clone(),
            DeploymentId::generate(),
            b1.id.clone(),
            1,
        ))
        .await
        .unwrap();
    assert!(matches!(
        lab.fleet.describe(&web(), &fleet.id).await,
        Err(Error::NotOwned { .. })
    ));
    // A live fleet keeps its image from retirement.
    match lab.images.retire(&billing, &b1.id).await {
        Err(Error::ImageInUse { image, users }) => {
            assert_eq!((image.as_str(), users), (b1.id.as_str(), 1))
        }
        other => panic!("retired an image in use: {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let info = lab.fleet.describe(&billing, &fleet.id).await.unwrap();
    let target = lab.router.attach(&info).await.unwrap();
    assert!(matches!(
        lab.router.health(&web(), &target.id).await,
        Err(Error::NotOwned { .. })
    ));
    lab.router.detach(&billing, &target.id).await.unwrap();
    lab.fleet.terminate(&billing, &fleet.id).await.unwrap();
    lab.images.retire(&billing, &b1.id).await.unwrap();
    assert!(matches!(
        lab.images
            .resolve(&billing, &ImageRef::id(b1.id.clone()))
            .await,
        Err(Error::NotFound { .. })
    ));
}
