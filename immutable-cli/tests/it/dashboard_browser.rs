//! `immutable dashboard --actions` in a real browser (Debian's headless Chromium through
//! chromedriver) over the local backend, used the way an operator would: open the URL the
//! dashboard printed (its `#token=` hands the token to the tab), go to the deployment that
//! waits at its approval gate, click, fill in the confirm dialog, and watch the page follow the
//! deployment without a reload. A missing Chromium, chromedriver or HAProxy fails the test.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use immutable_core::{Command, DeploymentId, FileStore, Mark, StateStore};
use immutable_testkit::browser::Browser;
use serde_json::{Value, json};

use crate::common::dashboard::Dashboard;
use crate::common::lab::{Lab, MINUTE};
use crate::common::{ROLLED_BACK, SUCCEEDED};

/// The canary both deployments run: an approval gate (the lab's), then 50 % and 100 %.
const WEIGHTS: [u32; 2] = [50, 100];
const CANARY: [&str; 6] = [
    "--strategy",
    "canary",
    "--weights",
    "50,100",
    "--pause",
    "1s",
];
/// The stroke of the weight line in the timeline chart (`report::chart::WEIGHT`).
const WEIGHT_STROKE: &str = "#8250DF";
/// How long the page may take to show what the journal says (its poll is 200 ms).
const LIVE: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_approves_a_canary_to_done_and_aborts_the_next_to_rolled_back_from_the_page() {
    let _machine = immutable_testkit::serial::shared().await;
    // Tall enough for the timeline chart to be in the screenshot.
    let browser = Browser::builder()
        .with_window(1280, 1400)
        .start()
        .await
        .unwrap_or_else(|e| panic!("the browser tests need a browser: {e}"));
    let lab = Lab::start().await;
    let dash = Dashboard::start_with(&lab.base.args, &["--actions"]);
    let link = dash
        .link
        .clone()
        .expect("with --actions the dashboard prints a URL with its token");
    let token = dash.printed_token.clone().unwrap_or_default();
    browser.client.goto(&link).await.unwrap();
    assert_eq!(
        browser.client.current_url().await.unwrap().fragment(),
        None,
        "the page takes the token out of the address bar"
    );

    approving_finishes_the_deployment(&browser, &lab, &token).await;
    aborting_rolls_the_deployment_back(&browser, &lab).await;
    browser.close().await.unwrap();
}

/// A canary waits at its gate; approve on its page; it finishes, and the page follows it to
/// `done` and draws one weight step per change of the canary.
async fn approving_finishes_the_deployment(browser: &Browser, lab: &Lab, token: &str) {
    let (deploy, id) = lab.deploy_to_the_gate_with("web-v2", &CANARY);
    open_from_the_services_page(browser, &id).await;
    browser
        .client
        .execute("window.notReloaded = true; return null;", vec![])
        .await
        .unwrap();

    click(browser, "#approve").await;
    let given = browser
        .wait_for("#confirm-dialog[open] #token", LIVE)
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(
        given.as_deref(),
        Some(token),
        "the dialog holds the token the printed URL handed over"
    );
    confirm(browser, "alice", None).await;

    let done = deploy.wait(MINUTE);
    assert_eq!(done.code, SUCCEEDED, "{done:?}");
    wait_for_phase(browser, "done").await;
    assert_eq!(
        browser
            .client
            .execute("return window.notReloaded === true;", vec![])
            .await
            .unwrap(),
        json!(true),
        "the page followed the deployment without a reload"
    );
    assert_eq!(summary(browser, "weight").await, "100");
    assert_eq!(
        command_by(lab, &id, |c| matches!(c, Command::Approve)).await,
        "alice (dashboard)"
    );

    // Written before the chart is judged, so that a failure has a picture to look at.
    let artifact =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-deployment.png");
    let bytes = browser.screenshot_to(&artifact).await.unwrap();
    assert!(bytes > 0, "an empty screenshot");
    // For a person to look at; not part of what the test proves.
    let _ = std::fs::copy(&artifact, "/tmp/dashboard-deployment.png");

    let expected = weight_steps(&WEIGHTS);
    assert_eq!(
        expected,
        recorded_weight_steps(lab, &id).await,
        "the journal's timeline has the canary's weight changes"
    );
    browser.wait_for("#timeline svg", LIVE).await.unwrap();
    let lines = weight_lines(browser).await;
    assert_eq!(lines.len(), 1, "one weight line in the chart: {lines:?}");
    assert_eq!(
        vertical_moves(&lines[0]),
        expected,
        "one vertical move per weight change: {:?}",
        lines[0]
    );
}

/// The next canary waits at its gate; abort it with a reason on its page; it rolls back, the
/// page says so, and the journal names the operator typed in the dialog.
async fn aborting_rolls_the_deployment_back(browser: &Browser, lab: &Lab) {
    let (deploy, id) = lab.deploy_to_the_gate_with("web-v1", &CANARY);
    open_from_the_services_page(browser, &id).await;

    click(browser, "#abort").await;
    browser
        .wait_for("#confirm-dialog[open]", LIVE)
        .await
        .unwrap();
    confirm(browser, "bob", Some("browser test: wrong build")).await;

    let done = deploy.wait(MINUTE);
    assert_eq!(done.code, ROLLED_BACK, "{done:?}");
    assert!(
        done.stdout.contains("browser test: wrong build"),
        "{done:?}"
    );
    wait_for_phase(browser, "rolled_back").await;
    assert_eq!(
        command_by(lab, &id, |c| matches!(c, Command::Abort { .. })).await,
        "bob (dashboard)"
    );
}

/// From the services page (the nav link), the link to `service web`'s latest deployment, which
/// must be `id` waiting at its approval gate.
async fn open_from_the_services_page(browser: &Browser, id: &str) {
    click(browser, "#nav-services").await;
    click(
        browser,
        &format!(r#"tr[data-service="web"] a[href="/deployments/{id}"]"#),
    )
    .await;
    browser
        .wait_for(
            r#"#summary[data-phase="rollout"][data-at-gate="true"]"#,
            LIVE,
        )
        .await
        .unwrap_or_else(|e| panic!("the page of {id} shows it waiting at its gate: {e}"));
    let shown = browser
        .client
        .find(Locator::Id("deployment"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(shown, id);
}

/// Clicks the element `css` selects once there is one. The live part of a page is replaced
/// when what it shows changes (and once when its stream starts), so an element found just
/// before may be gone: then it is found again.
async fn click(browser: &Browser, css: &str) {
    let deadline = Instant::now() + LIVE;
    loop {
        let found = browser.wait_for(css, LIVE).await.unwrap();
        match found.click().await {
            Ok(()) => return,
            Err(e) if e.is_stale_element_reference() && Instant::now() < deadline => {}
            Err(e) => panic!("cannot click {css}: {e}"),
        }
    }
}

/// Types the operator's name (and a reason) into the open confirm dialog, confirms, and waits
/// for the dashboard to accept the action.
async fn confirm(browser: &Browser, operator: &str, reason: Option<&str>) {
    let field = browser.client.find(Locator::Id("operator")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(operator).await.unwrap();
    if let Some(reason) = reason {
        let field = browser.client.find(Locator::Id("reason")).await.unwrap();
        assert!(field.is_displayed().await.unwrap(), "the dialog asks why");
        field.send_keys(reason).await.unwrap();
    }
    browser
        .client
        .find(Locator::Id("confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let answered = browser
        .wait_for(
            r#"#result[data-outcome="ok"], #result[data-outcome="refused"]"#,
            LIVE,
        )
        .await
        .unwrap();
    let outcome = answered.attr("data-outcome").await.unwrap();
    let message = answered.text().await.unwrap();
    assert_eq!(
        outcome.as_deref(),
        Some("ok"),
        "the dashboard refused: {message}"
    );
}

/// An attribute of the deployment's summary (`data-NAME`), as the page shows it now.
async fn summary(browser: &Browser, name: &str) -> String {
    let script = format!(
        "var s = document.getElementById('summary'); \
         return s ? s.getAttribute('data-{name}') : null;"
    );
    match browser.client.execute(&script, vec![]).await.unwrap() {
        Value::String(s) => s,
        other => panic!("no #summary data-{name}: {other}"),
    }
}

/// Waits for the page, as it is (never reloaded), to show `phase`.
async fn wait_for_phase(browser: &Browser, phase: &str) {
    let deadline = Instant::now() + LIVE;
    loop {
        let shown = summary(browser, "phase").await;
        if shown == phase {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the page still shows {shown} after {LIVE:?}, not {phase}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Who gave `id` the command `which` matches, from the journal.
async fn command_by(lab: &Lab, id: &str, which: impl Fn(&Command) -> bool) -> String {
    let store = FileStore::open(lab.store_dir()).unwrap();
    let id = DeploymentId::parse(id).unwrap();
    let commands = store.commands(&id).await.unwrap();
    commands
        .iter()
        .find(|c| which(&c.command))
        .unwrap_or_else(|| panic!("no such command for {id}: {commands:?}"))
        .by
        .clone()
}

/// The changes of weight in the record's timeline.
async fn recorded_weight_steps(lab: &Lab, id: &str) -> usize {
    let store = FileStore::open(lab.store_dir()).unwrap();
    let id = DeploymentId::parse(id).unwrap();
    let record = store.load(&id).await.unwrap();
    let weights: Vec<u32> = record
        .timeline
        .entries()
        .iter()
        .filter_map(|e| match e.mark {
            Mark::Weight { percent } => Some(percent),
            _ => None,
        })
        .collect();
    weight_steps(&weights)
}

/// How many times the weight changes going through `weights`, from 0.
fn weight_steps(weights: &[u32]) -> usize {
    let mut at = 0;
    let mut steps = 0;
    for &w in weights {
        if w != at {
            steps += 1;
            at = w;
        }
    }
    steps
}

/// The points of every polyline the chart strokes in the weight's colour, read from the DOM.
async fn weight_lines(browser: &Browser) -> Vec<Vec<(f64, f64)>> {
    let script = format!(
        "return Array.from(document.querySelectorAll('#timeline svg polyline'))\
         .filter(function (p) {{ return (p.getAttribute('stroke') || '').toUpperCase() === '{WEIGHT_STROKE}'; }})\
         .map(function (p) {{ return p.getAttribute('points') || ''; }});"
    );
    let found = browser.client.execute(&script, vec![]).await.unwrap();
    let Value::Array(lines) = found else {
        panic!("not a list of polylines: {found}")
    };
    lines
        .iter()
        .map(|points| {
            points
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').expect("x,y");
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect()
}

/// The vertical moves of a step line: two consecutive points with one x and two y.
fn vertical_moves(points: &[(f64, f64)]) -> usize {
    points
        .windows(2)
        .filter(|w| w[0].0 == w[1].0 && w[0].1 != w[1].1)
        .count()
}
