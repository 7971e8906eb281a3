//! Admin endpoints for credentials and the record audit trail: API tokens
//! and TSIG keys with their record policies (secrets shown once, stored
//! hashed or sealed), and who changed which RRset.

use super::guard::{Admin, BodyShape, JsonBody};
use super::{ApiError, AppState};
use crate::policy::PolicySpec;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Body of `POST /api/v1/tokens`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenBody {
    /// A name to recognise it by.
    name: String,
    /// `admin`, `pool:*`, `pool:<domain>` (none: records only, by the policy).
    #[serde(default)]
    scopes: Vec<String>,
    /// What records it may read or write.
    #[serde(default)]
    policy: Option<PolicySpec>,
}

impl BodyShape for TokenBody {}

fn invalid(code: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
}

/// A checked policy as stored (compact JSON).
fn policy_text(p: Option<&PolicySpec>) -> Result<Option<String>, ApiError> {
    p.map(|spec| {
        spec.parse()
            .map_err(|e| invalid("invalid-policy", e.to_string()))?;
        serde_json::to_string(spec).map_err(|e| invalid("invalid-policy", e.to_string()))
    })
    .transpose()
}

fn policy_value(stored: Option<&str>) -> Value {
    stored
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or(Value::Null)
}

/// `POST /api/v1/tokens` → 201 with the secret, shown this once.
#[utoipa::path(post, operation_id = "tokensCreate", path = "/api/v1/tokens", tag = "credentials", description = "Create an API token (admin); the secret is in this answer only.", request_body = TokenBody, responses((status = 201, description = "{id, name, token, scopes, policy}", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 403, description = "not admin", body = super::openapi::ErrorBody), (status = 422, description = "invalid-scope, invalid-policy", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create_token(
    State(s): State<AppState>,
    _: Admin,
    JsonBody(b): JsonBody<TokenBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = b.name.trim();
    if name.is_empty() || name.len() > 128 {
        return Err(invalid("invalid-name", "name must be 1 to 128 characters"));
    }
    if let Some(bad) = b
        .scopes
        .iter()
        .find(|s| !crate::store::tokens::valid_scope(s))
    {
        return Err(invalid(
            "invalid-scope",
            format!("scope {bad:?}: want admin, pool:* or pool:<domain>"),
        ));
    }
    let policy = policy_text(b.policy.as_ref())?;
    let (secret, id) = s
        .store
        .create_token_with_policy(name, &b.scopes, policy.as_deref())
        .await?;
    tracing::info!(token = id, name, "API token created");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id,
            "name": name,
            "token": secret,
            "scopes": b.scopes,
            "policy": policy_value(policy.as_deref()),
        })),
    ))
}

/// `GET /api/v1/tokens`: every token, never a secret.
#[utoipa::path(get, operation_id = "tokensList", path = "/api/v1/tokens", tag = "credentials", description = "Every API token with its scopes and policy (admin); never a secret.", responses((status = 200, description = "[{id, name, scopes, policy, createdAtMs}]", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 403, description = "not admin", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_tokens(
    State(s): State<AppState>,
    _: Admin,
) -> Result<Json<Value>, ApiError> {
    let v: Vec<Value> = s
        .store
        .tokens()
        .await?
        .into_iter()
        .map(|(t, created)| {
            json!({
                "id": t.id,
                "name": t.name,
                "scopes": t.scopes,
                "policy": policy_value(t.policy.as_deref()),
                "createdAtMs": created,
            })
        })
        .collect();
    Ok(Json(Value::Array(v)))
}

/// `DELETE /api/v1/tokens/{id}` → 204.
#[utoipa::path(delete, operation_id = "tokensDelete", path = "/api/v1/tokens/{id}", tag = "credentials", description = "Delete an API token (admin).", params(("id" = i64, Path, description = "Token id")), responses((status = 204, description = "deleted"), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 403, description = "not admin", body = super::openapi::ErrorBody), (status = 404, description = "not-found", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn delete_token(
    State(s): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if s.store.delete_token(id).await? {
        // Refused from the next request on, not only at the next write.
        s.records.credentials().forget_token(id);
        tracing::info!(token = id, "API token deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no token with id {id}"),
        ))
    }
}

/// Body of `POST /api/v1/tsig-keys`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TsigBody {
    /// Key name as the peers know it.
    name: String,
    /// `hmac-sha256` (default) or `hmac-sha512`.
    #[serde(default)]
    algorithm: Option<String>,
    /// What records it may write with RFC 2136 UPDATE (none: transfers only).
    #[serde(default)]
    policy: Option<PolicySpec>,
}

impl BodyShape for TsigBody {}

/// `POST /api/v1/tsig-keys` → 201 with the secret (base64), shown this once.
#[utoipa::path(post, operation_id = "tsigCreate", path = "/api/v1/tsig-keys", tag = "credentials", description = "Create a TSIG key (admin); the secret is in this answer only and stored sealed.", request_body = TsigBody, responses((status = 201, description = "{name, algorithm, secret, policy}", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 403, description = "not admin", body = super::openapi::ErrorBody), (status = 409, description = "key-exists", body = super::openapi::ErrorBody), (status = 422, description = "invalid-name, invalid-algorithm, invalid-policy", body = super::openapi::ErrorBody), (status = 503, description = "secret-key-required", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn create_tsig(
    State(s): State<AppState>,
    _: Admin,
    JsonBody(b): JsonBody<TsigBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    use crate::transfer::TransferError as T;
    let policy = policy_text(b.policy.as_ref())?;
    let algorithm = b.algorithm.unwrap_or_else(|| "hmac-sha256".into());
    let secret = crate::secret::load_secret(&s.config).map_err(|e| {
        tracing::error!(error = %e, "cannot load the secret key");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "secret-key-required",
            "TSIG keys are stored sealed: configure the secret key",
        )
    })?;
    let created = crate::transfer::create_key(
        &s.store,
        secret.as_ref(),
        &b.name,
        &algorithm,
        policy.as_deref(),
    )
    .await;
    let b64 = match created {
        Ok(b64) => b64,
        Err(e @ T::BadName(_)) => return Err(invalid("invalid-name", e.to_string())),
        Err(e @ T::BadAlgorithm(_)) => return Err(invalid("invalid-algorithm", e.to_string())),
        Err(e @ T::Exists(_)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "key-exists",
                e.to_string(),
            ))
        }
        Err(e @ T::NoSecretKey) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "secret-key-required",
                e.to_string(),
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot create a TSIG key");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal-error",
                "internal error; see pdm logs",
            ));
        }
    };
    let name = crate::config::tsig_key_name(&b.name);
    tracing::info!(key = %name, "TSIG key created");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": name,
            "algorithm": algorithm.to_ascii_lowercase(),
            "secret": b64,
            "policy": policy_value(policy.as_deref()),
        })),
    ))
}

/// `GET /api/v1/tsig-keys`: every key, never a secret.
#[utoipa::path(get, operation_id = "tsigList", path = "/api/v1/tsig-keys", tag = "credentials", description = "Every TSIG key with its algorithm and policy (admin); never a secret.", responses((status = 200, description = "[{name, algorithm, created_at, policy}]", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 403, description = "not admin", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn list_tsig(
    State(s): State<AppState>,
    _: Admin,
) -> Result<Json<Value>, ApiError> {
    let keys = crate::transfer::list_keys(&s.store).await.map_err(|e| {
        tracing::error!(error = %e, "cannot list TSIG keys");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-error",
            "internal error; see pdm logs",
        )
    })?;
    Ok(Json(json!(keys)))
}

/// `DELETE /api/v1/tsig-keys/{name}` → 204.
#[utoipa::path(delete, operation_id = "tsigDelete", path = "/api/v1/tsig-keys/{name}", tag = "credentials", description = "Delete a TSIG key (admin).", params(("name" = String, Path, description = "Key name")), responses((status = 204, description = "deleted"), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 403, description = "not admin", body = super::openapi::ErrorBody), (status = 404, description = "not-found", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn delete_tsig(
    State(s): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = crate::config::tsig_key_name(&name);
    if s.store.delete_tsig_key(&name).await? {
        // RFC 2136 UPDATE refuses it from the next message on.
        s.records.credentials().forget_key(&name);
        tracing::info!(key = %name, "TSIG key deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no TSIG key named {name}"),
        ))
    }
}

/// Query of the audit trail.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditQuery {
    /// Only this zone.
    zone: Option<String>,
    /// Entries after this id (paging).
    #[serde(default)]
    after: i64,
    /// At most this many (default 100, at most 1000).
    limit: Option<i64>,
}

/// `GET /api/v1/audit`: record changes, oldest first.
#[utoipa::path(get, operation_id = "auditList", path = "/api/v1/audit", tag = "credentials", description = "Who changed which RRset, when, through which path (admin); page with after=<last id>.", params(AuditQuery), responses((status = 200, description = "[{id, zone, owner, type, before, after, serial, path, credential, atMs}]", body = super::openapi::AnyObject), (status = 401, description = "No or unknown token", body = super::openapi::ErrorBody), (status = 403, description = "not admin", body = super::openapi::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn audit(
    State(s): State<AppState>,
    _: Admin,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let zone = q
        .zone
        .as_deref()
        .map(crate::rrsets::zone_fqdn)
        .transpose()?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = s.store.rrset_audit(zone.as_deref(), q.after, limit).await?;
    Ok(Json(json!(rows)))
}
