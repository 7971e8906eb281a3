//! Managed byo domains over HTTP (admin scope):
//! `POST /api/v1/domains`, `GET /api/v1/domains[/{domain}]`,
//! `DELETE /api/v1/domains/{domain}`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pdm_adapters::{Credentials, RegistrarId};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{authenticate, idempotent, read_body, ApiError, AppState};
use crate::delegation::byo::{ByoError, CreateRequest, Mode};
use crate::delegation::registry::supported;
use crate::store::tokens::TokenInfo;

impl From<ByoError> for ApiError {
    fn from(e: ByoError) -> Self {
        use StatusCode as S;
        let (status, code) = match &e {
            ByoError::InvalidDomain(_) => (S::UNPROCESSABLE_ENTITY, "invalid-domain"),
            ByoError::MissingRegistrar => (S::UNPROCESSABLE_ENTITY, "missing-registrar"),
            ByoError::MissingCredentials => (S::UNPROCESSABLE_ENTITY, "missing-credentials"),
            ByoError::InvalidCredentials(_) => (S::UNPROCESSABLE_ENTITY, "invalid-credentials"),
            ByoError::UnexpectedCredentials => (S::UNPROCESSABLE_ENTITY, "unexpected-credentials"),
            ByoError::CannotSetNs(_) => (S::UNPROCESSABLE_ENTITY, "set-ns-not-supported"),
            ByoError::PoolDomain(_) => (S::CONFLICT, "pool-domain"),
            ByoError::Exists(_) => (S::CONFLICT, "domain-exists"),
            ByoError::ZoneExists(_) => (S::CONFLICT, "zone-exists"),
            ByoError::NotFound(_) => (S::NOT_FOUND, "not-found"),
            ByoError::NoSecretKey => (S::SERVICE_UNAVAILABLE, "secret-key-required"),
            ByoError::Secret(_) | ByoError::Store(_) | ByoError::Keyring(_) => {
                tracing::error!(error = %e, "byo domain: internal error");
                return ApiError::new(
                    S::INTERNAL_SERVER_ERROR,
                    "internal-error",
                    "internal error; see pdm logs",
                );
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

async fn admin(s: &AppState, headers: &HeaderMap) -> Result<TokenInfo, ApiError> {
    let token = authenticate(s, headers).await?;
    if token.is_admin() {
        Ok(token)
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "token {:?} lacks the admin scope needed for byo domains",
                token.name
            ),
        ))
    }
}

#[derive(Deserialize)]
struct CreateBody {
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    registrar: Option<String>,
    #[serde(default)]
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
pub async fn create(
    State(s): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let pre = async {
        let token = admin(&s, &headers).await?;
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
        "/api/v1/domains",
        &bytes,
        || async {
            let b: CreateBody = serde_json::from_slice(&bytes).map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-body",
                    "the body must be a JSON object {domain, mode, registrar?, credentials?}",
                )
            })?;
            let req = create_request(b)?;
            let status = s.byo.create(req).await?;
            Ok((
                StatusCode::ACCEPTED,
                serde_json::to_value(status).unwrap_or_else(|_| json!({})),
            ))
        },
    )
    .await
}

/// `GET /api/v1/domains/{domain}`.
pub async fn get(
    State(s): State<AppState>,
    Path(domain): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin(&s, &headers).await?;
    let status = s.byo.status(&domain).await?;
    Ok(Json(status).into_response())
}

/// `GET /api/v1/domains`.
pub async fn list(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    admin(&s, &headers).await?;
    let all = s.byo.list().await?;
    let mut m = Map::new();
    m.insert(
        "domains".into(),
        serde_json::to_value(all).unwrap_or_default(),
    );
    Ok(Json(Value::Object(m)).into_response())
}

/// `DELETE /api/v1/domains/{domain}`: zone, keys, credentials and operation go.
pub async fn delete(
    State(s): State<AppState>,
    Path(domain): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin(&s, &headers).await?;
    let gone = s.byo.delete(&domain).await?;
    Ok(Json(json!({"deleted": gone})).into_response())
}
