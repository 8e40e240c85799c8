//! The built-in HTTP check against a local, scripted test server (real time, short waits).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use immutable_core::{
    Check, CheckContext, CheckOutcome, DeploymentId, HttpCheck, ServiceName, TargetId,
};
use immutable_mock::MockCloud;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone)]
enum Reply {
    Answer {
        status: u16,
        body: &'static str,
        version: &'static str,
    },
    Hang,
}

fn ok() -> Reply {
    Reply::Answer {
        status: 200,
        body: "{\"status\":\"ok\"}",
        version: "v2",
    }
}

fn status(status: u16) -> Reply {
    Reply::Answer {
        status,
        body: "nope",
        version: "v2",
    }
}

/// Serves the scripted replies in order (the last one repeats); counts requests.
async fn server(replies: Vec<Reply>) -> (String, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    let queue = Arc::new(Mutex::new(VecDeque::from(replies)));
    let count = Arc::new(Mutex::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let reply = {
                let mut q = queue.lock().unwrap();
                if q.len() > 1 {
                    q.pop_front().unwrap()
                } else {
                    q.front().cloned().unwrap()
                }
            };
            *seen.lock().unwrap() += 1;
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    req.extend_from_slice(&buf[..n]);
                }
                match reply {
                    Reply::Hang => tokio::time::sleep(Duration::from_secs(30)).await,
                    Reply::Answer {
                        status,
                        body,
                        version,
                    } => {
                        let resp = format!(
                            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nx-version: {version}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = sock.write_all(resp.as_bytes()).await;
                    }
                }
            });
        }
    });
    (url, count)
}

async fn run(check: &HttpCheck) -> CheckOutcome {
    let cloud = MockCloud::new();
    let deployment = DeploymentId::generate();
    let service = ServiceName::new("web").unwrap();
    let target = TargetId::new("tg-1");
    let ctx = CheckContext::new(&deployment, &service, &target, 0, &cloud);
    check.run(&ctx).await
}

/// A check polling every 10 ms, giving each request 5 s: far more than a loopback answer
/// needs even on a loaded machine, so only a hanging endpoint times out.
fn check(url: &str) -> HttpCheck {
    HttpCheck::new(url)
        .unwrap()
        .interval(Duration::from_millis(10))
        .request_timeout(Duration::from_secs(5))
}

fn reason(o: CheckOutcome) -> String {
    match o {
        CheckOutcome::Fail { reason } => reason,
        CheckOutcome::Pass => panic!("expected a failure"),
    }
}

#[tokio::test]
async fn passes_after_enough_consecutive_good_answers() {
    let (url, count) = server(vec![ok()]).await;
    let c = check(&url)
        .consecutive_passes(3)
        .body_contains("\"status\":\"ok\"")
        .header("X-Version", "v2");
    assert_eq!(run(&c).await, CheckOutcome::Pass);
    assert_eq!(*count.lock().unwrap(), 3);
}

#[tokio::test]
async fn a_wrong_status_fails() {
    let (url, _) = server(vec![status(503)]).await;
    let r = reason(run(&check(&url).max_requests(2)).await);
    assert!(r.contains("status 503, expected 200"), "{r}");
}

#[tokio::test]
async fn a_hanging_endpoint_times_out() {
    let (url, count) = server(vec![Reply::Hang]).await;
    let hurried = check(&url).request_timeout(Duration::from_millis(300));
    let r = reason(run(&hurried.max_requests(2)).await);
    assert!(r.contains("no answer within 300ms"), "{r}");
    assert_eq!(*count.lock().unwrap(), 2);
}

#[tokio::test]
async fn a_flapping_endpoint_fails_rather_than_passing_on_luck() {
    let replies = (0..10)
        .map(|i| if i % 2 == 0 { ok() } else { status(500) })
        .collect();
    let (url, count) = server(replies).await;
    let r = reason(run(&check(&url).consecutive_passes(2).max_requests(6)).await);
    assert!(
        r.contains("did not pass 2 times in a row in 6 requests"),
        "{r}"
    );
    assert!(r.contains("status 500"), "{r}");
    assert_eq!(*count.lock().unwrap(), 6);
    // A blip followed by a steady run passes.
    let (url, _) = server(vec![status(500), ok(), ok()]).await;
    assert_eq!(
        run(&check(&url).consecutive_passes(2)).await,
        CheckOutcome::Pass
    );
}

#[tokio::test]
async fn body_and_header_mismatches_fail_with_what_was_seen() {
    let (url, _) = server(vec![ok()]).await;
    let r = reason(run(&check(&url).body_contains("ready").max_requests(1)).await);
    assert!(r.contains("body does not contain \"ready\""), "{r}");
    let r = reason(run(&check(&url).header("x-version", "v3").max_requests(1)).await);
    assert!(
        r.contains("header x-version is Some(\"v2\"), expected \"v3\""),
        "{r}"
    );
}

#[test]
fn bad_urls_name_the_field() {
    for bad in ["not a url", "ftp://x/y"] {
        match HttpCheck::new(bad) {
            Err(immutable_core::Error::InvalidInput { field, .. }) => assert_eq!(field, "url"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}
