//! One layer around every route: gives each request an id (the caller's
//! `X-Request-Id` when it is sane, else a fresh UUID), echoes it in the
//! answer, logs the request once when it is answered, and counts it in
//! `/metrics` under its route template (never the raw path: paths name
//! tenants, and a label per tenant would grow without bound).

use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

/// The request id header, read and echoed.
pub(super) const REQUEST_ID: &str = "x-request-id";

/// The route label of requests no route matched.
const UNMATCHED: &str = "unmatched";

/// A caller's request id is kept when it is short printable ASCII (it goes
/// into logs and headers verbatim).
fn usable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b))
}

/// The middleware (`axum::middleware::from_fn_with_state`).
pub(super) async fn layer(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| usable(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = req.method().clone();
    // The path without its query string: `check?sub=` names are fine to log,
    // but query strings may carry anything a caller typed.
    let path = req.uri().path().to_string();
    let span = tracing::info_span!("http", request_id = %id);
    let mut resp = next.run(req).instrument(span.clone()).await;
    let took = started.elapsed();
    let route = resp
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| UNMATCHED.to_string());
    let status = resp.status().as_u16();
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    s.metrics
        .http_request(&route, method.as_str(), status, took);
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            path = %path,
            route = %route,
            status,
            duration_ms = took.as_secs_f64() * 1000.0,
            "request"
        )
    });
    resp
}

/// Inside the router (a route layer, so routing has happened): hands the
/// matched route template out to [`layer`] on the response.
pub(super) async fn tag_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let mut resp = next.run(req).await;
    if let Some(route) = route {
        resp.extensions_mut().insert(route);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::usable;

    #[test]
    fn keeps_only_sane_request_ids() {
        assert!(usable("3f2c-abc_1.2"));
        assert!(!usable(""));
        assert!(!usable("a b"));
        assert!(!usable("x\u{1b}[31m"));
        assert!(!usable(&"a".repeat(129)));
    }
}
