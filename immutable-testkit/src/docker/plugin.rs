//! An authorization plugin served by the test: [`RefusingPlugin`].
//!
//! Docker finds a plugin that is not managed by `docker plugin` by its socket,
//! `/run/docker/plugins/<name>.sock`, whatever the daemon's exec root; it asks
//! `POST /Plugin.Activate` once, then `POST /AuthZPlugin.AuthZReq` before each API request
//! and `POST /AuthZPlugin.AuthZRes` after it, each with a JSON body, and reads JSON back.

use std::convert::Infallible;
use std::os::unix::net::UnixListener as StdListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::UnixListener;
use tokio::sync::oneshot;

/// Where the daemon looks for the sockets of plugins it does not manage.
pub const PLUGIN_DIR: &str = "/run/docker/plugins";

/// What the plugin answers when it refuses a container start; the daemon's error reads
/// `authorization denied by plugin <name>: <REFUSAL>`.
pub const REFUSAL: &str = "immutable-testkit's RefusingPlugin refuses to start containers";

/// A Docker authorization plugin that allows every request until the test calls
/// [`refuse_container_starts(true)`](Self::refuse_container_starts); from then on, until it
/// is called with `false`, it refuses `POST /containers/{id}/start` (any API version) with
/// [`REFUSAL`], and counts the refusals.
///
/// It serves on a thread of its own (so it answers the daemon whatever the test's runtime
/// does) at `/run/docker/plugins/<unique name>.sock`. Clones share one plugin; when the last
/// is dropped (a [`PrivateDaemon`](super::PrivateDaemon) started with it holds one), the
/// server stops and the socket is removed.
///
/// # Caveats
/// The daemon must be started after the plugin (`--authorization-plugin` is checked at
/// start), and only the daemon started with it consults it: the system daemon does not.
#[derive(Debug, Clone)]
pub struct RefusingPlugin {
    shared: Arc<Shared>,
    server: Arc<Server>,
}

/// What the server thread and the test share.
#[derive(Debug)]
struct Shared {
    name: String,
    refuse: AtomicBool,
    refusals: AtomicUsize,
}

/// The server thread; dropping it stops the thread and removes the socket.
#[derive(Debug)]
struct Server {
    socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RefusingPlugin {
    /// Listens on a new socket in [`PLUGIN_DIR`] and serves it until dropped.
    ///
    /// # Panics
    /// When the socket cannot be made (the directory is not writable: tests run as root).
    pub fn start() -> RefusingPlugin {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "immutable-authz-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        std::fs::create_dir_all(PLUGIN_DIR)
            .unwrap_or_else(|e| panic!("cannot create {PLUGIN_DIR} for a plugin socket: {e}"));
        let socket = Path::new(PLUGIN_DIR).join(format!("{name}.sock"));
        let _ = std::fs::remove_file(&socket);
        let listener = StdListener::bind(&socket)
            .unwrap_or_else(|e| panic!("cannot listen on {}: {e}", socket.display()));
        listener
            .set_nonblocking(true)
            .expect("a non-blocking plugin socket");
        let shared = Arc::new(Shared {
            name,
            refuse: AtomicBool::new(false),
            refusals: AtomicUsize::new(0),
        });
        let (stop, stopped) = oneshot::channel();
        let serving = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(shared.name.clone())
            .spawn(move || serve(listener, serving, stopped))
            .expect("a thread for the plugin");
        RefusingPlugin {
            shared,
            server: Arc::new(Server {
                socket,
                stop: Some(stop),
                thread: Some(thread),
            }),
        }
    }

    /// The plugin's name, as `--authorization-plugin` takes it.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The socket the daemon asks it on.
    pub fn socket(&self) -> &Path {
        &self.server.socket
    }

    /// Refuses container starts from now on (`true`), or allows them again (`false`).
    pub fn refuse_container_starts(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::SeqCst);
    }

    /// How many container starts it has refused.
    pub fn refusals(&self) -> usize {
        self.shared.refusals.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// The server thread: answers each connection until `stopped`.
fn serve(listener: StdListener, shared: Arc<Shared>, mut stopped: oneshot::Receiver<()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a runtime for the plugin");
    runtime.block_on(async move {
        let listener = UnixListener::from_std(listener).expect("a tokio plugin socket");
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let shared = Arc::clone(&shared);
                    let service = service_fn(move |req| answer(Arc::clone(&shared), req));
                    tokio::spawn(async move {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                _ = &mut stopped => break,
            }
        }
    });
}

async fn answer(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    let request: Value = body
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let (status, reply) = match path.as_str() {
        "/Plugin.Activate" => (StatusCode::OK, json!({ "Implements": ["authz"] })),
        "/AuthZPlugin.AuthZReq" => (StatusCode::OK, shared.decide(&request)),
        "/AuthZPlugin.AuthZRes" => (StatusCode::OK, json!({ "Allow": true })),
        other => (
            StatusCode::NOT_FOUND,
            json!({ "Err": format!("{other} is not an endpoint of an authorization plugin") }),
        ),
    };
    let response = Response::builder()
        .status(status)
        .header("Content-Type", "application/vnd.docker.plugins.v1+json")
        .body(Full::new(Bytes::from(reply.to_string())))
        .unwrap_or_default();
    Ok(response)
}

impl Shared {
    /// The answer to an `AuthZReq`: a refusal for a container start while refusing.
    fn decide(&self, request: &Value) -> Value {
        let method = request["RequestMethod"].as_str().unwrap_or_default();
        let uri = request["RequestUri"].as_str().unwrap_or_default();
        if self.refuse.load(Ordering::SeqCst) && is_container_start(method, uri) {
            self.refusals.fetch_add(1, Ordering::SeqCst);
            json!({ "Allow": false, "Msg": REFUSAL })
        } else {
            json!({ "Allow": true })
        }
    }
}

/// Whether `method uri` starts a container: `POST /v1.41/containers/{id}/start?…`, with or
/// without the version.
fn is_container_start(method: &str, uri: &str) -> bool {
    let path = uri.split('?').next().unwrap_or_default();
    let mut parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let versioned = parts.first().is_some_and(|p| {
        p.strip_prefix('v')
            .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
    });
    if versioned {
        parts.remove(0);
    }
    method == "POST" && matches!(parts.as_slice(), ["containers", id, "start"] if !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::is_container_start;

    #[test]
    fn container_starts_are_recognised_with_or_without_a_version() {
        assert!(is_container_start("POST", "/v1.41/containers/abc123/start"));
        assert!(is_container_start(
            "POST",
            "/containers/web-1/start?detachKeys=ctrl-p"
        ));
        assert!(!is_container_start("GET", "/v1.41/containers/abc123/start"));
        assert!(!is_container_start("POST", "/v1.41/containers/abc123/stop"));
        assert!(!is_container_start("POST", "/v1.41/containers/create"));
        assert!(!is_container_start("POST", "/v1.41/containers//start"));
        assert!(!is_container_start("POST", "/v1.41/images/start/start"));
    }
}
