//! Credentials already verified, with their parsed policies, kept between
//! requests: a write then skips the credential-table read and the policy
//! parse. Safe because a cached credential is never trusted alone: every
//! write re-finds it inside its own transaction ([`Recheck`]), and a path
//! that answers without writing re-reads it first. Deleting a credential
//! through pdm also drops it here at once; one deleted by another process
//! (the CLI, another replica) is refused by that re-check. Expiry and
//! source addresses live in the policy, checked on every request.

use crate::policy::Policy;
use crate::store::rrsets::Recheck;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Bound on each map: past it, the map starts over (a miss costs one read).
const MAX_ENTRIES: usize = 4096;

/// An API token as verified once.
#[derive(Debug)]
pub struct CachedToken {
    /// `api_tokens.id`.
    pub id: i64,
    /// SHA-256 of the secret (the map's key).
    pub hash: String,
    /// It has the `admin` scope.
    pub admin: bool,
    /// Its record policy.
    pub policy: Arc<Policy>,
}

impl CachedToken {
    /// How a write re-finds it in its transaction.
    pub fn recheck(&self) -> Recheck {
        Recheck::Token {
            id: self.id,
            hash: self.hash.clone(),
        }
    }
}

/// A TSIG key's record policy as read once.
#[derive(Debug)]
pub struct CachedKey {
    /// Key name (the map's key).
    pub name: String,
    /// The sealed secret as stored: tells this key from one made again
    /// under the same name.
    pub sealed: String,
    /// Its record policy.
    pub policy: Arc<Policy>,
}

impl CachedKey {
    /// How a write re-finds it in its transaction.
    pub fn recheck(&self) -> Recheck {
        Recheck::Tsig {
            name: self.name.clone(),
            sealed: self.sealed.clone(),
        }
    }
}

/// The cache (shared by every clone of the record service).
#[derive(Debug, Default)]
pub struct CredentialCache {
    tokens: Mutex<HashMap<String, Arc<CachedToken>>>,
    keys: Mutex<HashMap<String, Arc<CachedKey>>>,
}

/// A lock that survives a panic elsewhere: the maps hold no invariant a
/// half-done insert could break.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn keep<V>(map: &mut HashMap<String, Arc<V>>, key: String, v: V) -> Arc<V> {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    let v = Arc::new(v);
    map.insert(key, Arc::clone(&v));
    v
}

impl CredentialCache {
    /// The token whose secret hashes to `hash`, if cached.
    pub fn token(&self, hash: &str) -> Option<Arc<CachedToken>> {
        lock(&self.tokens).get(hash).cloned()
    }

    /// Caches a token just read from the store.
    pub fn keep_token(&self, t: CachedToken) -> Arc<CachedToken> {
        keep(&mut lock(&self.tokens), t.hash.clone(), t)
    }

    /// Drops token `id` (deleted, or found gone).
    pub fn forget_token(&self, id: i64) {
        lock(&self.tokens).retain(|_, t| t.id != id);
    }

    /// TSIG key `name`'s policy, if cached.
    pub fn key(&self, name: &str) -> Option<Arc<CachedKey>> {
        lock(&self.keys).get(name).cloned()
    }

    /// Caches a key's policy just read from the store.
    pub fn keep_key(&self, k: CachedKey) -> Arc<CachedKey> {
        keep(&mut lock(&self.keys), k.name.clone(), k)
    }

    /// Drops key `name` (deleted, or found gone or replaced).
    pub fn forget_key(&self, name: &str) {
        lock(&self.keys).remove(name);
    }

    /// Drops whatever `recheck` names (a write found it gone).
    pub fn forget(&self, recheck: &Recheck) {
        match recheck {
            Recheck::Token { id, .. } => self.forget_token(*id),
            Recheck::Tsig { name, .. } => self.forget_key(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: i64, hash: &str) -> CachedToken {
        CachedToken {
            id,
            hash: hash.into(),
            admin: false,
            policy: Arc::new(Policy::default()),
        }
    }

    #[test]
    fn forgetting_drops_at_once() {
        let c = CredentialCache::default();
        c.keep_token(token(1, "a"));
        c.keep_token(token(2, "b"));
        assert!(c.token("a").is_some());
        c.forget_token(1);
        assert!(c.token("a").is_none());
        assert!(c.token("b").is_some());
        c.forget(&Recheck::Token {
            id: 2,
            hash: "b".into(),
        });
        assert!(c.token("b").is_none());
        c.keep_key(CachedKey {
            name: "k".into(),
            sealed: "s".into(),
            policy: Arc::new(Policy::default()),
        });
        assert!(c.key("k").is_some());
        c.forget_key("k");
        assert!(c.key("k").is_none());
    }

    #[test]
    fn stays_bounded() {
        let c = CredentialCache::default();
        for i in 0..(MAX_ENTRIES as i64 + 10) {
            c.keep_token(token(i, &i.to_string()));
        }
        assert!(lock(&c.tokens).len() <= MAX_ENTRIES);
    }
}
