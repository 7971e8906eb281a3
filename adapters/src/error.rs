//! The errors every caller can act on. Messages never contain credentials.

use std::time::Duration;

use crate::types::RegistrarId;

/// Result of a registrar operation.
pub type Result<T> = std::result::Result<T, RegistrarError>;

/// What went wrong, classified so callers can act (retry, ask the user, give up).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrarError {
    /// The registrar rejected the credentials.
    #[error("{registrar}: credentials rejected")]
    InvalidCredentials {
        /// Which registrar said so.
        registrar: RegistrarId,
    },
    /// The credentials are valid but the account may not use the API
    /// (GoDaddy 403 ACCESS_DENIED for small accounts, Namecheap eligibility).
    #[error("{registrar}: account not eligible for API access: {detail}")]
    AccountNotEligible {
        /// Which registrar said so.
        registrar: RegistrarId,
        /// The registrar's reason, credential-free.
        detail: String,
    },
    /// The caller's IP is not on the registrar's API whitelist (Namecheap 1011150).
    #[error("{registrar}: client IP not whitelisted: {detail}")]
    IpNotWhitelisted {
        /// Which registrar said so.
        registrar: RegistrarId,
        /// The registrar's message.
        detail: String,
    },
    /// The domain is not in the account the credentials belong to.
    #[error("{registrar}: domain {domain} is not in this account")]
    DomainNotInAccount {
        /// Which registrar said so.
        registrar: RegistrarId,
        /// The domain asked about.
        domain: String,
    },
    /// Too many requests; `retry_after` is what the registrar asked for, if it said.
    #[error("{registrar}: rate limited (retry after {retry_after:?})")]
    RateLimited {
        /// Which registrar said so.
        registrar: RegistrarId,
        /// How long the registrar asked us to wait.
        retry_after: Option<Duration>,
    },
    /// 5xx, transport failure, timeout, or an async task that did not finish in time.
    #[error("{registrar}: unavailable: {detail}")]
    Unavailable {
        /// Which registrar.
        registrar: RegistrarId,
        /// What happened (no credentials, no raw bodies).
        detail: String,
    },
    /// The registrar has no API for this, or forbids it (Cloudflare Registrar NS).
    #[error("{registrar}: unsupported: {what}")]
    Unsupported {
        /// Which registrar.
        registrar: RegistrarId,
        /// What cannot be done, and why.
        what: String,
    },
    /// The registrar refused the request; its message.
    #[error("{registrar}: rejected: {message}")]
    Rejected {
        /// Which registrar.
        registrar: RegistrarId,
        /// The registrar's error message.
        message: String,
    },
    /// The caller's input cannot be sent (fewer than 2 NS, bad domain, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl RegistrarError {
    /// An [`RegistrarError::Unsupported`] for `what`.
    pub fn unsupported(registrar: RegistrarId, what: impl Into<String>) -> Self {
        Self::Unsupported {
            registrar,
            what: what.into(),
        }
    }

    /// An [`RegistrarError::Unavailable`] with `detail`.
    pub fn unavailable(registrar: RegistrarId, detail: impl Into<String>) -> Self {
        Self::Unavailable {
            registrar,
            detail: detail.into(),
        }
    }

    /// The registrar's own words, for the variants that carry them (a refusal,
    /// an eligibility or whitelist reason); scrubbed of credentials like every
    /// message here. Callers put it in the API's `detail` and in the log line.
    pub fn upstream_message(&self) -> Option<&str> {
        match self {
            Self::Rejected { message, .. } => Some(message),
            Self::AccountNotEligible { detail, .. } | Self::IpNotWhitelisted { detail, .. } => {
                Some(detail)
            }
            _ => None,
        }
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Unavailable { .. })
    }

    /// The kebab-case code the HTTP API uses for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidCredentials { .. } => "invalid-token",
            Self::AccountNotEligible { .. } => "account-not-eligible",
            Self::IpNotWhitelisted { .. } => "ip-not-whitelisted",
            Self::DomainNotInAccount { .. } => "domain-not-in-account",
            Self::RateLimited { .. } => "rate-limited",
            Self::Unavailable { .. } => "api-unavailable",
            Self::Unsupported { .. } => "unsupported",
            Self::Rejected { .. } => "registrar-rejected",
            Self::InvalidInput(_) => "invalid-input",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_message_only_where_the_registrar_spoke() {
        let rejected = RegistrarError::Rejected {
            registrar: RegistrarId::Godaddy,
            message: "CONFLICT: The given domain is not eligible".into(),
        };
        assert_eq!(
            rejected.upstream_message(),
            Some("CONFLICT: The given domain is not eligible")
        );
        let ip = RegistrarError::IpNotWhitelisted {
            registrar: RegistrarId::Namecheap,
            detail: "Invalid request IP: 192.0.2.1".into(),
        };
        assert_eq!(ip.upstream_message(), Some("Invalid request IP: 192.0.2.1"));
        assert_eq!(
            RegistrarError::unavailable(RegistrarId::Ovh, "timeout").upstream_message(),
            None
        );
        assert_eq!(
            RegistrarError::InvalidCredentials {
                registrar: RegistrarId::Ovh
            }
            .upstream_message(),
            None
        );
    }
}
