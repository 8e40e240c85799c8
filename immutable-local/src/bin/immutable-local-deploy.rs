//! A small deploy tool on the local backend: deploys an image, or resumes what a dead run
//! left unfinished, over a store root, an HAProxy admin socket and a `FileStore`.
//!
//! ```text
//! immutable-local-deploy deploy --root DIR --store DIR --socket PATH --router-state DIR \
//!     --service web --image v2 [--capacity 2] [--canary 10,50] [--pause-ms 1000] \
//!     [--bake-ms 1000] [--lease-ttl-s 60] [--check-ms 500]
//! immutable-local-deploy resume --root DIR --store DIR --socket PATH --router-state DIR \
//!     --service web [--lease-ttl-s 60] [--check-ms 500]
//! ```
//!
//! It prints one line per event, then the outcome.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use immutable_core::{
    DeploymentRequest, Engine, FileStore, ImageRef, Settings, Steps, StrategySpec,
};
use immutable_local::{HaproxyRouter, LocalImageStore, ProcessFleet};

type Flags = HashMap<String, String>;

fn parse(args: &[String]) -> Result<Flags, String> {
    let mut flags = HashMap::new();
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let key = k
            .strip_prefix("--")
            .ok_or_else(|| format!("expected a --flag, got `{k}`"))?;
        let value = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
        flags.insert(key.to_owned(), value.clone());
    }
    Ok(flags)
}

fn get<'a>(flags: &'a Flags, key: &str) -> Result<&'a str, String> {
    flags
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| format!("--{key} is required"))
}

fn num(flags: &Flags, key: &str, default: u64) -> Result<u64, String> {
    flags.get(key).map_or(Ok(default), |v| {
        v.parse().map_err(|_| format!("--{key} must be a number"))
    })
}

async fn engine(flags: &Flags) -> Result<Engine, Box<dyn std::error::Error>> {
    let images = LocalImageStore::open(get(flags, "root")?)?;
    let fleet = ProcessFleet::open(&images)?;
    let router = HaproxyRouter::builder(get(flags, "socket")?)
        .service(get(flags, "service")?)
        .state_dir(get(flags, "router-state")?)
        .instances(fleet.clone())
        .health_checks(Duration::from_millis(num(flags, "check-ms", 500)?), 2, 2)
        .build()
        .await?;
    let settings = Settings::default()
        .with_poll_interval(Duration::from_millis(100))
        .with_lease_ttl(Duration::from_secs(num(flags, "lease-ttl-s", 60)?));
    let engine = Engine::builder()
        .images(images)
        .fleet(fleet)
        .router(router)
        .store(FileStore::open(get(flags, "store")?)?)
        .settings(settings)
        .build()?;
    engine.subscribe(|e| println!("{} {}", e.deployment, e.kind));
    Ok(engine)
}

async fn deploy(flags: &Flags) -> Result<bool, Box<dyn std::error::Error>> {
    let engine = engine(flags).await?;
    let strategy: StrategySpec = match flags.get("canary") {
        Some(list) => {
            let weights: Result<Vec<u32>, _> = list.split(',').map(str::parse).collect();
            let pause = Duration::from_millis(num(flags, "pause-ms", 1000)?);
            Steps::canary(
                weights.map_err(|_| "--canary takes percents like 10,50")?,
                pause,
            )
            .into()
        }
        None => Steps::blue_green().into(),
    };
    let request =
        DeploymentRequest::new(get(flags, "service")?, ImageRef::name(get(flags, "image")?))
            .capacity(num(flags, "capacity", 2)? as u32)
            .strategy(strategy)
            .bake_time(Duration::from_millis(num(flags, "bake-ms", 1000)?));
    let report = engine.deploy(request).await?;
    println!("outcome: {:?}", report.outcome);
    Ok(report.succeeded())
}

async fn resume(flags: &Flags) -> Result<bool, Box<dyn std::error::Error>> {
    let engine = engine(flags).await?;
    let mut ok = true;
    for (id, result) in engine.resume_unfinished().await? {
        match result {
            Ok(report) => {
                println!("{id}: {:?}", report.outcome);
                ok &= report.succeeded();
            }
            Err(e) => {
                println!("{id}: {e}");
                ok = false;
            }
        }
    }
    Ok(ok)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = args
        .split_first()
        .map_or(("", &[][..]), |(c, r)| (c.as_str(), r));
    let run = async {
        let flags = parse(rest)?;
        match command {
            "deploy" => deploy(&flags).await,
            "resume" => resume(&flags).await,
            other => Err(format!("unknown command `{other}`: deploy or resume").into()),
        }
    };
    match run.await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("immutable-local-deploy: {e}");
            ExitCode::from(2)
        }
    }
}
