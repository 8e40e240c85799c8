//! `immutable dashboard`, the real binary on a free loopback port over a FileStore whose
//! records an engine on the mock cloud writes in this process: every page renders, actions
//! need the token, an allowed Host and Origin, and write commands that say who gave them;
//! the read-only dashboard has no action endpoint; a non-loopback address needs a token
//! file; the live stream pushes when the record changes.

mod fallback;
mod harness;

use std::process::Command;
use std::time::{Duration, Instant};

use immutable_core::{Operator, Phase, ServiceName};
use reqwest::StatusCode;
use reqwest::header::HOST;

use crate::common::{BIN, REFUSED};
use harness::{Dashboard, TOKEN, World, bearer, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_with_its_stable_url() {
    let world = World::new().await;
    let dash = Dashboard::start(&world.store_arg(), &[]);
    let (waiting, done) = (world.waiting.to_string(), world.done.to_string());
    let pages = [
        ("/".to_owned(), "web"),
        ("/services/web".to_owned(), done.as_str()),
        (format!("/deployments/{waiting}"), "data-phase=\"rollout\""),
        (format!("/deployments/{done}"), "data-phase=\"done\""),
        ("/halts".to_owned(), "No halt stands"),
        (
            format!("/api/deployments/{waiting}"),
            "\"phase\":\"rollout\"",
        ),
        ("/api/services".to_owned(), waiting.as_str()),
        ("/api/services/web".to_owned(), done.as_str()),
        ("/assets/dashboard.js".to_owned(), "EventSource"),
        ("/assets/dashboard.css".to_owned(), "body"),
    ];
    for (path, expected) in &pages {
        let (status, body) = dash.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(body.contains(expected), "{path} lacks {expected}: {body}");
    }
    let (_, page) = dash.get(&format!("/deployments/{waiting}")).await;
    for id in [
        "id=\"timeline\"",
        "id=\"steps\"",
        "aria-current=\"step\"",
        "id=\"events\"",
    ] {
        assert!(page.contains(id), "the deployment page lacks {id}");
    }
    assert!(
        !page.contains("id=\"approve\""),
        "a read-only page shows no button"
    );
    // Bad input is refused before the store is read, unknown ids are not found; in words.
    for (path, status) in [
        ("/deployments/..%2Fetc", StatusCode::BAD_REQUEST),
        ("/deployments/01nosuchdeployment", StatusCode::NOT_FOUND),
        ("/services/Not_A_Name", StatusCode::BAD_REQUEST),
        ("/api/deployments/bad%20id", StatusCode::BAD_REQUEST),
        (
            &format!("/services/api?before={waiting}"),
            StatusCode::BAD_REQUEST,
        ),
        ("/no/such/page", StatusCode::NOT_FOUND),
    ] {
        let (got, body) = dash.get(path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(
            !body.contains("InvalidInput") && !body.contains("NotFound {"),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_without_the_token_or_from_elsewhere_is_refused_and_changes_nothing() {
    let world = World::new().await;
    let dash = Dashboard::start(
        &world.store_arg(),
        &["--actions", "--token-file", &world.token_file()],
    );
    assert_eq!(
        dash.printed_token, None,
        "a token from a file is not printed"
    );
    let approve = format!("/api/deployments/{}/approve", world.waiting);
    let body = r#"{"operator":"mallory"}"#;
    let good = bearer(TOKEN);
    let refusals: [(&[(&str, &str)], StatusCode); 5] = [
        (&[], StatusCode::UNAUTHORIZED),
        (
            &[("authorization", "Bearer wrong-token-0123456789")],
            StatusCode::UNAUTHORIZED,
        ),
        (
            &[("cookie", "token=test-token-0123456789abcdef")],
            StatusCode::UNAUTHORIZED,
        ),
        (
            &[("authorization", &good), ("origin", "http://evil.example")],
            StatusCode::FORBIDDEN,
        ),
        (
            &[("authorization", &good), ("host", "evil.example:80")],
            StatusCode::MISDIRECTED_REQUEST,
        ),
    ];
    for (headers, status) in refusals {
        let (got, text) = dash.post(&approve, headers, body).await;
        assert_eq!(got, status, "{headers:?}: {text}");
        assert!(text.starts_with("refused"), "{text}");
        let halt = r#"{"operator":"mallory","all":true,"reason":"x"}"#;
        let (got, _) = dash.post("/api/halts", headers, halt).await;
        assert_eq!(got, status);
    }
    // A foreign Host is refused on reads too (DNS rebinding).
    let res = reqwest::Client::new()
        .get(dash.url("/"))
        .header(HOST, "rebound.example:8480")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::MISDIRECTED_REQUEST);
    assert!(world.commands().await.is_empty(), "no command was written");
    assert_eq!(world.halts().await, 0, "no halt was set");
    // A bad operator name is refused too.
    let (got, _) = dash
        .post(
            &approve,
            &[("authorization", &good)],
            r#"{"operator":"a\nb"}"#,
        )
        .await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
    assert!(world.commands().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_with_the_token_is_journaled_with_the_operators_name() {
    let world = World::new().await;
    let dash = Dashboard::start(
        &world.store_arg(),
        &["--actions", "--token-file", &world.token_file()],
    );
    let (_, page) = dash.get(&format!("/deployments/{}", world.waiting)).await;
    for id in [
        "id=\"approve\"",
        "id=\"abort\"",
        "id=\"confirm\"",
        "id=\"token\"",
        "id=\"operator\"",
        "id=\"reason\"",
    ] {
        assert!(page.contains(id), "the page lacks {id}");
    }
    assert!(!page.contains(TOKEN), "the token is never in a page");
    assert!(
        !page.contains("id=\"rollback\""),
        "no rollback without a backend"
    );
    // Without backend options, rollback says how to get it.
    let (status, text) = dash
        .post(
            "/api/services/web/rollback",
            &[("authorization", &bearer(TOKEN))],
            r#"{"operator":"alice"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("backend options"), "{text}");
    // Halt every service, see it, lift it.
    let origin = dash.base.clone();
    let auth = bearer(TOKEN);
    let headers: &[(&str, &str)] = &[("authorization", &auth), ("origin", &origin)];
    let (status, text) = dash
        .post(
            "/api/halts",
            headers,
            r#"{"operator":"alice","all":true,"reason":"incident 42"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (_, halts) = dash.get("/halts").await;
    assert!(
        halts.contains("incident 42") && halts.contains("alice (dashboard)"),
        "{halts}"
    );
    let (status, _) = dash
        .post(
            "/api/halts/lift",
            headers,
            r#"{"operator":"alice","all":true}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(world.halts().await, 0);
    // Approve: the command says who gave it, and the runner finishes the deployment.
    let approve = format!("/api/deployments/{}/approve", world.waiting);
    let (status, text) = dash
        .post(&approve, headers, r#"{"operator":"alice"}"#)
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let commands = world.commands().await;
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0].by, "alice (dashboard)");
    let web = ServiceName::new("web").unwrap();
    wait_for(&world.store, &web, |r| r.phase == Phase::Done).await;
    // The deployment's events say who approved it; its page draws the timeline.
    let (_, page) = dash.get(&format!("/deployments/{}", world.waiting)).await;
    let events = &page[page.find("id=\"events\"").expect("events")..];
    assert!(events.contains("alice (dashboard)"), "{events}");
    let chart = &page[page.find("id=\"timeline\"").expect("timeline")..];
    assert!(
        chart.trim_start_matches(|c| c != '<').starts_with("<svg"),
        "{chart}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_only_dashboard_has_no_action_endpoint() {
    let world = World::new().await;
    let dash = Dashboard::start(&world.store_arg(), &["--token-file", &world.token_file()]);
    let auth = bearer(TOKEN);
    for path in [
        format!("/api/deployments/{}/approve", world.waiting),
        format!("/api/deployments/{}/abort", world.waiting),
        "/api/halts".to_owned(),
        "/api/halts/lift".to_owned(),
        "/api/services/web/rollback".to_owned(),
    ] {
        let (status, _) = dash
            .post(
                &path,
                &[("authorization", &auth)],
                r#"{"operator":"alice"}"#,
            )
            .await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED,
            "{path}: {status}"
        );
    }
    assert!(world.commands().await.is_empty());
    assert_eq!(world.halts().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_token_is_printed_once_with_the_url_and_works() {
    let world = World::new().await;
    let dash = Dashboard::start(&world.store_arg(), &["--actions"]);
    let token = dash
        .printed_token
        .clone()
        .expect("the token is printed at start");
    assert_eq!(token.len(), 64);
    let approve = format!("/api/deployments/{}/promote", world.waiting);
    let (status, _) = dash
        .post(
            &approve,
            &[("authorization", &bearer(TOKEN))],
            r#"{"operator":"bob"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, text) = dash
        .post(
            &approve,
            &[("authorization", &bearer(&token))],
            r#"{"operator":"bob"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(world.commands().await[0].by, "bob (dashboard)");
}

#[test]
fn a_non_loopback_address_without_a_token_file_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let out = Command::new(BIN)
        .args(["--store", &format!("file:{}", journal.display())])
        .args(["dashboard", "--listen", "0.0.0.0:0", "--actions"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(REFUSED), "{stderr}");
    assert!(stderr.contains("--token-file"), "{stderr}");
    assert!(!journal.exists(), "nothing was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_sends_an_update_when_the_record_changes() {
    let world = World::new().await;
    let dash = Dashboard::start(
        &world.store_arg(),
        &["--actions", "--token-file", &world.token_file()],
    );
    let mut stream = reqwest::get(dash.url(&format!("/events/deployments/{}", world.waiting)))
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let mut seen = String::new();
    let mut read_until = async |needle: &str, seen: &mut String| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !seen.contains(needle) {
            assert!(Instant::now() < deadline, "no {needle} in {seen}");
            let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
                .await
                .unwrap()
                .unwrap()
                .expect("the stream goes on");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    read_until("event: update", &mut seen).await;
    assert!(
        seen.contains(r#"\"phase\":\"rollout\""#) || seen.contains(r#""phase":"rollout""#),
        "{seen}"
    );
    read_until("event: heartbeat", &mut seen).await;
    // The runner applies an approval: the record changes, and the stream says so.
    Operator::new(world.store.clone())
        .command(&world.waiting, immutable_core::Command::Approve)
        .await
        .unwrap();
    seen.clear();
    read_until(r#""phase":"done""#, &mut seen).await;
    assert!(seen.contains("event: update"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_dashboard_while_a_page_streams() {
    let world = World::new().await;
    let mut dash = Dashboard::start(&world.store_arg(), &[]);
    let mut stream = reqwest::get(dash.url(&format!("/events/deployments/{}", world.waiting)))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
        .await
        .unwrap()
        .unwrap();
    assert!(first.is_some(), "the stream is open");
    dash.terminate();
    // An open stream never ends by itself: the dashboard must not wait for it.
    let status = dash
        .exited_within(Duration::from_secs(30))
        .expect("the dashboard exits after SIGTERM with a page open");
    assert!(status.success(), "{status}");
}
