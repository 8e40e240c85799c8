//! What every request passes before a handler sees it: its `Host` must name this dashboard
//! (DNS rebinding), and a request that changes something must come from an allowed `Origin`
//! when it names one (CSRF) and carry the token in `Authorization: Bearer` (never a cookie).
//! A refusal answers a short text saying what was refused, and nothing else runs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::token::Token;

/// Why a request was refused before any handler ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No `Host` header, or one this dashboard does not answer to.
    ForeignHost,
    /// An `Origin` that is not this dashboard's.
    ForeignOrigin,
    /// An action without `Authorization: Bearer <token>`.
    NoToken,
    /// An action with a token that is not this start's.
    WrongToken,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::ForeignHost => StatusCode::MISDIRECTED_REQUEST,
            Refusal::ForeignOrigin => StatusCode::FORBIDDEN,
            Refusal::NoToken | Refusal::WrongToken => StatusCode::UNAUTHORIZED,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Refusal::ForeignHost => {
                "refused: the Host header does not name this dashboard (start it with \
                 --allowed-host to accept another name); nothing was done\n"
            }
            Refusal::ForeignOrigin => {
                "refused: the request comes from a page of another origin; nothing was done\n"
            }
            Refusal::NoToken => {
                "refused: an action needs the dashboard's token in an Authorization: Bearer \
                 header; nothing was done\n"
            }
            Refusal::WrongToken => {
                "refused: the token is not this dashboard's (it is new at every start unless \
                 --token-file is given); nothing was done\n"
            }
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status(), self.text()).into_response()
    }
}

/// The hosts and token a request is checked against.
#[derive(Debug)]
pub(crate) struct Gate {
    /// Lowercase `host[:port]` values a `Host` header may carry.
    hosts: Vec<String>,
    token: Option<Token>,
}

impl Gate {
    /// A gate for a dashboard listening on `listen` (the bound address, port included),
    /// accepting also `allowed` hosts, and actions with `token` (none: no action passes).
    pub(crate) fn new(listen: SocketAddr, allowed: &[String], token: Option<Token>) -> Gate {
        let port = listen.port();
        let mut hosts = vec![
            listen.to_string(),
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ];
        hosts.extend(allowed.iter().map(|h| h.trim().to_ascii_lowercase()));
        hosts.dedup();
        Gate { hosts, token }
    }

    /// Whether the request's `Host` is one this dashboard answers to.
    pub(crate) fn host(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_ascii_lowercase);
        match host {
            Some(h) if self.hosts.contains(&h) => Ok(()),
            _ => Err(Refusal::ForeignHost),
        }
    }

    /// Whether the request's `Origin`, when it has one, is `http://` or `https://` and an
    /// allowed host.
    pub(crate) fn origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let origin = origin
            .to_str()
            .map_err(|_| Refusal::ForeignOrigin)?
            .to_ascii_lowercase();
        let host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        match host {
            Some(h) if self.hosts.iter().any(|a| a == h) => Ok(()),
            _ => Err(Refusal::ForeignOrigin),
        }
    }

    /// Whether the request carries this start's token as `Authorization: Bearer <token>`.
    pub(crate) fn token(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(Refusal::NoToken)?;
        match &self.token {
            Some(token) if token.matches(given) => Ok(()),
            _ => Err(Refusal::WrongToken),
        }
    }

    /// What an action needs beyond the host: an allowed origin (when one is named) and the
    /// token.
    pub(crate) fn action(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        self.origin(headers)?;
        self.token(headers)
    }
}

/// The middleware of every route: the `Host` must name this dashboard.
pub(crate) async fn screen(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    match gate.host(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refused(refusal, &req),
    }
}

/// The middleware of the action routes (registered only with `--actions`): origin and token.
pub(crate) async fn authorize(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    match gate.action(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refused(refusal, &req),
    }
}

fn refused(refusal: Refusal, req: &Request) -> Response {
    tracing::info!(
        refused = refusal.text().trim_end(),
        method = %req.method(),
        path = req.uri().path(),
        "request refused"
    );
    refusal.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn gate() -> Gate {
        let token = Token::from_text("0123456789abcdef0123").unwrap();
        Gate::new(
            "127.0.0.1:8480".parse().unwrap(),
            &["Dash.Example.com".into()],
            Some(token),
        )
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_host_must_name_this_dashboard() {
        let g = gate();
        for ok in [
            "127.0.0.1:8480",
            "localhost:8480",
            "[::1]:8480",
            "dash.example.com",
        ] {
            assert_eq!(g.host(&headers(&[(header::HOST, ok)])), Ok(()), "{ok}");
        }
        for bad in [
            "evil.example:8480",
            "localhost:8481",
            "127.0.0.1",
            "localhost",
        ] {
            let refused = g.host(&headers(&[(header::HOST, bad)]));
            assert_eq!(refused, Err(Refusal::ForeignHost), "{bad}");
        }
        assert_eq!(g.host(&HeaderMap::new()), Err(Refusal::ForeignHost));
    }

    #[test]
    fn an_origin_when_given_must_be_an_allowed_host() {
        let g = gate();
        assert_eq!(g.origin(&HeaderMap::new()), Ok(()));
        for ok in [
            "http://127.0.0.1:8480",
            "http://localhost:8480",
            "https://dash.example.com",
        ] {
            assert_eq!(g.origin(&headers(&[(header::ORIGIN, ok)])), Ok(()), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "null",
            "http://localhost:8481",
            "127.0.0.1:8480",
        ] {
            let refused = g.origin(&headers(&[(header::ORIGIN, bad)]));
            assert_eq!(refused, Err(Refusal::ForeignOrigin), "{bad}");
        }
    }

    #[test]
    fn an_action_needs_the_token_as_a_bearer_header() {
        let g = gate();
        let bearer = |t: &str| headers(&[(header::AUTHORIZATION, &format!("Bearer {t}"))]);
        assert_eq!(g.token(&bearer("0123456789abcdef0123")), Ok(()));
        assert_eq!(
            g.token(&bearer("0123456789abcdef0124")),
            Err(Refusal::WrongToken)
        );
        assert_eq!(g.token(&HeaderMap::new()), Err(Refusal::NoToken));
        let cookie = headers(&[(header::COOKIE, "token=0123456789abcdef0123")]);
        assert_eq!(g.token(&cookie), Err(Refusal::NoToken));
        let read_only = Gate::new("127.0.0.1:8480".parse().unwrap(), &[], None);
        assert_eq!(
            read_only.token(&bearer("anything")),
            Err(Refusal::WrongToken)
        );
    }

    #[test]
    fn an_action_needs_an_allowed_origin_and_the_token() {
        let g = gate();
        assert_eq!(g.action(&HeaderMap::new()), Err(Refusal::NoToken));
        let foreign = headers(&[
            (header::ORIGIN, "http://evil.example"),
            (header::AUTHORIZATION, "Bearer 0123456789abcdef0123"),
        ]);
        assert_eq!(g.action(&foreign), Err(Refusal::ForeignOrigin));
        let own = headers(&[
            (header::ORIGIN, "http://localhost:8480"),
            (header::AUTHORIZATION, "Bearer 0123456789abcdef0123"),
        ]);
        assert_eq!(g.action(&own), Ok(()));
    }
}
