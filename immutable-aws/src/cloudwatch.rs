//! [`CloudWatchAlarmCheck`]: a check that fails while named CloudWatch alarms are in ALARM
//! (feature `cloudwatch`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use immutable_core::{Check, CheckContext, CheckOutcome, Error, ResourceKind, Result, RetryPolicy};

use crate::AwsClients;
use crate::error::{Call, MapAws};
use crate::paginate::all_pages;

/// The most alarm names one `DescribeAlarms` call takes.
const NAMES_PER_CALL: usize = 100;

/// What an alarm in `INSUFFICIENT_DATA` counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum InsufficientData {
    /// The alarm does not fail the check. The default, as with CodeDeploy, which rolls back
    /// on ALARM only: a new alarm, or one whose metric is quiet, has no data yet, and how
    /// missing datapoints count is the alarm's own `TreatMissingData` setting.
    #[default]
    Pass,
    /// The alarm fails the check: for gates that must see their metric before going on.
    Fail,
}

/// Fails while any of its alarms is in `ALARM`, or names an alarm that does not exist.
///
/// One run reads the alarms' states once (`DescribeAlarms`, up to 100 names a call, every
/// page read; metric and composite alarms alike) and fails when:
/// - an alarm is in `ALARM`: the reason names it with its `StateReason`;
/// - a name matches no alarm: an operator's typo must not pass silently;
/// - an alarm is in `INSUFFICIENT_DATA` and [`InsufficientData::Fail`] is set (by default it
///   passes).
///
/// An alarm name may contain `{{service}}`, replaced by the service's name when the check runs,
/// so that one check serves several services (`{{service}}-5xx`, say).
///
/// # Errors and throttling
/// A call that fails with a retryable error (throttling, 5xx, a timeout) is retried under
/// the check's [`RetryPolicy`] (by default 5 attempts, backoff from 200 ms). When it still
/// fails, or fails for good (access denied, say), the check fails with the mapped error in its
/// reason: a gate that cannot read its alarms does not let the deployment through.
///
/// # IAM
/// `cloudwatch:DescribeAlarms`.
///
/// ```no_run
/// # async fn demo() -> immutable_core::Result<()> {
/// use std::time::Duration;
/// use immutable_aws::{AwsConfig, CloudWatchAlarmCheck, InsufficientData};
/// use immutable_core::{Engine, Steps};
///
/// let clients = AwsConfig::from_env().load().await;
/// let alarms = CloudWatchAlarmCheck::new(&clients, ["{{service}}-5xx", "{{service}}-latency-p99"])?
///     .insufficient_data(InsufficientData::Fail);
/// let builder = Engine::builder().check("alarms", alarms);
/// let canary = Steps::canary([10, 100], Duration::from_secs(600))
///     .with_checks(Vec::<String>::new(), ["alarms"]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CloudWatchAlarmCheck {
    client: aws_sdk_cloudwatch::Client,
    alarms: BTreeSet<String>,
    insufficient_data: InsufficientData,
    retry: RetryPolicy,
}

impl CloudWatchAlarmCheck {
    /// A check of `alarms`, over the clients' AWS configuration.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] on `alarms` when the list or a name in it is empty.
    pub fn new<I>(clients: &AwsClients, alarms: I) -> Result<Self>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Self::from_client(aws_sdk_cloudwatch::Client::new(&clients.sdk), alarms)
    }

    /// A check of `alarms` with this client (one built from an `aws_config::SdkConfig`, say).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_client<I>(client: aws_sdk_cloudwatch::Client, alarms: I) -> Result<Self>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let alarms: BTreeSet<String> = alarms.into_iter().map(Into::into).collect();
        if alarms.is_empty() {
            return Err(Error::invalid("alarms", "no alarm named"));
        }
        if alarms.iter().any(|a| a.trim().is_empty()) {
            return Err(Error::invalid("alarms", "an alarm name is empty"));
        }
        Ok(CloudWatchAlarmCheck {
            client,
            alarms,
            insufficient_data: InsufficientData::default(),
            retry: RetryPolicy::default().with_max_attempts(5),
        })
    }

    /// What an alarm in `INSUFFICIENT_DATA` counts as. Default [`InsufficientData::Pass`].
    pub fn insufficient_data(mut self, outcome: InsufficientData) -> Self {
        self.insufficient_data = outcome;
        self
    }

    /// The retries of a throttled or failed read. Default: 5 attempts.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The states of the named alarms that exist, by name.
    async fn states(&self, names: &[String]) -> Result<BTreeMap<String, Alarm>> {
        let mut found = BTreeMap::new();
        for batch in names.chunks(NAMES_PER_CALL) {
            let alarms = self
                .retry
                .run(|| self.describe(batch), |_, _, _| {})
                .await?;
            found.extend(alarms.into_iter().map(|a| (a.name.clone(), a)));
        }
        Ok(found)
    }

    /// Every page of one `DescribeAlarms` call for `batch`.
    async fn describe(&self, batch: &[String]) -> Result<Vec<Alarm>> {
        let id = batch.join(", ");
        all_pages(|token| {
            let call = self
                .client
                .describe_alarms()
                .set_alarm_names(Some(batch.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .max_records(NAMES_PER_CALL as i32)
                .set_next_token(token);
            let id = id.as_str();
            async move {
                let out =
                    call.send()
                        .await
                        .aws(Call::new("DescribeAlarms", ResourceKind::Alarm, id))?;
                let metric = out
                    .metric_alarms()
                    .iter()
                    .map(|a| Alarm::new(a.alarm_name(), a.state_value(), a.state_reason()));
                let composite = out
                    .composite_alarms()
                    .iter()
                    .map(|a| Alarm::new(a.alarm_name(), a.state_value(), a.state_reason()));
                let alarms = metric.chain(composite).flatten().collect();
                Ok((alarms, out.next_token().map(str::to_owned)))
            }
        })
        .await
    }
}

/// An alarm as read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Alarm {
    name: String,
    state: Option<StateValue>,
    reason: String,
}

impl Alarm {
    fn new(name: Option<&str>, state: Option<&StateValue>, reason: Option<&str>) -> Option<Self> {
        Some(Alarm {
            name: name?.to_owned(),
            state: state.cloned(),
            reason: reason.unwrap_or("no reason given").to_owned(),
        })
    }
}

/// Why an alarm fails the check.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AlarmFailure {
    InAlarm { name: String, reason: String },
    InsufficientData { name: String, reason: String },
    Unknown { name: String },
}

impl fmt::Display for AlarmFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlarmFailure::InAlarm { name, reason } => {
                write!(f, "alarm `{name}` is in ALARM: {reason}")
            }
            AlarmFailure::InsufficientData { name, reason } => {
                write!(f, "alarm `{name}` has insufficient data: {reason}")
            }
            AlarmFailure::Unknown { name } => {
                write!(f, "alarm `{name}` does not exist (is its name right?)")
            }
        }
    }
}

/// The failures among `names`, given the alarms found, in the order of `names`.
fn judge(
    names: &[String],
    found: &BTreeMap<String, Alarm>,
    insufficient: InsufficientData,
) -> Vec<AlarmFailure> {
    names
        .iter()
        .filter_map(|name| {
            let Some(alarm) = found.get(name) else {
                return Some(AlarmFailure::Unknown { name: name.clone() });
            };
            let (name, reason) = (name.clone(), alarm.reason.clone());
            match &alarm.state {
                Some(StateValue::Alarm) => Some(AlarmFailure::InAlarm { name, reason }),
                Some(StateValue::InsufficientData) if insufficient == InsufficientData::Fail => {
                    Some(AlarmFailure::InsufficientData { name, reason })
                }
                _ => None,
            }
        })
        .collect()
}

#[async_trait]
impl Check for CloudWatchAlarmCheck {
    async fn run(&self, ctx: &CheckContext<'_>) -> CheckOutcome {
        let service = ctx.service.to_string();
        let names: Vec<String> = self
            .alarms
            .iter()
            .map(|a| a.replace("{{service}}", &service))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let found = match self.states(&names).await {
            Ok(found) => found,
            Err(e) => return CheckOutcome::fail(format!("cannot read the alarms' states: {e}")),
        };
        let failures = judge(&names, &found, self.insufficient_data);
        if failures.is_empty() {
            return CheckOutcome::Pass;
        }
        let shown: Vec<String> = failures.iter().map(ToString::to_string).collect();
        CheckOutcome::fail(shown.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(name: &str, state: StateValue) -> (String, Alarm) {
        let alarm = Alarm {
            name: name.to_owned(),
            state: Some(state),
            reason: format!("{name} reason"),
        };
        (name.to_owned(), alarm)
    }

    #[test]
    fn alarms_are_judged_by_state_and_existence() {
        let found: BTreeMap<_, _> = [
            alarm("ok", StateValue::Ok),
            alarm("firing", StateValue::Alarm),
            alarm("quiet", StateValue::InsufficientData),
        ]
        .into();
        let names: Vec<String> = ["firing", "ok", "quiet", "typo"].map(Into::into).into();
        let shown = |i| {
            judge(&names, &found, i)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            shown(InsufficientData::Pass),
            [
                "alarm `firing` is in ALARM: firing reason",
                "alarm `typo` does not exist (is its name right?)",
            ]
        );
        assert_eq!(shown(InsufficientData::Fail).len(), 3);
        assert!(shown(InsufficientData::Fail)[1].contains("`quiet` has insufficient data"));
    }
}
