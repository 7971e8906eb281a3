//! PowerDNS's error answers (not pdm's `{"error","detail"}`): a status and
//! `{"error": "<message>"}`. Validation errors (422) are always JSON; the
//! generic ones (400, 401, 404, 405, 409) are JSON only when the request
//! accepts `application/json`, text otherwise, as `WebServer` does. The
//! typed record errors are mapped here, once.

use crate::rrsets::{Invalid, RecordError};
use axum::extract::Request;
use axum::http::header::{ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An error answer of the PowerDNS API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdnsError {
    /// HTTP status.
    pub status: u16,
    /// The `error` text.
    pub message: String,
}

impl PdnsError {
    /// A status with its own text.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        PdnsError {
            status,
            message: message.into(),
        }
    }

    /// 422 with a message (PowerDNS's `ApiException`).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, message)
    }

    /// 400 `Bad Request` (unparsable body, bad zone id escape).
    pub fn bad_request() -> Self {
        Self::new(400, "Bad Request")
    }

    /// 404 `Not Found`.
    pub fn not_found() -> Self {
        Self::new(404, "Not Found")
    }

    /// 401 `Unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized")
    }

    /// 405 `Method Not Allowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(405, "Method Not Allowed")
    }

    /// 409 `Conflict`.
    pub fn conflict() -> Self {
        Self::new(409, "Conflict")
    }

    /// 403: a pdm credential's policy refuses (PowerDNS has one global key
    /// and no such answer; the message says which rule).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    /// 500 whose cause goes to the log only.
    pub fn internal(what: &str, e: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %e, "pdns api {what}: internal error");
        Self::new(500, "Internal Server Error")
    }
}

/// Marks an answer whose body may become plain text (see [`negotiate`]).
#[derive(Clone)]
struct Generic(String);

impl IntoResponse for PdnsError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let generic = matches!(self.status, 400 | 401 | 404 | 405 | 409);
        let mut resp = (status, Json(json!({"error": self.message}))).into_response();
        if self.status == 401 {
            resp.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("X-API-Key realm=\"PowerDNS\""),
            );
        }
        if generic {
            resp.extensions_mut().insert(Generic(self.message));
        }
        resp
    }
}

impl From<RecordError> for PdnsError {
    fn from(e: RecordError) -> Self {
        match &e {
            RecordError::ZoneNotFound(_) => PdnsError::not_found(),
            RecordError::Invalid {
                kind,
                rrset,
                detail,
            } => {
                // pdm names an RRset `owner TYPE`; PowerDNS `owner IN TYPE`.
                let what = match rrset.split_once(' ') {
                    Some((o, t)) => format!("{o} IN {t}"),
                    None => rrset.clone(),
                };
                let detail = match kind {
                    Invalid::CnameConflict => "Conflicts with pre-existing RRset".to_string(),
                    Invalid::OutsideZone => "Name is out of zone".to_string(),
                    _ => detail.clone(),
                };
                PdnsError::unprocessable(format!("RRset {what}: {detail}"))
            }
            RecordError::Denied(why) => PdnsError::forbidden(why.clone()),
            RecordError::Exists(_) | RecordError::Prerequisite { .. } => {
                PdnsError::unprocessable(e.to_string())
            }
            RecordError::Unsupported(why) => PdnsError::new(501, why.clone()),
            RecordError::CredentialGone(_) => PdnsError::unauthorized(),
            RecordError::Store(inner) => PdnsError::internal("records", inner),
        }
    }
}

impl From<crate::store::StoreError> for PdnsError {
    fn from(e: crate::store::StoreError) -> Self {
        PdnsError::internal("store", &e)
    }
}

/// Middleware over the PowerDNS routes: a generic error becomes the plain
/// text PowerDNS sends unless the request accepts JSON; axum's own 405
/// (empty body) becomes PowerDNS's.
pub async fn negotiate(req: Request, next: Next) -> Response {
    let json = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let resp = next.run(req).await;
    let resp = if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && resp.extensions().get::<Generic>().is_none()
    {
        PdnsError::method_not_allowed().into_response()
    } else {
        resp
    };
    match resp.extensions().get::<Generic>().cloned() {
        Some(Generic(text)) if !json => {
            let (mut parts, _) = resp.into_parts();
            parts.headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            Response::from_parts(parts, axum::body::Body::from(text))
        }
        _ => resp,
    }
}
