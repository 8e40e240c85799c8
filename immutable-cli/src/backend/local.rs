//! The local backend: artifact directories and OS processes under one root, HAProxy through
//! its admin socket; and `demo-setup`, which imports two images of the demo app.

use std::path::PathBuf;
use std::time::Duration;

use immutable_core::{Engine, EngineBuilder};
use immutable_local::{HaproxyRouter, ImportRequest, LocalImageStore, ProcessFleet};
use serde_json::json;

use crate::cli::LocalFlags;
use crate::exit::Failure;

fn root(local: &LocalFlags) -> Result<&PathBuf, Failure> {
    local.root.as_ref().ok_or_else(|| {
        Failure::refused(
            "the local backend keeps images and fleets under a root: pass --root DIR (or root \
             in [local] of the service file)",
        )
    })
}

/// An engine builder with the local backend for `service`.
pub(super) async fn engine(local: &LocalFlags, service: &str) -> Result<EngineBuilder, Failure> {
    let root = root(local)?;
    let socket = local.haproxy_socket.as_ref().ok_or_else(|| {
        Failure::refused(
            "the local backend routes through HAProxy: pass --haproxy-socket PATH (its admin \
             socket), or haproxy_socket in [local] of the service file",
        )
    })?;
    let images = LocalImageStore::open(root)?;
    let fleet = ProcessFleet::open(&images)?;
    let interval = local
        .health_check_interval
        .unwrap_or(Duration::from_millis(500));
    let router = HaproxyRouter::builder(socket)
        .service(service)
        .state_dir(
            local
                .router_state
                .clone()
                .unwrap_or_else(|| root.join("router")),
        )
        .instances(fleet.clone())
        .health_checks(interval, 2, 2)
        .build()
        .await?;
    Ok(Engine::builder().images(images).fleet(fleet).router(router))
}

/// Imports `<service>-v1` and `<service>-v2`, two images of the demo app (this program's
/// hidden `demo-app` subcommand: an HTTP server answering with its image id).
pub(crate) async fn demo_setup(
    local: &LocalFlags,
    service: &str,
) -> Result<serde_json::Value, Failure> {
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
        names.push(json!({ "name": name, "id": image.id.to_string() }));
    }
    Ok(json!({ "root": root, "images": names }))
}
