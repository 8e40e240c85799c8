//! The local backend: artifact directories and OS processes under one root, HAProxy through
//! its admin socket; and `demo-setup`, which imports two images of the demo app.

use std::path::PathBuf;
use std::time::Duration;

use immutable_core::{Engine, EngineBuilder};
use immutable_local::{HaproxyRouter, ImportRequest, LocalImageStore, ManagedProxy, ProcessFleet};

use crate::cli::LocalFlags;
use crate::exit::Failure;
use crate::output::{DemoImage, DemoSetupDoc};

pub(super) fn root(local: &LocalFlags) -> Result<&PathBuf, Failure> {
    local.root.as_ref().ok_or_else(|| {
        Failure::refused(
            "the local backend keeps images and fleets under a root: pass --root DIR (or root \
             in [local] of the service file)",
        )
    })
}

/// How often a running command looks for servers HAProxy lost in a restart or reload.
pub(crate) const RESTORE_EVERY: Duration = Duration::from_millis(250);

/// An engine builder with the local backend for `service`, and its router.
pub(super) async fn engine(
    local: &LocalFlags,
    service: &str,
) -> Result<(EngineBuilder, HaproxyRouter), Failure> {
    let images = LocalImageStore::open(root(local)?)?;
    let fleet = ProcessFleet::open(&images)?;
    let router = router(local, &fleet, [service]).await?;
    let builder = Engine::builder()
        .images(images)
        .fleet(fleet)
        .router(router.clone())
        .preview(router.clone());
    Ok((builder, router))
}

/// A router for `services` on the configured HAProxy.
pub(crate) async fn router<'a>(
    local: &LocalFlags,
    fleet: &ProcessFleet,
    services: impl IntoIterator<Item = &'a str>,
) -> Result<HaproxyRouter, Failure> {
    let socket = haproxy_socket(local)?;
    let interval = local
        .health_check_interval
        .unwrap_or(Duration::from_millis(500));
    let builder = services
        .into_iter()
        .fold(HaproxyRouter::builder(socket), |b, s| b.service(s));
    Ok(builder
        .state_dir(router_state(local)?)
        .instances(fleet.clone())
        .health_checks(interval, 2, 2)
        .build()
        .await?)
}

/// HAProxy's admin socket: --haproxy-socket, else the managed proxy's under --root when one
/// was started there.
fn haproxy_socket(local: &LocalFlags) -> Result<PathBuf, Failure> {
    if let Some(s) = &local.haproxy_socket {
        return Ok(s.clone());
    }
    if let Some(root) = &local.root {
        let proxy = ManagedProxy::new(root.join("proxy"));
        if proxy.status()?.is_some() {
            return Ok(proxy.admin_socket());
        }
    }
    Err(Failure::refused(
        "the local backend routes through HAProxy, and none runs under --root: start one \
         (`immutable proxy start --root DIR --port 8080`), or pass --haproxy-socket PATH (the \
         admin socket of your own HAProxy), or haproxy_socket in [local] of the service file",
    ))
}

/// Where the managed proxy lives: `<root>/proxy`.
pub(crate) fn proxy_dir(local: &LocalFlags) -> Result<PathBuf, Failure> {
    Ok(root(local)?.join("proxy"))
}

/// Where the router keeps each service's routing.
pub(crate) fn router_state(local: &LocalFlags) -> Result<PathBuf, Failure> {
    Ok(match &local.router_state {
        Some(dir) => dir.clone(),
        None => root(local)?.join("router"),
    })
}

/// The local backend's images and fleets.
pub(crate) fn fleet(local: &LocalFlags) -> Result<ProcessFleet, Failure> {
    Ok(ProcessFleet::open(&LocalImageStore::open(root(local)?)?)?)
}

/// Imports `<service>-v1` and `<service>-v2`, two images of the demo app (this program's
/// hidden `demo-app` subcommand: an HTTP server answering with its image id).
pub(crate) async fn demo_setup(local: &LocalFlags, service: &str) -> Result<DemoSetupDoc, Failure> {
    let root = root(local)?;
    let images = LocalImageStore::open(root)?;
    let program = std::env::current_exe()
        .map_err(|e| Failure::error(format!("cannot find this program: {e}")))?;
    let program = program.display().to_string();
    let mut names = Vec::new();
    for name in [format!("{service}-v1"), format!("{service}-v2")] {
        let src = root.join("demo-src").join(&name);
        std::fs::create_dir_all(&src)
            .and_then(|()| std::fs::write(src.join("VERSION"), &name))
            .map_err(|e| Failure::error(format!("cannot write {}: {e}", src.display())))?;
        let command = [program.as_str(), "demo-app"];
        let image = images
            .import(ImportRequest::new(service, &name, &src, command))
            .await?;
        names.push(DemoImage::Imported {
            name,
            id: image.id.to_string(),
        });
    }
    Ok(DemoSetupDoc {
        root: Some(root.display().to_string()),
        images: names,
        ..DemoSetupDoc::default()
    })
}
