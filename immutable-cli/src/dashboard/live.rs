//! Server-sent events: a stream per deployment page and one for the services page. Each
//! reads the store every poll interval and sends an `update` (the page's live document, as
//! the JSON twin has it) when what the page shows changed, else a `heartbeat`, so a page
//! whose stream goes quiet for two intervals knows a proxy is buffering it and polls the
//! JSON twin instead.

use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, Sse};
use futures::Stream;
use serde::Serialize;

use super::api::{Live, deployment_live, services_live};
use super::error::Problem;
use super::pages::After;
use super::read;
use super::state::App;

/// What a stream sends after one read: the live document when it changed.
fn event<T: Serialize>(read: Result<Live<T>, Problem>, last: &mut Option<String>) -> Event {
    match read {
        Ok(live) if last.as_deref() != Some(live.html.as_str()) => {
            *last = Some(live.html.clone());
            match Event::default().event("update").json_data(&live) {
                Ok(e) => e,
                Err(_) => Event::default().event("heartbeat").data(""),
            }
        }
        Ok(_) => Event::default().event("heartbeat").data(""),
        // A failed read is said, and the stream goes on: the store may be back next time.
        Err(p) => Event::default()
            .event("problem")
            .data(p.message().replace('\n', " ")),
    }
}

/// An endless stream that reads with `next` at once and then every poll interval.
fn every_poll<F, Fut, T>(app: App, next: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: Fn(App) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Live<T>, Problem>> + Send,
    T: Serialize,
{
    let start = (app, None::<String>, true);
    futures::stream::unfold(start, move |(app, mut last, first)| {
        let read = next(app.clone());
        async move {
            if !first {
                tokio::time::sleep(app.poll).await;
            }
            let e = event(read.await, &mut last);
            Some((Ok(e), (app, last, false)))
        }
    })
}

/// `GET /events/deployments/{id}`.
pub(crate) async fn deployment(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    // Refused before streaming: a bad or unknown id answers 400 or 404 at once.
    let id = read::deployment_id(&id)?;
    app.operator.store().load(&id).await?;
    let id = id.to_string();
    Ok(Sse::new(every_poll(app, move |app| {
        let id = id.clone();
        async move {
            let view = read::deployment(&app, &id).await?;
            deployment_live(&app, view)
        }
    })))
}

/// `GET /events/services`.
pub(crate) async fn services(
    State(app): State<App>,
    Query(q): Query<After>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    if let Some(after) = &q.after {
        read::service_name(after)?;
    }
    Ok(Sse::new(every_poll(app, move |app| {
        let after = q.after.clone();
        async move { services_live(read::services(&app, after.as_deref()).await?) }
    })))
}
