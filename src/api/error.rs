//! The one table where typed errors become HTTP answers:
//! status + `{"error": "<kebab-code>", "detail": "..."}` (+ context fields
//! such as `registrar` and `domain` where the contract adds them).
//! Internal failures are logged here, once, and answered without detail.

use crate::delegation::byo::ByoError;
use crate::keyring::RolloverError;
use crate::pool::PoolError;
use crate::rrsets::RecordError;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pdm_adapters::{RegistrarError, RegistrarId};
use serde_json::{json, Map, Value};

/// An HTTP error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable kebab-case code.
    pub code: &'static str,
    /// Human text; never contains secrets.
    pub detail: String,
    /// Context fields added to the body (`registrar`, `domain`, ...).
    extra: Map<String, Value>,
    /// Seconds for a `Retry-After` header (429, 503).
    retry_after: Option<u64>,
}

impl ApiError {
    /// Build an error answer.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            extra: Map::new(),
            retry_after: None,
        }
    }

    /// The same answer with `Retry-After: secs`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// The same answer with one more body field.
    pub fn with(mut self, field: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(field.to_string(), value.into());
        self
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut m = self.extra.clone();
        m.insert("error".into(), json!(self.code));
        m.insert("detail".into(), json!(self.detail));
        Value::Object(m)
    }

    /// A 500 whose cause goes to the log only; a 503 with `Retry-After`
    /// when the cause is the database being unreachable or out of space
    /// (a restart, a failover, a full disk): nothing was applied, and the
    /// same request may be sent again.
    fn internal(what: &str, e: &(dyn std::error::Error + 'static)) -> Self {
        if crate::store::unavailable(e) {
            tracing::warn!(error = %e, "{what}: database unavailable");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database-unavailable",
                "the database is unavailable; nothing was changed, retry later",
            )
            .retry_after(DB_RETRY_AFTER_SECS);
        }
        tracing::error!(error = %e, "{what}: internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-error",
            "internal error; see pdm logs",
        )
    }
}

/// `Retry-After` of a 503 for an unavailable database: a restart or a
/// failover takes seconds.
const DB_RETRY_AFTER_SECS: u64 = 2;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}

impl From<PoolError> for ApiError {
    fn from(e: PoolError) -> Self {
        use StatusCode as S;
        let (status, code) = match &e {
            PoolError::UnsupportedPool(_) => (S::UNPROCESSABLE_ENTITY, "unsupported-pool"),
            PoolError::InvalidFormat(_) => (S::UNPROCESSABLE_ENTITY, "invalid-format"),
            PoolError::ReservedName(_) => (S::CONFLICT, "reserved"),
            PoolError::Conflict => (S::CONFLICT, "conflict"),
            PoolError::NotFound(_) => (S::NOT_FOUND, "not-found"),
            PoolError::TokenMismatch => (S::FORBIDDEN, "token-mismatch"),
            PoolError::Expired(_) => (S::GONE, "reservation-expired"),
            PoolError::MissingLbIp => (S::UNPROCESSABLE_ENTITY, "missing-lb-ip"),
            PoolError::InvalidLbIp(_) => (S::UNPROCESSABLE_ENTITY, "invalid-lb-ip"),
            PoolError::InvalidConsoleLbIp(_) => (S::UNPROCESSABLE_ENTITY, "invalid-console-lb-ip"),
            PoolError::FqdnMismatch { .. } => (S::UNPROCESSABLE_ENTITY, "fqdn-mismatch"),
            PoolError::OwnedByAnother(_) => (S::CONFLICT, "owned-by-another"),
            PoolError::Backend(crate::backend::BackendError::Unsupported(_)) => {
                (S::CONFLICT, "update-not-supported")
            }
            PoolError::Template(_) | PoolError::Store(_) | PoolError::Backend(_) => {
                return ApiError::internal("pool", &e)
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal("store", &e)
    }
}

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
            ByoError::Secret(_) | ByoError::Store(_) | ByoError::Backend(_) => {
                return ApiError::internal("byo domain", &e)
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<RecordError> for ApiError {
    fn from(e: RecordError) -> Self {
        use StatusCode as S;
        match &e {
            RecordError::ZoneNotFound(z) => {
                ApiError::new(S::NOT_FOUND, "zone-not-found", e.to_string())
                    .with("zone", z.as_str())
            }
            RecordError::Invalid { kind, rrset, .. } => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, kind.code(), e.to_string())
                    .with("rrset", rrset.as_str())
            }
            RecordError::Denied(_) => ApiError::new(S::FORBIDDEN, "policy-denied", e.to_string()),
            RecordError::Exists(r) => {
                ApiError::new(S::CONFLICT, "rrset-exists", e.to_string()).with("rrset", r.as_str())
            }
            RecordError::Prerequisite { .. } => {
                ApiError::new(S::PRECONDITION_FAILED, "prerequisite-failed", e.to_string())
            }
            RecordError::Unsupported(_) => {
                ApiError::new(S::NOT_IMPLEMENTED, "not-supported", e.to_string())
            }
            RecordError::CredentialGone(_) => {
                ApiError::new(S::UNAUTHORIZED, "unauthorized", "unknown token")
            }
            RecordError::Store(inner) => ApiError::internal("records", inner),
        }
    }
}

impl From<RolloverError> for ApiError {
    fn from(e: RolloverError) -> Self {
        use StatusCode as S;
        let (status, code) = match &e {
            RolloverError::NotSigned(_) => (S::NOT_FOUND, "zone-not-signed"),
            RolloverError::InProgress(..) => (S::CONFLICT, "rollover-in-progress"),
            RolloverError::NoSuchKey { .. } => (S::UNPROCESSABLE_ENTITY, "no-such-key"),
            RolloverError::NotWaitingForDs(_) => (S::CONFLICT, "not-waiting-for-ds"),
            RolloverError::Keyring(inner) => return ApiError::internal("rollover", inner),
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// A registrar's answer as the Go service's callers expect it (status and
/// code), with `registrar` and `domain` in the body. An upstream refusal is
/// a 502 that carries the registrar's own words (never a credential: the
/// adapters build their messages from the registrar's response body only).
pub(super) fn registrar_error(
    e: &RegistrarError,
    registrar: RegistrarId,
    domain: &str,
) -> ApiError {
    use StatusCode as S;
    let (status, code, detail) = match e {
        RegistrarError::InvalidCredentials { .. } => (
            S::UNAUTHORIZED,
            "invalid-token",
            format!("credentials rejected by {registrar}"),
        ),
        RegistrarError::AccountNotEligible { .. } => {
            (S::FORBIDDEN, "account-not-eligible", e.to_string())
        }
        RegistrarError::IpNotWhitelisted { .. } => {
            (S::FORBIDDEN, "ip-not-whitelisted", e.to_string())
        }
        RegistrarError::DomainNotInAccount { .. } => (
            S::FORBIDDEN,
            "domain-not-in-account",
            format!("{domain} is not in this {registrar} account"),
        ),
        RegistrarError::RateLimited { retry_after, .. } => (
            S::TOO_MANY_REQUESTS,
            "rate-limited",
            match retry_after {
                Some(d) => format!(
                    "{registrar} rate limit; retry after {} s (retryAfter={})",
                    d.as_secs().max(1),
                    d.as_secs().max(1)
                ),
                None => format!("{registrar} rate limit; retry later"),
            },
        ),
        RegistrarError::Unavailable { .. } => (
            S::BAD_GATEWAY,
            "api-unavailable",
            format!("{registrar} API unavailable; retry later"),
        ),
        RegistrarError::Unsupported { what, .. } => (
            S::NOT_IMPLEMENTED,
            "unsupported",
            format!("{registrar} cannot do this through its API: {what}"),
        ),
        RegistrarError::InvalidInput(m) => (S::UNPROCESSABLE_ENTITY, "invalid-input", m.clone()),
        RegistrarError::Rejected { message, .. } => (
            S::BAD_GATEWAY,
            "registrar-error",
            format!("{registrar} refused the request: {message}"),
        ),
    };
    ApiError::new(status, code, detail)
        .with("registrar", registrar.as_str())
        .with("domain", domain)
}
