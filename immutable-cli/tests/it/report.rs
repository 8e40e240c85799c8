//! `immutable report` on a canary that a failing check rolled back: the SVG's marks match the
//! record the engine journaled, and the HTML report carries the chart, the steps and the
//! events in one file that fetches nothing.

use std::time::Duration;

use immutable_core::{
    DeploymentRecord, DeploymentRequest, Engine, FileStore, ImageRef, Mark, StateStore, Steps,
};
use immutable_mock::{FailsAtWeight, MockCloud};

use crate::common::{Cli, REFUSED, SUCCEEDED};

const MINUTE: Duration = Duration::from_secs(60);

/// v1, then a canary 10/50/100 of v2 whose check fails at 50 %, journaled in `dir`.
async fn rolled_back_canary(dir: &std::path::Path) -> DeploymentRecord {
    let cloud = MockCloud::new();
    cloud.add_image("web", "web-v1");
    cloud.add_image("web", "web-v2");
    let engine = Engine::builder()
        .backends(cloud.backends())
        .store(FileStore::open(dir).unwrap())
        .check("error-rate", FailsAtWeight::new(50))
        .build()
        .unwrap();
    let request = |v: &str| {
        DeploymentRequest::new("web", ImageRef::name(v))
            .capacity(3)
            .bake_time(Duration::from_secs(30))
    };
    assert!(engine.deploy(request("web-v1")).await.unwrap().succeeded());
    let steps = Steps::canary([10, 50, 100], Duration::from_secs(20))
        .with_checks(Vec::<String>::new(), ["error-rate"]);
    let report = engine
        .deploy(request("web-v2").strategy(steps))
        .await
        .unwrap();
    assert!(!report.succeeded(), "{}", report.outcome);
    FileStore::open(dir)
        .unwrap()
        .load(&report.record.id)
        .await
        .unwrap()
}

fn count(rec: &DeploymentRecord, f: fn(&Mark) -> bool) -> usize {
    rec.timeline.entries().iter().filter(|e| f(&e.mark)).count()
}

/// The SVG elements named `tag` drawn in `colour` (as the chart's legend colours them).
fn drawn<'a>(
    doc: &'a roxmltree::Document<'a>,
    tag: &'a str,
    attribute: &'a str,
    colour: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'a>> {
    doc.descendants()
        .filter(move |n| n.has_tag_name(tag) && n.attribute(attribute) == Some(colour))
}

#[tokio::test(start_paused = true)]
async fn the_svg_of_a_rolled_back_canary_has_the_marks_of_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let rec = rolled_back_canary(&journal).await;
    let cli = Cli::new(["--store", &format!("file:{}", journal.display())]);
    let svg_path = dir.path().join("canary.svg");
    let out = cli.run(
        &[
            "report",
            rec.id.as_str(),
            "--format",
            "svg",
            "--out",
            svg_path.to_str().unwrap(),
        ],
        MINUTE,
    );
    assert_eq!(out.code, SUCCEEDED, "{out:?}");
    assert!(out.stdout.contains("wrote the svg report"), "{out:?}");

    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("the SVG parses");
    // The weight line: one vertical move per weight mark (10, 50, then back to 0).
    let weight: Vec<&str> = drawn(&doc, "polyline", "stroke", "#8250DF")
        .filter_map(|n| n.attribute("points"))
        .collect();
    assert_eq!(weight.len(), 1, "one weight line");
    let points: Vec<(f64, f64)> = weight[0]
        .split_whitespace()
        .filter_map(|p| p.split_once(','))
        .map(|(x, y)| (x.parse().unwrap(), y.parse().unwrap()))
        .collect();
    let moves = points
        .windows(2)
        .filter(|w| w[0].0 == w[1].0 && w[0].1 != w[1].1)
        .count();
    assert_eq!(moves, count(&rec, |m| matches!(m, Mark::Weight { .. })));
    assert_eq!(moves, 3);
    // Checks: a dot each, green when passed, red when failed.
    let passed = count(&rec, |m| matches!(m, Mark::Check { passed: true, .. }));
    assert_eq!(drawn(&doc, "circle", "fill", "#2DA44E").count(), passed);
    assert_eq!(drawn(&doc, "circle", "fill", "#CF222E").count(), 1);
    // The rollback: one labelled line.
    assert_eq!(drawn(&doc, "polyline", "stroke", "#A40E26").count(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_html_report_carries_chart_steps_and_events_and_fetches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let rec = rolled_back_canary(&journal).await;
    let cli = Cli::new(["--store", &format!("file:{}", journal.display())]);
    let html_path = dir.path().join("canary.html");
    let out = cli.run(
        &[
            "report",
            rec.id.as_str(),
            "--out",
            html_path.to_str().unwrap(),
            "--output",
            "json",
        ],
        MINUTE,
    );
    assert_eq!(out.code, SUCCEEDED, "{out:?}");
    let doc = out.json();
    assert_eq!(doc["format"], "html");
    assert_eq!(doc["deployment"], rec.id.as_str());
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("<svg"), "the chart is inline");
    assert!(
        html.contains("error rate 7 % at 50 %"),
        "the failed check's reason"
    );
    assert!(html.contains("shift 50 %"), "the steps");
    assert!(html.contains("rolled back"), "the outcome");
    // Nothing to fetch: no script, no style sheet or image from elsewhere.
    for needle in ["<script", "<link", "src=", "url("] {
        assert!(
            !html.contains(needle),
            "the report refers out with {needle}"
        );
    }
    let outside = html
        .match_indices("http")
        .filter(|(i, _)| !html[*i..].starts_with("http://www.w3.org/"))
        .count();
    assert_eq!(outside, 0, "only the SVG namespace may name an address");
}

#[test]
fn a_report_of_an_unknown_deployment_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new([
        "--store",
        &format!("file:{}", dir.path().join("j").display()),
    ]);
    let out_file = dir.path().join("r.svg");
    let out = cli.run(
        &[
            "report",
            "01jaaaaaaaaaaaaaaaaaaaaaaa",
            "--format",
            "svg",
            "--out",
            out_file.to_str().unwrap(),
        ],
        MINUTE,
    );
    assert_eq!(out.code, REFUSED, "{out:?}");
    assert!(out.stderr.contains("no deployment"), "{out:?}");
    assert!(!out_file.exists());
    let bad = cli.run(&["report", "../etc", "--format", "svg"], MINUTE);
    assert_eq!(bad.code, REFUSED, "{bad:?}");
}
