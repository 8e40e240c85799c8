//! A Docker host over TCP with TLS: a private daemon on 127.0.0.1 that verifies its clients
//! against a CA of the test's own. With the client's files, a fleet launches and answers on
//! it; without TLS, or with another CA, no connection is made, and the error names the URL.

use std::time::Duration;

use immutable_core::{DeploymentId, Error, Fleet, FleetSpec, InstanceState, ServiceName};
use immutable_docker::{DockerHost, DockerHosts, TlsFiles};
use immutable_testkit::docker::PrivateDaemon;

use crate::common::{Lab, system_host};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_over_tls_runs_a_fleet_and_refuses_clients_without_the_right_files() {
    let _machine = immutable_testkit::serial::shared().await;
    let daemon = PrivateDaemon::builder().tls().start().await;
    let url = daemon.tls_url().unwrap().to_owned();
    let files = TlsFiles::in_dir(daemon.tls().unwrap().client_dir());
    let host = DockerHost::connect_tls("b", &url, &files)
        .await
        .unwrap_or_else(|e| panic!("connecting over TLS: {e}"));

    // Host b first, so instance 0 runs there; the image, built on the system daemon (a), is
    // copied to b over TLS by the import.
    let hosts = DockerHosts::new([host, system_host("a").await]).unwrap();
    let lab = Lab::on(hosts, &["web"]).await;
    let image = lab.import_demo("web", "web-v1", "v1", false).await;
    let web = ServiceName::new(lab.svc("web")).unwrap();
    let spec = FleetSpec::new(web.clone(), DeploymentId::generate(), image.id.clone(), 1);
    let launched = lab.fleet.launch(&spec).await.unwrap();
    let mut running = false;
    for _ in 0..100 {
        let info = lab.fleet.describe(&web, &launched.id).await.unwrap();
        if info.count(InstanceState::Running) == 1 {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(running, "the container over TLS never ran");
    let on_b = daemon
        .client()
        .inspect_container(launched.instances[0].id.as_str(), None)
        .await;
    assert!(on_b.is_ok(), "instance 0 is not on the TLS host: {on_b:?}");
    let address = lab.fleet.addresses(&web, &launched.id).await.unwrap()[0].1;
    let answered = immutable_testkit::local::until_answered(&format!("http://{address}/")).await;
    assert_eq!(answered, image.id.as_str());
    lab.fleet.terminate(&web, &launched.id).await.unwrap();

    // Plain HTTP to the TLS port: no daemon answers.
    match DockerHost::connect("c", &url).await {
        Err(Error::Provider { message, .. }) => assert!(message.contains(&url), "{message}"),
        other => panic!("plain HTTP to a TLS daemon: {other:?}"),
    }
    // Files of another CA: the handshake fails.
    let other = PrivateDaemon::builder().tls().start().await;
    let foreign = TlsFiles::in_dir(other.tls().unwrap().client_dir());
    match DockerHost::connect_tls("d", &url, &foreign).await {
        Err(Error::Provider { message, .. }) => assert!(message.contains(&url), "{message}"),
        other => panic!("another CA's files: {other:?}"),
    }
    // Missing files are bad input, named.
    match DockerHost::connect_tls("e", &url, &TlsFiles::in_dir("/nonexistent")).await {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "tls"),
        other => panic!("missing files: {other:?}"),
    }
}
