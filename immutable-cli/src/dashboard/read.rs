//! The reads behind each page, shared by the page, its JSON twin and its live stream. Each
//! validates what came from the URL with the core parsers before it touches the store, and
//! reads only what it shows.

use immutable_core::{DeploymentId, Halt, Page, ServiceName};
use serde::Serialize;

use super::error::Problem;
use super::state::App;
use super::view::{DeploymentRow, DeploymentView, HaltView, ServiceRow};

/// Services per page of the services table.
pub(crate) const SERVICES_PER_PAGE: usize = 50;
/// Deployments per page of a service's history.
pub(crate) const DEPLOYMENTS_PER_PAGE: usize = 20;

/// A service name from a URL.
pub(crate) fn service_name(s: &str) -> Result<ServiceName, Problem> {
    Ok(ServiceName::new(s)?)
}

/// A deployment id from a URL.
pub(crate) fn deployment_id(s: &str) -> Result<DeploymentId, Problem> {
    Ok(DeploymentId::parse(s)?)
}

/// The services table: one page of services, each with its latest deployment and the halt
/// that covers it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServicesView {
    pub(crate) services: Vec<ServiceRow>,
    /// The `after` of the next page, when there may be one.
    pub(crate) next: Option<String>,
    /// Every halt that stands.
    pub(crate) halts: Vec<HaltView>,
}

/// Reads the services page after `after`: one page of names, one `latest` per name, the
/// halts once.
pub(crate) async fn services(app: &App, after: Option<&str>) -> Result<ServicesView, Problem> {
    let after = after.map(service_name).transpose()?;
    let store = app.operator.store();
    let names = app
        .operator
        .services(after.as_ref(), SERVICES_PER_PAGE)
        .await?;
    let halts = app.operator.halts(None).await?;
    let mut services = Vec::with_capacity(names.len());
    for name in &names {
        let latest = store.latest(name).await?;
        services.push(ServiceRow {
            service: name.to_string(),
            latest: latest.as_ref().map(DeploymentRow::of),
            halt: covering(&halts, name).map(HaltView::of),
        });
    }
    let next = (names.len() == SERVICES_PER_PAGE)
        .then(|| names.last().map(ToString::to_string))
        .flatten();
    Ok(ServicesView {
        services,
        next,
        halts: halts.iter().map(HaltView::of).collect(),
    })
}

/// The halt that covers `service`: its own before the one of every service.
fn covering<'a>(halts: &'a [Halt], service: &ServiceName) -> Option<&'a Halt> {
    let own = halts
        .iter()
        .find(|h| matches!(&h.scope, immutable_core::HaltScope::Service(s) if s == service));
    own.or_else(|| halts.iter().find(|h| h.scope.covers(service)))
}

/// One service's history page.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServiceView {
    pub(crate) service: String,
    /// Newest first.
    pub(crate) deployments: Vec<DeploymentRow>,
    /// The `before` of the next (older) page.
    pub(crate) next: Option<String>,
    pub(crate) halt: Option<HaltView>,
    /// Launch-to-healthy over the page's deployments, an inline `<svg>`.
    #[serde(skip)]
    pub(crate) chart: String,
}

/// Reads one page of `name`'s history, older than `before` (a deployment of that service).
pub(crate) async fn service(
    app: &App,
    name: &str,
    before: Option<&str>,
) -> Result<ServiceView, Problem> {
    let service = service_name(name)?;
    let before = before.map(deployment_id).transpose()?;
    if let Some(id) = &before {
        owned_by(app, id, &service).await?;
    }
    let page = match &before {
        Some(id) => Page::first(DEPLOYMENTS_PER_PAGE)?.before(id),
        None => Page::first(DEPLOYMENTS_PER_PAGE)?,
    };
    let history = app.operator.history(&service, &page).await?;
    if history.records.is_empty() && page.before.is_none() {
        return Err(Problem::NotFound(format!(
            "service {service} has no deployment in this journal"
        )));
    }
    let halts = app.operator.halts(Some(&service)).await?;
    Ok(ServiceView {
        service: service.to_string(),
        deployments: history.records.iter().map(DeploymentRow::of).collect(),
        next: history.next.and_then(|p| p.before).map(|id| id.to_string()),
        halt: covering(&halts, &service).map(HaltView::of),
        chart: crate::report::chart::history_svg(&history.records),
    })
}

/// Refuses a deployment that is not `service`'s (404 when the store does not know it).
pub(crate) async fn owned_by(
    app: &App,
    id: &DeploymentId,
    service: &ServiceName,
) -> Result<immutable_core::DeploymentRecord, Problem> {
    let record = app.operator.store().load(id).await?;
    if record.service() != service {
        return Err(Problem::BadInput(format!(
            "deployment {id} is a deployment of {}, not of {service}",
            record.service()
        )));
    }
    Ok(record)
}

/// Reads one deployment: its record (the timeline is in it), the halt over its service.
pub(crate) async fn deployment(app: &App, id: &str) -> Result<DeploymentView, Problem> {
    let id = deployment_id(id)?;
    let record = app.operator.store().load(&id).await?;
    let halts = match record.phase.is_terminal() {
        true => Vec::new(),
        false => app.operator.halts(Some(record.service())).await?,
    };
    let halt = covering(&halts, record.service());
    Ok(DeploymentView::of(&record, halt))
}

/// Reads the halts.
pub(crate) async fn halts(app: &App) -> Result<Vec<HaltView>, Problem> {
    let halts = app.operator.halts(None).await?;
    Ok(halts.iter().map(HaltView::of).collect())
}
