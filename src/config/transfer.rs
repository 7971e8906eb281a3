//! `[transfer]` and the per-pool `transfer_allow` / `also_notify`: who may
//! take zones by AXFR/IXFR, and which secondaries are sent NOTIFY.

use super::ConfigError;
use crate::server::xfr::acl::Prefix;
use serde::Deserialize;
use std::net::SocketAddr;

/// Who may transfer: addresses (prefixes), and a TSIG key when named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    /// Source prefixes (at least one).
    pub from: Vec<Prefix>,
    /// The TSIG key the request must be signed with, by name.
    pub key: Option<String>,
}

/// A secondary to NOTIFY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    /// Where it listens (UDP).
    pub address: SocketAddr,
    /// The TSIG key to sign NOTIFY with, by name.
    pub key: Option<String>,
}

/// `[transfer]`: rules for every zone, NOTIFY targets for every zone, and
/// the NOTIFY timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferConfig {
    /// Rules covering every zone pdm serves (pools add their own).
    pub allow: Vec<AllowRule>,
    /// Secondaries sent NOTIFY for every zone (pools add their own).
    pub also_notify: Vec<NotifyTarget>,
    /// How long one NOTIFY waits for its answer.
    pub notify_timeout_ms: u64,
    /// First wait before a NOTIFY is sent again; doubles per attempt.
    pub notify_retry_initial_ms: u64,
    /// Longest wait between attempts.
    pub notify_retry_max_secs: u64,
    /// The catalog zone (RFC 9432, version 2) listing every zone pdm
    /// serves, e.g. `catalog.invalid.`; `None`: no catalog.
    pub catalog: Option<String>,
    /// How often zones are checked for transferred signatures due for
    /// renewal (then their serial is bumped and NOTIFY sent).
    pub resign_check_secs: u64,
    /// At start, every zone with secondaries is announced (NOTIFY) at this
    /// many zones a second, so a secondary that missed changes while pdm was
    /// down catches up at once (BIND's `startup-notify-rate`); 0: never.
    pub startup_notify_rate: u32,
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            also_notify: Vec::new(),
            notify_timeout_ms: 1000,
            notify_retry_initial_ms: 1000,
            notify_retry_max_secs: 60,
            catalog: None,
            resign_check_secs: 60,
            startup_notify_rate: 100,
        }
    }
}

/// One rule as written: `{ from = ["192.0.2.0/24"], key = "xfr" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAllow {
    from: Vec<String>,
    key: Option<String>,
}

/// One NOTIFY target as written: `{ address = "192.0.2.53:53", key = "xfr" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    address: String,
    key: Option<String>,
}

/// `[transfer]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTransfer {
    #[serde(default)]
    allow: Vec<RawAllow>,
    #[serde(default)]
    also_notify: Vec<RawNotify>,
    notify_timeout_ms: Option<u64>,
    notify_retry_initial_ms: Option<u64>,
    notify_retry_max_secs: Option<u64>,
    catalog: Option<String>,
    resign_check_secs: Option<u64>,
    startup_notify_rate: Option<u32>,
}

/// A key name as stored: lower case, no trailing dot.
pub fn key_name(s: &str) -> String {
    s.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn valid_key_name(what: &str, k: &str) -> Result<String, ConfigError> {
    let name = key_name(k);
    if name.is_empty() || hickory_proto::rr::Name::from_ascii(&name).is_err() {
        return Err(ConfigError::Invalid(format!(
            "{what}: key {k:?} is not a name"
        )));
    }
    Ok(name)
}

/// Rules as written, resolved (`what` names the key for errors).
pub(super) fn resolve_allow(what: &str, raw: Vec<RawAllow>) -> Result<Vec<AllowRule>, ConfigError> {
    raw.into_iter()
        .map(|r| {
            if r.from.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "{what}: `from` lists no address (write 0.0.0.0/0 and ::/0 to allow any)"
                )));
            }
            let from = r
                .from
                .iter()
                .map(|p| {
                    Prefix::parse(p).ok_or_else(|| {
                        ConfigError::Invalid(format!("{what}: {p:?} is not an address or prefix"))
                    })
                })
                .collect::<Result<_, _>>()?;
            let key = r
                .key
                .as_deref()
                .map(|k| valid_key_name(what, k))
                .transpose()?;
            Ok(AllowRule { from, key })
        })
        .collect()
}

/// NOTIFY targets as written, resolved.
pub(super) fn resolve_notify(
    what: &str,
    raw: Vec<RawNotify>,
) -> Result<Vec<NotifyTarget>, ConfigError> {
    raw.into_iter()
        .map(|n| {
            let address = n.address.parse().map_err(|_| {
                ConfigError::Invalid(format!("{what}: {:?} is not ip:port", n.address))
            })?;
            let key = n
                .key
                .as_deref()
                .map(|k| valid_key_name(what, k))
                .transpose()?;
            Ok(NotifyTarget { address, key })
        })
        .collect()
}

/// `[transfer]` resolved and checked.
pub(super) fn resolve_transfer(raw: RawTransfer) -> Result<TransferConfig, ConfigError> {
    let d = TransferConfig::default();
    let t = TransferConfig {
        allow: resolve_allow("transfer.allow", raw.allow)?,
        also_notify: resolve_notify("transfer.also_notify", raw.also_notify)?,
        notify_timeout_ms: raw.notify_timeout_ms.unwrap_or(d.notify_timeout_ms),
        notify_retry_initial_ms: raw
            .notify_retry_initial_ms
            .unwrap_or(d.notify_retry_initial_ms),
        notify_retry_max_secs: raw.notify_retry_max_secs.unwrap_or(d.notify_retry_max_secs),
        resign_check_secs: raw.resign_check_secs.unwrap_or(d.resign_check_secs).max(1),
        startup_notify_rate: raw.startup_notify_rate.unwrap_or(d.startup_notify_rate),
        catalog: raw
            .catalog
            .as_deref()
            .map(|c| {
                let c = format!("{}.", c.trim().trim_end_matches('.').to_ascii_lowercase());
                match hickory_proto::rr::Name::from_ascii(&c) {
                    Ok(_) if c != "." => Ok(c),
                    _ => Err(ConfigError::Invalid(format!(
                        "transfer.catalog: {c:?} is not a zone name"
                    ))),
                }
            })
            .transpose()?,
    };
    if t.notify_timeout_ms == 0 || t.notify_retry_initial_ms == 0 || t.notify_retry_max_secs == 0 {
        return Err(ConfigError::Invalid(
            "transfer: notify_timeout_ms, notify_retry_initial_ms and notify_retry_max_secs must be positive"
                .into(),
        ));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_targets_resolve_or_say_what_is_wrong() {
        let raw: RawTransfer = toml::from_str(
            r#"
            allow = [{ from = ["127.0.0.1", "192.0.2.0/24"], key = "XFR." }]
            also_notify = [{ address = "127.0.0.1:5300", key = "xfr" }]
            "#,
        )
        .unwrap();
        let t = resolve_transfer(raw).unwrap();
        assert_eq!(t.allow[0].key.as_deref(), Some("xfr"));
        assert_eq!(t.allow[0].from.len(), 2);
        assert_eq!(t.also_notify[0].address, "127.0.0.1:5300".parse().unwrap());
        for bad in [
            r#"allow = [{ from = [] }]"#,
            r#"allow = [{ from = ["300.1.1.1"] }]"#,
            r#"also_notify = [{ address = "127.0.0.1" }]"#,
            r#"notify_timeout_ms = 0"#,
        ] {
            let raw: RawTransfer = toml::from_str(bad).unwrap();
            assert!(resolve_transfer(raw).is_err(), "{bad}");
        }
    }
}
