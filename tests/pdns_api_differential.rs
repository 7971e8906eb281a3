//! The PowerDNS-compatible API, differentially: the same request sequence
//! goes to a real `pdns_server` 4.7 (gsqlite3, API on) and to pdm, and the
//! status codes, content types and bodies are compared field by field.
//! What legitimately differs is normalised away (serials, key material);
//! every other difference is an accepted one, listed in [`ACCEPTED`] with
//! its reason, and checked on pdm's side on its own.

#[macro_use]
mod common;
use common::pdns::{PdnsServer, API_KEY};
use common::*;
use hickory_proto::rr::{RData, RecordType};
use serde_json::{json, Value};
use std::time::Duration;

/// Every difference between pdm and PowerDNS 4.7 this test accepts, and why.
const ACCEPTED: &[(&str, &str)] = &[
    ("serials", "serial, edited_serial and notified_serial: pdm's serials are its own (max(old+1, unix time)); pdm NOTIFYs on every change itself, so notified_serial is the serial"),
    ("apex SOA and NS", "pdm writes every zone's SOA and NS from its configuration; `nameservers` of POST /zones is ignored, and PATCHes of them are refused (422)"),
    ("rrset order", "PowerDNS lists rrsets in database order, pdm in (name, type) order; clients key them by name and type"),
    ("record order", "the order of records inside an RRset is not significant in DNS"),
    ("key material", "cryptokeys id, dnskey and ds digests come from each server's own keys"),
    ("no SHA-1 DS", "pdm lists DS digests SHA-256 and SHA-384 only (RFC 8624: SHA-1 DS MUST NOT be used)"),
    ("validation messages", "for bad rdata and names, PowerDNS's text comes from its parsers; pdm's names the same record (`Record <name>/<type> '<content>': ...`) with its own parser's reason"),
    ("EXTEND / PRUNE", "pdns 4.7 answers 422 Changetype not understood; pdm implements them as PowerDNS 4.9.12+/5.0.2+ does"),
    ("managed types", "PATCH of SOA or DNSSEC types: PowerDNS stores them, pdm refuses them (422), they are pdm's"),
    ("disabled records", "pdm serves every record it holds: disabled:true is refused (422), never stored"),
    ("comments", "pdm keeps no comments: a REPLACE with comments only is a no-op (204) and rrsets always list comments: []"),
    ("long TXT strings", "a TXT string past 255 bytes (a DKIM key): both serve it as strings of 255 bytes, PowerDNS lists it as it came, pdm as it serves it (\"…\" \"…\", the form octoDNS sends such values in)"),
    ("metadata writes", "pdm keeps no per-zone metadata: PUT of a non-empty value is 422 saying where pdm configures it"),
];

/// A server under test.
struct Target {
    name: &'static str,
    base: String,
    key: String,
    client: reqwest::blocking::Client,
}

/// One answer.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    /// `application/json`, `text/plain` or empty.
    ctype: String,
    text: String,
    json: Value,
}

impl Target {
    fn new(name: &'static str, base: String, key: String) -> Self {
        Target {
            name,
            base,
            key,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>, accept_json: bool) -> Reply {
        self.call_key(method, path, body, accept_json, Some(&self.key))
    }

    fn call_key(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        accept_json: bool,
        key: Option<&str>,
    ) -> Reply {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self.client.request(m, format!("{}{path}", self.base));
        if let Some(k) = key {
            rb = rb.header("X-API-Key", k);
        }
        if accept_json {
            rb = rb.header("Accept", "application/json");
        }
        if let Some(b) = body {
            rb = rb.body(b.to_string());
        }
        let r = rb
            .send()
            .unwrap_or_else(|e| panic!("{} {method} {path}: {e}", self.name));
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_string())
            .unwrap_or_default();
        let text = r.text().unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            ctype,
            text,
            json,
        }
    }
}

const Z: &str = "/api/v1/servers/localhost/zones";
const ZONE: &str = "diff.test.";

/// What legitimately differs, taken out (see [`ACCEPTED`]).
fn normalise(v: &Value) -> Value {
    let mut v = v.clone();
    norm(&mut v);
    v
}

fn norm(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in ["serial", "edited_serial", "notified_serial"] {
                m.remove(k);
            }
            if m.get("type") == Some(&json!("Cryptokey")) {
                m.remove("id");
                m.remove("dnskey");
                if let Some(Value::Array(ds)) = m.get_mut("ds") {
                    // The digest type of each DS, SHA-1 left out.
                    let mut types: Vec<Value> = ds
                        .iter()
                        .filter_map(|d| d.as_str()?.split_whitespace().nth(2).map(str::to_string))
                        .filter(|t| t != "1")
                        .map(Value::String)
                        .collect();
                    types.sort_by_key(|t| t.to_string());
                    *ds = types;
                }
            }
            if let Some(Value::Array(sets)) = m.get_mut("rrsets") {
                let zone = ZONE;
                sets.retain(|s| {
                    !(s["name"] == json!(zone)
                        && (s["type"] == json!("SOA") || s["type"] == json!("NS")))
                });
                for s in sets.iter_mut() {
                    if let Some(Value::Array(rs)) = s.get_mut("records") {
                        rs.sort_by_key(|r| r["content"].to_string());
                    }
                }
                sets.sort_by_key(|s| format!("{} {}", s["name"], s["type"]));
            }
            for x in m.values_mut() {
                norm(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(norm),
        _ => {}
    }
}

struct Diff {
    pdns: Target,
    pdm: Target,
    steps: usize,
}

impl Diff {
    /// Sends the request to both; status, content type and normalised body must agree.
    fn same(&mut self, method: &str, path: &str, body: Option<&str>, accept_json: bool) -> Reply {
        self.steps += 1;
        let a = self.pdns.call(method, path, body, accept_json);
        let b = self.pdm.call(method, path, body, accept_json);
        let what = format!("{method} {path} {}", body.unwrap_or(""));
        assert_eq!(
            (a.status, &a.ctype),
            (b.status, &b.ctype),
            "{what}\n pdns: {}\n pdm:  {}",
            a.text,
            b.text
        );
        if a.ctype == "application/json" {
            assert_eq!(
                normalise(&a.json),
                normalise(&b.json),
                "{what}\n pdns: {}\n pdm:  {}",
                a.text,
                b.text
            );
        } else {
            assert_eq!(a.text.trim(), b.text.trim(), "{what}");
        }
        b
    }

    /// Both refuse with the same status and a JSON `error`; the texts may
    /// differ ("validation messages" in [`ACCEPTED`]): pdm's must contain `pdm_says`.
    fn same_status(&mut self, method: &str, path: &str, body: &str, pdm_says: &str) {
        self.steps += 1;
        let a = self.pdns.call(method, path, Some(body), true);
        let b = self.pdm.call(method, path, Some(body), true);
        assert_eq!(
            a.status, b.status,
            "{method} {path} {body}\n pdns: {}\n pdm: {}",
            a.text, b.text
        );
        assert!(a.json["error"].is_string(), "{}", a.text);
        let msg = b.json["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains(pdm_says),
            "pdm said {:?}, want {pdm_says:?}",
            b.text
        );
        assert_eq!(
            b.json.as_object().map(|o| o.len()),
            Some(1),
            "only error: {}",
            b.text
        );
    }

    /// An accepted difference: each side answers as stated.
    fn differ(
        &mut self,
        why: &str,
        method: &str,
        path: &str,
        body: &str,
        pdns: u16,
        pdm: u16,
    ) -> Reply {
        assert!(
            ACCEPTED.iter().any(|(k, _)| *k == why),
            "{why} is not listed in ACCEPTED"
        );
        self.steps += 1;
        let a = self.pdns.call(method, path, Some(body), true);
        let b = self.pdm.call(method, path, Some(body), true);
        assert_eq!(a.status, pdns, "pdns {method} {path} {body}: {}", a.text);
        assert_eq!(b.status, pdm, "pdm {method} {path} {body}: {}", b.text);
        b
    }

    /// The zone on both sides, compared.
    fn zone(&mut self) {
        self.same("GET", &format!("{Z}/{ZONE}"), None, false);
    }
}

fn patch(sets: Value) -> String {
    json!({ "rrsets": sets }).to_string()
}

fn rr(name: &str, t: &str, ttl: u32, contents: &[&str]) -> Value {
    json!({"name": name, "type": t, "ttl": ttl, "changetype": "REPLACE",
           "records": contents.iter().map(|c| json!({"content": c, "disabled": false})).collect::<Vec<_>>()})
}

#[test]
fn pdm_answers_as_pdns_server_4_7() {
    let Some(pdns) = PdnsServer::start_for_backend() else {
        return;
    };
    let Some(srv) = PdmServer::start(Backend::Sqlite, Config::default_test()) else {
        return;
    };
    let mut d = Diff {
        pdns: Target::new("pdns", format!("http://{}", pdns.api_addr), API_KEY.into()),
        pdm: Target::new("pdm", srv.http_base(), srv.admin_token()),
        steps: 0,
    };
    let zp = format!("{Z}/{ZONE}");

    // Discovery and servers.
    for p in [
        "/api",
        "/api/v1",
        "/api/v1/servers",
        "/api/v1/servers/localhost",
    ] {
        d.same("GET", p, None, false);
    }
    // Auth: no key, a wrong key (text and JSON), the key as a query parameter.
    for (key, json) in [(None, false), (Some("wrong"), false), (Some("wrong"), true)] {
        let a = d.pdns.call_key("GET", "/api/v1/servers", None, json, key);
        let b = d.pdm.call_key("GET", "/api/v1/servers", None, json, key);
        let body = |r: &Reply| {
            if r.ctype == "application/json" {
                r.json.to_string()
            } else {
                r.text.trim().to_string()
            }
        };
        assert_eq!(
            (a.status, &a.ctype, body(&a)),
            (b.status, &b.ctype, body(&b))
        );
        assert_eq!(b.status, 401);
    }
    let a = d.pdns.call_key(
        "GET",
        &format!("/api/v1/servers?api-key={API_KEY}"),
        None,
        false,
        None,
    );
    let b = d.pdm.call_key(
        "GET",
        &format!("/api/v1/servers?api-key={}", d.pdm.key),
        None,
        false,
        None,
    );
    assert_eq!(
        (a.status, normalise(&a.json)),
        (b.status, normalise(&b.json))
    );

    // Zone create (409 the second time, text unless JSON is accepted).
    let create =
        json!({"name": ZONE, "kind": "Native", "nameservers": ["ns1.diff.test."], "dnssec": true})
            .to_string();
    let r = d.same("POST", Z, Some(&create), false);
    assert_eq!(r.status, 201);
    let types: Vec<&str> = r.json["rrsets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["type"].as_str())
        .collect();
    assert!(types.contains(&"SOA") && types.contains(&"NS"), "{types:?}");
    d.same("POST", Z, Some(&create), false);
    d.same("POST", Z, Some(&create), true);
    d.same(
        "POST",
        Z,
        Some(r#"{"name":"nodot.test","kind":"Native"}"#),
        true,
    );
    d.same("POST", Z, Some(r#"{"kind":"Native"}"#), true);
    d.same("POST", Z, Some("{not json"), true);

    // Zone lists and reads (the full list is compared on this zone only:
    // each server has zones of its own).
    for q in [
        "?zone=diff.test.",
        "?zone=diff.test.&dnssec=false",
        "?zone=diff.test",
        "?zone=nope.test.",
    ] {
        d.same("GET", &format!("{Z}{q}"), None, false);
    }
    let only = |v: &Value| -> Vec<Value> {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|z| z["name"] == json!(ZONE))
            .map(normalise)
            .collect()
    };
    let a = d.pdns.call("GET", Z, None, false);
    let b = d.pdm.call("GET", Z, None, false);
    assert_eq!((a.status, only(&a.json)), (b.status, only(&b.json)));
    d.zone();
    d.same("GET", &format!("{Z}/diff.test"), None, false);
    d.same("GET", &format!("{Z}/nope.test."), None, false);
    d.same("GET", &format!("{Z}/nope.test."), None, true);
    d.same("GET", &format!("{Z}/a=ZZ.diff.test."), None, false);
    d.same("GET", &format!("{Z}/diff.test.=2F"), None, false);
    d.same("GET", "/api/v1/servers/localhost/bogus", None, false);
    d.same("GET", "/api/v1/servers/other", None, true);
    d.same("DELETE", Z, None, true);

    // Writes: every type octoDNS and external-dns use, then reads.
    let all = patch(json!([
        rr("www.diff.test.", "A", 300, &["192.0.2.1", "192.0.2.2"]),
        rr("www.diff.test.", "AAAA", 300, &["2001:db8::1"]),
        rr("alias.diff.test.", "CNAME", 300, &["www.diff.test."]),
        rr("diff.test.", "MX", 3600, &["10 mail.diff.test.", "20 mx2.example.net."]),
        rr("diff.test.", "TXT", 300, &["\"v=spf1 -all\"", "\"two words\" \"and more\""]),
        rr("_sip._tcp.diff.test.", "SRV", 600, &["10 5 5060 sip.diff.test."]),
        rr("diff.test.", "CAA", 3600, &["0 issue \"letsencrypt.org\"", "0 iodef \"mailto:ops@diff.test\""]),
        rr("diff.test.", "HTTPS", 300, &["1 . alpn=h2,h3 no-default-alpn port=8443 ipv4hint=192.0.2.1"]),
        rr("_svc.diff.test.", "SVCB", 300, &["0 svc.example.net."]),
        rr("a-app1.diff.test.", "TXT", 300, &["\"heritage=external-dns,external-dns/owner=k8s,external-dns/resource=ingress/default/app1\""]),
    ]));
    d.same("PATCH", &zp, Some(&all), true);
    d.zone();
    d.same("GET", &format!("{zp}?rrsets=false"), None, false);
    d.same(
        "GET",
        &format!("{zp}?rrset_name=www.diff.test.&rrset_type=A"),
        None,
        false,
    );
    d.same(
        "GET",
        &format!("{zp}?rrset_name=www.diff.test."),
        None,
        false,
    );
    // A DKIM key past 255 bytes in one string: both take it and serve it
    // as strings of 255 bytes; PowerDNS lists it as it came, pdm as served.
    let key = "A".repeat(400);
    let dkim = format!("\"v=DKIM1; k=rsa; p={key}\"");
    let long = patch(json!([rr(
        "k1._domainkey.diff.test.",
        "TXT",
        300,
        &[dkim.as_str()]
    )]));
    d.same("PATCH", &zp, Some(&long), true);
    let strings = |addr| -> Vec<Vec<u8>> {
        let m = query_tcp_at(addr, "k1._domainkey.diff.test.", RecordType::TXT).unwrap();
        m.answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(t) => Some(t.txt_data.iter().map(|s| s.to_vec()).collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect()
    };
    let served = strings(srv.zone_dns_addr());
    assert_eq!(
        served,
        strings(pdns.dns_addr),
        "both serve the same strings"
    );
    assert_eq!(
        served.iter().map(Vec::len).collect::<Vec<_>>(),
        [255, 163],
        "split at 255 bytes"
    );
    let listed = |t: &Target| {
        let r = t.call(
            "GET",
            &format!("{zp}?rrset_name=k1._domainkey.diff.test."),
            None,
            false,
        );
        r.json["rrsets"][0]["records"][0]["content"].clone()
    };
    d.steps += 1;
    assert_eq!(listed(&d.pdns), json!(dkim), "PowerDNS lists it as it came");
    let whole = format!("v=DKIM1; k=rsa; p={key}");
    let (head, tail) = whole.split_at(255);
    assert_eq!(
        listed(&d.pdm),
        json!(format!("\"{head}\" \"{tail}\"")),
        "pdm as it serves it"
    );
    assert!(ACCEPTED.iter().any(|(k, _)| *k == "long TXT strings"));
    // Gone again, so that the zones compare equal below.
    d.same(
        "PATCH",
        &zp,
        Some(&patch(json!([rr(
            "k1._domainkey.diff.test.",
            "TXT",
            300,
            &[]
        )]))),
        true,
    );
    // The same PATCH again (external-dns retries): 204, nothing else changes.
    d.same("PATCH", &zp, Some(&all), true);
    // DELETE as external-dns sends it: records kept in the body, no ttl.
    let del = patch(
        json!([{"name": "www.diff.test.", "type": "AAAA", "changetype": "DELETE",
        "records": [{"content": "2001:db8::1", "disabled": false}]}]),
    );
    d.same("PATCH", &zp, Some(&del), true);
    // REPLACE with records []: the RRset goes.
    d.same(
        "PATCH",
        &zp,
        Some(&patch(json!([rr("_sip._tcp.diff.test.", "SRV", 600, &[])]))),
        true,
    );
    // DELETE outside the zone: PowerDNS does not check, nothing happens.
    d.same(
        "PATCH",
        &zp,
        Some(&patch(
            json!([{"name": "x.other.", "type": "A", "changetype": "DELETE"}]),
        )),
        true,
    );
    d.same("PATCH", &zp, Some(r#"{"rrsets":[]}"#), true);
    d.zone();

    // Errors: each changes nothing (pdm's serial included).
    let pdm_serial = |d: &Diff| {
        d.pdm
            .call("GET", &format!("{Z}/{ZONE}?rrsets=false"), None, false)
            .json["serial"]
            .clone()
    };
    let serial_before = pdm_serial(&d);
    let errors: Vec<String> = vec![
        patch(
            json!([{"name": "www.diff.test.", "type": "A", "ttl": 300, "changetype": "BOGUS", "records": []}]),
        ),
        "{}".into(),
        patch(json!([rr("y.diff.test", "A", 300, &["192.0.2.1"])])),
        patch(
            json!([{"name": "y.diff.test.", "type": "A", "changetype": "REPLACE", "records": [{"content": "192.0.2.1", "disabled": false}]}]),
        ),
        patch(json!([rr("y.diff.test.", "BOGUS", 300, &["1"])])),
        patch(json!([
            rr("y.diff.test.", "A", 300, &["192.0.2.1"]),
            rr("y.diff.test.", "A", 300, &["192.0.2.1"])
        ])),
        patch(json!([{"name": "y.diff.test.", "type": "A", "ttl": 300, "changetype": "REPLACE"}])),
        patch(json!([rr("x.other.", "A", 300, &["192.0.2.1"])])),
        patch(json!([rr(
            "www.diff.test.",
            "CNAME",
            300,
            &["alias.diff.test."]
        )])),
        // All or nothing: a good RRset next to a conflicting one.
        patch(json!([
            rr("good.diff.test.", "A", 300, &["192.0.2.9"]),
            rr("www.diff.test.", "CNAME", 300, &["x.diff.test."])
        ])),
    ];
    for e in &errors {
        d.same("PATCH", &zp, Some(e), true);
    }
    d.same("PATCH", &zp, Some(r#"{"rrsets":"#), false);
    d.same("PATCH", &zp, Some(r#"{"rrsets":"#), true);
    d.same("PATCH", &format!("{Z}/nope.test."), Some(&all), false);
    d.same_status(
        "PATCH",
        &zp,
        &patch(json!([rr("x.diff.test.", "A", 300, &["not-an-ip"])])),
        "Record x.diff.test./A 'not-an-ip': ",
    );
    d.same_status(
        "PATCH",
        &zp,
        &patch(json!([rr("y.diff.test.", "MX", 300, &["10 mail"])])),
        "Record y.diff.test./MX '10 mail': ",
    );
    d.same_status(
        "PATCH",
        &zp,
        &patch(json!([rr("y.diff.test.", "AAAA", 300, &["192.0.2.1"])])),
        "Record y.diff.test./AAAA '192.0.2.1': ",
    );
    d.zone();
    assert_eq!(
        pdm_serial(&d),
        serial_before,
        "a refused PATCH bumped the serial"
    );

    // Accepted differences, checked on pdm's side.
    let ext = patch(
        json!([{"name": "www.diff.test.", "type": "A", "changetype": "EXTEND",
        "records": [{"content": "192.0.2.3", "disabled": false}]}]),
    );
    d.differ("EXTEND / PRUNE", "PATCH", &zp, &ext, 422, 204);
    let prune = patch(
        json!([{"name": "www.diff.test.", "type": "A", "changetype": "PRUNE",
        "records": [{"content": "192.0.2.1", "disabled": false}]}]),
    );
    d.differ("EXTEND / PRUNE", "PATCH", &zp, &prune, 422, 204);
    let r = d.pdm.call(
        "GET",
        &format!("{zp}?rrset_name=www.diff.test.&rrset_type=A"),
        None,
        false,
    );
    let mut got: Vec<&str> = r.json["rrsets"][0]["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["content"].as_str())
        .collect();
    got.sort();
    assert_eq!(got, ["192.0.2.2", "192.0.2.3"], "{}", r.text);
    assert_eq!(
        r.json["rrsets"][0]["ttl"],
        json!(300),
        "EXTEND keeps the TTL"
    );
    let soa = patch(json!([{"name": ZONE, "type": "SOA", "changetype": "DELETE"}]));
    let b = d.differ("managed types", "PATCH", &zp, &soa, 204, 422);
    assert!(
        b.json["error"].as_str().unwrap_or_default().contains("SOA"),
        "{}",
        b.text
    );
    let key = patch(json!([rr(ZONE, "DNSKEY", 300, &["257 3 13 AAAA"])]));
    d.differ("managed types", "PATCH", &zp, &key, 204, 422);
    let dis = patch(
        json!([{"name": "off.diff.test.", "type": "A", "ttl": 60, "changetype": "REPLACE",
        "records": [{"content": "192.0.2.7", "disabled": true}]}]),
    );
    d.differ("disabled records", "PATCH", &zp, &dis, 204, 422);
    let com = patch(
        json!([{"name": "www.diff.test.", "type": "A", "changetype": "REPLACE",
        "comments": [{"content": "web servers", "account": "ops"}]}]),
    );
    d.differ("comments", "PATCH", &zp, &com, 204, 204);
    let r = d.pdm.call(
        "GET",
        &format!("{zp}?rrset_name=www.diff.test.&rrset_type=A"),
        None,
        false,
    );
    assert_eq!(r.json["rrsets"][0]["comments"], json!([]), "{}", r.text);
    d.pdns.call("PATCH", &zp, Some(&patch(json!([{"name": "www.diff.test.", "type": "A", "changetype": "REPLACE", "comments": []}]))), true);
    // Undo on pdns what pdm refused, so that the zones compare again.
    d.pdns.call("PATCH", &zp, Some(&patch(json!([rr("www.diff.test.", "A", 300, &["192.0.2.2", "192.0.2.3"]),
        {"name": "off.diff.test.", "type": "A", "changetype": "DELETE"}, {"name": ZONE, "type": "DNSKEY", "changetype": "DELETE"}]))), true);
    let r = d.pdns.call(
        "PATCH",
        &zp,
        Some(&patch(json!([rr(
            ZONE,
            "SOA",
            3600,
            &["ns1.diff.test. hostmaster.diff.test. 1 10800 3600 604800 3600"]
        )]))),
        true,
    );
    assert_eq!(r.status, 204, "{}", r.text);
    d.zone();

    // Zone-level calls.
    d.same("PUT", &format!("{zp}/notify"), None, false);
    d.same("PUT", &format!("{zp}/rectify"), None, false);
    d.same("PUT", &format!("{Z}/nope.test./notify"), None, false);
    d.same("PUT", &zp, Some(r#"{"kind":"Native"}"#), true);
    d.same("PUT", &zp, Some(r#"{"dnssec":true}"#), true);
    d.same("GET", &format!("{zp}/cryptokeys"), None, false);
    d.same("GET", &format!("{zp}/metadata"), None, false);
    d.same("GET", &format!("{zp}/metadata/ALSO-NOTIFY"), None, false);
    d.same("GET", &format!("{zp}/metadata/SOA-EDIT-API"), None, false);
    d.same(
        "PUT",
        &format!("{zp}/metadata/BOGUS"),
        Some(r#"{"metadata":["1"]}"#),
        false,
    );
    d.same(
        "PUT",
        &format!("{zp}/metadata/NSEC3PARAM"),
        Some(r#"{"metadata":["1 0 0 -"]}"#),
        false,
    );
    d.same(
        "PUT",
        &format!("{zp}/metadata/ALSO-NOTIFY"),
        Some(r#"{"metadata":[]}"#),
        false,
    );
    d.differ(
        "metadata writes",
        "PUT",
        &format!("{zp}/metadata/X-TEST"),
        r#"{"metadata":["a"]}"#,
        200,
        422,
    );

    // A second zone with rrsets at creation, then deleted.
    let two = json!({"name": "two.test.", "kind": "Native", "nameservers": ["ns1.two.test."],
        "rrsets": [{"name": "www.two.test.", "type": "A", "ttl": 60, "records": [{"content": "192.0.2.9", "disabled": false}]}]}).to_string();
    let a = d.pdns.call("POST", Z, Some(&two), true);
    let b = d.pdm.call("POST", Z, Some(&two), true);
    assert_eq!((a.status, b.status), (201, 201), "{}\n{}", a.text, b.text);
    let www = |v: &Value| {
        v["rrsets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["name"] == json!("www.two.test."))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(www(&a.json), www(&b.json));
    assert_eq!(
        srv.dig("www.two.test.", RecordType::A)
            .answer_data(RecordType::A),
        ["192.0.2.9"],
        "served when POST answers"
    );
    d.same("DELETE", &format!("{Z}/two.test."), None, false);
    d.same("DELETE", &format!("{Z}/two.test."), None, false);
    d.same("GET", &format!("{Z}/two.test."), None, true);

    // What pdm served matches what it says (every write served on return).
    let mut got = srv
        .dig("www.diff.test.", RecordType::A)
        .answer_data(RecordType::A);
    got.sort();
    assert_eq!(got, ["192.0.2.2", "192.0.2.3"]);
    assert_eq!(
        srv.dig("a-app1.diff.test.", RecordType::TXT).answer_data(RecordType::TXT),
        ["heritage=external-dns,external-dns/owner=k8s,external-dns/resource=ingress/default/app1"]
    );
    eprintln!(
        "{} requests compared; {} accepted differences",
        d.steps,
        ACCEPTED.len()
    );
    eprintln!("pdm zone: {}", d.pdm.call("GET", &zp, None, false).text);
    eprintln!("pdns zone: {}", d.pdns.call("GET", &zp, None, false).text);
    eprintln!(
        "pdm keys: {}",
        d.pdm
            .call("GET", &format!("{zp}/cryptokeys"), None, false)
            .text
    );
}

/// pdm-only rules of the PowerDNS API (PowerDNS has one global key and no
/// such rules): a policy-scoped key sees only what its policy reads, cannot
/// write outside it, and cannot create or delete zones; zones that are not
/// standalone cannot be deleted through this API.
#[test]
fn scoped_keys_are_held_to_their_policy() {
    let Some(srv) = PdmServer::start(Backend::Sqlite, Config::default_test()) else {
        return;
    };
    srv.allocate("example.test", "acme", "192.0.2.10", None);
    let admin = srv.admin_token();
    let r = srv.request(
        "POST",
        "/api/v1/tokens",
        Some(&admin),
        Body::Json(&json!({"name": "acme-dns01", "policy": {"rules": [
            {"zone": "acme.example.test", "owner": "_acme-challenge.*", "types": ["TXT"], "access": "write"}]}})),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let acme = Target::new(
        "pdm",
        srv.http_base(),
        r.body["token"].as_str().unwrap().to_string(),
    );
    let zp = format!("{Z}/acme.example.test.");

    let r = acme.call("GET", Z, None, false);
    let names: Vec<&str> = r
        .json
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|z| z["name"].as_str())
        .collect();
    assert_eq!(names, ["acme.example.test."], "{}", r.text);
    assert_eq!(
        acme.call("GET", &format!("{Z}/example.test."), None, false)
            .status,
        404
    );

    let txt = patch(json!([rr(
        "_acme-challenge.acme.example.test.",
        "TXT",
        60,
        &["\"tok\""]
    )]));
    let r = acme.call("PATCH", &zp, Some(&txt), true);
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        srv.dig("_acme-challenge.acme.example.test.", RecordType::TXT)
            .answer_data(RecordType::TXT),
        ["tok"]
    );
    let serial = |srv: &PdmServer| {
        srv.dig("acme.example.test.", RecordType::SOA)
            .answer_data(RecordType::SOA)
    };
    let before = serial(&srv);
    for bad in [
        patch(json!([rr(
            "www.acme.example.test.",
            "A",
            60,
            &["192.0.2.66"]
        )])),
        patch(json!([rr(
            "_acme-challenge.acme.example.test.",
            "A",
            60,
            &["192.0.2.66"]
        )])),
        // All or nothing: the allowed TXT does not go in with the refused A.
        patch(json!([
            rr(
                "_acme-challenge.acme.example.test.",
                "TXT",
                60,
                &["\"other\""]
            ),
            rr("x.acme.example.test.", "A", 60, &["192.0.2.66"])
        ])),
    ] {
        let r = acme.call("PATCH", &zp, Some(&bad), true);
        assert_eq!(r.status, 403, "{bad}: {}", r.text);
        assert!(
            r.json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{}",
            r.text
        );
    }
    assert_eq!(serial(&srv), before, "refused changes leave the zone alone");
    let r = acme.call(
        "POST",
        Z,
        Some(r#"{"name":"mine.test.","kind":"Native"}"#),
        true,
    );
    assert_eq!(r.status, 403, "{}", r.text);
    let r = acme.call("DELETE", &zp, None, true);
    assert_eq!(r.status, 403, "{}", r.text);
    let r = acme.call(
        "PUT",
        &format!("{zp}/metadata/ALSO-NOTIFY"),
        Some(r#"{"metadata":[]}"#),
        true,
    );
    assert_eq!(r.status, 403, "{}", r.text);

    // Admin: a pool's zones are made by allocations, not by this API.
    let adm = Target::new("pdm", srv.http_base(), admin);
    let r = adm.call("DELETE", &zp, None, true);
    assert_eq!(r.status, 422, "{}", r.text);
    let r = adm.call(
        "POST",
        Z,
        Some(r#"{"name":"new.example.test.","kind":"Native"}"#),
        true,
    );
    assert_eq!(r.status, 422, "{}", r.text);
    let r = adm.call(
        "POST",
        Z,
        Some(r#"{"name":"sec.test.","kind":"Slave","masters":["192.0.2.1"]}"#),
        true,
    );
    assert_eq!(r.status, 422, "{}", r.text);
    // An oversized body (beyond PowerDNS's 2 MB default) is refused, nothing changes.
    let before = serial(&srv);
    let big = patch(json!([rr(
        "big.acme.example.test.",
        "TXT",
        60,
        &[&format!("\"{}\"", "a".repeat(3 << 20))]
    )]));
    // (On a client of its own: the server closes a connection whose body it did not read.)
    let once = Target::new("pdm", srv.http_base(), adm.key.clone());
    let r = once.call("PATCH", &zp, Some(&big), true);
    assert_eq!(r.status, 413, "{}", r.text.len());
    assert_eq!(serial(&srv), before);
    // A zone created with a bad rrset does not stay behind.
    let r = adm.call("POST", Z, Some(&json!({"name": "half.test.", "kind": "Native", "rrsets": [
        rr("a.half.test.", "A", 60, &["192.0.2.1"]), rr("a.half.test.", "CNAME", 60, &["b.half.test."])]}).to_string()), true);
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        adm.call("GET", &format!("{Z}/half.test."), None, true)
            .status,
        404
    );
}

/// The credential cache behind PATCH never outlives a token: deleted
/// through the API, deleted by another process (the CLI, its id then
/// reused), or expired, the very next request is 401 and writes nothing,
/// whatever it carries (a change, no change, a bad body).
fn cached_keys_never_outlive_their_token(b: Backend) {
    let Some(srv) = PdmServer::start(b, Config::default_test()) else {
        return;
    };
    srv.allocate("example.test", "acme", "192.0.2.10", None);
    let admin = srv.admin_token();
    let zp = format!("{Z}/acme.example.test.");
    let serial = |srv: &PdmServer| {
        srv.dig("acme.example.test.", RecordType::SOA)
            .answer_data(RecordType::SOA)
    };
    let make = |name: &str, policy: Value| {
        let r = srv.request(
            "POST",
            "/api/v1/tokens",
            Some(&admin),
            Body::Json(&json!({"name": name, "policy": policy})),
            &[],
        );
        assert_eq!(r.status, 201, "{}", r.text);
        (
            r.body["id"].as_i64().unwrap(),
            Target::new(
                "pdm",
                srv.http_base(),
                r.body["token"].as_str().unwrap().into(),
            ),
        )
    };
    let all = json!({"rules": [{"zone": "acme.example.test", "access": "write"}]});
    let txt = |v: &str| patch(json!([rr("t.acme.example.test.", "TXT", 60, &[v])]));
    // Every way a request can go once its token is gone.
    let refused = |t: &Target, what: &str| {
        let before = serial(&srv);
        for body in [txt("\"gone\""), patch(json!([])), "{".to_string()] {
            let r = t.call("PATCH", &zp, Some(&body), true);
            assert_eq!(r.status, 401, "{what}: {body}: {}", r.text);
        }
        assert_eq!(t.call("GET", &zp, None, true).status, 401, "{what}");
        assert_eq!(serial(&srv), before, "{what}: nothing written");
    };

    // Deleted through the API: refused at once.
    let (id, t) = make("api-deleted", all.clone());
    for v in ["\"a\"", "\"b\""] {
        assert_eq!(t.call("PATCH", &zp, Some(&txt(v)), true).status, 204);
    }
    let r = srv.request(
        "DELETE",
        &format!("/api/v1/tokens/{id}"),
        Some(&admin),
        Body::None,
        &[],
    );
    assert_eq!(r.status, 204, "{}", r.text);
    refused(&t, "deleted through the API");

    // Deleted by another process (this server never hears of it), and a
    // new token made after it (SQLite may hand out its id again).
    let (id, t) = make("cli-deleted", all.clone());
    assert_eq!(t.call("PATCH", &zp, Some(&txt("\"c\"")), true).status, 204);
    let out = srv.cli(&["token", "delete", &id.to_string()]);
    assert!(out.success(), "{out:?}");
    let (_, next) = make("after-it", all.clone());
    refused(&t, "deleted by the CLI");
    assert_eq!(
        next.call("PATCH", &zp, Some(&txt("\"d\"")), true).status,
        204
    );

    // Expired: the cached policy's expiry still holds.
    let expires = chrono::Utc::now().timestamp() + 3;
    let mut policy = all.clone();
    policy["expires"] = json!(expires);
    let (_, t) = make("expiring", policy);
    assert_eq!(t.call("PATCH", &zp, Some(&txt("\"e\"")), true).status, 204);
    while chrono::Utc::now().timestamp() <= expires {
        std::thread::sleep(Duration::from_millis(200));
    }
    refused(&t, "expired");
}

backend_tests!(cached_keys_never_outlive_their_token);
