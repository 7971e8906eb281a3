//! `X-API-Key` (or `?api-key=`) as PowerDNS takes it; the key is a pdm API
//! token, and its record policy applies to every read and write (an admin
//! token's policy is everything). 401 `Unauthorized` otherwise.
//!
//! [`PdnsCaller`] reads the token from the store on every request.
//! [`CachedCaller`] (RRset PATCH, the hot path of every tool) takes it from
//! the record service's credential cache when it is there: the write then
//! re-finds it in its own transaction, and [`CachedCaller::confirm`] reads
//! it again wherever a request answers without writing.

use super::error::PdnsError;
use crate::api::guard::policy_of;
use crate::api::AppState;
use crate::policy::Policy;
use crate::rrsets::credentials::CachedToken;
use crate::rrsets::{WritePath, Writer};
use crate::store::rrsets::Recheck;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::sync::Arc;

/// The caller of a PowerDNS route.
pub struct PdnsCaller {
    /// `token:<id>`.
    pub credential: String,
    /// What it may read and write.
    pub policy: Arc<Policy>,
    /// An admin token: may also create and delete zones.
    pub admin: bool,
    /// Set when the token came from the cache and was not read since.
    recheck: Option<Recheck>,
}

impl PdnsCaller {
    /// The writer for the record service.
    pub fn writer(&self) -> Writer {
        Writer {
            credential: self.credential.clone(),
            policy: Arc::clone(&self.policy),
            path: WritePath::PdnsApi,
            recheck: self.recheck.clone(),
        }
    }

    fn of(t: &CachedToken, recheck: bool) -> Self {
        PdnsCaller {
            credential: format!("token:{}", t.id),
            policy: Arc::clone(&t.policy),
            admin: t.admin,
            recheck: recheck.then(|| t.recheck()),
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

/// The presented key's hash (401 without a key).
fn hash_of(parts: &Parts) -> Result<String, PdnsError> {
    let key = key_of(parts)
        .filter(|k| !k.is_empty())
        .ok_or_else(PdnsError::unauthorized)?;
    Ok(crate::store::sha256_hex(key.as_bytes()))
}

/// The token with this hash, read from the store (and cached for the next
/// request); 401 when there is none.
async fn read_token(s: &AppState, hash: &str) -> Result<Arc<CachedToken>, PdnsError> {
    let token = s
        .store
        .token_by_hash(hash)
        .await?
        .ok_or_else(PdnsError::unauthorized)?;
    let policy = policy_of(&token).map_err(|e| PdnsError::internal("token policy", &e.detail))?;
    Ok(s.records.credentials().keep_token(CachedToken {
        id: token.id,
        hash: hash.to_string(),
        admin: token.is_admin(),
        policy: Arc::new(policy),
    }))
}

/// Whether the token's policy admits this request's source now (expiry,
/// CIDRs): checked on every request, cached or not.
fn admitted(parts: &Parts, t: &CachedToken) -> Result<(), PdnsError> {
    let ip = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    t.policy.admits(ip, crate::store::now_ms()).map_err(|why| {
        tracing::info!(token = t.id, reason = %why, "PowerDNS API key refused");
        PdnsError::unauthorized()
    })
}

impl FromRequestParts<AppState> for PdnsCaller {
    type Rejection = PdnsError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, PdnsError> {
        let token = read_token(s, &hash_of(parts)?).await?;
        admitted(parts, &token)?;
        Ok(PdnsCaller::of(&token, false))
    }
}

/// A [`PdnsCaller`] possibly from the credential cache: only for a handler
/// that writes through the record service (which re-finds the token in its
/// transaction) and calls [`CachedCaller::confirm`] on every other answer.
pub struct CachedCaller(pub PdnsCaller);

impl CachedCaller {
    /// Reads the token again if it came from the cache (401 and out of the
    /// cache when it is gone): for answers that wrote nothing.
    pub async fn confirm(&self, s: &AppState) -> Result<(), PdnsError> {
        let Some(Recheck::Token { id, hash }) = &self.0.recheck else {
            return Ok(());
        };
        match s.store.token_by_hash(hash).await? {
            Some(t) if t.id == *id => Ok(()),
            _ => {
                s.records.credentials().forget_token(*id);
                Err(PdnsError::unauthorized())
            }
        }
    }
}

impl FromRequestParts<AppState> for CachedCaller {
    type Rejection = PdnsError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, PdnsError> {
        let hash = hash_of(parts)?;
        let (token, cached) = match s.records.credentials().token(&hash) {
            Some(t) => (t, true),
            None => (read_token(s, &hash).await?, false),
        };
        admitted(parts, &token)?;
        Ok(CachedCaller(PdnsCaller::of(&token, cached)))
    }
}
