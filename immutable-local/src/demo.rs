//! The demo app: a tiny HTTP server that answers every request with its image id, for trying
//! a real swap (`immutable-demo-app` binary, and the `local_bluegreen` example).
//!
//! - Every path but `/health` answers 200 with `image=<IMAGE_ID> instance=<INSTANCE_ID>` and
//!   the headers `X-Image` and `X-Instance`; `?delay_ms=N` (at most 10,000) delays the answer,
//!   to keep requests in flight.
//! - `/health` answers 200, or 503 when the app starts unhealthy: when the file `UNHEALTHY`
//!   exists in `IMAGE_DIR`, or `DEMO_UNHEALTHY=1` is set.
//! - It listens on 127.0.0.1:`PORT`, or on `DEMO_HOST`:`PORT` when `DEMO_HOST` names an IP address
//!   (`0.0.0.0` in a container whose port Docker publishes). On SIGTERM or SIGINT it stops accepting, lets in-flight
//!   requests finish (up to 10 s), closes idle connections and exits 0.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

/// What the demo app answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DemoConfig {
    /// The port.
    pub port: u16,
    /// The address it listens on: 127.0.0.1 unless `DEMO_HOST` says otherwise.
    pub host: std::net::IpAddr,
    /// The image id it reports.
    pub image: String,
    /// The instance id it reports.
    pub instance: String,
    /// Whether `/health` fails.
    pub unhealthy: bool,
}

impl DemoConfig {
    /// Reads `PORT`, `DEMO_HOST`, `IMAGE_ID`, `INSTANCE_ID`, `IMAGE_DIR` and `DEMO_UNHEALTHY`.
    ///
    /// # Errors
    /// A message naming `PORT` when it is missing or not a port, or `DEMO_HOST` when it is set
    /// and not an IP address.
    pub fn from_env() -> Result<Self, String> {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        let port = var("PORT")
            .parse()
            .map_err(|_| format!("PORT must be a port number, got {:?}", var("PORT")))?;
        let host = match std::env::var("DEMO_HOST") {
            Ok(h) if !h.is_empty() => h
                .parse()
                .map_err(|_| format!("DEMO_HOST must be an IP address, got {h:?}"))?,
            _ => std::net::IpAddr::from([127, 0, 0, 1]),
        };
        let marker = std::env::var_os("IMAGE_DIR").map(|d| PathBuf::from(d).join("UNHEALTHY"));
        Ok(DemoConfig {
            port,
            host,
            image: var("IMAGE_ID"),
            instance: var("INSTANCE_ID"),
            unhealthy: var("DEMO_UNHEALTHY") == "1" || marker.is_some_and(|m| m.exists()),
        })
    }
}

async fn answer(
    config: Arc<DemoConfig>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/health" {
        let (status, body) = if config.unhealthy {
            (StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n")
        } else {
            (StatusCode::OK, "ok\n")
        };
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = status;
        return Ok(resp);
    }
    let delay = req
        .uri()
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("delay_ms="))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        .min(10_000);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let body = format!("image={} instance={}\n", config.image, config.instance);
    let resp = Response::builder()
        .header("X-Image", config.image.as_str())
        .header("X-Instance", config.instance.as_str())
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default();
    Ok(resp)
}

/// Serves until SIGTERM or SIGINT, then shuts down gracefully.
///
/// # Errors
/// When the port cannot be bound or signals cannot be watched.
pub async fn serve(config: DemoConfig) -> std::io::Result<()> {
    let listener = TcpListener::bind((config.host, config.port)).await?;
    let config = Arc::new(config);
    let graceful = GracefulShutdown::new();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let config = Arc::clone(&config);
                let service = service_fn(move |req| answer(Arc::clone(&config), req));
                let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => {}
    }
    Ok(())
}

/// The demo app as a program: reads its configuration from the environment and serves. A
/// bad configuration is exit code 2, a failure to serve 1, each with a line on stderr naming
/// `program`. What the demo binaries and examples run.
pub async fn run(program: &str) -> std::process::ExitCode {
    let served = match DemoConfig::from_env() {
        Ok(config) => serve(config).await.map_err(|e| (1, e.to_string())),
        Err(e) => Err((2, e)),
    };
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err((code, e)) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{program}: {e}");
            }
            std::process::ExitCode::from(code)
        }
    }
}
