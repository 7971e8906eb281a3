//! Request guards as extractors, so that every handler states in its
//! signature what it requires: who calls ([`Caller`], [`Admin`],
//! [`PoolCaller`]) and what body it takes ([`JsonBody`], [`RawBody`]).
//! Extractors run in signature order, the body last, so a request fails on
//! the first guard it does not pass.

use super::{ApiError, AppState};
use crate::model::DomainName;
use crate::policy::{Policy, PolicySpec};
use crate::rrsets::{WritePath, Writer};
use crate::store::tokens::TokenInfo;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// The bearer token of a request, resolved; 401 when absent or unknown.
pub(super) async fn bearer(s: &AppState, headers: &HeaderMap) -> Result<TokenInfo, ApiError> {
    let unauthorized = |d: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", d);
    let value = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unauthorized("missing Authorization: Bearer <token>"))?;
    let secret = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("Authorization must be 'Bearer <token>'"))?;
    s.store
        .token(secret)
        .await?
        .ok_or_else(|| unauthorized("unknown token"))
}

/// The token of a request: resolved once per request (the idempotency layer
/// may have done it already and left it in the extensions), and refused
/// when its policy's expiry or source networks rule the request out.
async fn token_of(parts: &mut Parts, s: &AppState) -> Result<TokenInfo, ApiError> {
    let t = match parts.extensions.get::<TokenInfo>() {
        Some(t) => t.clone(),
        None => {
            let t = bearer(s, &parts.headers).await?;
            parts.extensions.insert(t.clone());
            t
        }
    };
    let policy = policy_of(&t)?;
    let ip = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    policy
        .admits(ip, crate::store::now_ms())
        .map_err(|why| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", why))?;
    Ok(t)
}

/// A token's record policy: everything for `admin`, its stored policy
/// otherwise (none: no record access).
pub(super) fn policy_of(t: &TokenInfo) -> Result<Policy, ApiError> {
    if t.is_admin() {
        return Ok(Policy::everything());
    }
    match &t.policy {
        None => Ok(Policy::default()),
        Some(json) => serde_json::from_str::<PolicySpec>(json)
            .map_err(|e| crate::policy::PolicyError(e.to_string()))
            .and_then(|spec| spec.parse())
            .map_err(|e| {
                tracing::error!(token = t.id, error = %e, "stored token policy does not parse");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal-error",
                    "internal error; see pdm logs",
                )
            }),
    }
}

/// A caller who reads or writes records: its credential and policy, for
/// the path the handler names.
pub(super) struct RecordCaller {
    /// `token:<id>`.
    pub credential: String,
    /// Its policy.
    pub policy: std::sync::Arc<Policy>,
}

impl RecordCaller {
    /// The writer for `path`.
    pub fn writer(&self, path: WritePath) -> Writer {
        Writer {
            credential: self.credential.clone(),
            policy: self.policy.clone(),
            path,
            recheck: None,
        }
    }
}

impl FromRequestParts<AppState> for RecordCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let t = token_of(parts, s).await?;
        Ok(RecordCaller {
            credential: format!("token:{}", t.id),
            policy: std::sync::Arc::new(policy_of(&t)?),
        })
    }
}

/// Any caller with a valid bearer token (401 otherwise).
pub(super) struct Caller(pub TokenInfo);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        token_of(parts, s).await.map(Caller)
    }
}

/// A caller with the `admin` scope (401, then 403).
pub(super) struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let t = token_of(parts, s).await?;
        if t.is_admin() {
            Ok(Admin)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("token {:?} lacks the admin scope", t.name),
            ))
        }
    }
}

/// The managed pool named by the `{domain}` path segment, and a caller whose
/// scope covers it: 422 `unsupported-pool`, then 401, then 403, in the Go
/// service's order.
pub(super) struct PoolCaller {
    /// The pool domain, lower-case, no trailing dot.
    pub pool: String,
}

impl FromRequestParts<AppState> for PoolCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        // By name: some routes have more segments (`.../allocations/{sub}`).
        let Path(segments) = Path::<Vec<(String, String)>>::from_request_parts(parts, s)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid-path", e.to_string()))?;
        let domain = segments
            .into_iter()
            .find_map(|(k, v)| (k == "domain").then_some(v))
            .unwrap_or_default();
        let pool = s.pool.pool(&domain)?.domain.without_dot();
        let token = token_of(parts, s).await?;
        require_pool(&token, &pool)?;
        Ok(PoolCaller { pool })
    }
}

/// 403 unless `token` may act on `pool`.
pub(super) fn require_pool(token: &TokenInfo, pool: &str) -> Result<(), ApiError> {
    let name = DomainName::parse(pool)
        .map(|d| d.without_dot())
        .unwrap_or_default();
    if token.covers_pool(&name) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("token {:?} has no scope for pool {name}", token.name),
        ))
    }
}

/// The request body, at most [`MAX_BODY`] bytes (413 otherwise).
pub(super) struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        read_limited(req.into_body()).await.map(RawBody)
    }
}

/// Reads a body up to [`MAX_BODY`]; 413 beyond.
pub(super) async fn read_limited(body: axum::body::Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("request body exceeds {MAX_BODY} bytes"),
        )
    })
}

/// A request body type, with the error code its endpoints give for a body
/// that does not parse (the pool endpoints say `invalid-json`, the rest
/// `invalid-body`, as their contracts do).
pub(super) trait BodyShape: DeserializeOwned {
    /// The code of a 400 for this body.
    const INVALID: &'static str = "invalid-body";
}

/// A JSON body within [`MAX_BODY`] (413), parsed into `T` (400 `T::INVALID`).
pub(super) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: BodyShape> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, s: &S) -> Result<Self, ApiError> {
        let RawBody(bytes) = RawBody::from_request(req, s).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses `bytes` as `T` (400 `T::INVALID`).
pub(super) fn parse_json<T: BodyShape>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            T::INVALID,
            format!("invalid JSON body: {e}"),
        )
    })
}
