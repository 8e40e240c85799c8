//! How a blue-green swap on the local backend grows with the fleet: for each N, a fresh HAProxy
//! on loopback, the demo app imported as v1 and v2, v1 deployed at capacity N, then v2 deployed
//! blue-green (preview, shift 100 %, no bake) while a bounded load runs through HAProxy. Prints
//! one row per N: the v2 deployment's wall time, its phases (from the engine's events), and the
//! requests served and failed during it. Exits non-zero if any request failed.
//!
//! `cargo bench -p immutable-benches --bench local_scale` (needs `haproxy` on `PATH` or in
//! `/usr/sbin`). Numbers given as arguments replace the list of N (`... -- 200`), as does
//! `LOCAL_SCALE_N=50,200`. The instances are this very program, started as
//! `local_scale demo-app`. Timing is printed, never asserted.
#![allow(missing_docs, clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use immutable_core::{DeploymentRequest, Engine, EventKind, ImageRef, Phase, Settings};
use immutable_local::demo::{DemoConfig, serve};
use immutable_local::{
    Haproxy, HaproxyOptions, ImportRequest, LoadGen, LoadReport, LocalImageStore, ProcessFleet,
};

const SIZES: [usize; 3] = [50, 100, 200];

/// The phases shown, in the order they run.
const PHASES: [(Phase, &str); 6] = [
    (Phase::Provision, "launch"),
    (Phase::Attach, "attach"),
    (Phase::AwaitHealthy, "healthy"),
    (Phase::Rollout, "shift"),
    (Phase::Bake, "bake"),
    (Phase::Retire, "retire"),
];

/// Kills every instance when a run ends, however it ends.
struct KillOnDrop(ProcessFleet);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill_all();
    }
}

/// When each event of the engine arrived, on the real clock.
type Timeline = Arc<Mutex<Vec<(Instant, EventKind)>>>;

struct Row {
    n: usize,
    v1: Duration,
    v2: Duration,
    phases: BTreeMap<Phase, Duration>,
    /// Of the retire phase: until the old target was detached, then until its fleet was
    /// terminated.
    detach: Duration,
    terminate: Duration,
    api: u64,
    load: LoadReport,
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("demo-app") {
        // One thread per instance: hundreds of them share two cores.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let served = DemoConfig::from_env()
            .map_err(|e| e.to_string())
            .and_then(|config| rt.block_on(serve(config)).map_err(|e| e.to_string()));
        if let Err(e) = served {
            eprintln!("demo app: {e}");
            std::process::exit(2);
        }
        return;
    }
    let sizes = sizes();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("blue-green v1 -> v2 under load on the local backend ({profile} build)");
    let mut failed = 0;
    let mut rows = Vec::new();
    for n in sizes {
        match rt.block_on(run(n)) {
            Ok(row) => {
                failed += row.load.failed();
                rows.push(row);
            }
            Err(e) => {
                eprintln!("N = {n}: {e}");
                std::process::exit(1);
            }
        }
    }
    print_table(&rows);
    if failed > 0 {
        for r in rows.iter().filter(|r| r.load.failed() > 0) {
            eprintln!("N = {}: {}", r.n, r.load.summary());
        }
        eprintln!("{failed} requests failed");
        std::process::exit(1);
    }
}

/// The N to run: the numbers among the arguments (`cargo bench` adds `--bench`), else
/// `LOCAL_SCALE_N`, else [`SIZES`].
fn sizes() -> Vec<usize> {
    let parse = |s: &str| -> Vec<usize> {
        s.split([',', ' '])
            .filter_map(|a| a.replace('_', "").parse().ok())
            .filter(|n| *n > 0)
            .collect()
    };
    let args = parse(&std::env::args().skip(1).collect::<Vec<_>>().join(","));
    if !args.is_empty() {
        return args;
    }
    let env = parse(&std::env::var("LOCAL_SCALE_N").unwrap_or_default());
    if env.is_empty() { SIZES.to_vec() } else { env }
}

async fn run(n: usize) -> Result<Row, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let images = LocalImageStore::open(dir.path().join("root"))?;
    import_versions(&images, dir.path()).await?;
    let fleet = ProcessFleet::open(&images)?.with_grace_period(Duration::from_secs(5));
    let _cleanup = KillOnDrop(fleet.clone());
    let haproxy = Haproxy::start(HaproxyOptions::new(["web"]).dir(dir.path().join("haproxy")))
        .await
        .map_err(|e| format!("HAProxy must be installed (apt-get install haproxy): {e}"))?;
    let router = haproxy
        .router_builder()
        .state_dir(dir.path().join("router"))
        .instances(fleet.clone())
        .health_checks(Duration::from_millis(200), 2, 2)
        .drain_timeout(Duration::from_secs(10))
        .build()
        .await?;
    let engine = Engine::builder()
        .images(images)
        .fleet(fleet)
        .router(router.clone())
        .preview(router.clone())
        .settings(
            Settings::default()
                .with_poll_interval(Duration::from_millis(100))
                .with_poll_ceiling(Duration::from_millis(100))
                .with_launch_timeout(Duration::from_secs(120)),
        )
        .store(immutable_core::InMemoryStore::new())
        .build()?;
    let timeline = Timeline::default();
    let events = Arc::clone(&timeline);
    engine.subscribe(move |e| {
        let mut events = events.lock().unwrap_or_else(|e| e.into_inner());
        events.push((Instant::now(), e.kind.clone()));
    });
    let request = |image: &str| {
        DeploymentRequest::new("web", ImageRef::name(image))
            .capacity(n as u32)
            .health_timeout(Duration::from_secs(120))
            .bake_time(Duration::ZERO)
    };

    let started = Instant::now();
    let first = engine.deploy(request("v1")).await?;
    let v1 = started.elapsed();
    if !first.succeeded() {
        return Err(format!("v1 did not deploy: {}", first.outcome).into());
    }
    let load = LoadGen::new(format!("{}/?delay_ms=20", haproxy.url("web")))
        .keep_alive_clients(4)
        .new_connection_clients(4)
        .max_requests(200_000)
        .max_duration(Duration::from_secs(180))
        .start()?;
    // The load runs in steady state before the deployment starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    timeline.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let calls = router.api_calls();
    let started = Instant::now();
    let report = engine.deploy(request("v2")).await?;
    let v2 = started.elapsed();
    let api = router.api_calls() - calls;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let load = load.stop().await;
    if !report.succeeded() {
        return Err(format!("v2 did not deploy: {}", report.outcome).into());
    }
    let events = timeline.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let at =
        |wanted: fn(&EventKind) -> bool| events.iter().find(|(_, e)| wanted(e)).map(|(at, _)| *at);
    let retire = at(|e| {
        matches!(
            e,
            EventKind::PhaseEntered {
                phase: Phase::Retire
            }
        )
    });
    let detached = at(|e| matches!(e, EventKind::TargetDetached { .. }));
    let terminated = at(|e| matches!(e, EventKind::FleetTerminated { .. }));
    let between = |from: Option<Instant>, to: Option<Instant>| match (from, to) {
        (Some(from), Some(to)) => to.saturating_duration_since(from),
        _ => Duration::ZERO,
    };
    Ok(Row {
        n,
        v1,
        v2,
        phases: phases(&events, started + v2),
        detach: between(retire, detached),
        terminate: between(detached, terminated),
        api,
        load,
    })
}

/// Two versions of the demo app: this program, run as `local_scale demo-app`.
async fn import_versions(
    images: &LocalImageStore,
    dir: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?.display().to_string();
    for version in ["v1", "v2"] {
        let src = dir.join(version);
        std::fs::create_dir_all(&src)?;
        std::fs::write(src.join("VERSION"), version)?;
        let request = ImportRequest::new("web", version, &src, [exe.as_str(), "demo-app"]);
        images.import(request).await?;
    }
    Ok(())
}

/// How long each phase lasted: from its `PhaseEntered` to the next one (the last to `end`).
fn phases(events: &[(Instant, EventKind)], end: Instant) -> BTreeMap<Phase, Duration> {
    let entered: Vec<(Instant, Phase)> = events
        .iter()
        .filter_map(|(at, e)| match e {
            EventKind::PhaseEntered { phase } => Some((*at, *phase)),
            _ => None,
        })
        .collect();
    let mut out = BTreeMap::new();
    for (i, (at, phase)) in entered.iter().enumerate() {
        let next = entered.get(i + 1).map_or(end, |(t, _)| *t);
        *out.entry(*phase).or_default() += next.duration_since(*at);
    }
    out
}

fn print_table(rows: &[Row]) {
    let ms = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1e3);
    let mut header = format!("{:>5} {:>8} {:>8}", "N", "v1 ms", "v2 ms");
    for (_, name) in PHASES {
        header += &format!(" {name:>8}");
    }
    header += &format!(
        " {:>8} {:>8} {:>8} {:>8} {:>7}",
        "(detach", "term)", "API req", "served", "failed"
    );
    println!("{header}");
    for r in rows {
        let mut line = format!("{:>5} {:>8} {:>8}", r.n, ms(r.v1), ms(r.v2));
        for (phase, _) in PHASES {
            let d = r.phases.get(&phase).copied().unwrap_or_default();
            line += &format!(" {:>8}", ms(d));
        }
        line += &format!(
            " {:>8} {:>8} {:>8} {:>8} {:>7}",
            ms(r.detach),
            ms(r.terminate),
            r.api,
            r.load.served(),
            r.load.failed()
        );
        println!("{line}");
    }
    println!(
        "(v1: the first deployment, v2: the blue-green one under load, then its phases, in ms; \
         detach and term split retire; API req: HAProxy runtime-API requests of v2; served \
         and failed: requests from 0.3 s before v2 to 0.3 s after)"
    );
}
