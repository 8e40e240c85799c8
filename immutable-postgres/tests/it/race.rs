//! Runners in processes of their own, sharing only the PostgreSQL store: two race for one
//! service a hundred times and exactly one deploys each time; one killed with SIGKILL in the
//! middle of a deployment is taken over once its lease has expired, and the deployment
//! completes.

use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use immutable_core::{
    Command, DeploymentId, Engine, Error, EventKind, Operator, Phase, ServiceName, StateStore,
};

use crate::common::store;
use crate::runner::{ROUNDS, Runner, cloud, next, takeover_settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runner_processes_race_for_a_service_and_exactly_one_deploys_each_time() {
    let store = store("race").await;
    let (tx, lines) = mpsc::channel();
    let mut runners = [
        Runner::start("runner-a", "race", store.schema(), tx.clone()),
        Runner::start("runner-b", "race", store.schema(), tx),
    ];
    let operator = Operator::new(std::sync::Arc::new(store.clone()));
    let mut wins = [0usize; 2];
    for round in 0..ROUNDS {
        for runner in &mut runners {
            runner.go(round);
        }
        // Both answer: one waits at its approval gate, the other was refused.
        let (mut won, mut refused) = (Vec::new(), Vec::new());
        while won.len() + refused.len() < 2 {
            let (name, line) = tokio::task::block_in_place(|| next(&lines));
            let mut words = line.splitn(3, ' ');
            let (what, at, rest) = (words.next(), words.next(), words.next().unwrap_or(""));
            assert_eq!(at, Some(round.to_string().as_str()), "{name}: {line}");
            match what {
                Some("won") => won.push((name, DeploymentId::new(rest))),
                Some("refused") => refused.push((name, rest.to_owned())),
                _ => panic!("round {round}: {name} said {line}"),
            }
        }
        assert_eq!(
            won.len(),
            1,
            "round {round}: won {won:?}, refused {refused:?}"
        );
        assert!(
            refused[0].1.starts_with("Locked"),
            "round {round}: the loser was refused for another reason: {refused:?}"
        );
        let (winner, id) = won.pop().unwrap();
        wins[usize::from(winner == "runner-b")] += 1;
        operator.command(&id, Command::Approve).await.unwrap();
        let (name, line) = tokio::task::block_in_place(|| next(&lines));
        assert_eq!(
            (name, line.as_str()),
            (winner, format!("done {round} succeeded").as_str())
        );
    }
    // The journal: one deployment per round, each done, none left unfinished.
    let web = ServiceName::new("web").unwrap();
    let records = store.list(Some(&web)).await.unwrap();
    assert_eq!(records.len(), ROUNDS, "one record per round");
    for (round, record) in records.iter().enumerate() {
        assert_eq!(record.phase, Phase::Done, "round {round}");
        assert_eq!(record.image.name, format!("web-r{round}"), "round {round}");
    }
    assert!(store.unfinished(None).await.unwrap().is_empty());
    assert_eq!(
        store.lease(&web).await.unwrap(),
        None,
        "every lease released"
    );
    println!(
        "{ROUNDS} rounds: exactly one of two runner processes deployed each time (runner-a won \
         {}, runner-b {}); the other was refused with Locked",
        wins[0], wins[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_mid_deployment_is_taken_over_once_its_lease_expires() {
    let store = store("takeover").await;
    let (tx, lines) = mpsc::channel();
    let mut doomed = Runner::start("doomed", "hang", store.schema(), tx);
    let (_, line) = tokio::task::block_in_place(|| next(&lines));
    assert!(line.starts_with("launching"), "{line}");
    let web = ServiceName::new("web").unwrap();
    let open = store.unfinished(Some(&web)).await.unwrap();
    assert_eq!(open.len(), 1, "the killed runner's record");
    let id = open[0].id.clone();
    assert_eq!(open[0].phase, Phase::Provision);
    let held = store.lease(&web).await.unwrap().expect("its lease");
    doomed.child.kill().unwrap(); // SIGKILL
    doomed.child.wait().unwrap();

    let cloud = cloud();
    let engine = Engine::builder()
        .backends(cloud.backends())
        .store(store.clone())
        .settings(takeover_settings())
        .build()
        .unwrap();
    let mut events = engine.events();
    match engine.resume(&id).await {
        Err(Error::Locked { holder, .. }) => assert_eq!(holder, held.holder),
        other => panic!("resumed while the dead runner's lease lived: {other:?}"),
    }
    // Nobody renews it any more: it expires.
    loop {
        let lease = store
            .lease(&web)
            .await
            .unwrap()
            .expect("the lease stays until taken");
        if lease.expires_at <= SystemTime::now() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = engine.resume(&id).await.unwrap();
    assert!(report.succeeded(), "{:?}", report.outcome);
    let mut took_over = None;
    while let Ok(e) = events.try_recv() {
        if let EventKind::LeaseTakenOver {
            previous_holder,
            previous_deployment,
        } = e.kind
        {
            took_over = Some((previous_holder, previous_deployment));
        }
    }
    assert_eq!(took_over, Some((held.holder, id.clone())));
    assert_eq!(store.load(&id).await.unwrap().phase, Phase::Done);
    assert_eq!(cloud.snapshot().live_fleets(&web).len(), 1);
    assert_eq!(store.lease(&web).await.unwrap(), None);
}
