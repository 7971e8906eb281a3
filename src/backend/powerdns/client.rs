//! A typed client for the PowerDNS Authoritative HTTP API v1 (4.7+).
//!
//! Only what pdm needs: zones, rrset PATCH, cryptokeys, zone settings,
//! metadata. Creating an existing zone (409) and deleting a missing one (404)
//! are success; 422 messages are surfaced; transport failures, timeouts and
//! 5xx are retryable. The API key is sent as `X-API-Key` and never logged.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::{ApiKey, PowerDnsConfig};

/// What went wrong talking to PowerDNS.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PdnsError {
    /// Not reachable, timed out, or a 5xx: try again later.
    #[error("PowerDNS unavailable: {0}")]
    Unavailable(String),
    /// The API key was refused (401/403).
    #[error("PowerDNS refused the API key (HTTP {0})")]
    Unauthorized(u16),
    /// PowerDNS rejected the request (422 and other 4xx), with its message.
    #[error("PowerDNS rejected {op}: HTTP {status}: {message}")]
    Rejected {
        /// What was attempted.
        op: String,
        /// HTTP status.
        status: u16,
        /// PowerDNS's `error` text.
        message: String,
    },
    /// The answer could not be decoded.
    #[error("PowerDNS answer to {0} could not be decoded: {1}")]
    Decode(String, String),
}

impl PdnsError {
    /// Whether waiting and trying again can help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, PdnsError::Unavailable(_))
    }
}

/// One record of an RRset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PdnsRecord {
    /// Presentation-format content.
    pub content: String,
    /// Disabled records are not served.
    #[serde(default)]
    pub disabled: bool,
}

/// An RRset as the API shows and takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RRset {
    /// Owner, with trailing dot.
    pub name: String,
    /// Type mnemonic.
    #[serde(rename = "type")]
    pub rtype: String,
    /// TTL (absent on DELETE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// `REPLACE` or `DELETE` (PATCH only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changetype: Option<String>,
    /// Records.
    #[serde(default)]
    pub records: Vec<PdnsRecord>,
}

impl RRset {
    /// A `REPLACE` of `name`/`rtype` with `contents`.
    pub fn replace(name: &str, rtype: &str, ttl: u32, contents: Vec<String>) -> Self {
        RRset {
            name: name.to_string(),
            rtype: rtype.to_string(),
            ttl: Some(ttl),
            changetype: Some("REPLACE".into()),
            records: contents
                .into_iter()
                .map(|content| PdnsRecord {
                    content,
                    disabled: false,
                })
                .collect(),
        }
    }

    /// A `DELETE` of `name`/`rtype`.
    pub fn delete(name: &str, rtype: &str) -> Self {
        RRset {
            name: name.to_string(),
            rtype: rtype.to_string(),
            ttl: None,
            changetype: Some("DELETE".into()),
            records: Vec::new(),
        }
    }
}

/// A zone's detail (the fields pdm reads).
#[derive(Debug, Clone, Deserialize)]
pub struct ZoneDetail {
    /// Zone name with trailing dot.
    pub name: String,
    /// Native, Master, ...
    #[serde(default)]
    pub kind: String,
    /// Whether the zone has keys.
    #[serde(default)]
    pub dnssec: bool,
    /// NSEC3PARAM text, empty for NSEC.
    #[serde(default)]
    pub nsec3param: String,
    /// The RRsets.
    #[serde(default)]
    pub rrsets: Vec<RRset>,
}

/// A zone list element.
#[derive(Debug, Clone, Deserialize)]
pub struct ZoneSummary {
    /// Zone name with trailing dot.
    pub name: String,
}

/// A DNSSEC key as the API lists it (never the private key).
#[derive(Debug, Clone, Deserialize)]
pub struct Cryptokey {
    /// Key id.
    pub id: i64,
    /// Signing with it.
    #[serde(default)]
    pub active: bool,
    /// `ksk`, `zsk` or `csk`.
    #[serde(default)]
    pub keytype: String,
    /// DS texts (`tag alg digesttype digest`).
    #[serde(default)]
    pub ds: Vec<String>,
    /// The DNSKEY in presentation form (`flags protocol alg key`).
    #[serde(default)]
    pub dnskey: String,
}

/// The PowerDNS API client.
#[derive(Clone)]
pub struct PdnsClient {
    http: reqwest::Client,
    base: String,
    key: ApiKey,
}

impl std::fmt::Debug for PdnsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdnsClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// `name` lower-cased with a trailing dot (the API's canonical form).
pub fn canonical(name: &str) -> String {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    format!("{n}.")
}

impl PdnsClient {
    /// A client for `cfg` (`{url}/api/v1/servers/{server_id}`).
    pub fn new(cfg: &PowerDnsConfig) -> Result<Self, PdnsError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .connect_timeout(Duration::from_millis(cfg.timeout_ms.min(2000)))
            .build()
            .map_err(|e| PdnsError::Unavailable(format!("cannot build HTTP client: {e}")))?;
        Ok(PdnsClient {
            http,
            base: format!("{}/api/v1/servers/{}", cfg.url, cfg.server_id),
            key: cfg.api_key.clone(),
        })
    }

    fn zone_url(&self, zone: &str) -> String {
        format!("{}/zones/{}", self.base, canonical(zone))
    }

    /// One request; returns status and body text. Errors are typed by status.
    async fn call(
        &self,
        op: &str,
        method: Method,
        url: &str,
        body: Option<&Value>,
        ok_extra: &[StatusCode],
    ) -> Result<(StatusCode, String), PdnsError> {
        let mut rb = self
            .http
            .request(method, url)
            .header("X-API-Key", self.key.expose())
            .header("Accept", "application/json");
        if let Some(b) = body {
            rb = rb
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = rb.send().await.map_err(|e| {
            // reqwest errors may carry the URL, never headers: no key leaks.
            PdnsError::Unavailable(format!("{op}: {}", without_url(&e)))
        })?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| PdnsError::Unavailable(format!("{op}: {}", without_url(&e))))?;
        if status.is_success() || ok_extra.contains(&status) {
            return Ok((status, text));
        }
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| text.chars().take(256).collect());
        Err(match status.as_u16() {
            401 | 403 => PdnsError::Unauthorized(status.as_u16()),
            s if s >= 500 => PdnsError::Unavailable(format!("{op}: HTTP {s}: {message}")),
            s => PdnsError::Rejected {
                op: op.to_string(),
                status: s,
                message,
            },
        })
    }

    fn decode<T: for<'de> Deserialize<'de>>(op: &str, text: &str) -> Result<T, PdnsError> {
        serde_json::from_str(text).map_err(|e| PdnsError::Decode(op.into(), e.to_string()))
    }

    /// `GET /servers/{s}`: reachability and key check.
    pub async fn server_version(&self) -> Result<String, PdnsError> {
        let (_, t) = self
            .call("server", Method::GET, &self.base, None, &[])
            .await?;
        let v: Value = Self::decode("server", &t)?;
        Ok(v.get("version")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string())
    }

    /// `GET /servers/{s}/config`: the value of one setting, if the server lists it.
    pub async fn config_setting(&self, name: &str) -> Result<Option<String>, PdnsError> {
        let url = format!("{}/config", self.base);
        let (_, t) = self.call("config", Method::GET, &url, None, &[]).await?;
        let settings: Vec<Value> = Self::decode("config", &t)?;
        Ok(settings
            .iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
            .and_then(|s| s.get("value").and_then(Value::as_str))
            .map(str::to_string))
    }

    /// All zones.
    pub async fn list_zones(&self) -> Result<Vec<ZoneSummary>, PdnsError> {
        let url = format!("{}/zones?dnssec=false", self.base);
        let (_, t) = self
            .call("list zones", Method::GET, &url, None, &[])
            .await?;
        Self::decode("list zones", &t)
    }

    /// A zone with its RRsets; `None` when it does not exist.
    pub async fn zone(&self, zone: &str) -> Result<Option<ZoneDetail>, PdnsError> {
        match self
            .get_unless_404("get zone", &self.zone_url(zone))
            .await?
        {
            Some(t) => Self::decode("get zone", &t).map(Some),
            None => Ok(None),
        }
    }

    /// GET `url`: the body, or `None` on 404 (the zone does not exist).
    async fn get_unless_404(&self, op: &str, url: &str) -> Result<Option<String>, PdnsError> {
        let not_found = [StatusCode::NOT_FOUND];
        let (st, t) = self.call(op, Method::GET, url, None, &not_found).await?;
        Ok((st != StatusCode::NOT_FOUND).then_some(t))
    }

    /// `GET .../export`: the zone as master-file lines (records PowerDNS stores; the DNSSEC
    /// records it generates on the fly are not among them); `None` when it does not exist.
    pub async fn export_zone(&self, zone: &str) -> Result<Option<String>, PdnsError> {
        let url = format!("{}/export", self.zone_url(zone));
        let Some(t) = self.get_unless_404("export zone", &url).await? else {
            return Ok(None);
        };
        let v: Value = Self::decode("export zone", &t)?;
        v.get("zone")
            .and_then(Value::as_str)
            .map(|z| Some(z.to_string()))
            .ok_or_else(|| PdnsError::Decode("export zone".into(), "no \"zone\" field".into()))
    }

    /// The RRsets at `name` in `zone` (all types); `None` when the zone does not exist.
    pub async fn rrsets_at(&self, zone: &str, name: &str) -> Result<Option<Vec<RRset>>, PdnsError> {
        let url = format!("{}?rrset_name={}", self.zone_url(zone), canonical(name));
        let Some(t) = self.get_unless_404("get rrsets", &url).await? else {
            return Ok(None);
        };
        let z: ZoneDetail = Self::decode("get rrsets", &t)?;
        Ok(Some(z.rrsets))
    }

    /// Creates `zone` with `rrsets` (which must include SOA and apex NS).
    /// Returns false when it existed already (409).
    pub async fn create_zone(
        &self,
        zone: &str,
        kind: &str,
        rrsets: &[RRset],
    ) -> Result<bool, PdnsError> {
        let sets: Vec<Value> = rrsets
            .iter()
            .map(|r| {
                json!({"name": r.name, "type": r.rtype, "ttl": r.ttl.unwrap_or(3600), "records": r.records})
            })
            .collect();
        let body = json!({"name": canonical(zone), "kind": kind, "rrsets": sets, "soa_edit_api": "DEFAULT"});
        let url = format!("{}/zones?rrsets=false", self.base);
        let (st, _) = self
            .call(
                "create zone",
                Method::POST,
                &url,
                Some(&body),
                &[StatusCode::CONFLICT],
            )
            .await?;
        Ok(st != StatusCode::CONFLICT)
    }

    /// Deletes `zone`; a missing zone is success. Returns whether it existed.
    pub async fn delete_zone(&self, zone: &str) -> Result<bool, PdnsError> {
        let (st, _) = self
            .call(
                "delete zone",
                Method::DELETE,
                &self.zone_url(zone),
                None,
                &[StatusCode::NOT_FOUND],
            )
            .await?;
        Ok(st != StatusCode::NOT_FOUND)
    }

    /// One PATCH (one PowerDNS transaction) of `rrsets`.
    pub async fn patch(&self, zone: &str, rrsets: &[RRset]) -> Result<(), PdnsError> {
        if rrsets.is_empty() {
            return Ok(());
        }
        let body = json!({ "rrsets": rrsets });
        self.call(
            "patch rrsets",
            Method::PATCH,
            &self.zone_url(zone),
            Some(&body),
            &[],
        )
        .await
        .map(|_| ())
    }

    /// `PUT` zone settings (`nsec3param`, `kind`, ...).
    pub async fn put_zone(&self, zone: &str, settings: &Value) -> Result<(), PdnsError> {
        self.call(
            "update zone",
            Method::PUT,
            &self.zone_url(zone),
            Some(settings),
            &[],
        )
        .await
        .map(|_| ())
    }

    /// `PUT .../rectify`.
    pub async fn rectify(&self, zone: &str) -> Result<(), PdnsError> {
        let url = format!("{}/rectify", self.zone_url(zone));
        self.call("rectify", Method::PUT, &url, None, &[])
            .await
            .map(|_| ())
    }

    /// The zone's keys.
    pub async fn cryptokeys(&self, zone: &str) -> Result<Vec<Cryptokey>, PdnsError> {
        let url = format!("{}/cryptokeys", self.zone_url(zone));
        let (_, t) = self.call("list keys", Method::GET, &url, None, &[]).await?;
        Self::decode("list keys", &t)
    }

    /// Adds an active CSK of `algorithm`.
    pub async fn add_csk(&self, zone: &str, algorithm: &str) -> Result<(), PdnsError> {
        let url = format!("{}/cryptokeys", self.zone_url(zone));
        let body =
            json!({"keytype": "csk", "active": true, "published": true, "algorithm": algorithm});
        self.call("add key", Method::POST, &url, Some(&body), &[])
            .await
            .map(|_| ())
    }

    /// Replaces metadata `kind` with `values`.
    pub async fn set_metadata(
        &self,
        zone: &str,
        kind: &str,
        values: &[String],
    ) -> Result<(), PdnsError> {
        let url = format!("{}/metadata/{kind}", self.zone_url(zone));
        let body = json!({"type": "Metadata", "kind": kind, "metadata": values});
        self.call("set metadata", Method::PUT, &url, Some(&body), &[])
            .await
            .map(|_| ())
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = String::new();
    while let Some(s) = src {
        last = s.to_string();
        src = s.source();
    }
    if last.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {last}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_and_rrset_shapes() {
        assert_eq!(canonical("Acme.Example.TEST"), "acme.example.test.");
        assert_eq!(canonical("x.test."), "x.test.");
        let d = serde_json::to_value(RRset::delete("a.test.", "DS")).unwrap();
        assert_eq!(
            d,
            json!({"name": "a.test.", "type": "DS", "changetype": "DELETE", "records": []})
        );
        let r = serde_json::to_value(RRset::replace(
            "a.test.",
            "NS",
            3600,
            vec!["ns1.test.".into()],
        ))
        .unwrap();
        assert_eq!(
            r["records"][0],
            json!({"content": "ns1.test.", "disabled": false})
        );
        assert!(PdnsError::Unavailable("x".into()).is_retryable());
        assert!(!PdnsError::Unauthorized(401).is_retryable());
    }
}
