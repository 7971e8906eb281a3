//! Credentials, typed per registrar. `Debug` redacts every secret.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::RegistrarError;
use crate::types::RegistrarId;

/// A secret string: `Debug`/`Display` print `<redacted>`; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for building a request. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

/// Credentials for one registrar account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "registrar", rename_all = "lowercase")]
pub enum Credentials {
    /// Cloudflare API token (user or account token).
    Cloudflare {
        /// The bearer token.
        api_token: Secret,
        /// Account id, needed for account tokens and the registrar endpoints.
        #[serde(default)]
        account_id: Option<String>,
    },
    /// Namecheap API user, key, username and the whitelisted client IP.
    Namecheap {
        /// ApiUser.
        api_user: String,
        /// ApiKey.
        api_key: Secret,
        /// UserName (defaults to ApiUser).
        user_name: String,
        /// ClientIp: the IP Namecheap has whitelisted.
        client_ip: String,
    },
    /// GoDaddy key and secret (`sso-key`), and the customer id v2 needs.
    Godaddy {
        /// API key.
        key: String,
        /// API secret.
        secret: Secret,
        /// Customer id for the v2 endpoints (DS, glue, async NS).
        #[serde(default)]
        customer_id: Option<String>,
    },
    /// OVH application key/secret and consumer key.
    Ovh {
        /// Application key (AK).
        application_key: String,
        /// Application secret (AS).
        application_secret: Secret,
        /// Consumer key (CK).
        consumer_key: Secret,
    },
    /// Dynadot API key and (REST) secret.
    Dynadot {
        /// API key.
        api_key: Secret,
        /// API secret, for REST request signing.
        #[serde(default)]
        api_secret: Option<Secret>,
    },
}

impl Credentials {
    /// Which registrar these credentials are for.
    pub fn registrar(&self) -> RegistrarId {
        match self {
            Credentials::Cloudflare { .. } => RegistrarId::Cloudflare,
            Credentials::Namecheap { .. } => RegistrarId::Namecheap,
            Credentials::Godaddy { .. } => RegistrarId::Godaddy,
            Credentials::Ovh { .. } => RegistrarId::Ovh,
            Credentials::Dynadot { .. } => RegistrarId::Dynadot,
        }
    }

    /// Parses the Go service's colon-joined token string (reference openova-pdm.md §4.1):
    /// Cloudflare `token`; GoDaddy `key:secret`; Dynadot `key:secret`;
    /// Namecheap `apiUser:apiKey[:userName]:clientIp`; OVH `appKey:appSecret:consumerKey`.
    /// The error never contains the token.
    pub fn from_token(registrar: RegistrarId, token: &str) -> Result<Self, RegistrarError> {
        let token = token.trim();
        let parts: Vec<&str> = token.split(':').collect();
        let bad =
            |want: &str| RegistrarError::InvalidInput(format!("{registrar} token must be {want}"));
        if token.is_empty() || parts.iter().any(|p| p.is_empty()) {
            return Err(bad(match registrar {
                RegistrarId::Cloudflare => "a non-empty API token",
                RegistrarId::Godaddy | RegistrarId::Dynadot => "key:secret",
                RegistrarId::Namecheap => "apiUser:apiKey[:userName]:clientIp",
                RegistrarId::Ovh => "appKey:appSecret:consumerKey",
            }));
        }
        Ok(match (registrar, parts.as_slice()) {
            (RegistrarId::Cloudflare, [t]) => Credentials::Cloudflare {
                api_token: Secret::new(*t),
                account_id: None,
            },
            (RegistrarId::Godaddy, [k, s]) => Credentials::Godaddy {
                key: (*k).to_string(),
                secret: Secret::new(*s),
                customer_id: None,
            },
            (RegistrarId::Dynadot, [k, s]) => Credentials::Dynadot {
                api_key: Secret::new(*k),
                api_secret: Some(Secret::new(*s)),
            },
            (RegistrarId::Dynadot, [k]) => Credentials::Dynadot {
                api_key: Secret::new(*k),
                api_secret: None,
            },
            (RegistrarId::Namecheap, [u, k, ip]) => Credentials::Namecheap {
                api_user: (*u).to_string(),
                api_key: Secret::new(*k),
                user_name: (*u).to_string(),
                client_ip: (*ip).to_string(),
            },
            (RegistrarId::Namecheap, [u, k, n, ip]) => Credentials::Namecheap {
                api_user: (*u).to_string(),
                api_key: Secret::new(*k),
                user_name: (*n).to_string(),
                client_ip: (*ip).to_string(),
            },
            (RegistrarId::Ovh, [ak, as_, ck]) => Credentials::Ovh {
                application_key: (*ak).to_string(),
                application_secret: Secret::new(*as_),
                consumer_key: Secret::new(*ck),
            },
            (RegistrarId::Cloudflare, _) => return Err(bad("a single API token")),
            (RegistrarId::Godaddy, _) => return Err(bad("key:secret")),
            (RegistrarId::Dynadot, _) => return Err(bad("key:secret")),
            (RegistrarId::Namecheap, _) => return Err(bad("apiUser:apiKey[:userName]:clientIp")),
            (RegistrarId::Ovh, _) => return Err(bad("appKey:appSecret:consumerKey")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_every_secret() {
        let c = Credentials::from_token(RegistrarId::Ovh, "AK1:SECRETAS:SECRETCK").unwrap();
        let s = format!("{c:?}");
        assert!(s.contains("AK1"));
        assert!(!s.contains("SECRETAS") && !s.contains("SECRETCK"), "{s}");
    }

    #[test]
    fn token_shapes_are_checked_without_echoing() {
        let e = Credentials::from_token(RegistrarId::Godaddy, "onlyonepartSECRET").unwrap_err();
        assert!(!e.to_string().contains("SECRET"));
        assert!(Credentials::from_token(RegistrarId::Namecheap, "u:k:1.2.3.4").is_ok());
        assert!(Credentials::from_token(RegistrarId::Namecheap, "u:k:n:1.2.3.4").is_ok());
        assert!(Credentials::from_token(RegistrarId::Ovh, "a::c").is_err());
    }
}
