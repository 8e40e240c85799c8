//! `restore`: the local or Docker backend's routing put back into an HAProxy that restarted
//! or reloaded (which drops the dynamic servers the router added), once or, with `--watch`,
//! every interval until interrupted.

use std::collections::HashMap;
use std::path::Path;

use immutable_local::HaproxyRouter;

use crate::backend::{Ctx, haproxy_router, instances, router_state};
use crate::cli::{BackendKind, RestoreArgs};
use crate::exit::{Code, Failure, human};

/// `immutable --backend local|docker restore [--watch]`.
pub(crate) async fn restore(ctx: &Ctx, args: &RestoreArgs) -> Result<Code, Failure> {
    if ctx.config.backend()? == BackendKind::Aws {
        return Err(Failure::refused(
            "restore is for the local and Docker backends (HAProxy forgets the servers the \
             router added when it restarts; an ALB keeps its targets): pass --backend local \
             or --backend docker",
        ));
    }
    if args.every < std::time::Duration::from_millis(10) {
        return Err(Failure::refused(format!(
            "--every: {} is too short, at least 10ms",
            human(args.every)
        )));
    }
    let local = &ctx.config.local;
    let services = match &ctx.config.service {
        Some(s) => vec![s.clone()],
        None => routed_services(&router_state(local)?)?,
    };
    let instances = instances(&ctx.config).await?;
    // A router per service: one whose backend HAProxy no longer has does not stop the others.
    let mut routers = Vec::new();
    let mut failed = false;
    for service in &services {
        match haproxy_router(local, instances.clone(), [service.as_str()]).await {
            Ok(r) => routers.push((service.clone(), r)),
            Err(e) => {
                eprintln!("error: {service}: {}", e.message);
                failed = true;
            }
        }
    }
    if !args.watch {
        for (service, router) in &routers {
            match router.restore().await {
                Ok(added) => print(ctx, service, added),
                Err(e) => {
                    eprintln!("error: {service}: {e}");
                    failed = true;
                }
            }
        }
        return Ok(if failed { Code::Error } else { Code::Succeeded });
    }
    watch(ctx, &routers, args.every).await
}

/// Restores every interval until Ctrl-C or SIGTERM, saying what it put back and, once per
/// new error, what failed.
async fn watch(
    ctx: &Ctx,
    routers: &[(String, HaproxyRouter)],
    every: std::time::Duration,
) -> Result<Code, Failure> {
    if !ctx.json {
        let names: Vec<&str> = routers.iter().map(|(s, _)| s.as_str()).collect();
        println!(
            "watching HAProxy for {} every {}; interrupt to stop",
            names.join(", "),
            human(every)
        );
    }
    let mut last_error: HashMap<&str, String> = HashMap::new();
    let stop = crate::cmd::deploy::shutdown();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(Code::Succeeded),
            () = tokio::time::sleep(every) => {}
        }
        for (service, router) in routers {
            match router.restore().await {
                Ok(added) => {
                    last_error.remove(service.as_str());
                    if added > 0 {
                        print(ctx, service, added);
                    }
                }
                Err(e) => {
                    let e = e.to_string();
                    if last_error.get(service.as_str()) != Some(&e) {
                        eprintln!(
                            "warning: {service}: {e} (trying again every {})",
                            human(every)
                        );
                        last_error.insert(service, e);
                    }
                }
            }
        }
    }
}

fn print(ctx: &Ctx, service: &str, added: usize) {
    if ctx.json {
        crate::output::Document::Restore(crate::output::RestoreDoc {
            service: service.to_owned(),
            added,
        })
        .print();
    } else if added == 0 {
        println!("{service}: HAProxy has every server already");
    } else {
        println!("{service}: put {added} server(s) back into HAProxy, with their weights");
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
