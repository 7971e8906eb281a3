//! Probes and read-only status: `/healthz`, `/readyz`, the reserved list,
//! LUA health checks and durable operations.

use super::guard::Admin;
use super::{ApiError, AppState};
use crate::pool::service::format_time;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

#[utoipa::path(get, operation_id = "statusHealthz", path = "/healthz", tag = "status", description = "Database reachable; the managed pool domains.", responses((status = 200, description = "ok", body = super::openapi::AnyObject), (status = 503, description = "database unreachable", body = super::openapi::ErrorBody)))]
pub(super) async fn healthz(State(s): State<AppState>) -> Response {
    let mut domains: Vec<String> = s
        .config
        .pools
        .iter()
        .map(|p| p.domain.without_dot())
        .collect();
    domains.sort();
    match s.store.ping().await {
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

/// `GET /livez`: the process answers (no dependency is checked, so a
/// database outage never gets the pod restarted).
#[utoipa::path(get, operation_id = "statusLivez", path = "/livez", tag = "status", description = "The process is alive (no dependency checked).", responses((status = 200, description = "alive", body = super::openapi::AnyObject)))]
pub(super) async fn livez() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, operation_id = "statusReadyz", path = "/readyz", tag = "status", description = "Serving DNS and HTTP with the database reachable; 503 while starting or draining.", responses((status = 200, description = "ready", body = super::openapi::AnyObject), (status = 503, description = "not ready", body = super::openapi::ErrorBody)))]
pub(super) async fn readyz(State(s): State<AppState>) -> Response {
    if !s.ready.load(Ordering::Acquire) {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "starting")
            .into_response();
    }
    match s.store.ping().await {
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
pub(super) struct HealthChecksQuery {
    format: Option<String>,
}

/// `GET /api/v1/health-checks` (admin): every LUA health-check target with
/// its status, the checker's and the engine's counters. `?format=prometheus`
/// gives the counters in Prometheus text format.
#[utoipa::path(get, operation_id = "statusHealthChecks", path = "/api/v1/health-checks", tag = "status", description = "LUA health-check targets and counters (admin); ?format=prometheus.", params(("format" = Option<String>, Query, description = "prometheus for the text format")), responses((status = 200, description = "targets and counters", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 403, description = "not admin", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn health_checks(
    State(s): State<AppState>,
    _: Admin,
    Query(q): Query<HealthChecksQuery>,
) -> Result<Response, ApiError> {
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

/// `GET /metrics`: the Prometheus text format (public, like the probes;
/// it names no tenant, and the chart's NetworkPolicy decides who scrapes).
#[utoipa::path(get, operation_id = "statusMetrics", path = "/metrics", tag = "status", description = "Prometheus text format (version 0.0.4).", responses((status = 200, description = "The metrics", content_type = "text/plain", body = String)))]
pub(super) async fn metrics(State(s): State<AppState>) -> Response {
    let counts = match s.store.metric_counts().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the database");
            Default::default()
        }
    };
    match s.metrics.render(counts) {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                crate::metrics::CONTENT_TYPE,
            )],
            text,
        )
            .into_response(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics-failed",
            "the metrics could not be written",
        )
        .into_response(),
    }
}

#[utoipa::path(get, operation_id = "statusReserved", path = "/api/v1/reserved", tag = "pool", description = "The reserved-names list.", responses((status = 200, description = "{reserved: [label]}", body = super::openapi::AnyObject)))]
pub(super) async fn reserved() -> Json<Value> {
    let list: Vec<&String> = crate::pool::reserved::reserved_labels().iter().collect();
    Json(json!({ "reserved": list }))
}

/// `GET /api/v1/operations/{id}` (admin): a durable operation with its
/// recent attempts.
#[utoipa::path(get, operation_id = "statusOperation", path = "/api/v1/operations/{id}", tag = "status", description = "A durable operation with its recent attempts (admin).", params(("id" = String, Path, description = "Its id")), responses((status = 200, description = "the operation", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 404, description = "not-found", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn operation(
    State(s): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: i64 = id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no operation {id:?}"),
        )
    })?;
    let Some(op) = s.store.operation(id).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no operation {id}"),
        ));
    };
    let attempts = s.store.operation_attempts(id, 20).await?;
    let mut v = json!(crate::backend::OperationView::from(&op));
    if let Some(m) = v.as_object_mut() {
        m.insert("subject".into(), json!(op.subject));
        m.insert("step".into(), json!(op.state));
        m.insert("nextRunAt".into(), json!(format_time(op.next_run_at)));
        m.insert("history".into(), json!(attempts));
    }
    Ok(Json(v).into_response())
}

/// `GET /api/v1/transfers` (admin): the transfers served (AXFR/IXFR,
/// bytes, duration, key) and NOTIFY per zone and secondary (serial sent,
/// acknowledged, attempts, last error).
#[utoipa::path(get, operation_id = "statusTransfers", path = "/api/v1/transfers", tag = "status", description = "Zone transfers served (AXFR/IXFR) and NOTIFY state per secondary (admin).", responses((status = 200, description = "transfers and notify state", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 403, description = "not admin", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn transfers(_: Admin, State(s): State<AppState>) -> Response {
    match &s.transfer {
        Some(t) => Json(json!({"transfers": t.transfers(), "notify": t.notify()})).into_response(),
        None => Json(json!({"transfers": [], "notify": []})).into_response(),
    }
}
