//! `X-API-Key` (or `?api-key=`) as PowerDNS takes it; the key is a pdm API
//! token, and its record policy applies to every read and write (an admin
//! token's policy is everything). 401 `Unauthorized` otherwise.

use super::error::PdnsError;
use crate::api::guard::policy_of;
use crate::api::AppState;
use crate::policy::Policy;
use crate::rrsets::{WritePath, Writer};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// The caller of a PowerDNS route.
pub struct PdnsCaller {
    /// `token:<id>`.
    pub credential: String,
    /// What it may read and write.
    pub policy: Policy,
    /// An admin token: may also create and delete zones.
    pub admin: bool,
}

impl PdnsCaller {
    /// The writer for the record service.
    pub fn writer(&self) -> Writer {
        Writer {
            credential: self.credential.clone(),
            policy: self.policy.clone(),
            path: WritePath::PdnsApi,
        }
    }
}

/// The key of a request: the header first, then the query parameter.
fn key_of(parts: &Parts) -> Option<String> {
    if let Some(v) = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_string());
    }
    parts.uri.query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "api-key")
            .map(|(_, v)| v.to_string())
    })
}

impl FromRequestParts<AppState> for PdnsCaller {
    type Rejection = PdnsError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, PdnsError> {
        let key = key_of(parts)
            .filter(|k| !k.is_empty())
            .ok_or_else(PdnsError::unauthorized)?;
        let token = s
            .store
            .token(&key)
            .await?
            .ok_or_else(PdnsError::unauthorized)?;
        let policy =
            policy_of(&token).map_err(|e| PdnsError::internal("token policy", &e.detail))?;
        let ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        if let Err(why) = policy.admits(ip, crate::store::now_ms()) {
            tracing::info!(token = token.id, reason = %why, "PowerDNS API key refused");
            return Err(PdnsError::unauthorized());
        }
        Ok(PdnsCaller {
            credential: format!("token:{}", token.id),
            admin: token.is_admin(),
            policy,
        })
    }
}
