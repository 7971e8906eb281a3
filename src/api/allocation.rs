//! The pool allocation as a resource at a name the caller chooses,
//! `/api/v1/pool/{domain}/allocations/{sub}`, for clients that retry
//! everything and tell "exists" from "gone" only by status codes (Crossplane
//! provider-http): `PUT` reserves and commits in one call and is safe to
//! repeat, every 2xx carries the whole object, `GET` answers exactly 404 once
//! the name is released (or was never the caller's to create), and `DELETE`
//! releases, answering 204 when nothing is left to release.

use super::guard::{JsonBody, PoolCaller};
use super::{ApiError, AppState};
use crate::model::{Allocation, AllocationState};
use crate::pool::service::{format_time, EnsureRequest};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Body of `PUT`. `pool` and `subdomain` may repeat the path (the
/// Composition sends them) and must then match it.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct PutBody {
    #[serde(default)]
    pool: Option<String>,
    #[serde(default)]
    subdomain: Option<String>,
    #[serde(default, rename = "loadBalancerIP")]
    load_balancer_ip: Option<String>,
    #[serde(default, rename = "consoleLoadBalancerIP")]
    console_load_balancer_ip: Option<String>,
    /// The owner; another owner's allocation is never adopted (default `crossplane`).
    #[serde(default, rename = "createdBy")]
    created_by: Option<String>,
    /// A reservation to commit (a hold made with `reserve`).
    #[serde(default, rename = "reservationToken")]
    reservation_token: Option<String>,
}

impl super::guard::BodyShape for PutBody {
    const INVALID: &'static str = "invalid-json";
}

/// The owner a `PUT` without `createdBy` acts as.
const DEFAULT_OWNER: &str = "crossplane";

/// The object every 2xx answers.
async fn object(s: &AppState, a: &Allocation) -> Result<Value, ApiError> {
    let fqdn = format!("{}.{}", a.subdomain, a.pool);
    let child = format!("{fqdn}.");
    let nameservers: Vec<String> = s
        .config
        .nameservers
        .iter()
        .map(|n| n.name.without_dot())
        .collect();
    let ds: Vec<String> = match &s.keyring {
        Some(k) => {
            let rows = s.store.zone_keys(&child).await?;
            crate::keyring::key_info(&child, &rows, k.config().dnskey_ttl)
                .into_iter()
                .filter(|k| k.in_parent)
                .flat_map(|k| k.ds)
                .collect()
        }
        None => Vec::new(),
    };
    let mut v = json!({
        "id": fqdn,
        "pool": a.pool,
        "subdomain": a.subdomain,
        "fqdn": fqdn,
        "state": a.state.as_str(),
        "createdBy": a.created_by,
        "reservedAt": format_time(a.reserved_at_ms),
        "nameservers": nameservers,
        "ds": ds,
    });
    if let Some(m) = v.as_object_mut() {
        if let Some(ip) = &a.load_balancer_ip {
            m.insert("loadBalancerIP".into(), json!(ip));
        }
        if let Some(ip) = &a.console_load_balancer_ip {
            m.insert("consoleLoadBalancerIP".into(), json!(ip));
        }
        if let Some(t) = a.committed_at_ms {
            m.insert("committedAt".into(), json!(format_time(t)));
        }
        if let Some(serial) = s.store.zone_serial(&child).await? {
            m.insert("servedSerial".into(), json!(serial));
        }
    }
    Ok(v)
}

fn not_found(pool: &str, sub: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        format!("no active allocation {sub}.{pool}"),
    )
}

/// `PUT /api/v1/pool/{domain}/allocations/{sub}`: create-or-get.
#[utoipa::path(put, operation_id = "allocationPut", path = "/api/v1/pool/{domain}/allocations/{sub}", tag = "allocations",
    description = "Make the subdomain an active allocation of the caller (reserve and commit in one call), or answer it as it is; moves its records when the load balancers differ. Safe to repeat.",
    params(("domain" = String, Path, description = "Pool domain"), ("sub" = String, Path, description = "The label")),
    request_body = PutBody,
    responses(
        (status = 201, description = "Created", body = super::openapi::PoolAllocationBody),
        (status = 200, description = "Already the caller's (records moved to the given load balancers)", body = super::openapi::PoolAllocationBody),
        (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody),
        (status = 403, description = "forbidden, token-mismatch", body = super::openapi::ErrorBody),
        (status = 409, description = "owned-by-another, reserved, conflict, update-not-supported", body = super::openapi::ErrorBody),
        (status = 422, description = "invalid-format, missing-lb-ip, invalid-lb-ip, path-mismatch", body = super::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn put(
    State(s): State<AppState>,
    p: PoolCaller,
    Path((_, sub)): Path<(String, String)>,
    JsonBody(b): JsonBody<PutBody>,
) -> Result<Response, ApiError> {
    let mismatch = |what: &str, given: &str, path: &str| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "path-mismatch",
            format!("{what} {given:?} in the body differs from {path:?} in the path"),
        )
    };
    if let Some(given) = b.pool.as_deref().filter(|g| !g.is_empty()) {
        if given.trim_end_matches('.').to_ascii_lowercase() != p.pool {
            return Err(mismatch("pool", given, &p.pool));
        }
    }
    if let Some(given) = b.subdomain.as_deref().filter(|g| !g.is_empty()) {
        if given != sub {
            return Err(mismatch("subdomain", given, &sub));
        }
    }
    let created_by = b
        .created_by
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_OWNER.to_string());
    if created_by.len() > 256 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-created-by",
            "createdBy is longer than 256 characters",
        ));
    }
    let req = EnsureRequest {
        lb_ip: b.load_balancer_ip,
        console_lb_ip: b.console_load_balancer_ip,
        created_by,
        token: b.reservation_token.filter(|t| !t.trim().is_empty()),
    };
    let (a, created) = s.pool.ensure_active(&p.pool, &sub, &req).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(object(&s, &a).await?)).into_response())
}

/// `GET /api/v1/pool/{domain}/allocations/{sub}`.
#[utoipa::path(get, operation_id = "allocationGet", path = "/api/v1/pool/{domain}/allocations/{sub}", tag = "allocations",
    description = "The active allocation; exactly 404 when released, expired, only reserved, or never made.",
    params(("domain" = String, Path, description = "Pool domain"), ("sub" = String, Path, description = "The label")),
    responses(
        (status = 200, description = "Active", body = super::openapi::PoolAllocationBody),
        (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody),
        (status = 404, description = "not-found", body = super::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn get(
    State(s): State<AppState>,
    p: PoolCaller,
    Path((_, sub)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let a = s
        .store
        .live_allocation(&p.pool, &sub.to_ascii_lowercase())
        .await?
        .filter(|a| a.state == AllocationState::Active)
        .ok_or_else(|| not_found(&p.pool, &sub))?;
    Ok(Json(object(&s, &a).await?).into_response())
}

/// `DELETE /api/v1/pool/{domain}/allocations/{sub}`: release.
#[utoipa::path(delete, operation_id = "allocationDelete", path = "/api/v1/pool/{domain}/allocations/{sub}", tag = "allocations",
    description = "Release the allocation (zone, keys and delegation go in one transaction). 204 when nothing is left to release, so a retried DELETE succeeds.",
    params(("domain" = String, Path, description = "Pool domain"), ("sub" = String, Path, description = "The label")),
    responses(
        (status = 200, description = "Released: {freed: object}", body = super::openapi::AnyObject),
        (status = 204, description = "Nothing to release"),
        (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody),
        (status = 422, description = "invalid-format", body = super::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn delete(
    State(s): State<AppState>,
    p: PoolCaller,
    Path((_, sub)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    match s.pool.release(&p.pool, &sub).await {
        Ok(a) => Ok(Json(json!({"freed": object(&s, &a).await?})).into_response()),
        Err(crate::pool::PoolError::NotFound(_)) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) => Err(e.into()),
    }
}
