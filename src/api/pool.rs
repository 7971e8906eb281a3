//! The Go service's pool endpoints: check, reserve, commit, release, list,
//! and release by FQDN.

use super::guard::{bearer, require_pool, Admin, BodyShape, Caller, JsonBody, PoolCaller, RawBody};
use super::{ApiError, AppState};
use crate::model::{Allocation, AllocationState};
use crate::pool::service::{format_time, Availability, CommitRequest};
use crate::pool::PoolError;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// What a pool handler answers on success.
type Answer = Result<(StatusCode, Json<Value>), ApiError>;

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

/// `GET /api/v1/pool/{pool}/check?sub=`: always 200 `{available, ...}`.
#[utoipa::path(get, operation_id = "poolCheck", path = "/api/v1/pool/{domain}/check", tag = "pool", description = "Is the subdomain free? Always 200.", params(("domain" = String, Path, description = "Pool domain, e.g. example.test"), ("sub" = String, Query, description = "The label")), responses((status = 200, description = "availability", body = super::openapi::CheckBody), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody)))]
pub(super) async fn check(
    State(s): State<AppState>,
    Path(domain): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    // A pool that is not public needs a token; unknown pools answer like the Go
    // service (200, available:false) so the wizard's parsing keeps working.
    if let Ok(pool) = s.pool.pool(&domain) {
        if !pool.public_check {
            let token = bearer(&s, &headers).await?;
            require_pool(&token, &pool.domain.without_dot())?;
        }
    }
    let sub = q.get("sub").map(String::as_str).unwrap_or("");
    Ok(Json(match s.pool.check(&domain, sub).await? {
        Availability::Available(fqdn) => json!({"available": true, "fqdn": fqdn}),
        Availability::Unavailable(reason, detail) => {
            json!({"available": false, "reason": reason, "detail": detail})
        }
    }))
}

/// Body of `reserve`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct ReserveBody {
    #[serde(default)]
    subdomain: Option<String>,
    #[serde(default, rename = "createdBy")]
    created_by: Option<String>,
}

impl BodyShape for ReserveBody {
    const INVALID: &'static str = "invalid-json";
}

/// `POST /api/v1/pool/{pool}/reserve` → 201 with the reservation token.
#[utoipa::path(post, operation_id = "poolReserve", path = "/api/v1/pool/{domain}/reserve", tag = "pool", description = "Hold a subdomain for the pool's reservation TTL.", params(("domain" = String, Path, description = "Pool domain, e.g. example.test")), request_body = ReserveBody, responses((status = 201, description = "reserved", body = super::openapi::ReservationBody), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 409, description = "conflict or reserved", body = super::openapi::ErrorBody), (status = 422, description = "invalid-format, unsupported-pool, invalid-created-by", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn reserve(
    State(s): State<AppState>,
    p: PoolCaller,
    JsonBody(b): JsonBody<ReserveBody>,
) -> Answer {
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
        .reserve(&p.pool, b.subdomain.as_deref().unwrap_or(""), &created_by)
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
    Ok((StatusCode::CREATED, Json(body)))
}

/// Body of `commit`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct CommitBody {
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

impl BodyShape for CommitBody {
    const INVALID: &'static str = "invalid-json";
}

/// `POST /api/v1/pool/{pool}/commit`: the child zone and its delegation.
#[utoipa::path(post, operation_id = "poolCommit", path = "/api/v1/pool/{domain}/commit", tag = "pool", description = "Create the child zone and its delegation (retry-safe).", params(("domain" = String, Path, description = "Pool domain, e.g. example.test")), request_body = CommitBody, responses((status = 200, description = "active", body = super::openapi::AllocationBody), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 403, description = "token-mismatch", body = super::openapi::ErrorBody), (status = 404, description = "not-found", body = super::openapi::ErrorBody), (status = 410, description = "reservation-expired", body = super::openapi::ErrorBody), (status = 422, description = "validation", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn commit(
    State(s): State<AppState>,
    p: PoolCaller,
    JsonBody(b): JsonBody<CommitBody>,
) -> Answer {
    let req = CommitRequest {
        subdomain: b.subdomain.unwrap_or_default(),
        token: b.reservation_token.unwrap_or_default(),
        sovereign_fqdn: b.sovereign_fqdn,
        lb_ip: b.load_balancer_ip,
        console_lb_ip: b.console_load_balancer_ip,
    };
    let a = s.pool.commit(&p.pool, &req).await?;
    let mut body = allocation_json(&a);
    with_operation(&s, &p.pool, &a.subdomain, &mut body).await?;
    // The child zone's serial this commit produced (embedded backend: the
    // node answers it before this 200 leaves; see api/consistency.rs).
    let child = format!("{}.{}.", a.subdomain, a.pool);
    if let (Some(serial), Some(m)) = (s.store.zone_serial(&child).await?, body.as_object_mut()) {
        m.insert("servedSerial".into(), json!(serial));
    }
    Ok((StatusCode::OK, Json(body)))
}

#[derive(Deserialize)]
pub(super) struct ReleaseBody {
    #[serde(default)]
    subdomain: Option<String>,
}

/// `DELETE /api/v1/pool/{pool}/release` with `{subdomain}` or `?sub=`.
#[utoipa::path(delete, operation_id = "poolRelease", path = "/api/v1/pool/{domain}/release", tag = "pool", description = "Free a subdomain: zone and delegation removed.", params(("domain" = String, Path, description = "Pool domain, e.g. example.test"), ("sub" = Option<String>, Query, description = "The label (or in the body)")), responses((status = 200, description = "{freed: allocation}", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 404, description = "not-found", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn release(
    State(s): State<AppState>,
    p: PoolCaller,
    Query(q): Query<HashMap<String, String>>,
    RawBody(bytes): RawBody,
) -> Answer {
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
    let a = s.pool.release(&p.pool, &sub).await?;
    let mut body = json!({ "freed": allocation_json(&a) });
    with_operation(&s, &p.pool, &a.subdomain, &mut body).await?;
    Ok((StatusCode::OK, Json(body)))
}

/// `GET /api/v1/pool/{pool}/list`: live allocations, never their tokens.
#[utoipa::path(get, operation_id = "poolList", path = "/api/v1/pool/{domain}/list", tag = "pool", description = "Reserved and active allocations (never tokens).", params(("domain" = String, Path, description = "Pool domain, e.g. example.test")), responses((status = 200, description = "{poolDomain, allocations}", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 422, description = "unsupported-pool", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list(State(s): State<AppState>, p: PoolCaller) -> Answer {
    let allocations = s.store.list_live(&p.pool).await?;
    let mut list: Vec<Value> = Vec::with_capacity(allocations.len());
    for a in &allocations {
        let mut v = allocation_json(a);
        if a.state == AllocationState::Active {
            with_operation(&s, &p.pool, &a.subdomain, &mut v).await?;
        }
        list.push(v);
    }
    Ok((
        StatusCode::OK,
        Json(json!({"poolDomain": p.pool, "allocations": list})),
    ))
}

/// Body of `POST /api/v1/release`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct ReleaseFqdnBody {
    #[serde(default, rename = "sovereignFQDN")]
    sovereign_fqdn: Option<String>,
}

impl BodyShape for ReleaseFqdnBody {
    const INVALID: &'static str = "invalid-json";
}

/// `sub.pool` from a `sovereignFQDN`, split at the first dot (422 `invalid-fqdn`),
/// with the pool managed here (404 `not-managed` for a byo Sovereign).
fn split_fqdn(s: &AppState, given: Option<String>) -> Result<(String, String, String), ApiError> {
    let fqdn = given
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
    let sub = sub.to_string();
    Ok((fqdn, sub, pool))
}

/// `POST /api/v1/release` `{sovereignFQDN}`: release by FQDN.
#[utoipa::path(post, operation_id = "poolReleaseFqdn", path = "/api/v1/release", tag = "pool", description = "Release by sovereignFQDN.", request_body = ReleaseFqdnBody, responses((status = 200, description = "released", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 404, description = "not-found or not-managed", body = super::openapi::ErrorBody), (status = 422, description = "invalid-fqdn", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn release_fqdn(
    State(s): State<AppState>,
    Caller(token): Caller,
    JsonBody(b): JsonBody<ReleaseFqdnBody>,
) -> Answer {
    let (fqdn, sub, pool) = split_fqdn(&s, b.sovereign_fqdn)?;
    require_pool(&token, &pool)?;
    let a = s.pool.release(&pool, &sub).await?;
    let mut body = json!({
        "sovereignFQDN": fqdn,
        "freed": allocation_json(&a),
        "releasedAt": a.released_at_ms.map(format_time),
    });
    with_operation(&s, &pool, &a.subdomain, &mut body).await?;
    Ok((StatusCode::OK, Json(body)))
}

/// Body of `POST /api/v1/force-release`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct ForceReleaseBody {
    #[serde(default, rename = "sovereignFQDN")]
    sovereign_fqdn: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default, rename = "graceConfirmed")]
    grace_confirmed: Option<bool>,
}

impl BodyShape for ForceReleaseBody {
    const INVALID: &'static str = "invalid-json";
}

/// `POST /api/v1/force-release` (admin, `X-Force-Release-Confirm: yes`):
/// the operator's release of an allocation whose Sovereign is gone, after
/// the grace period, unless the name is still delegated somewhere else.
///
/// The Go service asked a recursive resolver whether the FQDN resolved,
/// which it always did while its own PowerDNS served the child, so the gate
/// blocked nearly every legitimate call. pdm asks the parent zone's servers
/// directly for the child's delegation: none, or one to pdm's own
/// nameservers, means nothing outside pdm serves the name any more.
#[utoipa::path(post, operation_id = "poolForceRelease", path = "/api/v1/force-release", tag = "pool", description = "Release after the grace period when no live delegation remains (admin, X-Force-Release-Confirm: yes).", request_body = ForceReleaseBody, responses((status = 200, description = "released", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 404, description = "not-found", body = super::openapi::ErrorBody), (status = 412, description = "grace-not-elapsed or fqdn-still-resolves", body = super::openapi::ErrorBody), (status = 422, description = "validation", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn force_release(
    State(s): State<AppState>,
    _: Admin,
    headers: HeaderMap,
    JsonBody(b): JsonBody<ForceReleaseBody>,
) -> Answer {
    use StatusCode as S;
    let confirmed = headers
        .get("x-force-release-confirm")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("yes"));
    if !confirmed {
        return Err(ApiError::new(
            S::UNAUTHORIZED,
            "missing-confirm-header",
            "force-release needs the header X-Force-Release-Confirm: yes",
        ));
    }
    let reason = b.reason.as_deref().map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        return Err(ApiError::new(
            S::UNPROCESSABLE_ENTITY,
            "missing-reason",
            "reason is required (it goes to the audit log)",
        ));
    }
    if b.grace_confirmed != Some(true) {
        return Err(ApiError::new(
            S::UNPROCESSABLE_ENTITY,
            "grace-not-confirmed",
            "graceConfirmed must be true",
        ));
    }
    // An unmanaged pool is 422 here (the Go service's force-release), not
    // the 404 `not-managed` of a plain release.
    let (fqdn, sub, pool) = match split_fqdn(&s, b.sovereign_fqdn) {
        Err(e) if e.code == "not-managed" => {
            return Err(ApiError::new(
                S::UNPROCESSABLE_ENTITY,
                "unsupported-pool",
                e.detail,
            ))
        }
        other => other?,
    };
    let a = s.store.live_allocation(&pool, &sub).await?.ok_or_else(|| {
        ApiError::new(
            S::NOT_FOUND,
            "not-found",
            format!("no reservation or active allocation for {fqdn}"),
        )
    })?;
    let grace_hours = s.config.force_release_grace_hours;
    let grace_ms = i64::try_from(grace_hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX);
    let until = a.reserved_at_ms.saturating_add(grace_ms);
    if crate::store::now_ms() < until {
        return Err(ApiError::new(
            S::PRECONDITION_FAILED,
            "grace-not-elapsed",
            format!(
                "{fqdn} was reserved at {}; force-release is possible from {} ({grace_hours} h grace)",
                format_time(a.reserved_at_ms),
                format_time(until)
            ),
        ));
    }
    let child = hickory_proto::rr::Name::from_ascii(format!("{fqdn}."))
        .map_err(|e| ApiError::new(S::UNPROCESSABLE_ENTITY, "invalid-fqdn", e.to_string()))?;
    let ours: Vec<String> = s
        .config
        .nameservers
        .iter()
        .map(|n| n.name.without_dot().to_ascii_lowercase())
        .collect();
    let prober = crate::delegation::probe::Prober::from_config(&s.config.delegation);
    match prober.delegated_elsewhere(&child, &ours).await {
        Ok(None) => {}
        Ok(Some((server, host))) => {
            return Err(ApiError::new(
                S::PRECONDITION_FAILED,
                "fqdn-still-resolves",
                format!("{fqdn} is still delegated to {host} (parent server {server}); the Sovereign's DNS looks alive"),
            ))
        }
        Err(e) => {
            return Err(ApiError::new(
                S::SERVICE_UNAVAILABLE,
                "delegation-check-failed",
                format!("cannot ask the parent's servers about {fqdn}: {e}; nothing was released"),
            ))
        }
    }
    let released = s.pool.release(&pool, &sub).await?;
    tracing::warn!(
        fqdn = %fqdn,
        reason,
        grace_hours,
        reserved_at = %format_time(a.reserved_at_ms),
        "force-release"
    );
    let mut body = json!({
        "sovereignFQDN": fqdn,
        "freed": allocation_json(&released),
        "releasedAt": released.released_at_ms.map(format_time),
        "audit": {
            "reason": reason,
            "graceHours": grace_hours,
            "reservedAt": format_time(a.reserved_at_ms),
        },
    });
    with_operation(&s, &pool, &released.subdomain, &mut body).await?;
    Ok((S::OK, Json(body)))
}
