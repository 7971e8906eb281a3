//! The change status, as Route 53 reports it: `GET /api/v1/changes/{id}`
//! answers `PENDING` until every live replica and every configured
//! secondary of the zone (asked for its SOA serial directly) serves the
//! change, then `INSYNC`. A change id is a journal entry (the `pdm-change-id` header of
//! every write). Replicas announce themselves with a heartbeat; one silent
//! for longer than `snapshot::REPLICA_TIMEOUT` has dropped out.

use super::guard::Caller;
use super::{ApiError, AppState};
use crate::pool::service::format_time;
use crate::snapshot::REPLICA_TIMEOUT;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

/// `GET /api/v1/changes/{id}`.
#[utoipa::path(get, operation_id = "changeStatus", path = "/api/v1/changes/{id}", tag = "status", description = "PENDING or INSYNC over the live replicas.", params(("id" = String, Path, description = "Its id")), responses((status = 200, description = "the change", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 404, description = "not-found", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn status(
    State(s): State<AppState>,
    _: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no change {id:?}"),
        )
    };
    let n: i64 = id.parse().map_err(|_| not_found())?;
    let entry = s.store.journal_entry(n).await?.ok_or_else(not_found)?;
    let since = crate::store::now_ms() - REPLICA_TIMEOUT.as_millis() as i64;
    let replicas = s.store.live_replicas(since).await?;
    let in_sync = |applied: i64| applied >= n;
    let mut all = !replicas.is_empty() && replicas.iter().all(|r| in_sync(r.applied_through));
    let deleted = entry.change.op == crate::store::journal::ChangeOp::Delete;
    let secondaries = match &s.transfer {
        Some(t) => t.secondaries(&s.config, &entry.change.zone).await,
        None => Vec::new(),
    };
    let secondary_in_sync = |serial: Option<u32>, error: bool| match (deleted, serial) {
        // A deleted zone is in sync where it is no longer served.
        (true, s) => s.is_none() && !error,
        (false, Some(s)) => crate::transfer::serial_reached(s, entry.change.serial),
        (false, None) => false,
    };
    all &= secondaries
        .iter()
        .all(|x| secondary_in_sync(x.serial, x.error.is_some()));
    let secondaries: Vec<Value> = secondaries
        .iter()
        .map(|x| {
            json!({
                "address": x.address.to_string(),
                "serial": x.serial,
                "error": x.error,
                "inSync": secondary_in_sync(x.serial, x.error.is_some()),
            })
        })
        .collect();
    let shown: Vec<Value> = replicas
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "appliedThrough": r.applied_through,
                "lastHeartbeat": format_time(r.heartbeat_at),
                "inSync": in_sync(r.applied_through),
            })
        })
        .collect();
    Ok(Json(json!({
        "id": n,
        "status": if all { "INSYNC" } else { "PENDING" },
        "zone": entry.change.zone,
        "serial": entry.change.serial,
        "op": entry.change.op.as_str(),
        "submittedAt": format_time(entry.at_ms),
        "replicas": shown,
        "secondaries": secondaries,
    })))
}
