//! `CloudWatchAlarmCheck` on moto's CloudWatch: alarms put, their states set with
//! SetAlarmState, and the check read against them, alone, gating a deployment on the mock and
//! as the bake gate of a wave plan on the mock; and its retries of throttled reads, scripted
//! with aws-smithy-mocks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{CallCounter, Moto};
use aws_sdk_cloudwatch::config::retry::RetryConfig;
use aws_sdk_cloudwatch::operation::describe_alarms::{DescribeAlarmsError, DescribeAlarmsOutput};
use aws_sdk_cloudwatch::types::{ComparisonOperator, MetricAlarm, StateValue, Statistic};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use aws_smithy_types::error::ErrorMetadata;
use immutable_aws::{AwsConfig, CloudWatchAlarmCheck, InsufficientData};
use immutable_core::{
    Check, CheckContext, CheckOutcome, DeploymentId, Error, InMemoryStore, OnWaveFailure,
    ServiceName, StateStore, TargetId, WaveBake, WaveEventKind, WaveFailure, WavePlan, WaveRunner,
    WaveState,
};
use immutable_mock::MockCloud;
use immutable_testkit::regions::{GatedCanary, failed_check, gate_rounds, regions, web};

/// A CloudWatch client on moto that counts its calls.
async fn cloudwatch(moto: &Moto, calls: &CallCounter) -> aws_sdk_cloudwatch::Client {
    let clients = AwsConfig::from_env()
        .with_region("us-east-1")
        .with_endpoint_url(&moto.url)
        .with_static_credentials("testing", "testing")
        .load()
        .await;
    aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(&clients.sdk)
            .interceptor(calls.clone())
            .build(),
    )
}

async fn put_alarm(cw: &aws_sdk_cloudwatch::Client, name: &str) {
    cw.put_metric_alarm()
        .alarm_name(name)
        .namespace("App")
        .metric_name("Errors")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(5.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
}

async fn set_state(cw: &aws_sdk_cloudwatch::Client, name: &str, state: StateValue, why: &str) {
    cw.set_alarm_state()
        .alarm_name(name)
        .state_value(state)
        .state_reason(why)
        .send()
        .await
        .unwrap();
}

async fn run(check: &CloudWatchAlarmCheck) -> CheckOutcome {
    let cloud = MockCloud::new();
    let deployment = DeploymentId::generate();
    let service = ServiceName::new("web").unwrap();
    let target = TargetId::new("tg-green");
    check
        .run(&CheckContext::new(
            &deployment,
            &service,
            &target,
            10,
            &cloud,
        ))
        .await
}

fn reason(outcome: CheckOutcome) -> String {
    match outcome {
        CheckOutcome::Fail { reason } => reason,
        CheckOutcome::Pass => panic!("expected a failure"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_follows_the_alarms_states() {
    let moto = Moto::start();
    let cw = cloudwatch(&moto, &CallCounter::default()).await;
    for name in ["web-5xx", "web-latency"] {
        put_alarm(&cw, name).await;
        set_state(&cw, name, StateValue::Ok, "all quiet").await;
    }
    let check = CloudWatchAlarmCheck::from_client(cw.clone(), ["web-5xx", "web-latency"]).unwrap();
    assert_eq!(run(&check).await, CheckOutcome::Pass);

    set_state(&cw, "web-latency", StateValue::Alarm, "p99 above 900 ms").await;
    let r = reason(run(&check).await);
    assert_eq!(r, "alarm `web-latency` is in ALARM: p99 above 900 ms");

    set_state(&cw, "web-latency", StateValue::Ok, "recovered").await;
    set_state(
        &cw,
        "web-5xx",
        StateValue::InsufficientData,
        "no datapoints",
    )
    .await;
    assert_eq!(run(&check).await, CheckOutcome::Pass, "passes by default");
    let strict = check.insufficient_data(InsufficientData::Fail);
    let r = reason(run(&strict).await);
    assert_eq!(r, "alarm `web-5xx` has insufficient data: no datapoints");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_alarm_fails_naming_it() {
    let moto = Moto::start();
    let cw = cloudwatch(&moto, &CallCounter::default()).await;
    put_alarm(&cw, "web-5xx").await;
    // `{{service}}` takes the service's name: "web-5xx" exists, "web-5xxx" does not.
    let check = CloudWatchAlarmCheck::from_client(cw, ["{{service}}-5xx", "web-5xxx"]).unwrap();
    let r = reason(run(&check).await);
    assert_eq!(r, "alarm `web-5xxx` does not exist (is its name right?)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_read_100_a_call() {
    let moto = Moto::start();
    let calls = CallCounter::default();
    let cw = cloudwatch(&moto, &calls).await;
    let names: Vec<String> = (0..150).map(|i| format!("web-alarm-{i:03}")).collect();
    for name in &names {
        put_alarm(&cw, name).await;
    }
    set_state(&cw, "web-alarm-149", StateValue::Alarm, "threshold crossed").await;
    calls.take();
    let check = CloudWatchAlarmCheck::from_client(cw, names).unwrap();
    let r = reason(run(&check).await);
    assert_eq!(r, "alarm `web-alarm-149` is in ALARM: threshold crossed");
    assert_eq!(calls.take(), ["DescribeAlarms", "DescribeAlarms"]);
}

/// A client whose `DescribeAlarms` answers follow `rule`.
fn scripted(rule: &Rule) -> aws_sdk_cloudwatch::Client {
    let interceptor = MockResponseInterceptor::new()
        .rule_mode(RuleMode::Sequential)
        .with_rule(rule);
    aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::Config::builder()
            .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .http_client(create_mock_http_client())
            .interceptor(interceptor)
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

fn aws_error(code: &str) -> DescribeAlarmsError {
    DescribeAlarmsError::generic(
        ErrorMetadata::builder()
            .code(code)
            .message("scripted")
            .build(),
    )
}

fn one_quiet_alarm() -> DescribeAlarmsOutput {
    DescribeAlarmsOutput::builder()
        .metric_alarms(
            MetricAlarm::builder()
                .alarm_name("web-5xx")
                .state_value(StateValue::Ok)
                .build(),
        )
        .build()
}

#[tokio::test(start_paused = true)]
async fn a_throttled_read_is_retried() {
    let rule = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .sequence()
        .error(|| aws_error("Throttling"))
        .times(2)
        .output(one_quiet_alarm)
        .build();
    let check = CloudWatchAlarmCheck::from_client(scripted(&rule), ["web-5xx"]).unwrap();
    assert_eq!(run(&check).await, CheckOutcome::Pass);
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_read_that_keeps_failing_fails_the_check() {
    let rule = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .sequence()
        .error(|| aws_error("AccessDenied"))
        .repeatedly()
        .build();
    let check = CloudWatchAlarmCheck::from_client(scripted(&rule), ["web-5xx"]).unwrap();
    let r = reason(run(&check).await);
    assert!(
        r.starts_with("cannot read the alarms' states")
            && r.contains("DescribeAlarms failed: AccessDenied")
            && r.contains("IAM policy"),
        "{r}"
    );
    assert_eq!(rule.num_calls(), 1, "a denial is not retried");
}

#[test]
fn an_empty_list_is_refused() {
    let rule = mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_output(one_quiet_alarm);
    for names in [vec![], vec![" ".to_owned()]] {
        let err = CloudWatchAlarmCheck::from_client(scripted(&rule), names).unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { ref field, .. } if field == "alarms"),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_in_alarm_rolls_the_deployment_back() {
    let moto = Moto::start();
    let cw = cloudwatch(&moto, &CallCounter::default()).await;
    put_alarm(&cw, "web-5xx").await;
    set_state(&cw, "web-5xx", StateValue::Ok, "all quiet").await;

    let alarms = CloudWatchAlarmCheck::from_client(cw.clone(), ["{{service}}-5xx"]).unwrap();
    let gated = GatedCanary::new("alarms", alarms, 20);
    let first = gated.deploy("web-v1").await;
    assert!(first.succeeded(), "{:?}", first.outcome);

    set_state(&cw, "web-5xx", StateValue::Alarm, "5xx above 5 a minute").await;
    let report = gated.deploy("web-v2").await;
    let reason = failed_check(&report, "alarms", 20);
    assert_eq!(reason, "alarm `web-5xx` is in ALARM: 5xx above 5 a minute");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_in_the_bake_stops_the_waves_and_halts_the_rest() {
    let moto = Moto::start();
    let cw = cloudwatch(&moto, &CallCounter::default()).await;
    put_alarm(&cw, "web-5xx").await;
    set_state(&cw, "web-5xx", StateValue::Ok, "all quiet").await;

    let shared: Arc<dyn StateStore> = Arc::new(InMemoryStore::new());
    let regions = regions(["eu-west-1", "us-east-1"], &shared).await;
    let (eu, us) = (&regions[0], &regions[1]);
    let us_calls = us.cloud.calls().len();
    let alarms = CloudWatchAlarmCheck::from_client(cw.clone(), ["{{service}}-5xx"]).unwrap();
    let runner = WaveRunner::builder()
        .store_shared(Arc::clone(&shared))
        .poll_interval(Duration::from_millis(50))
        .check("alarms", alarms)
        .engine(eu.name, eu.engine.clone())
        .engine(us.name, us.engine.clone())
        .build()
        .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&events);
    runner.subscribe(move |e| log.lock().unwrap().push(e.clone()));
    // Long enough that only the gate can end it early: on a pass, wave 2 would start after it.
    let plan = WavePlan::new(web("web-v2"))
        .wave("first", [eu.name])
        .wave("second", [us.name])
        .bake(
            WaveBake::time(Duration::from_secs(30))
                .checks(["alarms"])
                .interval(Duration::from_millis(200)),
        )
        .on_failure(OnWaveFailure::HaltRest);
    let run = tokio::spawn(async move { runner.run(plan).await });

    // The alarm is OK while wave 1 deploys and through the bake's first gate rounds.
    let wait = Duration::from_secs(30);
    let deadline = Instant::now() + wait;
    while !gate_rounds(&events).contains(&true) {
        assert!(
            !run.is_finished(),
            "the plan ended before a gate round passed"
        );
        assert!(
            Instant::now() < deadline,
            "no gate round passed within {wait:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    set_state(&cw, "web-5xx", StateValue::Alarm, "5xx above 5 a minute").await;

    let report = tokio::time::timeout(wait, run)
        .await
        .expect("the plan did not end")
        .unwrap()
        .unwrap();
    assert_eq!(report.state, WaveState::Failed);
    let rec = &report.record;
    assert_eq!(
        rec.failure,
        Some(WaveFailure::Check {
            wave: 0,
            engine: "eu-west-1".into(),
            check: "alarms".into(),
            reason: "alarm `web-5xx` is in ALARM: 5xx above 5 a minute".into(),
        })
    );
    assert_eq!(gate_rounds(&events).last(), Some(&false));
    // Wave 2 never started: no deployment recorded, no call to its cloud.
    assert_eq!(rec.targets[1][0].deployment, None);
    assert!(
        !events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e.kind, WaveEventKind::WaveStarted { wave: 1, .. })),
        "wave 2 started"
    );
    assert_eq!(us.cloud.calls().len(), us_calls, "us-east-1 was called");
    assert_eq!(us.serving(), us.v1);
    // The plan halts the rest and keeps what wave 1 deployed; the halt stands for every engine.
    assert_eq!(rec.targets[0][0].rollback, None);
    assert_eq!(eu.serving(), eu.v2);
    let refused = us.engine.deploy(web("web-v2")).await;
    assert!(matches!(refused, Err(Error::Halted { .. })), "{refused:?}");
}
