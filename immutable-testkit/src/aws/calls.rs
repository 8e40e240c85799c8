//! Counting AWS calls: by operation, per engine phase, and through the listener's weights.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use immutable_aws::AwsClients;
use immutable_core::{DeploymentRequest, Engine, EventKind, Phase};

use super::World;

/// Counts AWS operations by name.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(
    /// The operations seen, in order.
    pub Arc<Mutex<Vec<String>>>,
);

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_serialization(
        &self,
        _ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = cfg.load::<Metadata>().map_or("unknown", |m| m.name());
        self.0.lock().unwrap().push(name.to_owned());
        Ok(())
    }
}

impl CallCounter {
    /// The operations seen since the last take.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// Calls per operation.
    pub fn counts(calls: &[String]) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for c in calls {
            *m.entry(c.clone()).or_default() += 1;
        }
        m
    }
}

/// EC2, ELBv2 and Auto Scaling clients of `sdk` whose every call passes through `interceptor`.
pub fn clients_through(
    sdk: &aws_types::SdkConfig,
    interceptor: &(impl Intercept + Clone + 'static),
) -> AwsClients {
    AwsClients {
        ec2: aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(sdk)
                .interceptor(interceptor.clone())
                .build(),
        ),
        elbv2: aws_sdk_elasticloadbalancingv2::Client::from_conf(
            aws_sdk_elasticloadbalancingv2::config::Builder::from(sdk)
                .interceptor(interceptor.clone())
                .build(),
        ),
        autoscaling: aws_sdk_autoscaling::Client::from_conf(
            aws_sdk_autoscaling::config::Builder::from(sdk)
                .interceptor(interceptor.clone())
                .build(),
        ),
        sdk: sdk.clone(),
    }
}

/// The target groups a listener's default action forwards to, with their weights, read
/// through the AWS API.
pub async fn listener_forwards(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    listener: &str,
) -> Vec<(String, i32)> {
    let out = elb
        .describe_listeners()
        .listener_arns(listener)
        .send()
        .await
        .unwrap();
    out.listeners()[0]
        .default_actions()
        .iter()
        .filter_map(|a| a.forward_config())
        .flat_map(|f| f.target_groups())
        .map(|t| {
            (
                t.target_group_arn().unwrap().to_owned(),
                t.weight().unwrap_or(1),
            )
        })
        .collect()
}

/// AWS calls of a v1 -> v2 deployment through `engine`, per phase, with the polls of each wait
/// counted once (their number follows timing, not fleet size).
pub async fn calls_per_phase(
    w: &World,
    engine: &Engine,
    request: impl Fn(&str) -> DeploymentRequest,
) -> BTreeMap<String, BTreeMap<String, usize>> {
    let first = engine.deploy(request("web-v1")).await.unwrap();
    assert!(first.succeeded(), "{:?}", first.outcome);
    w.calls.take();
    let per_phase: Arc<Mutex<BTreeMap<String, BTreeMap<String, usize>>>> = Arc::default();
    let calls = w.calls.clone();
    let sink = per_phase.clone();
    let current = Arc::new(Mutex::new(Phase::Plan.to_string()));
    engine.subscribe(move |e| {
        if let EventKind::PhaseEntered { phase } = e.kind {
            let mut cur = current.lock().unwrap();
            let bucket = std::mem::replace(&mut *cur, phase.to_string());
            let mut sink = sink.lock().unwrap();
            let entry = sink.entry(bucket).or_default();
            for (op, n) in CallCounter::counts(&calls.take()) {
                *entry.entry(op).or_default() += n;
            }
        }
    });
    let second = engine.deploy(request("web-v2")).await.unwrap();
    assert!(second.succeeded(), "{:?}", second.outcome);
    let mut out = per_phase.lock().unwrap().clone();
    // Calls after the last phase change (the lease release makes none).
    let rest = CallCounter::counts(&w.calls.take());
    if !rest.is_empty() {
        out.insert("after done".into(), rest);
    }
    for (phase, ops) in out.iter_mut() {
        if matches!(phase.as_str(), "attach" | "await_healthy" | "bake") {
            for op in [
                "DescribeInstances",
                "DescribeTargetHealth",
                "DescribeAutoScalingGroups",
            ] {
                if let Some(n) = ops.get_mut(op) {
                    *n = (*n).min(1);
                }
            }
        }
    }
    out
}

/// Calls per phase written as a table: `(phase, [(operation, calls)])`.
pub fn calls_table(
    table: &[(&str, &[(&str, usize)])],
) -> BTreeMap<String, BTreeMap<String, usize>> {
    table
        .iter()
        .map(|(phase, ops)| {
            let ops = ops.iter().map(|(op, n)| ((*op).to_owned(), *n)).collect();
            ((*phase).to_owned(), ops)
        })
        .collect()
}

/// Asserts that calls per phase are the same for a small and a large fleet, printing them.
pub fn assert_calls_constant(
    small: &BTreeMap<String, BTreeMap<String, usize>>,
    large: &BTreeMap<String, BTreeMap<String, usize>>,
    large_size: u32,
    what: &str,
) {
    for (phase, ops) in large {
        println!("{phase:>14}: {ops:?}");
    }
    assert_eq!(
        small, large,
        "calls per phase differ between 2 and {large_size} instances"
    );
    let total: usize = large.values().flat_map(|o| o.values()).sum();
    println!("total AWS calls of a v1 -> v2 deployment {what} (one poll per wait): {total}");
}
