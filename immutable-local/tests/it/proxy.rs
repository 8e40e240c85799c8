//! The managed proxy: an HAProxy written, started in the background, tracked by pid and
//! stopped by the SDK; idempotent starts; clear errors before anything starts.

use std::net::TcpListener;

use immutable_core::{Error, ServiceName};
use immutable_local::{HaproxyRouter, ManagedProxy, ProxyRoute};
use immutable_testkit::local::{free_port, process_alive};

fn route(service: &str, port: u16) -> ProxyRoute {
    ProxyRoute::new(ServiceName::new(service).unwrap(), port)
}

fn alive(pid: u32) -> bool {
    process_alive(u64::from(pid))
}

#[tokio::test]
async fn a_managed_proxy_starts_once_routes_its_services_and_stops_without_a_trace() {
    let _machine = immutable_testkit::serial::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = ManagedProxy::new(dir.path().join("proxy"));
    assert_eq!(proxy.status().unwrap(), None);
    let (live, preview) = (free_port(), free_port());
    let routes = [route("web", live).preview(preview).health_path("/healthz")];
    let first = proxy
        .start(&routes)
        .await
        .expect("HAProxy must be installed");
    assert!(first.started);
    assert!(alive(first.pid));
    // Its backends are there for a router, preview included.
    let router = HaproxyRouter::builder(proxy.admin_socket())
        .service("web")
        .state_dir(dir.path().join("router"))
        .instances(
            immutable_local::ProcessFleet::open(
                &immutable_local::LocalImageStore::open(dir.path().join("root")).unwrap(),
            )
            .unwrap(),
        )
        .build()
        .await
        .unwrap();
    drop(router);
    let config = std::fs::read_to_string(&first.config).unwrap();
    assert!(
        config.contains(&format!("bind 127.0.0.1:{live}")),
        "{config}"
    );
    assert!(config.contains("backend web:preview"), "{config}");
    assert!(config.contains("option httpchk GET /healthz"), "{config}");
    // Started twice: the same process.
    let again = proxy.start(&routes).await.unwrap();
    assert!(!again.started);
    assert_eq!(again.pid, first.pid);
    assert_eq!(proxy.status().unwrap().map(|s| s.pid), Some(first.pid));
    // Other routes while it runs: refused, and it keeps running as it was.
    match proxy.start(&[route("api", free_port())]).await {
        Err(Error::Conflict { message, .. }) => {
            assert!(message.contains("proxy stop"), "{message}")
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(alive(first.pid));
    assert_eq!(proxy.stop().await.unwrap(), Some(first.pid));
    assert!(!alive(first.pid), "HAProxy {} outlived stop", first.pid);
    assert!(!proxy.admin_socket().exists());
    assert_eq!(proxy.status().unwrap(), None);
    assert_eq!(proxy.stop().await.unwrap(), None, "stop twice is a no-op");
}

#[tokio::test]
async fn bad_routes_a_busy_port_and_a_missing_haproxy_are_refused_before_anything_starts() {
    let _machine = immutable_testkit::serial::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = ManagedProxy::new(dir.path().join("proxy"));
    let port = free_port();
    for (routes, says) in [
        (vec![], "at least one service"),
        (vec![route("web", port), route("api", port)], "given to"),
        (vec![route("web", 0)], "port 0"),
        (
            vec![route("web", port).health_path("health")],
            "must start with `/`",
        ),
    ] {
        match proxy.start(&routes).await {
            Err(Error::InvalidInput { reason, .. }) => assert!(reason.contains(says), "{reason}"),
            other => panic!("expected InvalidInput saying {says}, got {other:?}"),
        }
    }
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = busy.local_addr().unwrap().port();
    match proxy.start(&[route("web", taken)]).await {
        Err(Error::InvalidInput { reason, .. }) => {
            assert!(reason.contains(&format!("port {taken}")), "{reason}")
        }
        other => panic!("expected InvalidInput on the busy port, got {other:?}"),
    }
    let missing = ManagedProxy::new(dir.path().join("proxy")).binary(dir.path().join("no-haproxy"));
    match missing.start(&[route("web", port)]).await {
        Err(e @ Error::Provider { .. }) => {
            let text = e.to_string();
            assert!(text.contains("apt-get install haproxy"), "{text}");
            assert!(text.contains("no-haproxy"), "{text}");
        }
        other => panic!("expected a Provider error naming the package, got {other:?}"),
    }
    assert!(
        !dir.path().join("proxy/proxy.json").exists(),
        "nothing recorded"
    );
    assert!(
        !dir.path().join("proxy/haproxy.cfg").exists(),
        "nothing written"
    );
}

#[tokio::test]
async fn an_haproxy_started_but_never_recorded_is_stopped_by_the_next_start_or_stop() {
    let _machine = immutable_testkit::serial::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = ManagedProxy::new(dir.path().join("proxy"));
    let routes = [route("web", free_port())];
    let first = proxy
        .start(&routes)
        .await
        .expect("HAProxy must be installed");
    // As if the starter died between starting HAProxy and recording it.
    std::fs::remove_file(dir.path().join("proxy/proxy.json")).unwrap();
    assert_eq!(proxy.status().unwrap(), None);
    let second = proxy.start(&routes).await.unwrap();
    assert!(second.started);
    assert_ne!(second.pid, first.pid);
    assert!(
        !alive(first.pid),
        "the unrecorded HAProxy {} still runs",
        first.pid
    );
    std::fs::remove_file(dir.path().join("proxy/proxy.json")).unwrap();
    assert_eq!(proxy.stop().await.unwrap(), None, "nothing was recorded");
    assert!(
        !alive(second.pid),
        "stop leaves the unrecorded HAProxy {} running",
        second.pid
    );
}
