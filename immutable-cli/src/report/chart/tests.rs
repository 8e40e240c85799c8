//! The pictures read back: an SVG parser finds the marks of the record, by the legend's
//! colours.

use std::time::{Duration, SystemTime};

use immutable_core::{
    DeploymentRecord, DeploymentRequest, Engine, ImageRef, InMemoryStore, Mark, Steps, TokioClock,
};
use immutable_mock::{FailsAtWeight, MockCloud};
use plotters::style::RGBColor;

use super::*;

/// v1, then a canary 10/50/100 of v2 whose check fails at 50 %: rolled back.
async fn rolled_back_canary() -> DeploymentRecord {
    let cloud = MockCloud::new();
    cloud.add_image("web", "web-v1");
    cloud.add_image("web", "web-v2");
    let engine = Engine::builder()
        .backends(cloud.backends())
        .clock(TokioClock::starting_at(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 30),
        ))
        .store(InMemoryStore::new())
        .check("error-rate", FailsAtWeight::new(50))
        .build()
        .unwrap();
    let request = |v: &str| DeploymentRequest::new("web", ImageRef::name(v)).capacity(3);
    assert!(engine.deploy(request("web-v1")).await.unwrap().succeeded());
    let steps = Steps::canary([10, 50, 100], Duration::from_secs(60))
        .with_checks(Vec::<String>::new(), ["error-rate"]);
    let report = engine
        .deploy(request("web-v2").strategy(steps))
        .await
        .unwrap();
    assert!(!report.succeeded());
    report.record
}

fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// The polylines stroked in `colour`, as lists of points.
fn polylines(doc: &roxmltree::Document<'_>, colour: RGBColor) -> Vec<Vec<(f64, f64)>> {
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") == Some(&hex(colour)))
        .map(|n| {
            n.attribute("points")
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| {
                    let (x, y) = p.split_once(',')?;
                    Some((x.parse().ok()?, y.parse().ok()?))
                })
                .collect()
        })
        .collect()
}

fn circles(doc: &roxmltree::Document<'_>, colour: RGBColor) -> usize {
    doc.descendants()
        .filter(|n| n.has_tag_name("circle") && n.attribute("fill") == Some(&hex(colour)))
        .count()
}

/// The vertical moves of a step line: one per weight change.
fn vertical_moves(points: &[(f64, f64)]) -> usize {
    points
        .windows(2)
        .filter(|w| w[0].0 == w[1].0 && w[0].1 != w[1].1)
        .count()
}

#[tokio::test(start_paused = true)]
async fn the_marks_of_a_rolled_back_canary_match_its_record() {
    let rec = rolled_back_canary().await;
    let marks = |f: fn(&Mark) -> bool| rec.timeline.entries().iter().filter(|e| f(&e.mark)).count();
    let weight_changes = marks(|m| matches!(m, Mark::Weight { .. }));
    assert_eq!(weight_changes, 3, "10, 50, then back to 0");

    let svg = deployment_svg(&rec);
    let doc = roxmltree::Document::parse(&svg).expect("the chart is well-formed XML");
    let weight = polylines(&doc, WEIGHT);
    assert_eq!(weight.len(), 1, "one weight line");
    assert_eq!(vertical_moves(&weight[0]), weight_changes);
    assert_eq!(
        circles(&doc, PASS),
        marks(|m| matches!(m, Mark::Check { passed: true, .. }))
    );
    assert_eq!(circles(&doc, FAIL), 1, "the check that failed at 50 %");
    assert_eq!(polylines(&doc, ROLLBACK).len(), 1, "one rollback line");
    assert_eq!(polylines(&doc, GREEN).len(), 1, "the new fleet's health");
    assert!(
        doc.descendants()
            .any(|n| n.has_tag_name("text") && n.text().map(str::trim) == Some("rollback")),
        "the rollback line is labelled"
    );
}

#[tokio::test(start_paused = true)]
async fn the_history_chart_has_a_point_per_deployment_that_became_healthy() {
    let rec = rolled_back_canary().await;
    let svg = history_svg(&[rec.clone(), rec]);
    let doc = roxmltree::Document::parse(&svg).expect("well-formed");
    assert_eq!(circles(&doc, GREEN), 2);
}

#[test]
fn a_step_line_holds_each_value_until_the_next() {
    let line = steps(&[(0.0, 0.0), (5.0, 10.0), (9.0, 0.0)], 12.0);
    assert_eq!(
        line,
        [
            (0.0, 0.0),
            (5.0, 0.0),
            (5.0, 10.0),
            (9.0, 10.0),
            (9.0, 0.0),
            (12.0, 0.0)
        ]
    );
}
