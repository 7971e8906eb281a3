//! `Idempotency-Key` as one layer around the write routes: the first answer
//! for a (token, key) is stored and replayed for the same request; the same
//! key with a different request is refused with 422. Handlers know nothing
//! of it.

use super::guard::{bearer, read_limited};
use super::{ApiError, AppState};
use crate::store::idempotency::StoredAnswer;
use crate::store::sha256_hex;
use crate::store::tokens::TokenInfo;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Longest key accepted.
const MAX_KEY: usize = 255;

/// The middleware (`axum::middleware::from_fn_with_state`).
pub(super) async fn layer(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned);
    let Some(key) = key else {
        return next.run(req).await;
    };
    if key.len() > MAX_KEY {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-idempotency-key",
            format!("Idempotency-Key is longer than {MAX_KEY} characters"),
        )
        .into_response();
    }
    let (mut parts, body) = req.into_parts();
    // Keys are per token. Without a valid token the handler answers 401 itself.
    let token: TokenInfo = match bearer(&s, &parts.headers).await {
        Ok(t) => t,
        Err(_) => return next.run(Request::from_parts(parts, body)).await,
    };
    let bytes = match read_limited(body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let path = parts.uri.path().to_ascii_lowercase();
    let mut material = Vec::with_capacity(bytes.len() + path.len() + 8);
    material.extend_from_slice(parts.method.as_str().as_bytes());
    material.push(b' ');
    material.extend_from_slice(path.as_bytes());
    material.push(b'\n');
    material.extend_from_slice(&bytes);
    let hash = sha256_hex(&material);
    match s.store.idempotent_answer(token.id, &key).await {
        Ok(Some(prev)) if prev.request_hash == hash => return replay(prev),
        Ok(Some(_)) => {
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "this Idempotency-Key was used for a different request",
            )
            .into_response()
        }
        Ok(None) => {}
        Err(e) => return ApiError::from(e).into_response(),
    }
    parts.extensions.insert(token.clone());
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    // Server errors are not replayed: the caller should be able to retry them.
    if resp.status().is_server_error() {
        return resp;
    }
    let (rparts, rbody) = resp.into_parts();
    let body = match axum::body::to_bytes(rbody, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "idempotency: could not read the answer");
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal-error",
                "internal error; see pdm logs",
            )
            .into_response();
        }
    };
    match std::str::from_utf8(&body) {
        Ok(text) => {
            let answer = StoredAnswer {
                request_hash: hash,
                status: rparts.status.as_u16(),
                body: text.to_owned(),
            };
            if let Err(e) = s.store.store_answer(token.id, &key, &answer).await {
                tracing::warn!(error = %e, "could not store idempotent answer");
            }
        }
        Err(_) => tracing::warn!("idempotency: answer is not text; not stored"),
    }
    Response::from_parts(rparts, Body::from(body))
}

/// The stored answer, marked as a replay.
fn replay(prev: StoredAnswer) -> Response {
    let status = StatusCode::from_u16(prev.status).unwrap_or(StatusCode::OK);
    let mut resp = (status, [(CONTENT_TYPE, "application/json")], prev.body).into_response();
    resp.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}
