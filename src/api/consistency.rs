//! Read your writes, as one layer around every route: a write (any method
//! but GET/HEAD/OPTIONS) that answers 2xx is held until this node's zone
//! table serves every change committed before it answered. A resolver that
//! asks right after the 2xx never caches an NXDOMAIN for a name just created
//! (or an answer for one just removed).

use super::AppState;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Duration;

/// How long a write waits for its change to be served before answering
/// anyway (the store or the refresher is in trouble; the log says so).
const SERVED_TIMEOUT: Duration = Duration::from_secs(5);

/// Response header naming the journal entry a write is covered by.
pub(super) const CHANGE_HEADER: &str = "pdm-change-id";

/// The journal entry a write made, left on its response by the handler:
/// the layer then waits for that entry rather than reading the journal's
/// head (a statement, on SQLite a round trip to its thread, per write).
#[derive(Debug, Clone, Copy)]
struct Made(i64);

/// Mark `resp` as the answer to a write that made journal entry `change`
/// (`None`: it changed nothing, and waits for what came before it).
pub(super) fn made(resp: &mut Response, change: Option<i64>) {
    if let Some(id) = change {
        resp.extensions_mut().insert(Made(id));
    }
}

/// The middleware (`axum::middleware::from_fn_with_state`).
pub(super) async fn layer(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mut resp = next.run(req).await;
    if write && resp.status().is_success() {
        if let Some(served) = &s.served {
            let outcome = match resp.extensions().get::<Made>() {
                Some(&Made(id)) => Ok((id, served.serves(id, SERVED_TIMEOUT).await)),
                None => served.caught_up(SERVED_TIMEOUT).await,
            };
            match outcome {
                Ok((change, served)) => {
                    // The change to follow with GET /api/v1/changes/{id}.
                    resp.headers_mut().insert(CHANGE_HEADER, change.into());
                    if !served {
                        tracing::warn!(
                            timeout_ms = SERVED_TIMEOUT.as_millis() as u64,
                            "a write answered before this node served it (snapshot behind)"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the journal head after a write"),
            }
        }
    }
    resp
}
