//! The JSON twins of the pages: the same data as the page, and (for the live pages) the
//! page's live part as HTML, which is also what the streams in [`super::live`] push.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Serialize;

use super::error::{Problem, render};
use super::pages::{After, Before, DeploymentLive, ServicesLive};
use super::read::{self, ServiceView, ServicesView};
use super::state::App;
use super::view::{DeploymentView, HaltView};

/// A live document: the data, and the page's live part drawn from it.
#[derive(Debug, Serialize)]
pub(crate) struct Live<T> {
    pub(crate) data: T,
    /// The inner HTML of the page's `#live` element.
    pub(crate) html: String,
}

/// The services page's live document.
pub(crate) fn services_live(view: ServicesView) -> Result<Live<ServicesView>, Problem> {
    let html = render(&ServicesLive { view: &view })?;
    Ok(Live { data: view, html })
}

/// A deployment page's live document.
pub(crate) fn deployment_live(
    app: &App,
    view: DeploymentView,
) -> Result<Live<DeploymentView>, Problem> {
    let html = render(&DeploymentLive::new(app, &view))?;
    Ok(Live { data: view, html })
}

/// `GET /api/services`.
pub(crate) async fn services(
    State(app): State<App>,
    Query(q): Query<After>,
) -> Result<Json<Live<ServicesView>>, Problem> {
    let view = read::services(&app, q.after.as_deref()).await?;
    Ok(Json(services_live(view)?))
}

/// `GET /api/services/{name}`.
pub(crate) async fn service(
    State(app): State<App>,
    Path(name): Path<String>,
    Query(q): Query<Before>,
) -> Result<Json<ServiceView>, Problem> {
    Ok(Json(read::service(&app, &name, q.before.as_deref()).await?))
}

/// `GET /api/deployments/{id}`.
pub(crate) async fn deployment(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Json<Live<DeploymentView>>, Problem> {
    let view = read::deployment(&app, &id).await?;
    Ok(Json(deployment_live(&app, view)?))
}

/// `GET /api/halts`.
pub(crate) async fn halts(State(app): State<App>) -> Result<Json<Vec<HaltView>>, Problem> {
    Ok(Json(read::halts(&app).await?))
}

/// Any other `/api` path.
pub(crate) async fn not_found() -> Problem {
    Problem::NotFound("no such API endpoint".to_owned())
}
