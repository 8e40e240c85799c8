//! Notifications from the command line, on the local backend with a real HAProxy: a service
//! file's `[[notify]]` tables tell a real HTTP receiver on loopback about a deploy, `status`
//! shows a notifier that could not be reached (without its secret address), `notify test`
//! says how each notifier answered, and bad tables are refused naming the field.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;

use crate::common::lab::{Lab, MINUTE};
use crate::common::{Cli, REFUSED, SUCCEEDED, deployment_id};

/// Receives webhooks on loopback and keeps their JSON; answers `status` to each.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Value>>>,
}

async fn keep(
    State((status, got)): State<(StatusCode, Arc<Mutex<Vec<Value>>>)>,
    body: Bytes,
) -> StatusCode {
    got.lock()
        .unwrap()
        .push(serde_json::from_slice(&body).expect("a JSON notification"));
    status
}

async fn receiver(status: StatusCode) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/hooks/{secret}", post(keep))
        .with_state((status, Arc::clone(&got)));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver {
        url: format!("http://{addr}/hooks/T0-s3cr3t"),
        got,
    }
}

/// A loopback address nothing listens on.
fn closed_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/hooks/T1-s3cr3t")
}

/// The lab's service file with `tables` appended, and the CLI on it for `web`.
fn with_tables(lab: &Lab, tables: &str) -> Cli {
    let file = lab.dir.path().join("notify.toml");
    std::fs::write(&file, format!("{}{tables}", lab.settings)).unwrap();
    Cli::new(["--service-file", file.to_str().unwrap(), "--service", "web"])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_tells_each_notifier_what_it_wants_and_status_shows_the_one_that_failed() {
    let lab = Lab::start().await;
    let ops = receiver(StatusCode::NO_CONTENT).await;
    let cli = with_tables(
        &lab,
        "[[notify]]\nname = \"ops\"\nkind = \"webhook\"\nurl_env = \"OPS_HOOK\"\n\
         [[notify]]\nname = \"pager\"\nkind = \"webhook\"\nurl_env = \"PAGER_HOOK\"\n\
         on = [\"succeeded\"]\ntimeout = \"1s\"\n",
    )
    .env("OPS_HOOK", &ops.url)
    .env("PAGER_HOOK", &closed_url());

    let deploy = cli.run(
        &[
            "deploy",
            "--image",
            "web-v2",
            "--capacity",
            "2",
            "--bake-time",
            "0s",
        ],
        MINUTE,
    );
    assert_eq!(
        deploy.code, SUCCEEDED,
        "a notifier that cannot be reached fails nothing: {deploy:?}"
    );
    let id = deployment_id(
        deploy
            .stdout
            .lines()
            .find(|l| l.contains("deployment "))
            .unwrap(),
    );
    let got = ops.got.lock().unwrap().clone();
    let events: Vec<&str> = got.iter().map(|m| m["event"].as_str().unwrap()).collect();
    assert_eq!(events.first(), Some(&"started"), "{events:?}");
    assert_eq!(events.last(), Some(&"succeeded"), "{events:?}");
    assert!(
        events[1..events.len() - 1]
            .iter()
            .all(|e| *e == "step_passed"),
        "{events:?}"
    );
    assert!(
        got.iter()
            .all(|m| m["deployment"] == id.as_str() && m["service"] == "web")
    );

    let status = cli.run(&["status", &id], MINUTE);
    assert_eq!(status.code, SUCCEEDED, "{status:?}");
    let text = &status.stdout;
    assert!(
        text.contains(&format!(
            "notifications: {} delivered, 1 failed, 0 pending",
            events.len()
        )),
        "{text}"
    );
    assert!(
        text.contains("notification `pager` of \"succeeded\" failed"),
        "{text}"
    );
    assert!(text.contains("could not reach http://127.0.0.1:"), "{text}");
    assert!(
        !text.contains("s3cr3t")
            && !deploy.stdout.contains("s3cr3t")
            && !deploy.stderr.contains("s3cr3t"),
        "the address's path is never shown"
    );

    let json = cli.with(["--output", "json"]).run(&["status", &id], MINUTE);
    let doc = json.json();
    let failed: Vec<&Value> = doc["status"]["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["deliveries"]["pager"]["state"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{doc}");
}

#[tokio::test(flavor = "multi_thread")]
async fn notify_test_says_how_each_notifier_answered() {
    let lab = Lab::start().await;
    let ok = receiver(StatusCode::OK).await;
    let gone = receiver(StatusCode::NOT_FOUND).await;
    let cli = with_tables(
        &lab,
        "[[notify]]\nname = \"ops\"\nkind = \"webhook\"\nurl_env = \"OPS_HOOK\"\n\
         [[notify]]\nname = \"chat\"\nkind = \"slack\"\nurl_env = \"CHAT_HOOK\"\n\
         dashboard_url = \"http://127.0.0.1:8080\"\n",
    )
    .env("OPS_HOOK", &ok.url)
    .env("CHAT_HOOK", &gone.url);
    let run = cli.run(&["notify", "test"], MINUTE);
    assert_eq!(run.code, 1, "one notifier could not be reached: {run:?}");
    assert!(run.stdout.contains("ops (webhook): delivered"), "{run:?}");
    assert!(
        run.stdout
            .contains("chat (slack): not delivered after 1 attempt")
            && run.stdout.contains("404 Not Found"),
        "{run:?}"
    );
    assert!(!run.stdout.contains("s3cr3t"), "{run:?}");
    let test = ok.got.lock().unwrap()[0].clone();
    assert_eq!(test["event"], "test");
    assert_eq!(test["service"], "web");
    let slack = gone.got.lock().unwrap()[0].clone();
    assert!(
        slack["blocks"].is_array() && slack["text"].is_string(),
        "{slack}"
    );

    let json = cli
        .with(["--output", "json"])
        .run(&["notify", "test"], MINUTE);
    let doc = json.json();
    assert_eq!(doc["type"], "notify_test");
    assert_eq!(doc["notifiers"][0]["delivered"], true);
    assert_eq!(doc["notifiers"][1]["delivered"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_notify_tables_are_refused_naming_the_field() {
    let lab = Lab::start().await;
    let cases = [
        (
            "[[notify]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/x\"\non = [\"rollback\"]\n",
            "`on`: `rollback` is not a trigger",
        ),
        (
            "[[notify]]\nname = \"ops\"\nkind = \"slack\"\n",
            "`url_env`",
        ),
        (
            "[[notify]]\nname = \"ops\"\nkind = \"sns\"\nurl = \"http://x\"\n",
            "`url`: an sns notifier takes `topic_arn`",
        ),
        (
            "[[notify]]\nname = \"ops\"\nkind = \"webhook\"\nurl_env = \"IMMUTABLE_TEST_UNSET_HOOK\"\n",
            "IMMUTABLE_TEST_UNSET_HOOK is not set",
        ),
        (
            "[[notify]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"ftp://127.0.0.1/s3cr3t\"\n",
            "`url`: must be an http or https address",
        ),
    ];
    for (table, says) in cases {
        let run = with_tables(&lab, table).run(&["notify", "test"], MINUTE);
        assert_eq!(run.code, REFUSED, "{table}: {run:?}");
        assert!(run.stderr.contains(says), "{table}: {run:?}");
        assert!(!run.stderr.contains("s3cr3t"), "{run:?}");
    }
}
