//! `proxy start|status|stop`: an HAProxy for the local and Docker backends, run under
//! `<root>/proxy` (see `immutable_local::ManagedProxy`). `start` puts back the routing the
//! router state holds, so a proxy started again serves what it served before.

use immutable_core::ServiceName;
use immutable_local::{ManagedProxy, ProxyRoute, ProxyStatus};

use crate::backend::{haproxy_router, instances, proxy_dir};
use crate::cli::{BackendKind, ProxyArgs, ProxyCommand, ProxyStartArgs};
use crate::config::Config;
use crate::exit::{Code, Failure};
use crate::output::{Document, ProxyDoc, ProxyRouteDoc, ProxyState};

/// `immutable proxy ...`.
pub(crate) async fn proxy(
    config: &Config,
    json: bool,
    command: &ProxyCommand,
) -> Result<Code, Failure> {
    if config.backend == Some(BackendKind::Aws) {
        return Err(Failure::refused(
            "proxy runs an HAProxy for the local and Docker backends; on AWS the ALB routes",
        ));
    }
    let interval = config
        .local
        .health_check_interval
        .unwrap_or(std::time::Duration::from_millis(500));
    // The router's checks (see `backend::haproxy_router`), for the servers a reload carries.
    let proxy = ManagedProxy::new(proxy_dir(&config.local)?).health_checks(interval, 2, 2);
    let doc = match command {
        ProxyCommand::Start(args) => start(config, &proxy, args).await?,
        ProxyCommand::Status(ProxyArgs { .. }) => match proxy.status()? {
            Some(s) => doc(ProxyState::Running, &proxy, Some(&s), Vec::new()),
            None => doc(ProxyState::NotRunning, &proxy, None, Vec::new()),
        },
        ProxyCommand::Stop(_) => {
            let before = proxy.status()?;
            match proxy.stop().await? {
                Some(_) => doc(ProxyState::Stopped, &proxy, before.as_ref(), Vec::new()),
                None => doc(ProxyState::NotRunning, &proxy, None, Vec::new()),
            }
        }
    };
    print(json, &doc);
    Ok(Code::Succeeded)
}

async fn start(
    config: &Config,
    proxy: &ManagedProxy,
    args: &ProxyStartArgs,
) -> Result<ProxyDoc, Failure> {
    if let Some(socket) = &config.local.haproxy_socket {
        return Err(Failure::refused(format!(
            "this service routes through your own HAProxy ({}, haproxy_socket): the managed \
             proxy would not be the one it uses; drop haproxy_socket to use `proxy start`",
            socket.display()
        )));
    }
    let routes = routes(config, args)?;
    // A running proxy whose routes would change or go: refused, nothing done (exit 2).
    let status = proxy.start(&routes).await.map_err(|e| match e {
        immutable_core::Error::Conflict { message, .. } => Failure::refused(message),
        e => e.into(),
    })?;
    // HAProxy starts without the servers the router added: put them back.
    let mut local = config.local.clone();
    local.haproxy_socket = Some(status.admin_socket.clone());
    let instances = instances(config).await?;
    let mut restored = Vec::new();
    for r in &status.routes {
        let router = haproxy_router(&local, instances.clone(), [r.service.as_str()]).await?;
        restored.push(router.restore().await?);
    }
    let state = if status.started {
        ProxyState::Started
    } else {
        ProxyState::Running
    };
    Ok(doc(state, proxy, Some(&status), restored))
}

/// The routes asked for: `--port [SERVICE=]PORT` and `--preview-port`, else `[proxy]` of the
/// service file for its service.
fn routes(config: &Config, args: &ProxyStartArgs) -> Result<Vec<ProxyRoute>, Failure> {
    let health = args
        .health_path
        .clone()
        .or_else(|| config.proxy.health_path.clone())
        .unwrap_or_else(|| "/health".into());
    let mut live = parse_ports(config, "port", &args.port)?;
    let mut preview = parse_ports(config, "preview-port", &args.preview_port)?;
    if live.is_empty()
        && let (Some(service), Some(port)) = (&config.service, config.proxy.port)
    {
        let service = ServiceName::new(service.clone())?;
        live.push((service.clone(), port));
        if preview.is_empty()
            && let Some(p) = config.proxy.preview_port
        {
            preview.push((service, p));
        }
    }
    if live.is_empty() {
        return Err(Failure::refused(
            "which services, on which ports? pass --port 8080 (for --service) or --port \
             web=8080 (repeatable), or port in [proxy] of the service file",
        ));
    }
    let mut routes = Vec::new();
    for (service, port) in &live {
        let mut route = ProxyRoute::new(service.clone(), *port).health_path(health.clone());
        if let Some((_, p)) = preview.iter().find(|(s, _)| s == service) {
            route = route.preview(*p);
        }
        routes.push(route);
    }
    if let Some((s, _)) = preview
        .iter()
        .find(|(s, _)| !live.iter().any(|(l, _)| l == s))
    {
        return Err(Failure::refused(format!(
            "--preview-port for {s}, which has no --port: a preview entry point goes with a \
             live one"
        )));
    }
    Ok(routes)
}

fn parse_ports(
    config: &Config,
    flag: &str,
    words: &[String],
) -> Result<Vec<(ServiceName, u16)>, Failure> {
    let mut out = Vec::new();
    for w in words {
        let (service, port) = match w.split_once('=') {
            Some((s, p)) => (s.to_owned(), p),
            None => (
                config.service.clone().ok_or_else(|| {
                    Failure::refused(format!(
                        "--{flag} {w}: for which service? pass --service NAME, or \
                         --{flag} SERVICE={w}"
                    ))
                })?,
                w.as_str(),
            ),
        };
        let port: u16 = port.parse().map_err(|_| {
            Failure::refused(format!("--{flag} {w}: `{port}` is not a port (1 to 65535)"))
        })?;
        let service = ServiceName::new(service)
            .map_err(|e| Failure::refused(format!("--{flag} {w}: {e}")))?;
        out.push((service, port));
    }
    Ok(out)
}

fn doc(
    state: ProxyState,
    proxy: &ManagedProxy,
    status: Option<&ProxyStatus>,
    restored: Vec<usize>,
) -> ProxyDoc {
    let routes = status.map(|s| s.routes.as_slice()).unwrap_or_default();
    ProxyDoc {
        state,
        pid: status.map(|s| s.pid),
        admin_socket: proxy.admin_socket().display().to_string(),
        routes: routes
            .iter()
            .enumerate()
            .map(|(i, r)| ProxyRouteDoc {
                service: r.service.to_string(),
                url: format!("http://127.0.0.1:{}", r.port),
                preview_url: r.preview_port.map(|p| format!("http://127.0.0.1:{p}")),
                health_path: r.health_path.clone(),
                restored: restored.get(i).copied(),
            })
            .collect(),
    }
}

#[allow(clippy::print_stdout)] // the command's output
fn print(json: bool, doc: &ProxyDoc) {
    if json {
        Document::Proxy(doc.clone()).print();
        return;
    }
    let pid = doc.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    match doc.state {
        ProxyState::Started => println!("HAProxy started{pid}, admin socket {}", doc.admin_socket),
        ProxyState::Running => println!("HAProxy runs{pid}, admin socket {}", doc.admin_socket),
        ProxyState::Stopped => println!(
            "HAProxy stopped{pid}; its instances keep running, unrouted, until it starts again"
        ),
        ProxyState::NotRunning => println!(
            "no HAProxy runs under {}",
            doc.admin_socket.trim_end_matches("/admin.sock")
        ),
    }
    for r in &doc.routes {
        let preview = r
            .preview_url
            .as_ref()
            .map(|u| format!(", preview {u}"))
            .unwrap_or_default();
        let restored = match r.restored {
            Some(0) | None => String::new(),
            Some(n) => format!(", {n} servers put back"),
        };
        println!(
            "  {}: {}{preview} (health {}){restored}",
            r.service, r.url, r.health_path
        );
    }
}
