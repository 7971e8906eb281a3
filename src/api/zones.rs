//! The legacy `POST /api/v1/zones` `{"name","kind":"Native"}` that
//! catalyst-api's `pdmCreatePowerDNSZone` calls when its zones flag is on
//! (docs/contract.md, "Legacy zones"), after it flipped a parent domain's
//! NS to pdm. The Go service never implemented it. In pdm it is a byo-manual
//! domain: the zone is created (signed when DNSSEC is on) through the zone
//! backend, and pdm watches the parent until the delegation is up.

use super::guard::{Admin, BodyShape, JsonBody};
use super::{ApiError, AppState};
use crate::delegation::byo::{ByoError, CreateRequest, DomainStatus, Mode};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Body of `POST /api/v1/zones`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct ZoneBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

impl BodyShape for ZoneBody {}

/// The zone as PowerDNS's API names it (`name` with the dot, `kind`), plus
/// what pdm knows of its delegation.
fn zone_json(status: DomainStatus) -> Value {
    let name = format!("{}.", status.domain);
    let mut v = serde_json::to_value(&status).unwrap_or_else(|_| json!({}));
    if let Some(m) = v.as_object_mut() {
        m.insert("id".into(), json!(name));
        m.insert("name".into(), json!(name));
        m.insert("kind".into(), json!("Native"));
    }
    v
}

/// `POST /api/v1/zones` → 201 with the zone; 200 with the same zone when it
/// was created this way before (a retry); 409 `zone-exists` when the name is
/// a pool, a pool child or an imported zone.
#[utoipa::path(post, operation_id = "zonesCreate", path = "/api/v1/zones", tag = "domains", description = "The legacy PowerDNS-style zone create: a byo-manual domain (admin).", request_body = ZoneBody, responses((status = 201, description = "created", body = super::openapi::AnyObject), (status = 200, description = "already there", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 409, description = "conflict", body = super::openapi::ErrorBody), (status = 422, description = "validation", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create(
    State(s): State<AppState>,
    _: Admin,
    JsonBody(b): JsonBody<ZoneBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = b
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "missing-name",
                "name is required",
            )
        })?;
    match b.kind.as_deref().map(str::trim) {
        None | Some("") => {}
        Some(k) if k.eq_ignore_ascii_case("native") => {}
        Some(k) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unsupported-kind",
                format!("kind {k:?}: pdm serves zones itself; only \"Native\" is accepted"),
            ))
        }
    }
    let req = CreateRequest {
        domain: name.clone(),
        mode: Mode::Manual,
        registrar: None,
        credentials: None,
    };
    match s.byo.create(req).await {
        Ok(status) => Ok((StatusCode::CREATED, Json(zone_json(status)))),
        Err(ByoError::Exists(_)) => {
            let status = s.byo.status(&name).await?;
            if status.mode == Mode::Manual.as_str() {
                Ok((StatusCode::OK, Json(zone_json(status))))
            } else {
                Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "zone-exists",
                    format!(
                        "{} is already managed as a {} domain",
                        status.domain, status.mode
                    ),
                ))
            }
        }
        Err(e) => Err(e.into()),
    }
}
