//! The timeline the journal keeps per deployment: written with the record, readable by any
//! process sharing the store, with weights, health of both fleets, checks, commands and who
//! gave them, phases and the rollback cause.

use std::time::Duration;

use immutable_core::{
    Command, DeploymentRecord, EventKind, FileStore, Mark, OnTimeout, Phase, Side, Steps,
};

use crate::common::*;
use immutable_mock::FailsAtWeight;

fn weights(rec: &DeploymentRecord) -> Vec<u32> {
    rec.timeline
        .entries()
        .iter()
        .filter_map(|e| match e.mark {
            Mark::Weight { percent } => Some(percent),
            _ => None,
        })
        .collect()
}

fn phases(rec: &DeploymentRecord) -> Vec<Phase> {
    rec.timeline
        .entries()
        .iter()
        .filter_map(|e| match e.mark {
            Mark::Phase { phase, .. } => Some(phase),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_gated_canary_leaves_its_weights_health_gate_and_approver_in_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let w = world();
    let runner = builder_on(&w.cloud, FileStore::open(dir.path()).unwrap())
        .build()
        .unwrap();
    // Another process: its own store over the same directory.
    let operator = builder_on(&w.cloud, FileStore::open(dir.path()).unwrap())
        .identity("alice")
        .build()
        .unwrap();
    assert!(runner.deploy(request(1)).await.unwrap().succeeded());
    let steps = Steps::canary([20, 100], Duration::from_secs(60))
        .with_approval(Duration::from_secs(3600), OnTimeout::RollBack);
    let mut events = runner.events();
    let task = {
        let runner = runner.clone();
        tokio::spawn(async move { runner.deploy(request(2).strategy(steps)).await })
    };
    let id = loop {
        let e = events.recv().await.unwrap();
        if matches!(e.kind, EventKind::ApprovalRequested { .. }) {
            break e.deployment;
        }
    };

    // Waiting at the gate (before the first shift): the other process reads it already.
    let waiting = operator.store().load(&id).await.unwrap();
    let marks = waiting.timeline.entries();
    assert!(
        matches!(
            marks.last().map(|e| &e.mark),
            Some(Mark::ApprovalRequested { .. })
        ),
        "{marks:?}"
    );
    assert_eq!(weights(&waiting), [] as [u32; 0]);
    assert!(waiting.timeline.last_health(Side::Green).is_some());

    operator.command(&id, Command::Approve).await.unwrap();
    let report = task.await.unwrap().unwrap();
    assert!(report.succeeded(), "{}", report.outcome);

    let rec = operator.store().load(&id).await.unwrap();
    assert_eq!(weights(&rec), [20, 100], "one mark per weight change");
    assert_eq!(phases(&rec), SUCCESS_PHASES);
    let approver: Vec<&str> = rec
        .timeline
        .entries()
        .iter()
        .filter_map(|e| match &e.mark {
            Mark::Command {
                command: Command::Approve,
                by,
                ..
            } => Some(by.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(approver, ["alice"], "the approval, with who gave it, once");
    assert_eq!(
        rec.timeline.last_health(Side::Green),
        Some((CAPACITY as usize, Some(CAPACITY as usize)))
    );
    assert!(
        rec.timeline.last_health(Side::Blue).is_some(),
        "the old fleet's health, as the bake read it"
    );
    let times: Vec<_> = rec.timeline.entries().iter().map(|e| e.at).collect();
    assert!(times.is_sorted(), "entries in time order");
    assert!(rec.time_to_healthy().is_some());
    assert_eq!(rec.timeline.dropped(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_check_leaves_the_check_the_cause_and_the_weight_back_at_zero() {
    let w = world();
    let engine = w
        .builder()
        .check("error-rate", FailsAtWeight::new(50))
        .build()
        .unwrap();
    assert!(engine.deploy(request(1)).await.unwrap().succeeded());
    let steps = Steps::canary([10, 50, 100], Duration::from_secs(60))
        .with_checks(Vec::<String>::new(), ["error-rate"]);
    let report = engine.deploy(request(2).strategy(steps)).await.unwrap();
    assert!(!report.succeeded());
    let rec = engine.store().load(&report.record.id).await.unwrap();
    assert_eq!(
        weights(&rec),
        [10, 50, 0],
        "forward twice, then back in one call"
    );
    let checks: Vec<bool> = rec
        .timeline
        .entries()
        .iter()
        .filter_map(|e| match e.mark {
            Mark::Check { passed, .. } => Some(passed),
            _ => None,
        })
        .collect();
    assert_eq!(checks, [true, false]);
    assert!(
        rec.timeline
            .entries()
            .iter()
            .any(|e| matches!(&e.mark, Mark::RollbackStarted { cause } if cause.to_string().contains("error-rate"))),
        "the rollback and its cause"
    );
    assert_eq!(phases(&rec).last(), Some(&Phase::RolledBack));
}
