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

pub(super) async fn reserved() -> Json<Value> {
    let list: Vec<&String> = crate::pool::reserved::reserved_labels().iter().collect();
    Json(json!({ "reserved": list }))
}

/// `GET /api/v1/operations/{id}` (admin): a durable operation with its
/// recent attempts.
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
pub(super) async fn transfers(_: Admin, State(s): State<AppState>) -> Response {
    match &s.transfer {
        Some(t) => Json(json!({"transfers": t.transfers(), "notify": t.notify()})).into_response(),
        None => Json(json!({"transfers": [], "notify": []})).into_response(),
    }
}
