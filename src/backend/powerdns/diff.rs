//! Pure diffing: the PowerDNS RRsets pdm wants versus those PowerDNS has.
//! No IO; the convergence (converge.rs) applies what these functions return.

use std::collections::{BTreeMap, BTreeSet};

use hickory_proto::rr::Record;
use serde::Serialize;

use super::client::{self, canonical, RRset};
use hickory_proto::dnssec::rdata::DNSKEY;
use hickory_proto::dnssec::{Algorithm, PublicKeyBuf};

/// NSEC3 parameters pdm sets (RFC 9276: SHA-1, no opt-out, 0 iterations, no salt).
pub(super) const NSEC3PARAM: &str = "1 0 0 -";
/// Types PowerDNS manages itself; never compared or pruned.
const MANAGED_TYPES: [&str; 4] = ["SOA", "DNSKEY", "NSEC3PARAM", "CDS"];

/// One change made to PowerDNS (or, in a dry run, that would be made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The zone changed.
    pub(super) zone: String,
    /// What: `create-zone`, `replace`, `delete`, `add-key`, `set-nsec3`, `delegate`, `undelegate`, `delete-zone`.
    pub(super) action: &'static str,
    /// Details (names, types, contents).
    pub(super) detail: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.action, self.zone, self.detail)
    }
}

/// RRsets from records: grouped by owner and type, the first TTL of each.
pub(super) fn to_rrsets(records: &[Record]) -> Vec<RRset> {
    let mut sets: BTreeMap<(String, String), RRset> = BTreeMap::new();
    for r in records {
        let name = canonical(&r.name.to_ascii());
        let rtype = crate::store::zones::StoredRecord::from_record(r).rtype;
        let content = crate::zone::file::rdata_text(&r.data);
        sets.entry((name.clone(), rtype.clone()))
            .or_insert_with(|| RRset::replace(&name, &rtype, r.ttl, Vec::new()))
            .records
            .push(client::PdnsRecord {
                content,
                disabled: false,
            });
    }
    sets.into_values().collect()
}

fn norm_content(rtype: &str, c: &str) -> String {
    let c = c.split_whitespace().collect::<Vec<_>>().join(" ");
    if rtype == "LUA" || rtype == "TXT" {
        c
    } else {
        c.to_ascii_lowercase()
    }
}

fn contents(r: &RRset) -> BTreeSet<String> {
    r.records
        .iter()
        .filter(|x| !x.disabled)
        .map(|x| norm_content(&r.rtype, &x.content))
        .collect()
}

/// The PATCH that makes `actual` look like `desired`: REPLACE of every
/// desired RRset that is missing or differs (contents or TTL), and with
/// `prune` a DELETE of every other RRset (SOA and DNSSEC types excepted).
pub(super) fn diff_rrsets(desired: &[RRset], actual: &[RRset], prune: bool) -> Vec<RRset> {
    let key = |r: &RRset| (canonical(&r.name), r.rtype.to_ascii_uppercase());
    let have: BTreeMap<_, &RRset> = actual.iter().map(|r| (key(r), r)).collect();
    let mut out = Vec::new();
    for d in desired {
        if MANAGED_TYPES.contains(&d.rtype.as_str()) {
            continue;
        }
        match have.get(&key(d)) {
            Some(a) if contents(a) == contents(d) && a.ttl == d.ttl => {}
            _ => out.push(d.clone()),
        }
    }
    if prune {
        let want: BTreeSet<_> = desired.iter().map(key).collect();
        for a in actual {
            if !MANAGED_TYPES.contains(&a.rtype.as_str()) && !want.contains(&key(a)) {
                out.push(RRset::delete(&a.name, &a.rtype));
            }
        }
    }
    out
}

/// The SHA-256 DS texts of the active key-signing keys in `keys`.
pub(super) fn ds_of(keys: &[client::Cryptokey]) -> Vec<String> {
    let mut out: Vec<String> = keys
        .iter()
        .filter(|k| k.active && (k.keytype == "ksk" || k.keytype == "csk"))
        .flat_map(|k| k.ds.iter())
        .filter(|d| d.split_whitespace().nth(2) == Some("2"))
        .map(|d| d.to_ascii_lowercase())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A key as PowerDNS lists it (`"257 3 13 <base64>"`), as a DNSKEY.
pub(super) fn dnskey_of(text: &str) -> Option<DNSKEY> {
    let mut it = text.split_whitespace();
    let flags: u16 = it.next()?.parse().ok()?;
    let protocol: u8 = it.next()?.parse().ok()?;
    let algorithm: u8 = it.next()?.parse().ok()?;
    let key: String = it.collect();
    if protocol != 3 || key.is_empty() {
        return None;
    }
    let bytes = data_encoding::BASE64.decode(key.as_bytes()).ok()?;
    Some(DNSKEY::with_flags(
        flags,
        PublicKeyBuf::new(bytes, Algorithm::from_u8(algorithm)),
    ))
}

/// The DNSKEYs of the active KSKs and CSKs: what the parent points at.
pub(super) fn parent_keys_of(keys: &[client::Cryptokey]) -> Vec<DNSKEY> {
    keys.iter()
        .filter(|k| k.active && (k.keytype == "ksk" || k.keytype == "csk"))
        .filter_map(|k| dnskey_of(&k.dnskey))
        .collect()
}

/// One PATCH entry as a change detail: owner, type and contents.
pub(super) fn describe(r: &RRset) -> String {
    let c: Vec<&str> = r.records.iter().map(|x| x.content.as_str()).collect();
    if r.changetype.as_deref() == Some("DELETE") {
        format!("{} {}", r.name, r.rtype)
    } else {
        format!("{} {} {}", r.name, r.rtype, c.join(" | "))
    }
}

/// The label of `name` when it is a direct child of `pool_fqdn` (both
/// canonical): `a.pool.` → `a`; the pool itself and deeper names → `None`.
pub(super) fn child_label<'a>(pool_fqdn: &str, name: &'a str) -> Option<&'a str> {
    name.strip_suffix(pool_fqdn)?
        .strip_suffix('.')
        .filter(|l| !l.is_empty() && !l.contains('.'))
}

/// The children of a pool that PowerDNS knows of: child zones among `zones`
/// and owners of NS/DS RRsets in the pool zone (`pool_rrsets`).
pub(super) fn children_in_powerdns(
    pool_fqdn: &str,
    zones: &[String],
    pool_rrsets: &[RRset],
) -> BTreeSet<String> {
    let from_zones = zones.iter().filter_map(|z| child_label(pool_fqdn, z));
    let delegated: Vec<String> = pool_rrsets
        .iter()
        .filter(|r| r.rtype == "NS" || r.rtype == "DS")
        .map(|r| canonical(&r.name))
        .collect();
    let from_delegations = delegated.iter().filter_map(|n| child_label(pool_fqdn, n));
    from_zones
        .chain(from_delegations)
        .map(str::to_string)
        .collect()
}

/// The changes a PATCH of `zone` makes, as reported.
pub(super) fn zone_changes(zone: &str, patch: &[RRset]) -> Vec<Change> {
    patch
        .iter()
        .map(|p| Change {
            zone: zone.to_string(),
            action: if p.changetype.as_deref() == Some("DELETE") {
                "delete"
            } else {
                "replace"
            },
            detail: describe(p),
        })
        .collect()
}

/// What a pool zone should hold at a child's delegation point.
#[derive(Debug, Clone)]
pub(super) struct Delegation {
    /// NS targets (FQDNs).
    pub(super) ns: Vec<String>,
    /// DS texts; empty: unsigned child, no DS.
    pub(super) ds: Vec<String>,
    /// TTL of the DS RRset.
    pub(super) ds_ttl: u32,
}

/// The PATCH of the pool zone that makes the delegation at `name` match
/// `desired` (`None`: no delegation). `actual` may hold any RRsets of the
/// pool zone; only NS and DS at `name` count. NS and DS always change
/// together, in one PATCH, so a resolver never sees new NS with an old DS.
pub(super) fn delegation_patch(
    name: &str,
    desired: Option<&Delegation>,
    actual: &[RRset],
) -> Vec<RRset> {
    let actual: Vec<RRset> = actual
        .iter()
        .filter(|r| canonical(&r.name) == canonical(name) && (r.rtype == "NS" || r.rtype == "DS"))
        .cloned()
        .collect();
    match desired {
        Some(d) => {
            let mut want = vec![RRset::replace(
                name,
                "NS",
                crate::backend::apex::NS_TTL,
                d.ns.clone(),
            )];
            if !d.ds.is_empty() {
                want.push(RRset::replace(name, "DS", d.ds_ttl, d.ds.clone()));
            }
            if diff_rrsets(&want, &actual, true).is_empty() {
                return Vec::new();
            }
            if d.ds.is_empty() {
                want.push(RRset::delete(name, "DS"));
            }
            want
        }
        None if actual.is_empty() => Vec::new(),
        None => vec![RRset::delete(name, "NS"), RRset::delete(name, "DS")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(name: &str, t: &str, ttl: u32, c: &[&str]) -> RRset {
        RRset::replace(name, t, ttl, c.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn diff_replaces_changed_and_prunes_extra() {
        let desired = vec![
            rr("a.test.", "SOA", 3600, &["x"]),
            rr("a.test.", "NS", 3600, &["ns1.test.", "ns2.test."]),
            rr("www.a.test.", "A", 300, &["192.0.2.1"]),
        ];
        let mut actual = vec![
            rr("a.test.", "SOA", 3600, &["y"]),
            rr("a.test.", "NS", 3600, &["NS2.test.", "ns1.test."]),
            rr("www.a.test.", "A", 300, &["192.0.2.9"]),
            rr("junk.a.test.", "TXT", 300, &["\"x\""]),
        ];
        for r in &mut actual {
            r.changetype = None;
        }
        let p = diff_rrsets(&desired, &actual, true);
        let got: Vec<String> = p
            .iter()
            .map(|r| format!("{:?} {} {}", r.changetype, r.name, r.rtype))
            .collect();
        assert_eq!(
            got,
            vec![
                "Some(\"REPLACE\") www.a.test. A",
                "Some(\"DELETE\") junk.a.test. TXT"
            ]
        );
        assert!(diff_rrsets(&desired[1..2], &actual[1..2], false).is_empty());
    }

    #[test]
    fn parent_keys_are_active_ksks_and_csks() {
        use hickory_proto::dnssec::PublicKey;
        let key = "257 3 13 pRKHyGP+EUoXSuEgyt3qMaa64KXSeT4qisplg6F8Q+WegVnfW+nUb+G8l8RuDjT8k8h0AqoiGvRz52mVACztVw==";
        let k = |active, kt: &str, dnskey: &str| client::Cryptokey {
            id: 1,
            active,
            keytype: kt.into(),
            ds: Vec::new(),
            dnskey: dnskey.into(),
        };
        let got = parent_keys_of(&[
            k(true, "csk", key),
            k(false, "ksk", key),
            k(true, "zsk", key),
            k(true, "ksk", "257 3 13 !!notbase64"),
        ]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].flags(), 257);
        assert_eq!(u8::from(got[0].public_key().algorithm()), 13);
        // PowerDNS's own DS for this key has tag 40585: the key tag matches.
        assert_eq!(got[0].calculate_key_tag().unwrap(), 40585);
        assert!(dnskey_of("256 2 13 AAAA").is_none());
    }

    #[test]
    fn ds_of_takes_active_ksk_sha256() {
        let k = |active, kt: &str| client::Cryptokey {
            id: 1,
            active,
            keytype: kt.into(),
            ds: vec!["1 13 1 AA".into(), "1 13 2 BB".into(), "1 13 4 CC".into()],
            dnskey: String::new(),
        };
        assert_eq!(ds_of(&[k(true, "csk")]), vec!["1 13 2 bb".to_string()]);
        assert!(ds_of(&[k(false, "csk"), k(true, "zsk")]).is_empty());
    }

    fn kinds(p: &[RRset]) -> Vec<String> {
        p.iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    r.changetype.as_deref().unwrap_or("-"),
                    r.name,
                    r.rtype
                )
            })
            .collect()
    }

    fn as_served(mut sets: Vec<RRset>) -> Vec<RRset> {
        for r in &mut sets {
            r.changetype = None;
        }
        sets
    }

    #[test]
    fn delegation_patch_changes_ns_and_ds_together() {
        let name = "a.pool.test.";
        let want = Delegation {
            ns: vec!["ns1.test.".into(), "ns2.test.".into()],
            ds: vec!["1 13 2 aa".into()],
            ds_ttl: 3600,
        };
        let served = as_served(vec![
            rr("pool.test.", "NS", 3600, &["ns1.test."]),
            rr(name, "NS", 3600, &["ns2.test.", "NS1.test."]),
            rr(name, "DS", 3600, &["1 13 2 AA"]),
            rr("b.pool.test.", "NS", 3600, &["other.test."]),
        ]);
        // In line (case and order aside): nothing to do.
        assert!(delegation_patch(name, Some(&want), &served).is_empty());

        // Only the DS differs: NS and DS are both replaced, in one PATCH.
        let new_key = Delegation {
            ds: vec!["2 13 2 bb".into()],
            ..want.clone()
        };
        assert_eq!(
            kinds(&delegation_patch(name, Some(&new_key), &served)),
            ["REPLACE a.pool.test. NS", "REPLACE a.pool.test. DS"]
        );

        // Unsigned child where a DS is served: the DS goes, with the NS.
        let unsigned = Delegation {
            ds: Vec::new(),
            ..want.clone()
        };
        assert_eq!(
            kinds(&delegation_patch(name, Some(&unsigned), &served)),
            ["REPLACE a.pool.test. NS", "DELETE a.pool.test. DS"]
        );

        // Missing delegation: created.
        assert_eq!(
            kinds(&delegation_patch("c.pool.test.", Some(&want), &served)),
            ["REPLACE c.pool.test. NS", "REPLACE c.pool.test. DS"]
        );

        // Removal: NS and DS deleted; nothing to remove is no PATCH (other
        // children's delegations do not count).
        assert_eq!(
            kinds(&delegation_patch(name, None, &served)),
            ["DELETE a.pool.test. NS", "DELETE a.pool.test. DS"]
        );
        assert!(delegation_patch("c.pool.test.", None, &served).is_empty());
    }

    #[test]
    fn children_are_direct_labels_from_zones_and_delegations() {
        let zones: Vec<String> = [
            "pool.test.",
            "a.pool.test.",
            "x.a.pool.test.",
            "other.test.",
        ]
        .map(String::from)
        .to_vec();
        let served = as_served(vec![
            rr("pool.test.", "NS", 3600, &["ns1.test."]),
            rr("B.pool.test", "DS", 3600, &["1 13 2 aa"]),
            rr("c.pool.test.", "A", 300, &["192.0.2.1"]),
            rr("d.pool.test.", "NS", 3600, &["ns1.test."]),
        ]);
        let got: Vec<String> = children_in_powerdns("pool.test.", &zones, &served)
            .into_iter()
            .collect();
        assert_eq!(got, ["a", "b", "d"]);
        assert_eq!(child_label("pool.test.", "xpool.test."), None);
        assert_eq!(child_label("pool.test.", "pool.test."), None);
    }

    #[test]
    fn zone_changes_name_the_action() {
        let patch = vec![
            rr("a.test.", "A", 300, &["192.0.2.1"]),
            RRset::delete("junk.a.test.", "TXT"),
        ];
        let got: Vec<String> = zone_changes("a.test.", &patch)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "replace a.test.: a.test. A 192.0.2.1",
                "delete a.test.: junk.a.test. TXT"
            ]
        );
    }
}
