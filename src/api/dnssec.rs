//! DNSSEC over HTTP: a zone's keys, DS for its parent, and key rollovers.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::guard::{BodyShape, Caller, JsonBody};
use super::{ApiError, AppState};
use crate::dnssec::rollover::RolloverKind;
use crate::keyring::{key_info, rollover_status, Keyring};
use crate::model::DomainName;
use crate::store::tokens::TokenInfo;

/// The zone name from the path, and a check that the token may manage it:
/// admin for any zone, a pool scope for the pool zone and its children.
fn authorize_zone(s: &AppState, token: &TokenInfo, zone: &str) -> Result<DomainName, ApiError> {
    let name = DomainName::parse(zone).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-zone",
            e.to_string(),
        )
    })?;
    let pool_ok = s.config.pools.iter().any(|p| {
        p.domain.name().zone_of(name.name()) && token.covers_pool(&p.domain.without_dot())
    });
    if token.is_admin() || pool_ok {
        Ok(name)
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "token {:?} may not manage zone {}",
                token.name,
                name.without_dot()
            ),
        ))
    }
}

fn keyring(s: &AppState) -> Result<&Keyring, ApiError> {
    s.keyring.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "dnssec-disabled",
            "DNSSEC is disabled in this pdm's configuration",
        )
    })
}

/// `GET /api/v1/zones/{zone}/dnssec`: keys, DS for the parent, rollover.
#[utoipa::path(get, operation_id = "dnssecStatus", path = "/api/v1/zones/{zone}/dnssec", tag = "dnssec", description = "Keys, DS and the rollover in progress.", params(("zone" = String, Path, description = "Zone name")), responses((status = 200, description = "DNSSEC status", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 404, description = "not-found or dnssec-disabled", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn status(
    State(s): State<AppState>,
    Caller(token): Caller,
    Path(zone): Path<String>,
) -> Result<Response, ApiError> {
    let name = authorize_zone(&s, &token, &zone)?;
    let k = keyring(&s)?;
    let fqdn = name.fqdn();
    let store = &s.store;
    if store.load_zone(&fqdn).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no zone {}", name.without_dot()),
        ));
    }
    let denial = store.zone_dnssec(&fqdn).await?;
    let rows = store.zone_keys(&fqdn).await?;
    let keys = key_info(&fqdn, &rows, k.config().dnskey_ttl);
    let ds: Vec<&String> = keys
        .iter()
        .filter(|k| k.in_parent)
        .flat_map(|k| k.ds.iter())
        .collect();
    let rollover = store
        .rollover(&fqdn)
        .await?
        .map(|r| rollover_status(&r, &rows));
    Ok(Json(json!({
        "zone": name.without_dot(),
        "signed": denial.is_some(),
        "denial": denial,
        "keys": keys,
        "ds": ds,
        "rollover": rollover,
    }))
    .into_response())
}

/// Body of `POST .../dnssec/rollover`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RolloverRequest {
    /// `zsk`, `ksk` or `csk`.
    kind: String,
}

impl BodyShape for RolloverRequest {}

/// `POST /api/v1/zones/{zone}/dnssec/rollover`: start a rollover (202).
#[utoipa::path(post, operation_id = "dnssecStartRollover", path = "/api/v1/zones/{zone}/dnssec/rollover", tag = "dnssec", description = "Start a key rollover.", params(("zone" = String, Path, description = "Zone name")), request_body = RolloverRequest, responses((status = 202, description = "started", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 409, description = "rollover-in-progress", body = super::openapi::ErrorBody), (status = 422, description = "invalid-kind or no-such-key", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn start_rollover(
    State(s): State<AppState>,
    Caller(token): Caller,
    Path(zone): Path<String>,
    JsonBody(req): JsonBody<RolloverRequest>,
) -> Result<Response, ApiError> {
    let name = authorize_zone(&s, &token, &zone)?;
    let k = keyring(&s)?;
    let kind = RolloverKind::parse(&req.kind).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-kind",
            format!("kind {:?}: want zsk, ksk or csk", req.kind),
        )
    })?;
    let status = k
        .rollover_command(&s.store, &name.fqdn(), Some(kind))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "zone": name.without_dot(), "rollover": status })),
    )
        .into_response())
}

/// `POST /api/v1/zones/{zone}/dnssec/rollover/ds-published`: the operator
/// confirms that the (external) parent publishes the new DS.
#[utoipa::path(post, operation_id = "dnssecConfirmDs", path = "/api/v1/zones/{zone}/dnssec/rollover/ds-published", tag = "dnssec", description = "Confirm that the parent publishes the new DS.", params(("zone" = String, Path, description = "Zone name")), responses((status = 200, description = "confirmed", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 409, description = "not-waiting-for-ds", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn confirm_ds(
    State(s): State<AppState>,
    Caller(token): Caller,
    Path(zone): Path<String>,
) -> Result<Response, ApiError> {
    let name = authorize_zone(&s, &token, &zone)?;
    let k = keyring(&s)?;
    let status = k.rollover_command(&s.store, &name.fqdn(), None).await?;
    Ok(Json(json!({ "zone": name.without_dot(), "rollover": status })).into_response())
}
