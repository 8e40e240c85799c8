//! `demo-setup` (a world to try the CLI in) and the hidden `demo-app`.

use crate::backend::{Ctx, aws_demo_packer, aws_demo_setup, docker_demo_setup, local_demo_setup};
use crate::cli::BackendKind;
use crate::config::StoreSpec;
use crate::exit::{Code, Failure};
use crate::output::{DemoImage, Document};

/// `immutable demo-setup`: prints the flags (or, with `--output json`, the settings) that use
/// what it made.
pub(crate) async fn demo_setup(
    ctx: &Ctx,
    packer_manifest: Option<&std::path::Path>,
) -> Result<Code, Failure> {
    let service = ctx.config.service.as_deref().unwrap_or("web");

    let world = match ctx.config.backend()? {
        BackendKind::Aws => {
            if let StoreSpec::Dynamo(table) = &ctx.config.store {
                let clients = crate::backend::aws_clients(&ctx.config.aws).await;
                immutable_aws::DynamoStore::new(&clients, table)
                    .create_table()
                    .await?;
            }
            let mut world = aws_demo_setup(&ctx.config.aws, service).await?;
            if let Some(path) = packer_manifest {
                let name = aws_demo_packer(&ctx.config.aws, service, path).await?;
                world.images.push(DemoImage::Named(name));
            }
            world
        }
        BackendKind::Local => local_demo_setup(&ctx.config.local, service).await?,
        BackendKind::Docker => docker_demo_setup(&ctx.config, service).await?,
    };
    if ctx.json {
        Document::DemoSetup(world).print();
        return Ok(Code::Succeeded);
    }
    let flags = world.flags();
    if !flags.is_empty() {
        println!("{flags}");
    }
    // The images go to stderr, so that `FLAGS=$(immutable ... demo-setup)` keeps the flags.
    for image in &world.images {
        match image {
            DemoImage::Named(name) => eprintln!("image {name}"),
            DemoImage::Imported { name, id } => eprintln!("image {name} ({id})"),
        }
    }
    Ok(Code::Succeeded)
}

/// The demo app: an HTTP server on `$PORT` answering with its image id.
pub(crate) async fn demo_app() -> Result<Code, Failure> {
    let config = immutable_local::demo::DemoConfig::from_env().map_err(Failure::refused)?;
    immutable_local::demo::serve(config)
        .await
        .map_err(|e| Failure::error(format!("demo-app: {e}")))?;
    Ok(Code::Succeeded)
}
