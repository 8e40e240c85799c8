//! Prometheus's answer to an instant query, and what one measurement made of it.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// The condition every sample of a query's result must meet for a measurement to pass.
///
/// A `NaN` sample meets no condition.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Condition {
    /// The value is strictly below the threshold.
    Below(f64),
    /// The value is at most the threshold.
    AtMost(f64),
    /// The value is strictly above the threshold.
    Above(f64),
    /// The value is at least the threshold.
    AtLeast(f64),
}

impl Condition {
    /// Whether `value` meets the condition.
    pub fn holds(self, value: f64) -> bool {
        match self {
            Condition::Below(t) => value < t,
            Condition::AtMost(t) => value <= t,
            Condition::Above(t) => value > t,
            Condition::AtLeast(t) => value >= t,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Below(t) => write!(f, "< {t}"),
            Condition::AtMost(t) => write!(f, "<= {t}"),
            Condition::Above(t) => write!(f, "> {t}"),
            Condition::AtLeast(t) => write!(f, ">= {t}"),
        }
    }
}

/// One sample of a result: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sample {
    pub(super) labels: BTreeMap<String, String>,
    pub(super) value: f64,
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)?;
        if !self.labels.is_empty() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            write!(f, " {{{}}}", labels.join(", "))?;
        }
        Ok(())
    }
}

/// What one measurement found.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Measurement {
    /// Every sample met the condition.
    Met,
    /// This sample did not (the first that did not).
    Unmet(Sample),
    /// The result was empty.
    NoData,
    /// The query could not be answered: HTTP failure, Prometheus error, unreadable answer.
    QueryError(String),
}

impl Measurement {
    /// Measures the body of a `/api/v1/query` answer against `condition`.
    pub(super) fn of_answer(status: u16, body: &str, condition: Condition) -> Measurement {
        match parse(status, body) {
            Err(error) => Measurement::QueryError(error),
            Ok(samples) if samples.is_empty() => Measurement::NoData,
            Ok(samples) => samples
                .into_iter()
                .find(|s| !condition.holds(s.value))
                .map_or(Measurement::Met, Measurement::Unmet),
        }
    }
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    data: Option<Data>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<VectorSample>),
    Scalar(Point),
    Matrix(serde::de::IgnoredAny),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct VectorSample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Point,
}

/// `[unix time, "value"]`: Prometheus sends values as strings (`"NaN"` and `"+Inf"` too).
#[derive(Deserialize)]
struct Point(#[allow(dead_code)] f64, String);

impl Point {
    fn value(&self) -> Result<f64, String> {
        self.1
            .parse()
            .map_err(|_| format!("the value {:?} is not a number", self.1))
    }
}

/// The samples of an answer, or what went wrong, in Prometheus's words where it gave some.
fn parse(status: u16, body: &str) -> Result<Vec<Sample>, String> {
    let answer: Answer = serde_json::from_str(body).map_err(|e| {
        let shown: String = body.chars().take(200).collect();
        format!("HTTP {status}, unreadable answer ({e}): {shown}")
    })?;
    if answer.status != "success" {
        return Err(format!(
            "HTTP {status}, Prometheus error {}: {}",
            answer.error_type.as_deref().unwrap_or("unknown"),
            answer.error.as_deref().unwrap_or("no message")
        ));
    }
    match answer.data {
        None => Err(format!("HTTP {status}, an answer without data")),
        Some(Data::Vector(samples)) => samples
            .into_iter()
            .map(|s| {
                Ok(Sample {
                    value: s.value.value()?,
                    labels: s.metric,
                })
            })
            .collect(),
        Some(Data::Scalar(point)) => Ok(vec![Sample {
            labels: BTreeMap::new(),
            value: point.value()?,
        }]),
        Some(Data::Matrix(_)) => {
            Err("the query returns a range vector; write an instant query".to_owned())
        }
        Some(Data::String(_)) => Err("the query returns a string, not a number".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(values: &[&str]) -> String {
        let samples: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!(r#"{{"metric":{{"pod":"p{i}"}},"value":[1700000000.5,"{v}"]}}"#))
            .collect();
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            samples.join(",")
        )
    }

    fn measure(body: &str, condition: Condition) -> Measurement {
        Measurement::of_answer(200, body, condition)
    }

    #[test]
    fn every_sample_must_meet_the_condition() {
        let below = Condition::Below(0.05);
        assert_eq!(
            measure(&vector(&["0.01", "0.049"]), below),
            Measurement::Met
        );
        match measure(&vector(&["0.01", "0.2", "0.3"]), below) {
            Measurement::Unmet(s) => assert_eq!(s.to_string(), "0.2 {pod=\"p1\"}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(measure(&vector(&[]), below), Measurement::NoData);
    }

    #[test]
    fn conditions_compare_as_named() {
        assert!(Condition::AtMost(1.0).holds(1.0) && !Condition::Below(1.0).holds(1.0));
        assert!(Condition::AtLeast(1.0).holds(1.0) && !Condition::Above(1.0).holds(1.0));
        assert_eq!(Condition::AtMost(0.5).to_string(), "<= 0.5");
        for c in [Condition::Below(1.0), Condition::AtLeast(1.0)] {
            assert!(!c.holds(f64::NAN), "{c}");
        }
    }

    #[test]
    fn special_values_and_scalars_parse() {
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"3"]}}"#;
        assert_eq!(measure(scalar, Condition::Above(2.0)), Measurement::Met);
        assert!(matches!(
            measure(&vector(&["+Inf"]), Condition::Below(1.0)),
            Measurement::Unmet(Sample { value, .. }) if value == f64::INFINITY
        ));
        assert!(matches!(
            measure(&vector(&["NaN"]), Condition::Below(1.0)),
            Measurement::Unmet(_)
        ));
    }

    #[test]
    fn errors_carry_prometheus_words() {
        let error = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 4"}"#;
        let cases = [
            (
                400,
                error,
                "HTTP 400, Prometheus error bad_data: parse error at char 4",
            ),
            (
                502,
                "<html>bad gateway</html>",
                "HTTP 502, unreadable answer",
            ),
            (
                200,
                r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
                "range vector",
            ),
            (200, &vector(&["abc"]), "\"abc\" is not a number"),
        ];
        for (status, body, needle) in cases {
            match Measurement::of_answer(status, body, Condition::Below(1.0)) {
                Measurement::QueryError(e) => assert!(e.contains(needle), "{e}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
