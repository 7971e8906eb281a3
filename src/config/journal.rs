//! `[journal]`: how much of the change journal is kept.

use super::ConfigError;
use serde::Deserialize;

/// Journal retention: per zone, an entry goes once it is neither among the
/// zone's last `keep_changes` nor younger than `keep_days`, and every live
/// replica serves it. Enough history stays for secondaries to catch up by
/// IXFR; older ones get a full transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// Changes kept per zone whatever their age.
    pub keep_changes: u64,
    /// Changes younger than this are kept whatever their number, in days.
    pub keep_days: u64,
    /// How often old entries are removed, in seconds (0: never).
    pub compact_interval_secs: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            keep_changes: 1000,
            keep_days: 7,
            compact_interval_secs: 300,
        }
    }
}

/// `[journal]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJournal {
    keep_changes: Option<u64>,
    keep_days: Option<u64>,
    compact_interval_secs: Option<u64>,
}

/// `[journal]` resolved and checked.
pub(super) fn resolve_journal(raw: RawJournal) -> Result<JournalConfig, ConfigError> {
    let d = JournalConfig::default();
    let j = JournalConfig {
        keep_changes: raw.keep_changes.unwrap_or(d.keep_changes),
        keep_days: raw.keep_days.unwrap_or(d.keep_days),
        compact_interval_secs: raw.compact_interval_secs.unwrap_or(d.compact_interval_secs),
    };
    if j.keep_changes == 0 {
        return Err(ConfigError::Invalid(
            "journal.keep_changes must be at least 1 (the newest change of a zone is always kept)"
                .into(),
        ));
    }
    Ok(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(
            resolve_journal(RawJournal::default()).unwrap(),
            JournalConfig::default()
        );
        let raw = RawJournal {
            keep_changes: Some(0),
            ..RawJournal::default()
        };
        assert!(resolve_journal(raw).is_err());
    }
}
