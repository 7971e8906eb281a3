//! Pure diffing: the PowerDNS RRsets pdm wants versus those PowerDNS has.
//! No IO; the convergence (converge.rs) applies what these functions return.

use std::collections::{BTreeMap, BTreeSet};

use hickory_proto::rr::Record;
use serde::Serialize;

use super::client::{self, canonical, RRset};

/// NSEC3 parameters pdm sets (RFC 9276: SHA-1, no opt-out, 0 iterations, no salt).
pub const NSEC3PARAM: &str = "1 0 0 -";
/// Types PowerDNS manages itself; never compared or pruned.
const MANAGED_TYPES: [&str; 4] = ["SOA", "DNSKEY", "NSEC3PARAM", "CDS"];

/// One change made to PowerDNS (or, in a dry run, that would be made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The zone changed.
    pub zone: String,
    /// What: `create-zone`, `replace`, `delete`, `add-key`, `set-nsec3`, `delegate`, `undelegate`, `delete-zone`.
    pub action: &'static str,
    /// Details (names, types, contents).
    pub detail: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.action, self.zone, self.detail)
    }
}

/// RRsets from records: grouped by owner and type, the first TTL of each.
pub fn to_rrsets(records: &[Record]) -> Vec<RRset> {
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
pub fn diff_rrsets(desired: &[RRset], actual: &[RRset], prune: bool) -> Vec<RRset> {
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
pub fn ds_of(keys: &[client::Cryptokey]) -> Vec<String> {
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

pub(super) fn describe(r: &RRset) -> String {
    let c: Vec<&str> = r.records.iter().map(|x| x.content.as_str()).collect();
    if r.changetype.as_deref() == Some("DELETE") {
        format!("{} {}", r.name, r.rtype)
    } else {
        format!("{} {} {}", r.name, r.rtype, c.join(" | "))
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
    fn ds_of_takes_active_ksk_sha256() {
        let k = |active, kt: &str| client::Cryptokey {
            id: 1,
            active,
            keytype: kt.into(),
            ds: vec!["1 13 1 AA".into(), "1 13 2 BB".into(), "1 13 4 CC".into()],
        };
        assert_eq!(ds_of(&[k(true, "csk")]), vec!["1 13 2 bb".to_string()]);
        assert!(ds_of(&[k(false, "csk"), k(true, "zsk")]).is_empty());
    }
}
