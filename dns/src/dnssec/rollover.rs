//! Key rollover plans (pure): what each step does to the old and new key and
//! how long to wait before the next step. The store-side runner
//! (`keyring::Keyring::advance_rollover`) applies them.
//!
//! - ZSK: pre-publication (RFC 6781 §4.1.1.1): publish new → wait DNSKEY TTL
//!   → sign with new, keep old published → wait max zone TTL → remove old.
//! - KSK: double-DS (RFC 6781 §4.1.2): new DS in the parent → wait DS TTL →
//!   new key in DNSKEY, signing the key set → wait DNSKEY TTL → remove old key
//!   and its DS.
//! - CSK: double-DS with a double-signature overlap: new DS in the parent →
//!   wait DS TTL → new key published and signing everything beside the old →
//!   wait max(DNSKEY TTL, max zone TTL) → remove old key and its DS. The overlap
//!   means no resolver cache state can meet a signature it cannot check.

/// Which key is rolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RolloverKind {
    /// Zone-signing key (split-key zones).
    Zsk,
    /// Key-signing key (split-key zones).
    Ksk,
    /// Combined signing key.
    Csk,
}

impl RolloverKind {
    /// Parses `zsk`, `ksk` or `csk`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zsk" => Some(Self::Zsk),
            "ksk" => Some(Self::Ksk),
            "csk" => Some(Self::Csk),
            _ => None,
        }
    }

    /// The lowercase mnemonic.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Zsk => "zsk",
            Self::Ksk => "ksk",
            Self::Csk => "csk",
        }
    }
}

/// A key state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyChange {
    /// `standby` | `published` | `active` | `retired` | `removed`.
    pub state: &'static str,
    /// Whether the parent holds its DS afterwards.
    pub in_parent: bool,
}

/// What to wait for after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The parent's DS TTL (and, for a parent pdm does not serve, the operator's confirmation).
    Ds,
    /// The DNSKEY TTL.
    Dnskey,
    /// The largest TTL in the zone (signatures by the old key age out).
    MaxZoneTtl,
    /// max(DNSKEY TTL, largest zone TTL).
    DnskeyAndZone,
}

/// One step of a rollover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Human name of the state after this step (shown by the API).
    pub name: &'static str,
    /// Change to the old key, if any.
    pub old: Option<KeyChange>,
    /// Change to the new key, if any.
    pub new: Option<KeyChange>,
    /// Wait before the next step; `None` = this was the last step.
    pub wait: Option<Wait>,
}

const fn change(state: &'static str, in_parent: bool) -> Option<KeyChange> {
    Some(KeyChange { state, in_parent })
}

/// The initial state of the new key (step 0), created when the rollover starts.
pub fn new_key_initial(kind: RolloverKind) -> KeyChange {
    match kind {
        RolloverKind::Zsk => KeyChange {
            state: "published",
            in_parent: false,
        },
        RolloverKind::Ksk | RolloverKind::Csk => KeyChange {
            state: "standby",
            in_parent: true,
        },
    }
}

/// The step numbered `step` (0 = the start, already applied when the new key
/// was created; `plan(kind, 0)` describes it for the API).
pub fn plan(kind: RolloverKind, step: i32) -> Option<Step> {
    use RolloverKind::*;
    Some(match (kind, step) {
        (Zsk, 0) => Step {
            name: "new-zsk-published",
            old: None,
            new: change("published", false),
            wait: Some(Wait::Dnskey),
        },
        (Zsk, 1) => Step {
            name: "new-zsk-signing",
            old: change("retired", false),
            new: change("active", false),
            wait: Some(Wait::MaxZoneTtl),
        },
        (Zsk, 2) => Step {
            name: "done",
            old: change("removed", false),
            new: None,
            wait: None,
        },
        (Ksk | Csk, 0) => Step {
            name: "new-ds-in-parent",
            old: None,
            new: change("standby", true),
            wait: Some(Wait::Ds),
        },
        (Ksk, 1) => Step {
            name: "new-ksk-signing-keys",
            old: None,
            new: change("active", true),
            wait: Some(Wait::Dnskey),
        },
        (Csk, 1) => Step {
            name: "new-csk-double-signing",
            old: None,
            new: change("active", true),
            wait: Some(Wait::DnskeyAndZone),
        },
        (Ksk | Csk, 2) => Step {
            name: "done",
            old: change("removed", false),
            new: None,
            wait: None,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_ends_with_the_old_key_removed() {
        for kind in [RolloverKind::Zsk, RolloverKind::Ksk, RolloverKind::Csk] {
            let mut step = 0;
            let mut last = None;
            while let Some(s) = plan(kind, step) {
                last = Some(s.clone());
                step += 1;
            }
            let last = last.unwrap();
            assert_eq!(last.name, "done");
            assert_eq!(last.old.unwrap().state, "removed");
            assert!(last.wait.is_none());
            assert_eq!(plan(kind, 0).unwrap().new, Some(new_key_initial(kind)));
        }
    }

    #[test]
    fn double_ds_puts_the_new_ds_first() {
        for kind in [RolloverKind::Ksk, RolloverKind::Csk] {
            let s0 = plan(kind, 0).unwrap();
            assert_eq!(s0.new.unwrap().state, "standby", "not in DNSKEY yet");
            assert!(s0.new.unwrap().in_parent, "DS first");
            assert_eq!(s0.wait, Some(Wait::Ds));
        }
        // The old key keeps signing until the new one is visible everywhere.
        assert!(plan(RolloverKind::Csk, 1).unwrap().old.is_none());
    }
}
