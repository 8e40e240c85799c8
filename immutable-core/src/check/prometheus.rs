//! [`PrometheusCheck`]: an instant PromQL query measured against a threshold, like an Argo
//! Rollouts analysis (feature `prometheus-check`).

mod answer;
mod template;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use super::url::parse_http_url;
use super::{Check, CheckContext, CheckOutcome};
use crate::{Error, Result};
pub use answer::Condition;
use answer::Measurement;
use template::QueryTemplate;

/// What a measurement makes of an empty result (no series matched the query).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NoData {
    /// No data is a failed measurement: a query that matches nothing (a typo in a label, a
    /// fleet that exports nothing) must not pass silently. The default.
    #[default]
    Fail,
    /// No data is a passed measurement: for queries that are empty when all is well, such as
    /// `errors_total > 0`.
    Pass,
}

/// Measures a PromQL instant query `count` times, `interval` apart, and fails once more than
/// `failure_limit` measurements have failed.
///
/// # Measurements
/// Each measurement is one `GET {url}/api/v1/query?query=…` answered within the request
/// timeout. It passes when **every** sample of the result (a scalar, or each series of an
/// instant vector) meets the [`Condition`]; a `NaN` sample meets none. An empty vector is
/// judged by [`NoData`] (a failure by default). A query error (no answer in time, a
/// transport failure, Prometheus's `"status": "error"`, an unreadable answer, or a range
/// vector) is a failed measurement whose reason carries Prometheus's own words; errors are
/// not counted apart from failed values.
///
/// The check passes once all `count` measurements are taken with at most `failure_limit` of
/// them failed, and fails as soon as one more has failed (Argo's `failureLimit`). Its reason
/// names the query as sent, the last failure (the value and the series it came from, and the
/// condition it missed) and the tally.
///
/// # Placeholders
/// The query may name the new fleet's labels, taken from the [`CheckContext`] and escaped for a
/// double-quoted PromQL string, so a query reads the fleet under test:
///
/// | placeholder | value |
/// |---|---|
/// | `{{service}}` | the service's name |
/// | `{{deployment}}` | the deployment's id |
/// | `{{target}}` | the new fleet's routing target (a target group ARN on AWS) |
/// | `{{image}}` | the image the new fleet runs (a check context without one fails) |
/// | `{{weight}}` | percent of live traffic on the new fleet |
///
/// Any other `{{name}}` is refused by [`build`](PrometheusCheckBuilder::build).
///
/// ```
/// use std::time::Duration;
/// use immutable_core::{Condition, Engine, PrometheusCheck, Steps};
///
/// let error_rate = PrometheusCheck::builder(
///     "http://prometheus.internal:9090",
///     r#"sum(rate(http_errors_total{service="{{service}}",deployment="{{deployment}}"}[1m]))
///      / sum(rate(http_requests_total{service="{{service}}",deployment="{{deployment}}"}[1m]))"#,
/// )
/// .condition(Condition::Below(0.01))
/// .count(5)
/// .interval(Duration::from_secs(60))
/// .failure_limit(1)
/// .build()?;
///
/// // Registered by name, and named after every shift of a canary.
/// let builder = Engine::builder().check("error-rate", error_rate);
/// let canary = Steps::canary([10, 50, 100], Duration::from_secs(300))
///     .with_checks(Vec::<String>::new(), ["error-rate"]);
/// # Ok::<(), immutable_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PrometheusCheck {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    query: QueryTemplate,
    condition: Condition,
    count: u32,
    interval: Duration,
    failure_limit: u32,
    no_data: NoData,
    timeout: Duration,
}

/// Configures a [`PrometheusCheck`]; see its docs for the semantics.
#[derive(Debug, Clone)]
#[must_use]
pub struct PrometheusCheckBuilder {
    url: String,
    query: String,
    condition: Option<Condition>,
    count: u32,
    interval: Duration,
    failure_limit: u32,
    no_data: NoData,
    timeout: Duration,
}

impl PrometheusCheck {
    /// A builder for a check of `query` against the Prometheus server at `url` (its base URL,
    /// such as `http://prometheus:9090`, under which `/api/v1/query` is served).
    ///
    /// Defaults: one measurement, 30 s apart when there are more, no failure allowed, no data
    /// fails, 10 s per request. A [`condition`](PrometheusCheckBuilder::condition) is required.
    pub fn builder(url: impl Into<String>, query: impl Into<String>) -> PrometheusCheckBuilder {
        PrometheusCheckBuilder {
            url: url.into(),
            query: query.into(),
            condition: None,
            count: 1,
            interval: Duration::from_secs(30),
            failure_limit: 0,
            no_data: NoData::Fail,
            timeout: Duration::from_secs(10),
        }
    }

    async fn measure(&self, query: &str) -> Measurement {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut().append_pair("query", query);
        let send = async {
            let resp = self.client.get(url).send().await?;
            let status = resp.status().as_u16();
            Ok::<_, reqwest::Error>((status, resp.text().await?))
        };
        match tokio::time::timeout(self.timeout, send).await {
            Err(_) => Measurement::QueryError(format!("no answer within {:?}", self.timeout)),
            Ok(Err(e)) => Measurement::QueryError(format!("request failed: {e}")),
            Ok(Ok((status, body))) => Measurement::of_answer(status, &body, self.condition),
        }
    }

    /// Why a measurement failed, or `None` when it passed.
    fn failure(&self, measurement: Measurement) -> Option<Failure> {
        match measurement {
            Measurement::Met => None,
            Measurement::NoData if self.no_data == NoData::Pass => None,
            Measurement::NoData => Some(Failure::NoData),
            Measurement::Unmet(sample) => Some(Failure::Value {
                sample: sample.to_string(),
                condition: self.condition,
            }),
            Measurement::QueryError(error) => Some(Failure::Query(error)),
        }
    }
}

/// Why one measurement failed; the check's reason is derived from it.
#[derive(Debug, Clone, PartialEq)]
enum Failure {
    Value {
        sample: String,
        condition: Condition,
    },
    NoData,
    Query(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Value { sample, condition } => {
                write!(f, "returned {sample}, which is not {condition}")
            }
            Failure::NoData => f.write_str("returned no data"),
            Failure::Query(error) => write!(f, "could not be answered: {error}"),
        }
    }
}

impl PrometheusCheckBuilder {
    /// The condition every sample must meet (required).
    pub fn condition(mut self, condition: Condition) -> Self {
        self.condition = Some(condition);
        self
    }

    /// Measurements to take (at least 1). Default 1.
    pub fn count(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    /// Time between measurements (not zero when `count` is above 1). Default 30 s.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Failed measurements tolerated (below `count`). Default 0: the first failure fails.
    pub fn failure_limit(mut self, limit: u32) -> Self {
        self.failure_limit = limit;
        self
    }

    /// What an empty result counts as. Default [`NoData::Fail`].
    pub fn no_data(mut self, no_data: NoData) -> Self {
        self.no_data = no_data;
        self
    }

    /// Time allowed for one query, connection included (not zero). Default 10 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The check.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field: `url` not http(s); `query` empty, with an
    /// unclosed `{{` or an unknown placeholder; `condition` missing or with a NaN threshold;
    /// `count` zero; `interval` zero with several measurements; `failure_limit` not below
    /// `count` (the check could never fail); `request_timeout` zero.
    pub fn build(self) -> Result<PrometheusCheck> {
        let mut endpoint = parse_http_url(&self.url)?;
        endpoint
            .path_segments_mut()
            .map_err(|()| Error::invalid("url", format!("`{}` cannot be a base", self.url)))?
            .pop_if_empty()
            .extend(["api", "v1", "query"]);
        let query = QueryTemplate::parse(&self.query)?;
        let condition = self.validate()?;
        Ok(PrometheusCheck {
            client: reqwest::Client::new(),
            endpoint,
            query,
            condition,
            count: self.count,
            interval: self.interval,
            failure_limit: self.failure_limit,
            no_data: self.no_data,
            timeout: self.timeout,
        })
    }

    fn validate(&self) -> Result<Condition> {
        let condition = self.condition.ok_or_else(|| {
            Error::invalid(
                "condition",
                "no condition: give one such as Condition::Below(0.01)",
            )
        })?;
        let (Condition::Below(t)
        | Condition::AtMost(t)
        | Condition::Above(t)
        | Condition::AtLeast(t)) = condition;
        if t.is_nan() {
            return Err(Error::invalid("condition", "the threshold is NaN"));
        }
        if self.count == 0 {
            return Err(Error::invalid(
                "count",
                "at least one measurement is needed",
            ));
        }
        if self.count > 1 && self.interval.is_zero() {
            return Err(Error::invalid(
                "interval",
                format!("{} measurements need a non-zero interval", self.count),
            ));
        }
        if self.failure_limit >= self.count {
            return Err(Error::invalid(
                "failure_limit",
                format!(
                    "{} failures tolerated of {} measurements: the check could never fail",
                    self.failure_limit, self.count
                ),
            ));
        }
        if self.timeout.is_zero() {
            return Err(Error::invalid("request_timeout", "the timeout is zero"));
        }
        Ok(condition)
    }
}

#[async_trait]
impl Check for PrometheusCheck {
    async fn run(&self, ctx: &CheckContext<'_>) -> CheckOutcome {
        let query = match self.query.render(ctx) {
            Ok(query) => query,
            Err(e) => {
                return CheckOutcome::fail(format!(
                    "prometheus query `{}`: {e}",
                    self.query.source()
                ));
            }
        };
        let mut failed = 0;
        for taken in 1..=self.count {
            let measurement = self.measure(&query).await;
            tracing::debug!(%query, ?measurement, taken, "prometheus measurement");
            if let Some(failure) = self.failure(measurement) {
                failed += 1;
                if failed > self.failure_limit {
                    return CheckOutcome::fail(format!(
                        "prometheus query `{query}` {failure}; {failed} of {taken} \
                         measurements failed (failure limit {}, {} measurements)",
                        self.failure_limit, self.count
                    ));
                }
            }
            if taken < self.count {
                tokio::time::sleep(self.interval).await;
            }
        }
        CheckOutcome::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> PrometheusCheckBuilder {
        PrometheusCheck::builder("http://127.0.0.1:9090", "up").condition(Condition::AtLeast(1.0))
    }

    fn refused(b: PrometheusCheckBuilder) -> (String, String) {
        match b.build() {
            Err(Error::InvalidInput { field, reason, .. }) => (field, reason),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_settings_are_refused_naming_the_field() {
        let cases = [
            (builder().count(0), "count"),
            (builder().count(3).interval(Duration::ZERO), "interval"),
            (builder().count(3).failure_limit(3), "failure_limit"),
            (builder().request_timeout(Duration::ZERO), "request_timeout"),
            (builder().condition(Condition::Below(f64::NAN)), "condition"),
            (PrometheusCheck::builder("http://p:9090", "up"), "condition"),
            (PrometheusCheck::builder("ftp://p", "up"), "url"),
            (PrometheusCheck::builder("not a url", "up"), "url"),
            (PrometheusCheck::builder("http://p", ""), "query"),
            (
                PrometheusCheck::builder("http://p", "x{a=\"{{nope}}\"}"),
                "query",
            ),
        ];
        for (b, want) in cases {
            let debug = format!("{b:?}");
            assert_eq!(refused(b).0, want, "{debug}");
        }
        // One measurement needs no interval.
        assert!(builder().interval(Duration::ZERO).build().is_ok());
    }

    #[test]
    fn the_query_endpoint_is_under_the_base_url() {
        for (base, want) in [
            ("http://p:9090", "http://p:9090/api/v1/query"),
            ("http://p:9090/", "http://p:9090/api/v1/query"),
            ("https://p/prometheus/", "https://p/prometheus/api/v1/query"),
            ("https://p/prometheus", "https://p/prometheus/api/v1/query"),
        ] {
            let check = PrometheusCheck::builder(base, "up")
                .condition(Condition::Above(0.0))
                .build()
                .unwrap();
            assert_eq!(check.endpoint.as_str(), want);
        }
    }

    #[test]
    fn reasons_name_the_value_and_the_condition() {
        let f = Failure::Value {
            sample: "0.2 {pod=\"a\"}".into(),
            condition: Condition::Below(0.05),
        };
        assert_eq!(
            f.to_string(),
            "returned 0.2 {pod=\"a\"}, which is not < 0.05"
        );
        let check = builder().no_data(NoData::Pass).build().unwrap();
        assert_eq!(check.failure(Measurement::NoData), None);
        let check = builder().build().unwrap();
        assert_eq!(check.failure(Measurement::NoData), Some(Failure::NoData));
    }
}
