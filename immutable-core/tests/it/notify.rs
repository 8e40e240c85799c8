//! Notifications through a real HTTP receiver on loopback: what each notifier wants, in
//! order; retried through failures and delivered once; bounded when nobody answers, and shown
//! in `status`; exactly once across a crash at every journal write.
#![allow(clippy::print_stdout)]

mod receiver;
mod slack;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use immutable_core::notify::{Delivery, WebhookNotifier};
use immutable_core::{
    Check, CheckContext, CheckOutcome, Clock, Command, DeploymentId, DeploymentRecord,
    DeploymentRequest, Engine, InMemoryStore, Notify, OnTimeout, Phase, Settings, StateStore, Step,
    Steps, Trigger,
};
use immutable_mock::{MockCloud, Timings};
use receiver::{Answer, Receiver};

use crate::common::*;
use crate::crash::crashing_store;

/// Real-time settings for a deployment of well under a second on an instant mock.
fn fast() -> Settings {
    settings()
        .with_poll_interval(Duration::from_millis(10))
        .with_poll_ceiling(Duration::from_millis(50))
}

fn fast_request(version: u32) -> DeploymentRequest {
    request(version)
        .bake_time(Duration::from_millis(50))
        .health_timeout(Duration::from_secs(30))
}

fn webhook(name: &str, to: &Receiver) -> Notify {
    Notify::new(name, WebhookNotifier::new(&to.url()).unwrap()).unwrap()
}

/// An instant cloud and a store where web-v1 serves, deployed by an engine that notifies
/// nobody.
async fn serving_v1() -> (MockCloud, InMemoryStore) {
    let cloud = seeded_cloud(Timings::instant()).cloud;
    let store = InMemoryStore::new();
    let quiet = builder_on(&cloud, store.clone())
        .settings(fast())
        .build()
        .unwrap();
    assert!(quiet.deploy(fast_request(1)).await.unwrap().succeeded());
    (cloud, store)
}

/// Waits (bounded) until `receiver` has accepted a message of `event`, and returns it.
async fn first_of(receiver: &Receiver, event: &str) -> serde_json::Value {
    for _ in 0..1000 {
        if let Some(m) = receiver
            .accepted()
            .into_iter()
            .find(|m| m["event"] == event)
        {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "no `{event}` notification within 10 s; got {:?}",
        receiver.events()
    );
}

fn deliveries(rec: &DeploymentRecord) -> Vec<(String, String, Delivery)> {
    rec.notifications
        .deliveries()
        .map(|(name, out, d)| (name.to_owned(), out.event.name().to_owned(), d.clone()))
        .collect()
}

#[tokio::test]
async fn a_gated_canary_notifies_exactly_what_each_notifier_wants_in_order() {
    let (all, gates) = (
        Receiver::start(Answer::Accept).await,
        Receiver::start(Answer::Accept).await,
    );
    let (cloud, store) = serving_v1().await;
    let engine = builder_on(&cloud, store.clone())
        .settings(fast())
        .notify(webhook("all", &all))
        .notify(webhook("gates", &gates).on([
            Trigger::ApprovalWaiting,
            Trigger::RolledBack,
            Trigger::Succeeded,
        ]))
        .build()
        .unwrap();
    let steps = Steps::canary([10, 50, 100], Duration::from_millis(20))
        .with_approval(Duration::from_secs(3600), OnTimeout::RollBack);
    let task = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.deploy(fast_request(2).strategy(steps)).await })
    };

    // The gate's notification is what a person acts on: its deployment id approves.
    let gate = first_of(&gates, "approval_waiting").await;
    let id = DeploymentId::parse(gate["deployment"].as_str().unwrap()).unwrap();
    assert!(gate["approval"]["deadline"].is_string(), "{gate}");
    engine.command(&id, Command::Approve).await.unwrap();
    let report = task.await.unwrap().unwrap();
    assert!(report.succeeded(), "{}", report.outcome);

    let rec = store.load(&id).await.unwrap();
    let mut expected = vec!["started".to_owned()];
    for taken in &rec.steps_taken {
        if matches!(taken.step, Step::Approval { .. }) {
            expected.push("approval_waiting".into());
        }
        expected.push("step_passed".into());
    }
    expected.push("succeeded".into());
    assert_eq!(
        all.events(),
        expected,
        "every trigger, in the order it happened"
    );
    assert_eq!(gates.events(), ["approval_waiting", "succeeded"]);

    let messages = all.accepted();
    let steps: Vec<u64> = messages
        .iter()
        .filter(|m| m["event"] == "step_passed")
        .map(|m| m["step"]["index"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (0..rec.steps_taken.len() as u64).collect::<Vec<_>>());
    let keys: std::collections::BTreeSet<_> = messages
        .iter()
        .map(|m| m["dedupe_key"].to_string())
        .collect();
    assert_eq!(
        keys.len(),
        messages.len(),
        "one dedupe key per notification"
    );
    let done = messages.last().unwrap();
    assert_eq!(done["version"], 1);
    assert_eq!(done["service"], "web");
    assert_eq!(done["deployment"], id.to_string());
    assert_eq!(
        done["phase"], "done",
        "the phase as saved before it was announced"
    );
    assert_eq!(done["weight"], 100);
    assert!(
        deliveries(&rec)
            .iter()
            .all(|(_, _, d)| matches!(d, Delivery::Sent { attempts: 1, .. })),
        "{:?}",
        deliveries(&rec)
    );
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_each_message_once_on_the_third_attempt() {
    let flaky = Receiver::start(Answer::FailFirst(2)).await;
    let (cloud, store) = serving_v1().await;
    let engine = builder_on(&cloud, store.clone())
        .settings(fast())
        .notify(webhook("flaky", &flaky))
        .build()
        .unwrap();
    let report = engine.deploy(fast_request(2)).await.unwrap();
    assert!(report.succeeded());

    let rec = store.load(&report.record.id).await.unwrap();
    let mut expected = vec!["started"];
    expected.extend(rec.steps_taken.iter().map(|_| "step_passed"));
    expected.push("succeeded");
    let events = flaky.events();
    assert_eq!(events, expected, "each message once");
    let attempts = flaky.attempts();
    assert_eq!(attempts.len(), events.len());
    assert!(attempts.values().all(|&n| n == 3), "{attempts:?}");
    assert!(
        deliveries(&rec)
            .iter()
            .all(|(_, _, d)| matches!(d, Delivery::Sent { attempts: 3, .. })),
        "{:?}",
        deliveries(&rec)
    );
}

#[tokio::test(start_paused = true)]
async fn a_receiver_that_never_answers_costs_at_most_the_timeout_per_notification_and_shows_in_status()
 {
    let silent = Receiver::start(Answer::Never).await;
    let timeout = Duration::from_secs(10);
    let w = world();
    assert!(w.setup_engine.deploy(request(1)).await.unwrap().succeeded());
    let started = tokio::time::Instant::now();
    assert!(w.engine.deploy(request(2)).await.unwrap().succeeded());
    let quiet = started.elapsed();

    let engine = w
        .builder()
        .notify(webhook("silent", &silent).timeout(timeout))
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let report = engine.deploy(request(3)).await.unwrap();
    let slow = started.elapsed();
    assert!(
        report.succeeded(),
        "a failed delivery never fails a deployment"
    );

    let status = engine.status(&report.record.id).await.unwrap();
    let failed: Vec<_> = status.notifications.failed().collect();
    let sent = status.notifications.entries().len();
    assert_eq!(
        failed.len(),
        sent,
        "every delivery failed, and status says so"
    );
    assert!(sent >= 3, "started, a step, succeeded: {sent}");
    for (name, _, d) in &failed {
        assert_eq!(*name, "silent");
        assert!(d.to_string().contains("no answer within 10s"), "{d}");
    }
    let bound = quiet + timeout * sent as u32 + settings().poll_interval;
    println!(
        "virtual time: {quiet:?} without a notifier, {slow:?} with one that never answers ({sent} notifications)"
    );
    assert!(slow <= bound, "{slow:?} > {bound:?}");
    assert!(
        slow >= quiet + timeout * sent as u32,
        "each delivery waited its timeout"
    );
}

/// A check that fails: the canary rolls back at 50 %.
#[derive(Debug)]
struct Fails;

#[async_trait]
impl Check for Fails {
    async fn run(&self, _: &CheckContext<'_>) -> CheckOutcome {
        CheckOutcome::Fail {
            reason: "7% of requests failed".into(),
        }
    }
}

/// The wall clock an hour ahead: a restarted runner takes the dead one's lease over at once.
#[derive(Debug)]
struct HourAhead;

impl Clock for HourAhead {
    fn now(&self) -> SystemTime {
        SystemTime::now() + Duration::from_secs(3600)
    }
}

struct CutRun {
    /// Accepted messages per dedupe key.
    received: BTreeMap<String, usize>,
    events: Vec<String>,
    writes: usize,
    phase: Phase,
}

/// A canary with an approval gate whose check fails at 50 %, cut after the `cut`-th journal write (none: run
/// through), then resumed by a fresh engine.
async fn cut_run(cut: Option<usize>) -> CutRun {
    let hook = Arc::new(Receiver::start(Answer::Accept).await);
    let cloud = seeded_cloud(Timings::instant()).cloud;
    let store = crashing_store();
    let build = |clock: Option<HourAhead>| {
        let b = builder_on(&cloud, store.clone())
            .settings(fast())
            .check("errors", Fails)
            .notify(webhook("ops", &hook));
        match clock {
            Some(c) => b.clock(c).build().unwrap(),
            None => b.build().unwrap(),
        }
    };
    let quiet: Engine = builder_on(&cloud, store.clone())
        .settings(fast())
        .build()
        .unwrap();
    assert!(quiet.deploy(fast_request(1)).await.unwrap().succeeded());
    let before = store.hooks().writes();

    let steps = Steps::from_steps(
        "canary-with-check",
        vec![
            Step::Shift { percent: 10 },
            Step::Approval {
                timeout: Duration::from_secs(7200),
                on_timeout: OnTimeout::RollBack,
            },
            Step::Pause {
                duration: Duration::from_millis(20),
            },
            Step::Shift { percent: 50 },
            Step::Checks {
                names: vec!["errors".into()],
            },
            Step::Shift { percent: 100 },
        ],
    )
    .unwrap();
    // Someone approves what the gate's notification names, whichever run sends it, through
    // the store but not its crash hooks (they cut the runner's writes, not the operator's).
    let operator = builder_on(&cloud, store.inner().clone()).build().unwrap();
    let approver = {
        let hook = Arc::clone(&hook);
        tokio::spawn(async move {
            let gate = first_of(&hook, "approval_waiting").await;
            let id = DeploymentId::parse(gate["deployment"].as_str().unwrap()).unwrap();
            operator.command(&id, Command::Approve).await.unwrap();
        })
    };
    let first = build(None);
    if let Some(n) = cut {
        store.hooks().crash_after_write(n);
    }
    let finished = tokio::select! {
        r = first.deploy(fast_request(2).strategy(steps.clone())) => Some(r.unwrap()),
        _ = store.hooks().crashed() => None,
    };
    drop(first);
    let v2 = fast_request(2).image;
    let planned = |records: Vec<DeploymentRecord>| {
        records
            .into_iter()
            .find(|r| r.spec.image == v2)
            .map(|r| r.id)
    };
    let id = match (finished, planned(store.inner().list(None).await.unwrap())) {
        (Some(report), _) => report.record.id,
        // A fresh engine, as after a restart, resumes the deployment by its id (a finished
        // one delivers what its runner left pending)...
        (None, Some(id)) => {
            let _ = build(Some(HourAhead)).resume(&id).await.unwrap();
            id
        }
        // ...or, cut before its record was written, deploys again.
        (None, None) => {
            let report = build(Some(HourAhead))
                .deploy(fast_request(2).strategy(steps))
                .await
                .unwrap();
            report.record.id
        }
    };
    approver.await.unwrap();
    let rec = store.inner().load(&id).await.unwrap();
    let mut received = BTreeMap::new();
    for m in hook.accepted() {
        *received
            .entry(m["dedupe_key"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    CutRun {
        received,
        events: hook.events(),
        writes: store.hooks().writes() - before,
        phase: rec.phase,
    }
}

#[tokio::test]
async fn a_deployment_cut_at_every_journal_write_and_resumed_notifies_exactly_once() {
    let whole = cut_run(None).await;
    assert_eq!(whole.phase, Phase::RolledBack);
    assert_eq!(
        whole.events,
        [
            "started",
            "step_passed",
            "approval_waiting",
            "step_passed",
            "step_passed",
            "step_passed",
            "rollback_started",
            "rolled_back"
        ]
    );
    let mut cuts = 0;
    for n in 1..=whole.writes {
        let run = cut_run(Some(n)).await;
        assert_eq!(run.phase, Phase::RolledBack, "cut after write {n}");
        let twice: Vec<_> = run.received.iter().filter(|(_, c)| **c > 1).collect();
        assert!(
            twice.is_empty(),
            "cut after write {n}: sent twice: {twice:?}"
        );
        let mut events = run.events.clone();
        events.sort();
        let mut expected = whole.events.clone();
        expected.sort();
        assert_eq!(events, expected, "cut after write {n}: none missed");
        cuts += 1;
    }
    println!(
        "notifications: cut after each of {cuts} journal writes, each resumed, each notification delivered exactly once"
    );
    assert_eq!(cuts, whole.writes);
}
