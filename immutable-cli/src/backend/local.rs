//! The local backend: artifact directories and OS processes under one root, HAProxy through
//! its admin socket (see `routing`); and `demo-setup`, which imports two images of the demo
//! app.

use immutable_core::{Engine, EngineBuilder};
use immutable_local::{HaproxyRouter, ImportRequest, LocalImageStore, ProcessFleet};

use super::routing::{Instances, root, router};
use crate::cli::LocalFlags;
use crate::exit::Failure;
use crate::output::{DemoImage, DemoSetupDoc};

/// An engine builder with the local backend for `service`, and its router.
pub(super) async fn engine(
    local: &LocalFlags,
    service: &str,
) -> Result<(EngineBuilder, HaproxyRouter), Failure> {
    let images = LocalImageStore::open(root(local)?)?;
    let fleet = ProcessFleet::open(&images)?;
    let router = router(local, Instances::Local(fleet.clone()), [service]).await?;
    let builder = Engine::builder()
        .images(images)
        .fleet(fleet)
        .router(router.clone())
        .preview(router.clone());
    Ok((builder, router))
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
