//! Plain data passed to and from adapters.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The five registrars pdm speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrarId {
    /// Cloudflare (API v4).
    Cloudflare,
    /// Namecheap (XML API).
    Namecheap,
    /// GoDaddy (Domains API v1/v2).
    Godaddy,
    /// OVHcloud (API 1.0, signed requests).
    Ovh,
    /// Dynadot (api3 and REST).
    Dynadot,
}

impl RegistrarId {
    /// All registrars, sorted by name (the Go service's `registrars` list order).
    pub const ALL: [RegistrarId; 5] = [
        RegistrarId::Cloudflare,
        RegistrarId::Dynadot,
        RegistrarId::Godaddy,
        RegistrarId::Namecheap,
        RegistrarId::Ovh,
    ];

    /// The lowercase name used in URLs and config.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrarId::Cloudflare => "cloudflare",
            RegistrarId::Namecheap => "namecheap",
            RegistrarId::Godaddy => "godaddy",
            RegistrarId::Ovh => "ovh",
            RegistrarId::Dynadot => "dynadot",
        }
    }

    /// Parses a registrar name, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// The propagation hint the Go service returned after set-ns.
    pub fn propagation_hint(self) -> &'static str {
        match self {
            RegistrarId::Cloudflare => "within minutes; full TLD up to 24 hours",
            RegistrarId::Godaddy => "1-4 hours typical, up to 48 hours",
            RegistrarId::Namecheap => "1-2 hours typical, up to 48 hours",
            RegistrarId::Ovh => "asynchronously (task queue), typically 1-4 hours",
            RegistrarId::Dynadot => "30-60 minutes typical",
        }
    }
}

impl fmt::Display for RegistrarId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an adapter can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Capabilities {
    /// Validate credentials and domain membership.
    pub validate: bool,
    /// List the account's domains.
    pub list: bool,
    /// Read the registry NS set.
    pub get_ns: bool,
    /// Replace the registry NS set.
    pub set_ns: bool,
    /// Read DS records.
    pub get_ds: bool,
    /// Replace DS records.
    pub set_ds: bool,
    /// Read/write glue (host objects).
    pub glue: bool,
    /// Delegate a subdomain inside a hosted DNS zone (NS + DS records).
    pub delegate_subdomain: bool,
}

/// What `validate` learned.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Validation {
    /// The account identity the API reported, when it reports one (never a secret).
    pub account: Option<String>,
    /// Scope rules the API revealed (OVH `currentCredential` rules, token policies).
    pub scope: Vec<String>,
    /// Whether the asked domain is in the account (None when no domain was asked).
    pub domain_in_account: Option<bool>,
}

/// Whether a write happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// The registrar already had the desired state; nothing was written.
    Unchanged,
    /// A write was made (and any async task completed).
    Applied,
}

/// One DS record (RFC 4034 §5) as registrars take it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DsData {
    /// Key tag of the DNSKEY.
    pub key_tag: u16,
    /// DNSSEC algorithm number (13 = ECDSAP256SHA256, 15 = ED25519).
    pub algorithm: u8,
    /// Digest type (2 = SHA-256, 4 = SHA-384).
    pub digest_type: u8,
    /// Digest, uppercase or lowercase hex (compared case-insensitively).
    pub digest: String,
}

impl DsData {
    /// The same record with the digest lowercased, for comparisons.
    pub fn normalised(&self) -> Self {
        Self {
            digest: self.digest.to_ascii_lowercase(),
            ..self.clone()
        }
    }
}

/// One DNSKEY (RFC 4034 §2) as registrars that want key material take it (OVH).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DnskeyData {
    /// Flags (257 = KSK/CSK, 256 = ZSK).
    pub flags: u16,
    /// Protocol, always 3.
    pub protocol: u8,
    /// DNSSEC algorithm number.
    pub algorithm: u8,
    /// Public key, base64.
    pub public_key: String,
    /// Key tag (computed by the caller).
    pub key_tag: u16,
}

/// A glue record: a host name under the domain and its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Glue {
    /// Host name (e.g. `ns1.example.com`), lowercase, no trailing dot.
    pub host: String,
    /// Its addresses, sorted.
    pub addresses: Vec<IpAddr>,
}
