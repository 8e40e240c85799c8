//! `restore`: the local backend's routing put back into an HAProxy that restarted or
//! reloaded (which drops the dynamic servers the router added), once or, with `--watch`,
//! every interval until interrupted.

use std::path::Path;

use serde_json::json;

use crate::backend::{Ctx, local_fleet, local_router, router_state};
use crate::cli::{BackendKind, RestoreArgs};
use crate::exit::{Code, Failure};

/// `immutable --backend local restore [--watch]`.
pub(crate) async fn restore(ctx: &Ctx, args: &RestoreArgs) -> Result<Code, Failure> {
    if ctx.config.backend()? != BackendKind::Local {
        return Err(Failure::refused(
            "restore is for the local backend (HAProxy forgets the servers the router added \
             when it restarts; an ALB keeps its targets): pass --backend local",
        ));
    }
    let local = &ctx.config.local;
    let services = match &ctx.config.service {
        Some(s) => vec![s.clone()],
        None => routed_services(&router_state(local)?)?,
    };
    let router = local_router(
        local,
        &local_fleet(local)?,
        services.iter().map(String::as_str),
    )
    .await?;
    if !args.watch {
        let added = router.restore().await?;
        print(ctx, &services, added);
        return Ok(Code::Succeeded);
    }
    if !ctx.json {
        println!(
            "watching HAProxy for {} every {}; interrupt to stop",
            services.join(", "),
            crate::exit::human(args.every)
        );
    }
    let mut last_error = None;
    let stop = crate::cmd::deploy::shutdown();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(Code::Succeeded),
            () = tokio::time::sleep(args.every) => {}
        }
        match router.restore().await {
            Ok(added) => {
                last_error = None;
                if added > 0 {
                    print(ctx, &services, added);
                }
            }
            Err(e) => {
                let e = e.to_string();
                if last_error.as_ref() != Some(&e) {
                    eprintln!(
                        "warning: {e} (trying again every {})",
                        crate::exit::human(args.every)
                    );
                    last_error = Some(e);
                }
            }
        }
    }
}

fn print(ctx: &Ctx, services: &[String], added: usize) {
    if ctx.json {
        println!(
            "{}",
            json!({ "type": "restore", "services": services, "added": added })
        );
    } else if added == 0 {
        println!("{}: HAProxy has every server already", services.join(", "));
    } else {
        println!(
            "{}: put {added} server(s) back into HAProxy, with their weights",
            services.join(", ")
        );
    }
}

/// The services whose routing the router keeps in `dir` (`<service>.json`).
fn routed_services(dir: &Path) -> Result<Vec<String>, Failure> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Failure::refused(format!(
            "cannot read the router state directory {}: {e}; pass --service",
            dir.display()
        ))
    })?;
    let mut services: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let service = name.strip_suffix(".json")?.to_owned();
            immutable_core::ServiceName::check(&service).ok()?;
            Some(service)
        })
        .collect();
    services.sort();
    if services.is_empty() {
        return Err(Failure::refused(format!(
            "no service's routing in {}: pass --service",
            dir.display()
        )));
    }
    Ok(services)
}
