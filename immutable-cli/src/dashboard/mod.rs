//! `immutable dashboard`: a web page over the journal, for seeing and steering deployments.
//!
//! Files by concern: [`pages`] (the HTML pages, each at a stable URL), [`api`] (their JSON
//! twins), [`live`] (server-sent events), [`actions`] and [`rollback`] (what the buttons
//! do), [`guard`] and [`token`] (who may ask), [`read`] (what each page reads from the
//! store), [`view`] (what the pages show), [`assets`] (the stylesheet and script in the
//! binary), [`error`] (what a failed request answers).
//!
//! Libraries: **axum** for HTTP, since it is tokio's own (the CLI already runs on tokio and
//! hyper) and brings server-sent events (`axum::response::sse`) and middleware for the
//! checks every request passes; **askama** for templates, since they are compiled and
//! type-checked with the binary (a template that names a missing field does not build) and
//! escape HTML by default; **getrandom** for the token (the OS random source, no userspace
//! generator to seed) and **subtle** to compare it in constant time.
//!
//! # Security
//! It listens on 127.0.0.1:8480 by default, and refuses at start an address other than
//! loopback without `--token-file`. It only reads unless started with `--actions`: without
//! it the action routes do not exist. With it, every action needs the token (random at each
//! start and printed once on stderr, or read from `--token-file`) in an
//! `Authorization: Bearer` header; the page keeps it in the tab's session storage. Every
//! request must name this dashboard in its `Host` (DNS rebinding), and an action that
//! carries an `Origin` must come from it (CSRF). The token is never in a page, a cookie or
//! a log line.
//!
//! The charts are `crate::report::chart`'s, the same as `immutable report` draws.

mod actions;
mod api;
mod assets;
mod error;
mod guard;
mod live;
mod pages;
mod read;
mod rollback;
mod state;
mod token;
pub(crate) mod view;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};

use crate::backend::Ctx;
use crate::cli::DashboardArgs;
use crate::exit::{Code, Failure};
use guard::Gate;
use state::App;
use token::Token;

/// Refuses, before anything is opened, an address other than loopback without a token file.
pub(crate) fn check(args: &DashboardArgs) -> Result<(), Failure> {
    if !args.listen.ip().is_loopback() && args.token_file.is_none() {
        return Err(Failure::refused(format!(
            "--listen {} is reachable from other machines: give --token-file FILE (a secret \
             the actions need), or listen on 127.0.0.1",
            args.listen
        )));
    }
    if args.poll.is_zero() {
        return Err(Failure::refused("--poll must be longer than 0s"));
    }
    Ok(())
}

/// `immutable dashboard`: serves until interrupted.
pub(crate) async fn serve(ctx: Ctx, args: &DashboardArgs) -> Result<Code, Failure> {
    check(args)?;
    let token = match (&args.token_file, args.actions) {
        (Some(path), _) => Some(Token::from_file(path)?),
        (None, true) => Some(Token::generate()?),
        (None, false) => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::error(format!("cannot listen on {}: {e}", args.listen)))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::error(format!("cannot read the address listened on: {e}")))?;
    announce(bound, args, token.as_ref());
    let gate = Arc::new(Gate::new(bound, &args.allowed_host, token));
    let operator = ctx.operator();
    let backend = ctx.config.backend.is_some().then(|| Arc::new(ctx));
    let app = App {
        operator,
        poll: args.poll,
        actions: args.actions,
        backend,
    };
    let router = routes(app, gate);
    let (stopping, stop) = tokio::sync::oneshot::channel();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        interrupted().await;
        let _ = stopping.send(());
    });
    // Answers under way get a moment to finish; an open page's stream never ends by itself,
    // so it does not hold the dashboard up.
    let grace = async move {
        if stop.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = std::future::IntoFuture::into_future(server) => {
            served.map_err(|e| Failure::error(format!("the dashboard stopped: {e}")))?;
        }
        () = grace => {}
    }
    Ok(Code::Succeeded)
}

/// How long answers under way may take once Ctrl-C or SIGTERM asks the dashboard to stop.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Says where the dashboard is; with a generated token, the one URL that carries it.
#[allow(clippy::print_stderr)] // the one place the token is shown, by design
fn announce(bound: SocketAddr, args: &DashboardArgs, token: Option<&Token>) {
    let url = format!("http://{bound}/");
    let mode = if args.actions {
        "actions enabled"
    } else {
        "read-only"
    };
    eprintln!("immutable dashboard on {url} ({mode}); Ctrl-C stops it");
    if let (Some(token), None) = (token.filter(|_| args.actions), &args.token_file) {
        eprintln!(
            "open {url}#token={} (the token every action needs; it changes at every start)",
            token.reveal()
        );
    }
}

/// Every route: pages, JSON twins, streams and assets; the actions only when enabled.
fn routes(app: App, gate: Arc<Gate>) -> Router {
    let mut router = Router::new()
        .route("/", get(pages::services))
        .route("/services/{name}", get(pages::service))
        .route("/deployments/{id}", get(pages::deployment))
        .route("/halts", get(pages::halts))
        .route("/api/services", get(api::services))
        .route("/api/services/{name}", get(api::service))
        .route("/api/deployments/{id}", get(api::deployment))
        .route("/api/halts", get(api::halts))
        .route("/api/{*rest}", get(api::not_found))
        .route("/events/services", get(live::services))
        .route("/events/deployments/{id}", get(live::deployment))
        .route("/assets/dashboard.css", get(assets::css))
        .route("/assets/dashboard.js", get(assets::js))
        .fallback(pages::not_found);
    if app.actions {
        let actions = Router::new()
            .route("/api/deployments/{id}/{verb}", post(actions::command))
            .route("/api/services/{name}/rollback", post(actions::rollback))
            .route("/api/halts", post(actions::halt))
            .route("/api/halts/lift", post(actions::lift_halt))
            .route_layer(from_fn_with_state(Arc::clone(&gate), guard::authorize));
        router = router.merge(actions);
    }
    router
        .with_state(app)
        .layer(from_fn_with_state(gate, guard::screen))
        .layer(from_fn(assets::secure_headers))
}

/// Resolves at Ctrl-C or SIGTERM.
async fn interrupted() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
