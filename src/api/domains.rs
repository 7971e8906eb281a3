//! Managed byo domains over HTTP (admin scope):
//! `POST /api/v1/domains`, `GET /api/v1/domains[/{domain}]`,
//! `DELETE /api/v1/domains/{domain}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pdm_adapters::{Credentials, RegistrarId};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::guard::{Admin, BodyShape, JsonBody};
use super::{ApiError, AppState};
use crate::delegation::byo::{CreateRequest, Mode};
use crate::delegation::registry::supported;

/// Body of `POST /api/v1/domains`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct CreateBody {
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    registrar: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    credentials: Option<Value>,
}

/// The fields each registrar's structured credentials take (for error details
/// that never echo what was sent).
fn credential_fields(r: RegistrarId) -> &'static str {
    match r {
        RegistrarId::Cloudflare => "api_token, account_id?",
        RegistrarId::Namecheap => "api_user, api_key, user_name, client_ip",
        RegistrarId::Godaddy => "key, secret, customer_id?",
        RegistrarId::Ovh => "application_key, application_secret, consumer_key",
        RegistrarId::Dynadot => "api_key, api_secret?",
    }
}

/// Credentials from the Go token string or the structured JSON form.
fn parse_credentials(r: RegistrarId, v: Value) -> Result<Credentials, ApiError> {
    let bad = |d: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-credentials", d);
    match v {
        Value::String(t) => Credentials::from_token(r, &t).map_err(|e| bad(e.to_string())),
        Value::Object(mut m) => {
            m.entry("registrar")
                .or_insert_with(|| Value::String(r.as_str().into()));
            serde_json::from_value::<Credentials>(Value::Object(m)).map_err(|_| {
                bad(format!(
                    "credentials for {r} must be the token string or an object with {}",
                    credential_fields(r)
                ))
            })
        }
        _ => Err(bad(
            "credentials must be the registrar token string or a JSON object".into(),
        )),
    }
}

impl BodyShape for CreateBody {}

fn create_request(b: CreateBody) -> Result<CreateRequest, ApiError> {
    let unprocessable = |code, d: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, d);
    let domain = b
        .domain
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| unprocessable("missing-domain", "domain is required".into()))?;
    let mode_text = b.mode.unwrap_or_default();
    let mode = Mode::parse(&mode_text).ok_or_else(|| {
        unprocessable(
            "invalid-mode",
            format!("mode {mode_text:?}: want byo-api or byo-manual"),
        )
    })?;
    let registrar = match b
        .registrar
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        None => None,
        Some(r) => Some(RegistrarId::parse(r).ok_or_else(|| {
            unprocessable(
                "unsupported-registrar",
                format!(
                    "no adapter for registrar {r}; supported: {}",
                    supported().join(", ")
                ),
            )
        })?),
    };
    let credentials = match (b.credentials, registrar) {
        (None | Some(Value::Null), _) => None,
        (Some(v), Some(r)) => Some(parse_credentials(r, v)?),
        (Some(_), None) => {
            return Err(unprocessable(
                "missing-registrar",
                "credentials need \"registrar\"".into(),
            ))
        }
    };
    Ok(CreateRequest {
        domain,
        mode,
        registrar,
        credentials,
    })
}

/// `POST /api/v1/domains` → 202 with the domain's status.
#[utoipa::path(post, operation_id = "domainsCreate", path = "/api/v1/domains", tag = "domains", description = "Manage a customer domain (byo-api or byo-manual; admin).", request_body = CreateBody, responses((status = 202, description = "status", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 409, description = "domain-exists, zone-exists, pool-domain", body = super::openapi::ErrorBody), (status = 422, description = "validation", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create(
    State(s): State<AppState>,
    _: Admin,
    JsonBody(b): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = create_request(b)?;
    let status = s.byo.create(req).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::to_value(status).unwrap_or_else(|_| json!({}))),
    ))
}

/// `GET /api/v1/domains/{domain}`.
#[utoipa::path(get, operation_id = "domainsGet", path = "/api/v1/domains/{domain}", tag = "domains", description = "A customer domain's delegation status (admin).", params(("domain" = String, Path, description = "The customer domain")), responses((status = 200, description = "status", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 404, description = "not-found", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn get(
    State(s): State<AppState>,
    Path(domain): Path<String>,
    _: Admin,
) -> Result<Response, ApiError> {
    let status = s.byo.status(&domain).await?;
    Ok(Json(status).into_response())
}

/// `GET /api/v1/domains`.
#[utoipa::path(get, operation_id = "domainsList", path = "/api/v1/domains", tag = "domains", description = "Every managed customer domain (admin).", responses((status = 200, description = "{domains}", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list(State(s): State<AppState>, _: Admin) -> Result<Response, ApiError> {
    let all = s.byo.list().await?;
    let mut m = Map::new();
    m.insert(
        "domains".into(),
        serde_json::to_value(all).unwrap_or_default(),
    );
    Ok(Json(Value::Object(m)).into_response())
}

/// `DELETE /api/v1/domains/{domain}`: zone, keys, credentials and operation go.
#[utoipa::path(delete, operation_id = "domainsDelete", path = "/api/v1/domains/{domain}", tag = "domains", description = "Stop managing a customer domain (admin).", params(("domain" = String, Path, description = "The customer domain")), responses((status = 200, description = "{deleted}", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 404, description = "not-found", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn delete(
    State(s): State<AppState>,
    Path(domain): Path<String>,
    _: Admin,
) -> Result<Response, ApiError> {
    let gone = s.byo.delete(&domain).await?;
    Ok(Json(json!({"deleted": gone})).into_response())
}
