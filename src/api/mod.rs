//! The HTTP API (axum): the Go service's pool endpoints, plus health probes.
//! Handlers parse and authorise at the edge, call the pool service, and map
//! its typed errors once (`error.rs`).

pub mod dnssec;
pub mod domains;
pub mod error;
pub mod registrar;

use crate::model::{Allocation, AllocationState, DomainName};
use crate::pool::service::{format_time, Availability, CommitRequest};
use crate::pool::{PoolError, PoolService};
use crate::store::idempotency::StoredAnswer;
use crate::store::sha256_hex;
use crate::store::tokens::TokenInfo;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
pub use error::ApiError;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// The LUA records' health checker and counters.
    pub lua: Option<crate::lua::LuaObserver>,
}

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/api/v1/reserved", get(reserved))
        .route("/api/v1/pool/{domain}/check", get(check))
        .route("/api/v1/pool/{domain}/reserve", post(reserve))
        .route("/api/v1/pool/{domain}/commit", post(commit))
        .route("/api/v1/pool/{domain}/release", delete(release))
        .route("/api/v1/pool/{domain}/list", get(list))
        .route("/api/v1/release", post(release_fqdn))
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
        .route("/api/v1/health-checks", get(health_checks))
        .route("/api/v1/operations/{id}", get(operation))
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

async fn healthz(State(s): State<AppState>) -> Response {
    let mut domains: Vec<String> = s
        .pool
        .config()
        .pools
        .iter()
        .map(|p| p.domain.without_dot())
        .collect();
    domains.sort();
    match s.pool.store().ping().await {
        Ok(()) => Json(json!({"status": "ok", "managedDomains": domains})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unhealthy", "db": "unreachable"})),
            )
                .into_response()
        }
    }
}

async fn readyz(State(s): State<AppState>) -> Response {
    if !s.ready.load(Ordering::Acquire) {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "starting")
            .into_response();
    }
    match s.pool.store().ping().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "database unreachable",
        )
        .into_response(),
    }
}

#[derive(Deserialize)]
struct HealthChecksQuery {
    format: Option<String>,
}

/// `GET /api/v1/health-checks` (admin): every LUA health-check target with
/// its status, the checker's and the engine's counters. `?format=prometheus`
/// gives the counters in Prometheus text format.
async fn health_checks(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HealthChecksQuery>,
) -> Result<Response, ApiError> {
    let token = authenticate(&s, &headers).await?;
    if !token.is_admin() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "health checks need an admin token",
        ));
    }
    let (targets, counters, stats) = match &s.lua {
        Some(lua) => (lua.targets(), lua.health_counters(), lua.stats()),
        None => Default::default(),
    };
    if q.format.as_deref() == Some("prometheus") {
        let metrics: [(&str, &str, &str, u64); 10] = [
            (
                "evaluations_total",
                "counter",
                "LUA record evaluations.",
                stats.evaluations,
            ),
            (
                "errors_total",
                "counter",
                "Evaluations that failed (SERVFAIL).",
                stats.errors,
            ),
            (
                "limit_errors_total",
                "counter",
                "Evaluations stopped by a limit.",
                stats.limit_errors,
            ),
            (
                "states_created_total",
                "counter",
                "Lua states created.",
                stats.states_created,
            ),
            (
                "health_checks_total",
                "counter",
                "Health checks completed.",
                counters.checks_total,
            ),
            (
                "health_check_failures_total",
                "counter",
                "Health checks that failed.",
                counters.check_failures_total,
            ),
            (
                "health_transitions_total",
                "counter",
                "Up/down transitions.",
                counters.transitions_total,
            ),
            (
                "health_targets",
                "gauge",
                "Health-check targets known.",
                counters.targets,
            ),
            ("health_targets_up", "gauge", "Targets up.", counters.up),
            (
                "health_targets_down",
                "gauge",
                "Targets down.",
                counters.down,
            ),
        ];
        let mut text = String::new();
        for (name, kind, help, v) in metrics {
            text.push_str(&format!(
                "# HELP pdm_lua_{name} {help}\n# TYPE pdm_lua_{name} {kind}\npdm_lua_{name} {v}\n"
            ));
        }
        return Ok((
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4",
            )],
            text,
        )
            .into_response());
    }
    Ok(Json(json!({
        "targets": targets,
        "counters": counters,
        "engine": stats,
    }))
    .into_response())
}

async fn reserved() -> Json<Value> {
    let list: Vec<&String> = crate::pool::reserved::reserved_labels().iter().collect();
    Json(json!({ "reserved": list }))
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

/// Adds `operation` (`{id, kind, status, attempts, lastError}`) to `body`
/// when the zone backend carries the change out as a durable operation.
async fn with_operation(
    s: &AppState,
    pool: &str,
    sub: &str,
    body: &mut Value,
) -> Result<(), ApiError> {
    if let (Some(op), Some(m)) = (s.pool.operation(pool, sub).await?, body.as_object_mut()) {
        m.insert("operation".into(), json!(op));
    }
    Ok(())
}

/// `GET /api/v1/operations/{id}` (admin): a durable operation with its
/// recent attempts.
async fn operation(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = authenticate(&s, &headers).await?;
    if !token.is_admin() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "operations need an admin token",
        ));
    }
    let Some(op) = s.pool.store().operation(id).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no operation {id}"),
        ));
    };
    let attempts = s.pool.store().operation_attempts(id, 20).await?;
    let mut v = json!(crate::backend::OperationView::from(&op));
    if let Some(m) = v.as_object_mut() {
        m.insert("subject".into(), json!(op.subject));
        m.insert("step".into(), json!(op.state));
        m.insert("nextRunAt".into(), json!(format_time(op.next_run_at)));
        m.insert("history".into(), json!(attempts));
    }
    Ok(Json(v).into_response())
}

/// The Go service's `allocationResponse`, minus the token.
fn allocation_json(a: &Allocation) -> Value {
    let mut m = Map::new();
    m.insert("poolDomain".into(), json!(a.pool));
    m.insert("subdomain".into(), json!(a.subdomain));
    m.insert("state".into(), json!(a.state.as_str()));
    m.insert("reservedAt".into(), json!(format_time(a.reserved_at_ms)));
    if a.state == AllocationState::Reserved {
        if let Some(e) = a.expires_at_ms {
            m.insert("expiresAt".into(), json!(format_time(e)));
        }
    }
    m.insert("createdBy".into(), json!(a.created_by));
    if let Some(v) = &a.sovereign_fqdn {
        m.insert("sovereignFQDN".into(), json!(v));
    }
    if let Some(v) = &a.load_balancer_ip {
        m.insert("loadBalancerIP".into(), json!(v));
    }
    if let Some(v) = &a.console_load_balancer_ip {
        m.insert("consoleLoadBalancerIP".into(), json!(v));
    }
    if let Some(v) = a.released_at_ms {
        if a.state == AllocationState::Released {
            m.insert("releasedAt".into(), json!(format_time(v)));
        }
    }
    Value::Object(m)
}

async fn check(
    State(s): State<AppState>,
    Path(domain): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    // A pool that is not public needs a token; unknown pools answer like the Go
    // service (200, available:false) so the wizard's parsing keeps working.
    if let Ok(pool) = s.pool.pool(&domain) {
        if !pool.public_check {
            if let Err(e) = authorize_pool(&s, &headers, &pool.domain.without_dot()).await {
                return e.into_response();
            }
        }
    }
    let sub = q.get("sub").map(String::as_str).unwrap_or("");
    match s.pool.check(&domain, sub).await {
        Ok(Availability::Available(fqdn)) => {
            Json(json!({"available": true, "fqdn": fqdn})).into_response()
        }
        Ok(Availability::Unavailable(reason, detail)) => {
            Json(json!({"available": false, "reason": reason, "detail": detail})).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
struct ReserveBody {
    #[serde(default)]
    subdomain: Option<String>,
    #[serde(default, rename = "createdBy")]
    created_by: Option<String>,
}

async fn reserve(
    State(s): State<AppState>,
    Path(domain): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let pre = async {
        let pool = managed_pool(&s, &domain)?;
        let token = authorize_pool(&s, &headers, &pool).await?;
        let bytes = read_body(body).await?;
        Ok::<_, ApiError>((pool, token, bytes))
    };
    let (pool, token, bytes) = match pre.await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let path = format!("/api/v1/pool/{pool}/reserve");
    idempotent(&s, &token, &headers, &method, &path, &bytes, || async {
        let b: ReserveBody = parse_json(&bytes)?;
        let created_by = b
            .created_by
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| "catalyst-api".to_string());
        if created_by.len() > 256 {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-created-by",
                "createdBy is longer than 256 characters",
            ));
        }
        let (a, tok) = s
            .pool
            .reserve(&pool, b.subdomain.as_deref().unwrap_or(""), &created_by)
            .await?;
        let body = json!({
            "poolDomain": a.pool,
            "subdomain": a.subdomain,
            "state": "reserved",
            "reservedAt": format_time(a.reserved_at_ms),
            "expiresAt": a.expires_at_ms.map(format_time),
            "reservationToken": tok,
            "createdBy": a.created_by,
        });
        Ok((StatusCode::CREATED, body))
    })
    .await
}

#[derive(Deserialize)]
struct CommitBody {
    #[serde(default)]
    subdomain: Option<String>,
    #[serde(default, rename = "reservationToken")]
    reservation_token: Option<String>,
    #[serde(default, rename = "sovereignFQDN")]
    sovereign_fqdn: Option<String>,
    #[serde(default, rename = "loadBalancerIP")]
    load_balancer_ip: Option<String>,
    #[serde(default, rename = "consoleLoadBalancerIP")]
    console_load_balancer_ip: Option<String>,
}

async fn commit(
    State(s): State<AppState>,
    Path(domain): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let pre = async {
        let pool = managed_pool(&s, &domain)?;
        let token = authorize_pool(&s, &headers, &pool).await?;
        let bytes = read_body(body).await?;
        Ok::<_, ApiError>((pool, token, bytes))
    };
    let (pool, token, bytes) = match pre.await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let path = format!("/api/v1/pool/{pool}/commit");
    idempotent(&s, &token, &headers, &method, &path, &bytes, || async {
        let b: CommitBody = parse_json(&bytes)?;
        let req = CommitRequest {
            subdomain: b.subdomain.unwrap_or_default(),
            token: b.reservation_token.unwrap_or_default(),
            sovereign_fqdn: b.sovereign_fqdn,
            lb_ip: b.load_balancer_ip,
            console_lb_ip: b.console_load_balancer_ip,
        };
        let a = s.pool.commit(&pool, &req).await?;
        let mut body = allocation_json(&a);
        with_operation(&s, &pool, &a.subdomain, &mut body).await?;
        Ok((StatusCode::OK, body))
    })
    .await
}

#[derive(Deserialize)]
struct ReleaseBody {
    #[serde(default)]
    subdomain: Option<String>,
}

async fn release(
    State(s): State<AppState>,
    Path(domain): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let r = async {
        let pool = managed_pool(&s, &domain)?;
        authorize_pool(&s, &headers, &pool).await?;
        let bytes = read_body(body).await?;
        // Body first, `?sub=` as the fallback, as the Go service does.
        let from_body = serde_json::from_slice::<ReleaseBody>(&bytes)
            .ok()
            .and_then(|b| b.subdomain)
            .filter(|s| !s.trim().is_empty());
        let sub = match from_body.or_else(|| q.get("sub").cloned()) {
            Some(sub) => sub,
            None if !bytes.is_empty() && serde_json::from_slice::<Value>(&bytes).is_err() => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-json",
                    "invalid JSON body",
                ));
            }
            None => String::new(),
        };
        let a = s.pool.release(&pool, &sub).await?;
        let mut body = json!({ "freed": allocation_json(&a) });
        with_operation(&s, &pool, &a.subdomain, &mut body).await?;
        Ok((StatusCode::OK, body))
    };
    into_response(r.await)
}

async fn list(
    State(s): State<AppState>,
    Path(domain): Path<String>,
    headers: HeaderMap,
) -> Response {
    let r = async {
        let pool = managed_pool(&s, &domain)?;
        authorize_pool(&s, &headers, &pool).await?;
        let allocations = s.pool.store().list_live(&pool).await?;
        let mut list: Vec<Value> = Vec::with_capacity(allocations.len());
        for a in &allocations {
            let mut v = allocation_json(a);
            if a.state == AllocationState::Active {
                with_operation(&s, &pool, &a.subdomain, &mut v).await?;
            }
            list.push(v);
        }
        Ok((
            StatusCode::OK,
            json!({"poolDomain": pool, "allocations": list}),
        ))
    };
    into_response(r.await)
}

#[derive(Deserialize)]
struct ReleaseFqdnBody {
    #[serde(default, rename = "sovereignFQDN")]
    sovereign_fqdn: Option<String>,
}

async fn release_fqdn(
    State(s): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let pre = async {
        let token = authenticate(&s, &headers).await?;
        let bytes = read_body(body).await?;
        Ok::<_, ApiError>((token, bytes))
    };
    let (token, bytes) = match pre.await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    idempotent(
        &s,
        &token,
        &headers,
        &method,
        "/api/v1/release",
        &bytes,
        || async {
            let b: ReleaseFqdnBody = parse_json(&bytes)?;
            let fqdn = b
                .sovereign_fqdn
                .unwrap_or_default()
                .trim()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            let invalid = || {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-fqdn",
                    format!("{fqdn:?} is not <subdomain>.<pool>"),
                )
            };
            let (sub, pool) = fqdn.split_once('.').ok_or_else(invalid)?;
            if sub.is_empty() || pool.is_empty() || pool.starts_with('.') {
                return Err(invalid());
            }
            let pool = match s.pool.pool(pool) {
                Ok(p) => p.domain.without_dot(),
                Err(PoolError::UnsupportedPool(_)) => {
                    return Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        "not-managed",
                        format!(
                        "{pool} is not a pool managed here (BYO domain — no allocation to release)"
                    ),
                    ))
                }
                Err(e) => return Err(e.into()),
            };
            if !token.covers_pool(&pool) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("token has no scope for pool {pool}"),
                ));
            }
            let a = s.pool.release(&pool, sub).await?;
            let mut body = json!({
                "sovereignFQDN": fqdn,
                "freed": allocation_json(&a),
                "releasedAt": a.released_at_ms.map(format_time),
            });
            with_operation(&s, &pool, &a.subdomain, &mut body).await?;
            Ok((StatusCode::OK, body))
        },
    )
    .await
}
