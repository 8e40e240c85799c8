//! Behind a proxy that buffers responses, a page's event stream opens and stays silent: the
//! page notices within two poll intervals, polls the JSON twin instead, and still follows the
//! deployment without a reload. In a real browser (headless Chromium), through a real
//! (if small) buffering proxy on loopback, which the dashboard accepts by `--allowed-host`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use immutable_core::{Command, Operator};
use immutable_testkit::browser::Browser;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::harness::{Dashboard, World};

/// How long the page may take to show what the journal says (its poll is 200 ms).
const LIVE: Duration = Duration::from_secs(15);

/// Relays every connection from `listener` to `upstream`, but from the moment a request on
/// it asks for `/events/`, holds back what comes back, as a proxy that buffers whole
/// responses does with a stream that never ends.
async fn buffering_proxy(listener: TcpListener, upstream: SocketAddr) {
    while let Ok((client, _)) = listener.accept().await {
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let (mut from_client, mut to_server) = (client, server);
            let (mut client_read, mut client_write) = from_client.split();
            let (mut server_read, mut server_write) = to_server.split();
            let hold = Arc::new(AtomicBool::new(false));
            let requests = async {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = client_read.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    if buf[..n].starts_with(b"GET /events/") {
                        hold.store(true, Ordering::SeqCst);
                    }
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            };
            let answers = async {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = server_read.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    if hold.load(Ordering::SeqCst) {
                        continue;
                    }
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            };
            tokio::select! {
                () = requests => {}
                () = answers => {}
            }
        });
    }
}

async fn page_attribute(browser: &Browser, script: &str) -> Value {
    browser.client.execute(script, vec![]).await.unwrap()
}

/// Waits until `script` returns `want` on the page as it is.
async fn wait_until(browser: &Browser, script: &str, want: &str) {
    let deadline = Instant::now() + LIVE;
    loop {
        let got = page_attribute(browser, script).await;
        if got == Value::String(want.to_owned()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the page still says {got} after {LIVE:?}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_buffering_proxy_the_page_polls_and_still_follows_the_deployment() {
    let _machine = immutable_testkit::serial::shared().await;
    let browser = Browser::start()
        .await
        .unwrap_or_else(|e| panic!("the browser tests need a browser: {e}"));
    let world = World::new().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = listener.local_addr().unwrap();
    let dash = Dashboard::start(&world.store_arg(), &["--allowed-host", &front.to_string()]);
    let upstream: SocketAddr = dash.base.trim_start_matches("http://").parse().unwrap();
    tokio::spawn(buffering_proxy(listener, upstream));

    let page = format!("http://{front}/deployments/{}", world.waiting);
    browser.client.goto(&page).await.unwrap();
    browser
        .client
        .execute("window.notReloaded = true; return null;", vec![])
        .await
        .unwrap();
    let phase = "return document.getElementById('summary').getAttribute('data-phase');";
    let live = "return document.body.getAttribute('data-live');";
    wait_until(&browser, phase, "rollout").await;
    wait_until(&browser, live, "polling").await;

    Operator::new(world.store.clone())
        .identity("carol")
        .command(&world.waiting, Command::Approve)
        .await
        .unwrap();
    wait_until(&browser, phase, "done").await;
    assert_eq!(
        page_attribute(&browser, live).await,
        Value::String("polling".into()),
        "no stream message got through the proxy"
    );
    assert_eq!(
        page_attribute(&browser, "return window.notReloaded === true;").await,
        Value::Bool(true),
        "the page followed without a reload"
    );
    browser.close().await.unwrap();
}
