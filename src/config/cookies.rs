//! `[cookies]`: DNS cookies (RFC 7873) and the server cookie secret.

use super::ConfigError;
use crate::server::cookie::{CookieSettings, Secret};
use serde::Deserialize;

/// `[cookies]` resolved: `None` in [`super::Config::cookies`] when off.
pub type CookiesConfig = CookieSettings;

/// `[cookies]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCookies {
    enabled: Option<bool>,
    secret: Option<String>,
    previous_secret: Option<String>,
    rotate_secs: Option<u64>,
}

/// A 16-byte secret written as 32 hex digits.
fn secret(what: &str, s: &str) -> Result<Secret, ConfigError> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| Secret::try_from(b).ok())
        .ok_or_else(|| ConfigError::Invalid(format!("cookies.{what} must be 32 hex digits")))
}

/// `[cookies]` resolved and checked: `None` when `enabled = false`.
pub(super) fn resolve_cookies(raw: RawCookies) -> Result<Option<CookiesConfig>, ConfigError> {
    if !raw.enabled.unwrap_or(true) {
        return Ok(None);
    }
    let d = CookieSettings::default();
    let c = CookieSettings {
        secret: raw
            .secret
            .as_deref()
            .map(|s| secret("secret", s))
            .transpose()?,
        previous_secret: raw
            .previous_secret
            .as_deref()
            .map(|s| secret("previous_secret", s))
            .transpose()?,
        rotate: raw
            .rotate_secs
            .map_or(d.rotate, std::time::Duration::from_secs),
    };
    if c.previous_secret.is_some() && c.secret.is_none() {
        return Err(ConfigError::Invalid(
            "cookies.previous_secret needs cookies.secret (the one now signing)".into(),
        ));
    }
    Ok(Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_secrets_and_off_switch() {
        assert_eq!(
            resolve_cookies(RawCookies::default()).unwrap(),
            Some(CookieSettings::default())
        );
        let raw: RawCookies = toml::from_str(
            "secret = \"000102030405060708090a0b0c0d0e0f\"\nprevious_secret = \"ffffffffffffffffffffffffffffffff\"",
        )
        .unwrap();
        let c = resolve_cookies(raw).unwrap().unwrap();
        assert_eq!(c.secret.unwrap()[15], 15);
        assert_eq!(c.previous_secret.unwrap()[0], 255);
        let off: RawCookies = toml::from_str("enabled = false").unwrap();
        assert!(resolve_cookies(off).unwrap().is_none());
        for bad in [
            "secret = \"abcd\"",
            "previous_secret = \"000102030405060708090a0b0c0d0e0f\"",
        ] {
            let raw: RawCookies = toml::from_str(bad).unwrap();
            assert!(resolve_cookies(raw).is_err(), "{bad}");
        }
    }
}
