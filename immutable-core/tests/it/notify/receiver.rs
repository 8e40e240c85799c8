//! A real HTTP receiver on loopback for webhook notifications, scripted to accept, to fail
//! the first attempts of each message, or never to answer.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;

/// How the receiver answers.
#[derive(Debug, Clone, Copy)]
pub(super) enum Answer {
    /// 204 to everything.
    Accept,
    /// 500 to the first `n` attempts of each message (by dedupe key), then 204.
    FailFirst(usize),
    /// Reads the request and never answers.
    Never,
}

#[derive(Debug, Default)]
struct Seen {
    /// Messages accepted, in order.
    accepted: Vec<Value>,
    /// Attempts per dedupe key.
    attempts: BTreeMap<String, usize>,
}

type Shared = (Answer, Arc<Mutex<Seen>>);

pub(super) struct Receiver {
    pub(super) addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State((answer, seen)): State<Shared>, body: Bytes) -> StatusCode {
    let message: Value = serde_json::from_slice(&body).expect("the notification is JSON");
    let key = message["dedupe_key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let attempt = {
        let mut seen = seen.lock().unwrap();
        let n = seen.attempts.entry(key).or_default();
        *n += 1;
        *n
    };
    match answer {
        Answer::Never => std::future::pending().await,
        Answer::FailFirst(n) if attempt <= n => StatusCode::INTERNAL_SERVER_ERROR,
        _ => {
            seen.lock().unwrap().accepted.push(message);
            StatusCode::NO_CONTENT
        }
    }
}

impl Receiver {
    pub(super) async fn start(answer: Answer) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the receiver");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = Router::new()
            .route("/hook/{secret}", post(receive))
            .with_state((answer, Arc::clone(&seen)));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, seen, task }
    }

    /// The address to configure, with a path that stands for a secret.
    pub(super) fn url(&self) -> String {
        format!("http://{}/hook/s3cr3t-t0ken", self.addr)
    }

    /// Messages accepted, in order.
    pub(super) fn accepted(&self) -> Vec<Value> {
        self.seen.lock().unwrap().accepted.clone()
    }

    /// The `event` of each message accepted, in order.
    pub(super) fn events(&self) -> Vec<String> {
        self.accepted()
            .iter()
            .map(|m| m["event"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Attempts per dedupe key.
    pub(super) fn attempts(&self) -> BTreeMap<String, usize> {
        self.seen.lock().unwrap().attempts.clone()
    }
}
