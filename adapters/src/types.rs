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
    /// Read/replace records on the registrar's own nameservers (set-dns).
    pub host_records: bool,
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

/// Record types the registrar-DNS endpoints accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostRecordType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Alias to another name.
    Cname,
    /// Mail exchanger (with a priority).
    Mx,
    /// Text.
    Txt,
}

impl HostRecordType {
    /// Every type, in display order.
    pub const ALL: [HostRecordType; 5] = [
        HostRecordType::A,
        HostRecordType::Aaaa,
        HostRecordType::Cname,
        HostRecordType::Mx,
        HostRecordType::Txt,
    ];

    /// The upper-case name (`AAAA`).
    pub fn as_str(self) -> &'static str {
        match self {
            HostRecordType::A => "A",
            HostRecordType::Aaaa => "AAAA",
            HostRecordType::Cname => "CNAME",
            HostRecordType::Mx => "MX",
            HostRecordType::Txt => "TXT",
        }
    }
}

impl fmt::Display for HostRecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record type outside [`HostRecordType`] (the text as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported record type {0:?} (A, AAAA, CNAME, MX or TXT)")]
pub struct UnknownHostRecordType(pub String);

impl std::str::FromStr for HostRecordType {
    type Err = UnknownHostRecordType;

    /// Case-insensitive, surrounding whitespace ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| UnknownHostRecordType(s.to_string()))
    }
}

impl Serialize for HostRecordType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for HostRecordType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One record on the registrar's own nameservers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HostRecord {
    /// The label(s) below the domain; `""` is the apex.
    pub subhost: String,
    /// The record type.
    #[serde(rename = "type")]
    pub rtype: HostRecordType,
    /// The address, target or text.
    pub value: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// MX preference (MX only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u16>,
}

impl HostRecord {
    /// The record in the form registrars echo it back, for comparisons:
    /// lowercase subhost without dots at the ends (`@` is the apex), names
    /// lowercase without the trailing dot, addresses in canonical form, and a
    /// priority only on MX.
    pub fn normalised(&self) -> Self {
        let sub = self.subhost.trim().trim_matches('.').to_ascii_lowercase();
        let subhost = if sub == "@" { String::new() } else { sub };
        let value = match self.rtype {
            HostRecordType::A | HostRecordType::Aaaa => match self.value.trim().parse::<IpAddr>() {
                Ok(ip) => ip.to_string(),
                Err(_) => self.value.trim().to_string(),
            },
            HostRecordType::Cname | HostRecordType::Mx => {
                self.value.trim().trim_end_matches('.').to_ascii_lowercase()
            }
            HostRecordType::Txt => self.value.clone(),
        };
        Self {
            subhost,
            rtype: self.rtype,
            value,
            ttl: self.ttl,
            priority: (self.rtype == HostRecordType::Mx).then(|| self.priority.unwrap_or(0)),
        }
    }

    /// `records` normalised and sorted, duplicates removed: a set to compare.
    pub fn normalised_set(records: &[HostRecord]) -> Vec<HostRecord> {
        let mut out: Vec<HostRecord> = records.iter().map(HostRecord::normalised).collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_types_parse_case_insensitively_and_print_upper_case() {
        for t in HostRecordType::ALL {
            assert_eq!(t.to_string().parse::<HostRecordType>(), Ok(t));
            assert_eq!(
                t.to_string().to_lowercase().parse::<HostRecordType>(),
                Ok(t)
            );
        }
        assert_eq!(" aaaa ".parse(), Ok(HostRecordType::Aaaa));
        assert_eq!(HostRecordType::Cname.to_string(), "CNAME");
        assert!("SRV".parse::<HostRecordType>().is_err());
        let r: HostRecord = serde_json::from_str(
            r#"{"subhost":"","type":"mx","value":"mail.example.com","ttl":3600,"priority":10}"#,
        )
        .unwrap();
        assert_eq!(r.rtype, HostRecordType::Mx);
        assert_eq!(
            serde_json::to_value(&r).unwrap()["type"],
            serde_json::json!("MX")
        );
    }

    #[test]
    fn normalised_records_compare_as_registrars_echo_them() {
        let mine = HostRecord {
            subhost: "WWW".into(),
            rtype: HostRecordType::Cname,
            value: "Target.Example.NET.".into(),
            ttl: 300,
            priority: Some(5),
        };
        let theirs = HostRecord {
            subhost: "www".into(),
            rtype: HostRecordType::Cname,
            value: "target.example.net".into(),
            ttl: 300,
            priority: None,
        };
        assert_eq!(mine.normalised(), theirs.normalised());
        let apex = HostRecord {
            subhost: "@".into(),
            rtype: HostRecordType::Aaaa,
            value: "2001:DB8:0::1".into(),
            ttl: 60,
            priority: None,
        };
        assert_eq!(apex.normalised().subhost, "");
        assert_eq!(apex.normalised().value, "2001:db8::1");
    }
}
