//! `demo-setup` (a world to try the CLI in) and the hidden `demo-app`.

use serde_json::Value;

use crate::backend::{Ctx, aws_demo_setup, local_demo_setup};
use crate::cli::BackendKind;
use crate::config::StoreSpec;
use crate::exit::{Code, Failure};

/// `immutable demo-setup`: prints the flags (or, with `--output json`, the settings) that use
/// what it made.
pub(crate) async fn demo_setup(ctx: &Ctx) -> Result<Code, Failure> {
    let service = ctx.config.service.as_deref().unwrap_or("web");
    let world = match ctx.config.backend()? {
        BackendKind::Aws => {
            if let StoreSpec::Dynamo(table) = &ctx.config.store {
                let clients = crate::backend::aws_clients(&ctx.config.aws).await;
                immutable_aws::DynamoStore::new(&clients, table)
                    .create_table()
                    .await?;
            }
            aws_demo_setup(&ctx.config.aws, service).await?
        }
        BackendKind::Local => local_demo_setup(&ctx.config.local, service).await?,
    };
    if ctx.json {
        println!("{world}");
        return Ok(Code::Succeeded);
    }
    let flags = flags(&world);
    if !flags.is_empty() {
        println!("{flags}");
    }
    // The images go to stderr, so that `FLAGS=$(immutable ... demo-setup)` keeps the flags.
    for image in world["images"].as_array().into_iter().flatten() {
        let name = image
            .as_str()
            .or(image["name"].as_str())
            .unwrap_or_default();
        match image["id"].as_str() {
            Some(id) => eprintln!("image {name} ({id})"),
            None => eprintln!("image {name}"),
        }
    }
    Ok(Code::Succeeded)
}

/// `--listener-arn ... --subnets a,b ...` from the setup's settings.
fn flags(world: &Value) -> String {
    let mut out = Vec::new();
    let Some(map) = world.as_object() else {
        return String::new();
    };
    for (k, v) in map {
        if k == "images" || k == "root" {
            continue;
        }
        let value = match v {
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push(format!("--{} {value}", k.replace('_', "-")));
    }
    out.join(" ")
}

/// The demo app: an HTTP server on `$PORT` answering with its image id.
pub(crate) async fn demo_app() -> Result<Code, Failure> {
    let config = immutable_local::demo::DemoConfig::from_env().map_err(Failure::refused)?;
    immutable_local::demo::serve(config)
        .await
        .map_err(|e| Failure::error(format!("demo-app: {e}")))?;
    Ok(Code::Succeeded)
}
