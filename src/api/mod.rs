//! The HTTP API (axum): the Go service's pool endpoints, plus health probes.
//! Handlers parse and authorise at the edge, call the pool service, and map
//! its typed errors once (`error.rs`).

pub mod dnssec;
pub mod domains;
pub mod error;
mod pool;
pub mod registrar;
mod status;

use crate::model::DomainName;
use crate::pool::PoolService;
use crate::store::idempotency::StoredAnswer;
use crate::store::sha256_hex;
use crate::store::tokens::TokenInfo;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
pub use error::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// Shared handler state.
#[derive(Clone)]
pub struct AppState {
    /// The allocation service.
    pub pool: PoolService,
    /// Set once DNS and HTTP are both serving.
    pub ready: Arc<AtomicBool>,
    /// Managed byo domains and the registrar endpoints.
    pub byo: crate::delegation::ByoService,
    /// The LUA record engines (health checker and counters).
    pub lua: Option<crate::server::LuaRuntime>,
}

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(status::healthz))
        .route("/livez", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(status::readyz))
        .route("/api/v1/reserved", get(status::reserved))
        .route("/api/v1/pool/{domain}/check", get(pool::check))
        .route("/api/v1/pool/{domain}/reserve", post(pool::reserve))
        .route("/api/v1/pool/{domain}/commit", post(pool::commit))
        .route("/api/v1/pool/{domain}/release", delete(pool::release))
        .route("/api/v1/pool/{domain}/list", get(pool::list))
        .route("/api/v1/release", post(pool::release_fqdn))
        .route("/api/v1/zones/{zone}/dnssec", get(dnssec::status))
        .route(
            "/api/v1/zones/{zone}/dnssec/rollover",
            post(dnssec::start_rollover),
        )
        .route(
            "/api/v1/zones/{zone}/dnssec/rollover/ds-published",
            post(dnssec::confirm_ds),
        )
        .route(
            "/api/v1/registrar/{registrar}/validate",
            post(registrar::validate),
        )
        .route(
            "/api/v1/registrar/{registrar}/set-ns",
            post(registrar::set_ns),
        )
        .route("/api/v1/health-checks", get(status::health_checks))
        .route("/api/v1/operations/{id}", get(status::operation))
        .route("/api/v1/domains", post(domains::create).get(domains::list))
        .route(
            "/api/v1/domains/{domain}",
            get(domains::get).delete(domains::delete),
        )
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such endpoint")
        })
        .with_state(state)
}

/// The bearer token of a request, resolved; 401 when absent or unknown.
async fn authenticate(s: &AppState, headers: &HeaderMap) -> Result<TokenInfo, ApiError> {
    let unauthorized = |d: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", d);
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unauthorized("missing Authorization: Bearer <token>"))?;
    let secret = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("Authorization must be 'Bearer <token>'"))?;
    s.pool
        .store()
        .token(secret)
        .await?
        .ok_or_else(|| unauthorized("unknown token"))
}

/// Authenticate and require a scope covering `pool`.
async fn authorize_pool(
    s: &AppState,
    headers: &HeaderMap,
    pool: &str,
) -> Result<TokenInfo, ApiError> {
    let token = authenticate(s, headers).await?;
    let name = DomainName::parse(pool)
        .map(|d| d.without_dot())
        .unwrap_or_default();
    if token.covers_pool(&name) {
        Ok(token)
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("token {:?} has no scope for pool {name}", token.name),
        ))
    }
}

/// A pool path parameter that names a managed pool, or 422.
fn managed_pool(s: &AppState, domain: &str) -> Result<String, ApiError> {
    Ok(s.pool.pool(domain)?.domain.without_dot())
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("request body exceeds {MAX_BODY} bytes"),
        )
    })
}

fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-json",
            format!("invalid JSON body: {e}"),
        )
    })
}

/// Run a POST with `Idempotency-Key` support: the first answer for a key is
/// stored and replayed for the same request; a different request under the
/// same key is refused.
async fn idempotent<F, Fut>(
    s: &AppState,
    token: &TokenInfo,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    body: &[u8],
    run: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(StatusCode, Value), ApiError>>,
{
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let Some(key) = key else {
        return into_response(run().await);
    };
    if key.len() > 255 {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-idempotency-key",
            "Idempotency-Key is longer than 255 characters",
        )
        .into_response();
    }
    let mut material = Vec::with_capacity(body.len() + path.len() + 8);
    material.extend_from_slice(method.as_str().as_bytes());
    material.push(b' ');
    material.extend_from_slice(path.as_bytes());
    material.push(b'\n');
    material.extend_from_slice(body);
    let hash = sha256_hex(&material);
    match s.pool.store().idempotent_answer(token.id, key).await {
        Ok(Some(prev)) if prev.request_hash == hash => {
            let status = StatusCode::from_u16(prev.status).unwrap_or(StatusCode::OK);
            let mut resp = (
                status,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                prev.body,
            )
                .into_response();
            resp.headers_mut().insert(
                "idempotent-replayed",
                axum::http::HeaderValue::from_static("true"),
            );
            return resp;
        }
        Ok(Some(_)) => {
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "this Idempotency-Key was used for a different request",
            )
            .into_response()
        }
        Ok(None) => {}
        Err(e) => return ApiError::from(e).into_response(),
    }
    let (status, value) = match run().await {
        Ok(ok) => ok,
        Err(e) => (e.status, e.body()),
    };
    // Server errors are not replayed: the caller should be able to retry them.
    if !status.is_server_error() {
        let answer = StoredAnswer {
            request_hash: hash,
            status: status.as_u16(),
            body: value.to_string(),
        };
        if let Err(e) = s.pool.store().store_answer(token.id, key, &answer).await {
            tracing::warn!(error = %e, "could not store idempotent answer");
        }
    }
    (status, Json(value)).into_response()
}

fn into_response(r: Result<(StatusCode, Value), ApiError>) -> Response {
    match r {
        Ok((status, v)) => (status, Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}
