//! Operating a deployment from anywhere: commands written to a shared store by a second
//! engine, status and watch from it, commands given while no runner lives, suspend.

use std::time::Duration;

use crate::common::*;
use futures::StreamExt;
use immutable_core::{
    Command, DeploymentId, Engine, Error, EventKind, FileStore, OnTimeout, Outcome, Phase,
    RollbackCause, Steps, Waiting,
};
use tokio::task::JoinHandle;

/// Two engines over the same cloud and the same directory: one runs, one operates.
struct Two {
    w: World,
    _dir: tempfile::TempDir,
    runner: Engine,
    operator: Engine,
}

fn two() -> Two {
    let dir = tempfile::tempdir().unwrap();
    let w = world();
    let store = |d: &tempfile::TempDir| FileStore::open(d.path()).unwrap();
    let runner = builder_on(&w.cloud, store(&dir)).build().unwrap();
    let operator = builder_on(&w.cloud, store(&dir))
        .identity("on-call")
        .build()
        .unwrap();
    Two {
        w,
        _dir: dir,
        runner,
        operator,
    }
}

fn gated(gates: usize) -> Steps {
    let mut steps = Steps::canary([20, 100], Duration::from_secs(60));
    for _ in 0..gates {
        steps = steps.with_approval(Duration::from_secs(3600), OnTimeout::RollBack);
    }
    steps
}

/// Deploys v1, then starts v2 with `steps` on the runner and returns once the runner waits
/// at `phase` (or at its first approval gate): the task and the deployment id.
async fn started(
    t: &Two,
    steps: Steps,
    at_approval: bool,
) -> (
    JoinHandle<Result<immutable_core::Report, Error>>,
    DeploymentId,
) {
    assert!(t.runner.deploy(request(1)).await.unwrap().succeeded());
    let mut events = t.runner.events();
    let runner = t.runner.clone();
    let task = tokio::spawn(async move {
        runner
            .deploy(
                request(2)
                    .strategy(steps)
                    .bake_time(Duration::from_secs(600)),
            )
            .await
    });
    loop {
        let e = events.recv().await.unwrap();
        let here = match e.kind {
            EventKind::ApprovalRequested { .. } => at_approval,
            EventKind::PhaseEntered { phase: Phase::Bake } => !at_approval,
            _ => false,
        };
        if here {
            return (task, e.deployment);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_approval_from_another_engine_passes_the_gate() {
    let t = two();
    let (task, id) = started(&t, gated(1), true).await;
    let status = t.operator.status(&id).await.unwrap();
    assert_eq!(status.phase, Phase::Rollout);
    assert!(
        matches!(
            status.waiting,
            Some(Waiting::Approval {
                rolls_back: true,
                ..
            })
        ),
        "{status:?}"
    );
    assert!(status.lease.is_some(), "the runner holds the lease");
    t.operator.command(&id, Command::Approve).await.unwrap();
    let report = task.await.unwrap().unwrap();
    assert!(report.succeeded(), "{}", report.outcome);
    assert_eq!(report.record.approvals_used, 1);
    // The finished deployment refuses further commands.
    match t.operator.command(&id, Command::Approve).await {
        Err(Error::DeploymentFinished { phase, .. }) => assert_eq!(phase, Phase::Done),
        other => panic!("{other:?}"),
    }
    t.w.assert_settled(&t.w.images[2]);
}

#[tokio::test(start_paused = true)]
async fn a_promotion_from_another_engine_cuts_the_bake_short() {
    let t = two();
    let (task, id) = started(&t, Steps::blue_green(), false).await;
    let started = tokio::time::Instant::now();
    t.operator.command(&id, Command::Promote).await.unwrap();
    let report = task.await.unwrap().unwrap();
    assert!(report.succeeded());
    assert!(
        started.elapsed() < Duration::from_secs(600),
        "the 600 s bake ran in full"
    );
    t.w.assert_settled(&t.w.images[2]);
}

#[tokio::test(start_paused = true)]
async fn an_abort_from_another_engine_rolls_back_and_watch_follows_it() {
    let t = two();
    let (task, id) = started(&t, Steps::blue_green(), false).await;
    let mut watch = Box::pin(t.operator.watch(&id));
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first.phase, Phase::Bake);
    assert!(matches!(first.waiting, Some(Waiting::Bake { .. })));
    t.operator
        .command(
            &id,
            Command::Abort {
                reason: "error budget spent".into(),
            },
        )
        .await
        .unwrap();
    let mut phases = vec![first.phase];
    while let Some(status) = watch.next().await {
        phases.push(status.unwrap().phase);
    }
    assert_eq!(phases.last(), Some(&Phase::RolledBack), "{phases:?}");
    let report = task.await.unwrap().unwrap();
    match report.outcome {
        Outcome::RolledBack {
            cause: RollbackCause::OperatorAbort { reason },
        } => assert_eq!(reason, "error budget spent"),
        other => panic!("{other}"),
    }
    let commands = t.runner.store().commands(&id).await.unwrap();
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0].by, "on-call");
    t.w.assert_settled(&t.w.images[1]);
}

#[tokio::test(start_paused = true)]
async fn two_approvals_given_at_once_pass_two_gates() {
    let t = two();
    let (task, id) = started(&t, gated(2), true).await;
    let (a, b) = tokio::join!(
        t.operator.command(&id, Command::Approve),
        t.operator.command(&id, Command::Approve)
    );
    a.unwrap();
    b.unwrap();
    let report = task.await.unwrap().unwrap();
    assert!(report.succeeded(), "{}", report.outcome);
    assert_eq!(report.record.approvals_used, 2, "one approval per gate");
}

#[tokio::test(start_paused = true)]
async fn an_abort_given_while_no_runner_lives_applies_on_resume() {
    let t = two();
    assert!(t.runner.deploy(request(1)).await.unwrap().succeeded());
    // The runner dies in the middle of the v2 rollout (right after a health read).
    let mut events = t.runner.events();
    let runner = t.runner.clone();
    let cloud = t.w.cloud.clone();
    let run = tokio::spawn(async move {
        tokio::select! {
            _ = runner.deploy(request(2).bake_time(Duration::from_secs(600))) => panic!("not cut off"),
            _ = cloud.crashed() => {}
        }
    });
    while events.recv().await.unwrap().kind != (EventKind::PhaseEntered { phase: Phase::Bake }) {}
    t.w.cloud.crash_after_call(1);
    run.await.unwrap();
    let id = t.operator.store().unfinished(None).await.unwrap()[0]
        .id
        .clone();
    t.operator
        .command(
            &id,
            Command::Abort {
                reason: "given while the runner was down".into(),
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(settings().lease_ttl).await;
    let report = t.operator.resume(&id).await.unwrap();
    match report.outcome {
        Outcome::RolledBack {
            cause: RollbackCause::OperatorAbort { reason },
        } => assert_eq!(reason, "given while the runner was down"),
        other => panic!("{other}"),
    }
    t.w.assert_settled(&t.w.images[1]);
}

#[tokio::test(start_paused = true)]
async fn a_suspended_run_releases_its_lease_and_resumes_where_it_was() {
    let t = two();
    let (task, id) = started(&t, Steps::blue_green(), false).await;
    t.runner.suspend(&id).unwrap();
    match task.await.unwrap() {
        Err(Error::Suspended { phase, .. }) => assert_eq!(phase, Phase::Bake),
        other => panic!("{other:?}"),
    }
    let web = immutable_core::ServiceName::new("web").unwrap();
    assert_eq!(
        t.runner.store().lease(&web).await.unwrap(),
        None,
        "lease released"
    );
    assert_eq!(t.operator.status(&id).await.unwrap().phase, Phase::Bake);
    // No waiting for a lease to expire: another engine resumes at once.
    let report = t.operator.resume(&id).await.unwrap();
    assert!(report.succeeded());
    t.w.assert_settled(&t.w.images[2]);
}
