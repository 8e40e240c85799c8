//! The HTML pages, each at a stable URL: `/` (services), `/services/{name}` (one service's
//! history), `/deployments/{id}` (one deployment), `/halts`. Templates are askama's, checked
//! at compile time and escaped; the live part of a page is its own template, which the
//! page includes and the JSON twins and streams send alone.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::error::{PageProblem, Problem, render};
use super::read::{self, ServiceView, ServicesView};
use super::state::App;
use super::view::{DeploymentView, HaltView};

/// What every page's frame needs: the live endpoints and whether actions are shown.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) poll_ms: u128,
    /// The SSE stream the page listens to (empty: none).
    pub(crate) events_url: String,
    /// The JSON twin the page polls when the stream is silent (empty: none).
    pub(crate) api_url: String,
    pub(crate) actions: bool,
}

impl Frame {
    fn new(app: &App, events_url: String, api_url: String) -> Frame {
        Frame {
            poll_ms: app.poll_ms(),
            events_url,
            api_url,
            actions: app.actions,
        }
    }

    fn still(app: &App) -> Frame {
        Frame::new(app, String::new(), String::new())
    }
}

/// `?after=<service>`.
#[derive(Debug, Deserialize)]
pub(crate) struct After {
    pub(crate) after: Option<String>,
}

/// `?before=<deployment id>`.
#[derive(Debug, Deserialize)]
pub(crate) struct Before {
    pub(crate) before: Option<String>,
}

/// A query string for a live URL: `?after=NAME`, validated already.
pub(crate) fn after_query(after: Option<&str>) -> String {
    after.map(|a| format!("?after={a}")).unwrap_or_default()
}

#[derive(Template)]
#[template(path = "dashboard/services.html")]
struct ServicesPage<'a> {
    frame: Frame,
    view: &'a ServicesView,
}

/// The live part of the services page.
#[derive(Template)]
#[template(path = "dashboard/services_live.html")]
pub(crate) struct ServicesLive<'a> {
    pub(crate) view: &'a ServicesView,
}

/// `GET /`.
pub(crate) async fn services(
    State(app): State<App>,
    Query(q): Query<After>,
) -> Result<Html<String>, PageProblem> {
    let view = read::services(&app, q.after.as_deref()).await?;
    let query = after_query(q.after.as_deref());
    let frame = Frame::new(
        &app,
        format!("/events/services{query}"),
        format!("/api/services{query}"),
    );
    Ok(Html(render(&ServicesPage { frame, view: &view })?))
}

#[derive(Template)]
#[template(path = "dashboard/service.html")]
struct ServicePage<'a> {
    frame: Frame,
    view: &'a ServiceView,
    can_roll_back: bool,
}

/// `GET /services/{name}`.
pub(crate) async fn service(
    State(app): State<App>,
    Path(name): Path<String>,
    Query(q): Query<Before>,
) -> Result<Html<String>, PageProblem> {
    let view = read::service(&app, &name, q.before.as_deref()).await?;
    let page = ServicePage {
        frame: Frame::still(&app),
        view: &view,
        can_roll_back: app.can_roll_back(),
    };
    Ok(Html(render(&page)?))
}

#[derive(Template)]
#[template(path = "dashboard/deployment.html")]
struct DeploymentPage<'a> {
    frame: Frame,
    view: &'a DeploymentView,
    actions: bool,
    can_roll_back: bool,
}

/// The live part of a deployment's page.
#[derive(Template)]
#[template(path = "dashboard/deployment_live.html")]
pub(crate) struct DeploymentLive<'a> {
    pub(crate) view: &'a DeploymentView,
    pub(crate) actions: bool,
    pub(crate) can_roll_back: bool,
}

impl<'a> DeploymentLive<'a> {
    pub(crate) fn new(app: &App, view: &'a DeploymentView) -> Self {
        DeploymentLive {
            view,
            actions: app.actions,
            can_roll_back: app.can_roll_back(),
        }
    }
}

/// `GET /deployments/{id}`.
pub(crate) async fn deployment(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Html<String>, PageProblem> {
    let view = read::deployment(&app, &id).await?;
    let id = &view.row.id;
    let frame = Frame::new(
        &app,
        format!("/events/deployments/{id}"),
        format!("/api/deployments/{id}"),
    );
    let page = DeploymentPage {
        frame,
        view: &view,
        actions: app.actions,
        can_roll_back: app.can_roll_back(),
    };
    Ok(Html(render(&page)?))
}

#[derive(Template)]
#[template(path = "dashboard/halts.html")]
struct HaltsPage {
    frame: Frame,
    halts: Vec<HaltView>,
    actions: bool,
}

/// `GET /halts`.
pub(crate) async fn halts(State(app): State<App>) -> Result<Html<String>, PageProblem> {
    let halts = read::halts(&app).await?;
    let page = HaltsPage {
        frame: Frame::still(&app),
        halts,
        actions: app.actions,
    };
    Ok(Html(render(&page)?))
}

/// Any other path.
pub(crate) async fn not_found() -> PageProblem {
    Problem::NotFound("no such page".to_owned()).page()
}
