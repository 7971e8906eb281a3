//! The PowerDNS API's wire forms, pure: zone ids (`=2F` escaping), the
//! JSON shapes of servers, zones, RRsets, cryptokeys and metadata as
//! pdns_server 4.7 renders them, and a PATCH body read into typed changes
//! with PowerDNS's own error messages.

use super::error::PdnsError;
use crate::model::rtype::{parse_type, type_name};
use crate::rrsets::{Edit, RRsetView};
use hickory_proto::rr::RecordType;
use serde_json::{json, Map, Value};

/// The version pdm's PowerDNS API answers as (the one the differential test runs).
pub const PDNS_VERSION: &str = "4.7.3";

/// A zone id from the path (`a=2Fb.example.` → `a/b.example.`); a bad
/// `=XX` escape is a 400, as in PowerDNS's `apiZoneIdToName`.
pub fn zone_id_to_name(id: &str) -> Result<String, PdnsError> {
    let b = id.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            let hex = b.get(i + 1..i + 3).ok_or_else(PdnsError::bad_request)?;
            let s = std::str::from_utf8(hex).map_err(|_| PdnsError::bad_request())?;
            let v = u8::from_str_radix(s, 16).map_err(|_| PdnsError::bad_request())?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let name = String::from_utf8(out).map_err(|_| PdnsError::bad_request())?;
    // PowerDNS makes the id absolute (`diff.test` finds `diff.test.`).
    let mut name = name.to_ascii_lowercase();
    if !name.ends_with('.') {
        name.push('.');
    }
    Ok(name)
}

/// A zone name as a zone id (`/` → `=2F`, `=` → `=3D`).
pub fn zone_name_to_id(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '/' => out.push_str("=2F"),
            '=' => out.push_str("=3D"),
            c => out.push(c),
        }
    }
    out
}

/// A name from a request body: absolute (PowerDNS's `apiNameToDNSName`), lower-cased.
pub fn canonical_name(name: &str) -> Result<String, PdnsError> {
    if !name.ends_with('.') {
        return Err(PdnsError::unprocessable(format!(
            "DNS Name '{name}' is not canonical"
        )));
    }
    Ok(name.to_ascii_lowercase())
}

/// `GET /api/v1/servers/localhost`.
pub fn server() -> Value {
    json!({
        "type": "Server",
        "id": "localhost",
        "daemon_type": "authoritative",
        "version": PDNS_VERSION,
        "url": "/api/v1/servers/localhost",
        "config_url": "/api/v1/servers/localhost/config{/config_setting}",
        "zones_url": "/api/v1/servers/localhost/zones{/zone}",
        "autoprimaries_url": "/api/v1/servers/localhost/autoprimaries{/autoprimary}",
    })
}

/// What a zone object is made of.
pub struct ZoneFacts<'a> {
    /// Lower-case FQDN.
    pub name: &'a str,
    /// SOA serial.
    pub serial: u32,
    /// Signed.
    pub dnssec: bool,
}

/// A zone as a list element; `with_dnssec: false` (`?dnssec=false`) leaves
/// out `dnssec` and `edited_serial`, as PowerDNS does.
pub fn zone_summary(z: &ZoneFacts<'_>, with_dnssec: bool) -> Map<String, Value> {
    let id = zone_name_to_id(z.name);
    let mut m = Map::new();
    m.insert("account".into(), json!(""));
    m.insert("catalog".into(), json!(""));
    m.insert("id".into(), json!(id));
    m.insert("kind".into(), json!("Native"));
    m.insert("last_check".into(), json!(0));
    m.insert("masters".into(), json!([]));
    m.insert("name".into(), json!(z.name));
    // pdm NOTIFYs its secondaries on every serial change itself.
    m.insert("notified_serial".into(), json!(z.serial));
    m.insert("serial".into(), json!(z.serial));
    m.insert(
        "url".into(),
        json!(format!("/api/v1/servers/localhost/zones/{id}")),
    );
    if with_dnssec {
        m.insert("dnssec".into(), json!(z.dnssec));
        m.insert("edited_serial".into(), json!(z.serial));
    }
    m
}

/// A zone in full (`GET /zones/{id}`); `rrsets: None` for `?rrsets=false`.
pub fn zone_detail(z: &ZoneFacts<'_>, rrsets: Option<&[RRsetView]>) -> Value {
    let mut m = zone_summary(z, true);
    m.insert("api_rectify".into(), json!(false));
    m.insert("master_tsig_key_ids".into(), json!([]));
    m.insert("nsec3narrow".into(), json!(false));
    m.insert("nsec3param".into(), json!(""));
    m.insert("slave_tsig_key_ids".into(), json!([]));
    m.insert("soa_edit".into(), json!(""));
    m.insert("soa_edit_api".into(), json!("DEFAULT"));
    if let Some(sets) = rrsets {
        m.insert(
            "rrsets".into(),
            Value::Array(sets.iter().filter(|v| listed(v)).map(rrset).collect()),
        );
    }
    Value::Object(m)
}

/// Whether an RRset is one PowerDNS would list: its DNSSEC records are
/// made from keys at answer time, never stored, so never in `rrsets`.
fn listed(v: &RRsetView) -> bool {
    !matches!(
        v.rtype,
        RecordType::CDS
            | RecordType::CDNSKEY
            | RecordType::NSEC
            | RecordType::NSEC3
            | RecordType::NSEC3PARAM
            | RecordType::RRSIG
            | RecordType::DNSKEY
    )
}

/// One RRset as PowerDNS renders it (no comments: pdm keeps none).
pub fn rrset(v: &RRsetView) -> Value {
    json!({
        "comments": [],
        "name": v.owner,
        "records": v.rdata.iter().map(|r| json!({"content": r, "disabled": false})).collect::<Vec<_>>(),
        "ttl": v.ttl,
        "type": type_name(v.rtype),
    })
}

/// What a PATCH does to one RRset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// The RRset becomes the records given (`[]`: it goes).
    Replace,
    /// The RRset goes.
    Delete,
    /// The records join the RRset (PowerDNS 4.9.12+/5.0.2+).
    Extend,
    /// The records leave the RRset (PowerDNS 4.9.12+/5.0.2+).
    Prune,
}

impl ChangeType {
    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "REPLACE" => Some(ChangeType::Replace),
            "DELETE" => Some(ChangeType::Delete),
            "EXTEND" => Some(ChangeType::Extend),
            "PRUNE" => Some(ChangeType::Prune),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ChangeType::Replace => "REPLACE",
            ChangeType::Delete => "DELETE",
            ChangeType::Extend => "EXTEND",
            ChangeType::Prune => "PRUNE",
        }
    }
}

/// One record of a PATCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordIn {
    /// Presentation text.
    pub content: String,
    /// PowerDNS's disabled flag (pdm serves every record it holds).
    pub disabled: bool,
}

/// One RRset change of a PATCH, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Lower-case FQDN.
    pub name: String,
    /// Type.
    pub rtype: RecordType,
    /// What to do.
    pub changetype: ChangeType,
    /// TTL, when given.
    pub ttl: Option<u32>,
    /// Records, when given.
    pub records: Option<Vec<RecordIn>>,
    /// Whether `comments` was given.
    pub comments: bool,
}

impl Change {
    /// `name IN TYPE`, PowerDNS's way of naming an RRset.
    pub fn describe(&self) -> String {
        format!("{} IN {}", self.name, type_name(self.rtype))
    }
}

fn string_key<'a>(o: &'a Map<String, Value>, key: &str) -> Result<&'a str, PdnsError> {
    o.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| PdnsError::unprocessable(format!("Key '{key}' not present or not a String")))
}

/// Reads a PATCH body (`{"rrsets": [...]}`) into changes, checking what
/// PowerDNS checks before touching the zone, in its order and words.
pub fn parse_patch(body: &Value) -> Result<Vec<Change>, PdnsError> {
    let sets = body
        .get("rrsets")
        .and_then(Value::as_array)
        .ok_or_else(|| PdnsError::unprocessable("No rrsets given in update request"))?;
    let mut out: Vec<Change> = Vec::with_capacity(sets.len());
    for set in sets {
        let o = set
            .as_object()
            .ok_or_else(|| PdnsError::unprocessable("RRset is not an object"))?;
        let name = canonical_name(string_key(o, "name")?)?;
        let ct_text = string_key(o, "changetype")?;
        let type_text = string_key(o, "type")?;
        let rtype = parse_type(type_text).map_err(|_| {
            PdnsError::unprocessable(format!("RRset {name} IN {type_text}: unknown type given"))
        })?;
        let changetype = ChangeType::parse(ct_text)
            .ok_or_else(|| PdnsError::unprocessable("Changetype not understood"))?;
        if out
            .iter()
            .any(|c| c.name == name && c.rtype == rtype && c.changetype == changetype)
        {
            return Err(PdnsError::unprocessable(format!(
                "Duplicate RRset {name} IN {} with changetype: {}",
                type_name(rtype),
                changetype.as_str()
            )));
        }
        let ttl =
            match o.get("ttl") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().and_then(|t| u32::try_from(t).ok()).ok_or_else(
                    || PdnsError::unprocessable("Key 'ttl' not an Integer or not present"),
                )?),
            };
        let records = match o.get("records") {
            None | Some(Value::Null) => None,
            Some(Value::Array(rs)) => Some(
                rs.iter()
                    .map(|r| {
                        let content =
                            r.get("content").and_then(Value::as_str).ok_or_else(|| {
                                PdnsError::unprocessable(
                                    "Key 'content' not present or not a String",
                                )
                            })?;
                        Ok(RecordIn {
                            content: content.to_string(),
                            disabled: r.get("disabled").and_then(Value::as_bool).unwrap_or(false),
                        })
                    })
                    .collect::<Result<Vec<_>, PdnsError>>()?,
            ),
            Some(_) => return Err(PdnsError::unprocessable("Key 'records' is not an array")),
        };
        out.push(Change {
            name,
            rtype,
            changetype,
            ttl,
            records,
            comments: o.get("comments").is_some_and(|c| !c.is_null()),
        });
    }
    Ok(out)
}

/// Whether `name` is `zone` or below it.
pub fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

/// Changes into the record service's edits. `canonical` turns one
/// record's text into pdm's stored form; `current_ttl` is the TTL of an
/// RRset that exists (for EXTEND without a TTL).
pub fn to_edits(
    zone: &str,
    changes: &[Change],
    canonical: impl Fn(&str, RecordType, &str) -> Result<String, String>,
    current_ttl: impl Fn(&str, RecordType) -> Option<u32>,
) -> Result<Vec<Edit>, PdnsError> {
    let mut edits = Vec::with_capacity(changes.len());
    for c in changes {
        let what = c.describe();
        let inside = in_zone(&c.name, zone);
        if c.changetype == ChangeType::Delete {
            // PowerDNS does no zone check on DELETE (it can clean out
            // junk); pdm never holds a name outside the zone: nothing to do.
            if inside {
                edits.push(Edit::Replace {
                    owner: c.name.clone(),
                    rtype: c.rtype,
                    ttl: 0,
                    rdata: Vec::new(),
                });
            }
            continue;
        }
        if !inside {
            return Err(PdnsError::unprocessable(format!(
                "RRset {what}: Name is out of zone"
            )));
        }
        let Some(records) = &c.records else {
            if c.changetype == ChangeType::Replace && c.comments {
                // Comments only: pdm keeps no comments, so nothing changes.
                continue;
            }
            return Err(PdnsError::unprocessable(format!(
                "No change for RRset {what}"
            )));
        };
        let mut rdata = Vec::with_capacity(records.len());
        for r in records {
            let label = format!("Record {}/{} '{}'", c.name, type_name(c.rtype), r.content);
            if r.disabled {
                return Err(PdnsError::unprocessable(format!(
                    "{label}: disabled records are not supported (pdm serves every record it holds)"
                )));
            }
            let text = canonical(&c.name, c.rtype, &r.content)
                .map_err(|e| PdnsError::unprocessable(format!("{label}: {e}")))?;
            if !rdata.contains(&text) {
                rdata.push(text);
            }
        }
        let need_ttl = || PdnsError::unprocessable("Key 'ttl' not an Integer or not present");
        let owner = c.name.clone();
        let rtype = c.rtype;
        edits.push(match c.changetype {
            ChangeType::Replace => Edit::Replace {
                ttl: match (c.ttl, rdata.is_empty()) {
                    (Some(t), _) => t,
                    (None, true) => 0,
                    (None, false) => return Err(need_ttl()),
                },
                owner,
                rtype,
                rdata,
            },
            ChangeType::Extend => Edit::Extend {
                ttl: c
                    .ttl
                    .or_else(|| current_ttl(&c.name, c.rtype))
                    .ok_or_else(need_ttl)?,
                owner,
                rtype,
                rdata,
            },
            ChangeType::Prune => Edit::Prune {
                owner,
                rtype,
                rdata,
            },
            ChangeType::Delete => continue,
        });
    }
    Ok(edits)
}

/// PowerDNS's algorithm mnemonic (`DNSSECKeeper::algorithm2name`) and key size.
pub fn algorithm(n: u8) -> (String, u32) {
    match n {
        8 => ("RSASHA256".into(), 2048),
        10 => ("RSASHA512".into(), 2048),
        13 => ("ECDSAP256SHA256".into(), 256),
        14 => ("ECDSAP384SHA384".into(), 384),
        15 => ("ED25519".into(), 256),
        16 => ("ED448".into(), 456),
        n => (n.to_string(), 0),
    }
}

/// The metadata kinds PowerDNS 4.7's API accepts (`isValidMetadataKind`
/// with `readonly = false`), and any `X-` kind.
pub fn valid_metadata_kind(kind: &str) -> bool {
    const KINDS: &[&str] = &[
        "ALLOW-AXFR-FROM",
        "AXFR-SOURCE",
        "ALLOW-DNSUPDATE-FROM",
        "TSIG-ALLOW-DNSUPDATE",
        "FORWARD-DNSUPDATE",
        "SOA-EDIT-DNSUPDATE",
        "NOTIFY-DNSUPDATE",
        "ALSO-NOTIFY",
        "GSS-ALLOW-AXFR-PRINCIPAL",
        "GSS-ACCEPTOR-PRINCIPAL",
        "IXFR",
        "PUBLISH-CDNSKEY",
        "PUBLISH-CDS",
        "SLAVE-RENOTIFY",
        "SOA-EDIT",
    ];
    KINDS.contains(&kind) || kind.starts_with("X-")
}

/// One metadata object.
pub fn metadata(kind: &str, values: &[String]) -> Value {
    json!({"kind": kind, "metadata": values, "type": "Metadata"})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_ids_escape_and_unescape() {
        assert_eq!(zone_id_to_name("diff.test.").unwrap(), "diff.test.");
        assert_eq!(zone_id_to_name("Diff.Test").unwrap(), "diff.test.");
        assert_eq!(zone_id_to_name("a=2Fb.test.").unwrap(), "a/b.test.");
        assert_eq!(zone_name_to_id("a/b.test."), "a=2Fb.test.");
        assert_eq!(zone_id_to_name("a=ZZ.test.").unwrap_err().status, 400);
        assert_eq!(zone_id_to_name("a=2").unwrap_err().status, 400);
    }

    fn one(v: Value) -> Result<Vec<Change>, String> {
        parse_patch(&v).map_err(|e| e.message)
    }

    #[test]
    fn patch_bodies_are_checked_in_powerdns_words() {
        assert_eq!(
            one(json!({})).unwrap_err(),
            "No rrsets given in update request"
        );
        assert_eq!(
            one(json!({"rrsets":[{"name":"y.t","type":"A","changetype":"REPLACE"}]})).unwrap_err(),
            "DNS Name 'y.t' is not canonical"
        );
        assert_eq!(
            one(json!({"rrsets":[{"name":"y.t.","type":"BOGUS","changetype":"REPLACE"}]}))
                .unwrap_err(),
            "RRset y.t. IN BOGUS: unknown type given"
        );
        assert_eq!(
            one(json!({"rrsets":[{"name":"y.t.","type":"A","changetype":"MOVE"}]})).unwrap_err(),
            "Changetype not understood"
        );
        let dup = json!({"name":"y.t.","type":"A","changetype":"delete"});
        assert_eq!(
            one(json!({"rrsets":[dup, dup]})).unwrap_err(),
            "Duplicate RRset y.t. IN A with changetype: DELETE"
        );
        let c = one(
            json!({"rrsets":[{"name":"Y.t.","type":"txt","changetype":"replace","ttl":60,
            "records":[{"content":"\"a\"","disabled":false}]}]}),
        )
        .unwrap();
        assert_eq!(c[0].name, "y.t.");
        assert_eq!(c[0].rtype, RecordType::TXT);
        assert_eq!(c[0].ttl, Some(60));
    }

    #[test]
    fn changes_become_edits() {
        let canon = |_: &str, _: RecordType, t: &str| -> Result<String, String> {
            if t == "bad" {
                Err("no".into())
            } else {
                Ok(t.to_lowercase())
            }
        };
        let none = |_: &str, _: RecordType| None;
        let parse = |v: Value| parse_patch(&v).unwrap();
        // DELETE outside the zone: nothing to do, no error.
        let c = parse(json!({"rrsets":[{"name":"x.other.","type":"A","changetype":"DELETE"}]}));
        assert!(to_edits("z.t.", &c, canon, none).unwrap().is_empty());
        let c = parse(
            json!({"rrsets":[{"name":"x.other.","type":"A","changetype":"REPLACE","ttl":1,"records":[]}]}),
        );
        assert_eq!(
            to_edits("z.t.", &c, canon, none).unwrap_err().message,
            "RRset x.other. IN A: Name is out of zone"
        );
        let c = parse(
            json!({"rrsets":[{"name":"a.z.t.","type":"A","changetype":"REPLACE","records":[{"content":"X"}]}]}),
        );
        assert_eq!(
            to_edits("z.t.", &c, canon, none).unwrap_err().message,
            "Key 'ttl' not an Integer or not present"
        );
        let c = parse(
            json!({"rrsets":[{"name":"a.z.t.","type":"A","changetype":"REPLACE","ttl":5,"records":[{"content":"bad"}]}]}),
        );
        assert_eq!(
            to_edits("z.t.", &c, canon, none).unwrap_err().message,
            "Record a.z.t./A 'bad': no"
        );
        let c = parse(json!({"rrsets":[{"name":"a.z.t.","type":"A","changetype":"REPLACE"}]}));
        assert_eq!(
            to_edits("z.t.", &c, canon, none).unwrap_err().message,
            "No change for RRset a.z.t. IN A"
        );
        let c = parse(
            json!({"rrsets":[{"name":"a.z.t.","type":"TXT","changetype":"EXTEND","records":[{"content":"X"}]}]}),
        );
        assert_eq!(
            to_edits("z.t.", &c, canon, |_, _| Some(77)).unwrap(),
            vec![Edit::Extend {
                owner: "a.z.t.".into(),
                rtype: RecordType::TXT,
                ttl: 77,
                rdata: vec!["x".into()]
            }]
        );
    }
}
