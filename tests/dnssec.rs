//! DNSSEC end to end, judged by real validators (delv, unbound-host) and zone verifiers
//! (ldns-verify-zone, dnssec-verify, kzonecheck) — never by pdm's own code.
//!
//! - `tests/data/dnssec.test.zone` imported with `pdm zone import --sign` (nsec3 and compact
//!   denial) and queried for every answer shape: positive, NXDOMAIN, NODATA, wildcard expansion,
//!   wildcard NODATA, empty non-terminals, CNAME chains (into a wildcard too), unsigned and signed
//!   delegations (DS absent / present), each through delv and unbound-host.
//! - The chain of trust from the pool anchor alone into a child committed through the API, and
//!   the signed NXDOMAIN after its release (both backends).
//! - LUA records (`tests/data/lua-dnssec.test.zone`, both denials): synthesized answers validate,
//!   an empty result is a validated NODATA whose denial record omits the covered type, errors
//!   stay SERVFAIL, synthesized MX/SRV carry their targets' addresses as additional records.
//! - Ed25519 and split KSK/ZSK keys; `zone export --signed` through the three verifiers; the DO
//!   bit gating DNSSEC records; a wrong `PDM_SECRET_KEY` refusing to start without touching keys.
//!
//! Tools missing: `SKIP:` outside CI, panic in CI (tests/common/validators.rs).

#[macro_use]
mod common;
use common::validators::{
    self, dig_dnssec, ds_lines, have_tools, import_signed, par_map, parse_ds_lines,
    verify_zone_file, DigOut, Validator,
};
use common::*;
use hickory_proto::rr::RecordType;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const POOL: &str = "example.test";
const ZONE: &str = "dnssec.test";
const ZONE_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dnssec.test.zone");
/// A zone change (import through the journal, commit, release) must be served within this long.
const DNS_DEADLINE: Duration = Duration::from_secs(5);
/// Validator subprocesses run at once.
const WORKERS: usize = 4;
const VALIDATORS: &[&str] = &["delv", "unbound-host", "dig"];
const VERIFIERS: &[&str] = &["ldns-verify-zone", "dnssec-verify", "kzonecheck"];

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Want {
    /// A validated answer whose output mentions each string (addresses, CNAME targets, rdata).
    Secure(&'static [&'static str]),
    /// A validated denial (NXDOMAIN, or NODATA — compact denial turns NXDOMAIN into NODATA).
    Denied,
    /// A validated CNAME whose target is denied: validators differ on calling that positive
    /// (delv: the CNAME is "fully validated") or negative (unbound-host: "not found (secure)"),
    /// so either secure verdict counts, but nothing insecure or bogus.
    SecureChase,
}
use Want::{Denied, Secure, SecureChase};

#[derive(Debug, Clone)]
struct Case {
    what: &'static str,
    name: String,
    qtype: &'static str,
    want: Want,
}

fn case(what: &'static str, name: String, qtype: &'static str, want: Want) -> Case {
    Case {
        what,
        name,
        qtype,
        want,
    }
}

/// `label.zone`, `@` for the apex.
fn at(label: &str, zone: &str) -> String {
    if label == "@" {
        zone.to_string()
    } else {
        format!("{label}.{zone}")
    }
}

/// Every answer shape of tests/data/dnssec.test.zone: (what, owner label, type, verdict).
#[rustfmt::skip]
const ZONE_CASES: &[(&str, &str, &str, Want)] = &[
    ("positive: apex A",               "@",        "A",      Secure(&["192.0.2.1"])),
    ("positive: A",                    "www",      "A",      Secure(&["192.0.2.10"])),
    ("positive: AAAA",                 "www",      "AAAA",   Secure(&["2001:db8::10"])),
    ("positive: TXT",                  "txt",      "TXT",    Secure(&["hello dnssec"])),
    ("positive: apex MX",              "@",        "MX",     Secure(&["mail."])),
    ("positive: apex DNSKEY",          "@",        "DNSKEY", Secure(&["DNSKEY"])),
    ("positive: below two ENTs",       "a.b.c",    "A",      Secure(&["192.0.2.20"])),
    ("NXDOMAIN",                       "nope",     "A",      Denied),
    ("NXDOMAIN: two labels below",     "x.y.nope", "A",      Denied),
    ("NXDOMAIN: below an ENT",         "zz.b.c",   "A",      Denied),
    ("NXDOMAIN: below a leaf",         "x.a.b.c",  "A",      Denied),
    ("NODATA",                         "www",      "MX",     Denied),
    ("NODATA: apex",                   "@",        "AAAA",   Denied),
    ("ENT b.c",                        "b.c",      "A",      Denied),
    ("ENT c",                          "c",        "A",      Denied),
    ("ENT above the wildcard",         "w",        "A",      Denied),
    ("wildcard expansion: A",          "foo.w",    "A",      Secure(&["192.0.2.30"])),
    ("wildcard expansion: TXT",        "foo.w",    "TXT",    Secure(&["wildcard"])),
    ("wildcard expansion: two labels", "a.b.w",    "A",      Secure(&["192.0.2.30"])),
    ("wildcard owner itself",          "*.w",      "A",      Secure(&["192.0.2.30"])),
    ("wildcard NODATA",                "foo.w",    "MX",     Denied),
    ("CNAME: one hop",                 "cn",       "A",      Secure(&["192.0.2.10"])),
    ("CNAME: chain of two",            "cn2",      "A",      Secure(&["192.0.2.10"])),
    ("CNAME: into the wildcard",       "cnw",      "A",      Secure(&["192.0.2.30"])),
    ("CNAME: type CNAME",              "cn",       "CNAME",  Secure(&["www."])),
    ("CNAME: to a nonexistent name",   "dangling", "A",      SecureChase),
    ("unsigned delegation: DS absent", "deleg-nods", "DS",   Denied),
    ("signed delegation: DS",          "deleg-ds", "DS",     Secure(&["12345"])),
];

/// [`ZONE_CASES`] for the zone imported as `zone`.
fn zone_cases(zone: &str) -> Vec<Case> {
    ZONE_CASES
        .iter()
        .map(|&(what, label, qtype, want)| case(what, at(label, zone), qtype, want))
        .collect()
}

/// Run `cases` through `v` (concurrently) and assert every verdict; reports all failures at once.
#[track_caller]
fn check_cases(srv: &PdmServer, v: Validator, anchors: &[String], stubs: &[&str], cases: &[Case]) {
    let addr = srv.dns_addr;
    let t0 = Instant::now();
    let results = par_map(cases, WORKERS, |c| {
        v.validate(addr, anchors, stubs, &c.name, c.qtype)
    });
    let mut bad = Vec::new();
    for (c, r) in cases.iter().zip(&results) {
        let ok = match c.want {
            Secure(needles) => {
                let raw = r.raw.to_lowercase();
                r.secure_positive && needles.iter().all(|n| raw.contains(&n.to_lowercase()))
            }
            Denied => r.secure_negative,
            SecureChase => r.secure_positive || r.secure_negative,
        };
        if !ok {
            bad.push(format!(
                "[{}] {} {}: want {:?}, {} says {}\n{}",
                c.what,
                c.name,
                c.qtype,
                c.want,
                v.tool(),
                r.verdict(),
                r.raw
            ));
        }
    }
    eprintln!("{}: {} cases in {:?}", v.tool(), cases.len(), t0.elapsed());
    assert!(
        bad.is_empty(),
        "{} of {} {} cases did not validate as expected (anchor {:?}):\n\n{}",
        bad.len(),
        cases.len(),
        v.tool(),
        anchors,
        bad.join("\n\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Server helpers
// ---------------------------------------------------------------------------------------------

/// `pdm key list ZONE` JSON.
#[track_caller]
fn key_list(srv: &PdmServer, zone: &str) -> Value {
    let out = srv.cli(&["key", "list", zone]);
    assert!(out.success(), "pdm key list {zone} failed: {out:?}");
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("pdm key list {zone}: not JSON ({e}): {}", out.stdout))
}

/// Poll the harness dig (no EDNS) until `ok`; panic with the last answer.
#[track_caller]
fn dns_eventually(
    srv: &PdmServer,
    name: &str,
    qtype: RecordType,
    what: &str,
    ok: impl Fn(&DigResult) -> bool,
) {
    let mut last = None;
    let hit = wait_for(DNS_DEADLINE, || {
        let r = srv.dig(name, qtype);
        let good = ok(&r);
        last = Some(r);
        good
    });
    assert!(
        hit,
        "{what}: `{name} {qtype}` not as expected within {DNS_DEADLINE:?}; last answer:\n{}",
        last.unwrap()
    );
}

/// Commit `sub.example.test` through the API and wait until its apex A is served.
fn commit_child(srv: &PdmServer, sub: &str, lb: &str, console: Option<&str>) -> String {
    srv.allocate(POOL, sub, lb, console);
    let child = format!("{sub}.{POOL}");
    dns_eventually(srv, &child, RecordType::A, "child after commit", |r| {
        r.rcode == "NOERROR" && r.answer_data(RecordType::A) == vec![lb.to_string()]
    });
    child
}

/// Write `pdm zone export --signed ZONE` to a file in the server's directory.
#[track_caller]
fn export_signed(srv: &PdmServer, zone: &str) -> std::path::PathBuf {
    let out = srv.cli(&["zone", "export", "--signed", zone]);
    assert!(
        out.success(),
        "pdm zone export --signed {zone} failed: {out:?}"
    );
    for t in ["DNSKEY", "RRSIG", "NSEC3", "NSEC3PARAM"] {
        assert!(
            out.stdout.split_whitespace().any(|w| w == t),
            "signed export of {zone} has no {t} record:\n{}",
            tail(&out.stdout, 3000)
        );
    }
    let p = srv.dir.path().join(format!("{zone}.signed"));
    std::fs::write(&p, &out.stdout).unwrap();
    p
}

/// The denial records themselves, seen with `dig +dnssec`: NSEC3 (RFC 9276 parameters) with a
/// real NXDOMAIN, or RFC 9824 compact answers (NOERROR + one NSEC with NXNAME).
#[track_caller]
fn check_denial_shape(srv: &PdmServer, zone: &str, denial: &str) {
    let nx = dig_dnssec(srv.dns_addr, &at("nope", zone), "A", &["+dnssec"]);
    let nodata = dig_dnssec(srv.dns_addr, &at("www", zone), "MX", &["+dnssec"]);
    let ent = dig_dnssec(srv.dns_addr, &at("b.c", zone), "A", &["+dnssec"]);
    for r in [&nx, &nodata, &ent] {
        assert!(
            r.types_in("ANSWER").is_empty(),
            "denial must have an empty answer:\n{}",
            r.raw
        );
        assert!(
            r.flags.contains(&"aa".to_string()),
            "denial must be authoritative:\n{}",
            r.raw
        );
        assert!(
            r.types_in("AUTHORITY").contains(&"SOA".to_string())
                && r.types_in("AUTHORITY").contains(&"RRSIG".to_string()),
            "denial must carry the SOA and RRSIGs:\n{}",
            r.raw
        );
    }
    match denial {
        "nsec3" => {
            assert_eq!(nx.rcode, "NXDOMAIN", "{}", nx.raw);
            assert_eq!(nodata.rcode, "NOERROR", "{}", nodata.raw);
            for r in [&nx, &nodata, &ent] {
                let nsec3: Vec<_> = r.records.iter().filter(|x| x.rtype == "NSEC3").collect();
                assert!(!nsec3.is_empty(), "nsec3 denial without NSEC3:\n{}", r.raw);
                assert!(!r.has_type("NSEC"), "nsec3 denial with NSEC:\n{}", r.raw);
                for x in nsec3 {
                    // RFC 9276: SHA-1, no opt-out, 0 extra iterations, empty salt.
                    assert!(
                        x.rdata.starts_with("1 0 0 - "),
                        "NSEC3 parameters must be `1 0 0 -` (RFC 9276), got `{}`:\n{}",
                        x.rdata,
                        r.raw
                    );
                }
            }
        }
        "compact" => {
            for r in [&nx, &nodata, &ent] {
                assert_eq!(
                    r.rcode, "NOERROR",
                    "compact denial answers NOERROR:\n{}",
                    r.raw
                );
                assert!(
                    !r.has_type("NSEC3"),
                    "compact denial with NSEC3:\n{}",
                    r.raw
                );
            }
            let nsec_of = |r: &DigOut, owner: &str| -> String {
                let owner = format!("{owner}.");
                let v: Vec<_> = r
                    .records
                    .iter()
                    .filter(|x| x.rtype == "NSEC" && x.owner == owner)
                    .collect();
                assert_eq!(v.len(), 1, "want exactly one NSEC at {owner}:\n{}", r.raw);
                v[0].rdata.to_uppercase()
            };
            // RFC 9824: NSEC at the qname, next = \000.qname, bitmap RRSIG NSEC NXNAME.
            let b = nsec_of(&nx, &at("nope", zone));
            assert!(
                b.starts_with(&format!("\\000.{}.", at("nope", zone)).to_uppercase()),
                "compact NXDOMAIN NSEC next name must be \\000.<qname>: {b}\n{}",
                nx.raw
            );
            assert!(
                b.contains("NXNAME") || b.contains("TYPE128"),
                "compact NXDOMAIN NSEC must carry NXNAME (type 128): {b}\n{}",
                nx.raw
            );
            let b = nsec_of(&nodata, &at("www", zone));
            assert!(
                b.contains(" A ") && b.contains("AAAA") && !b.contains(" MX"),
                "compact NODATA NSEC bitmap must list the real types (A AAAA, no MX): {b}"
            );
            assert!(
                !b.contains("NXNAME") && !b.contains("TYPE128"),
                "NODATA at an existing name must not claim NXNAME: {b}"
            );
            let b = nsec_of(&ent, &at("b.c", zone));
            assert!(
                !b.contains("NXNAME") && !b.contains("TYPE128") && !b.contains(" A "),
                "an ENT is not NXNAME and has no A: {b}"
            );
        }
        other => panic!("unknown denial {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. The imported zone: denial × validator
// ---------------------------------------------------------------------------------------------

fn imported_zone(denial: &str, v: Validator) {
    if !have_tools(&[v.tool(), "dig"]) {
        return;
    }
    let srv = start_or_skip!(Backend::Sqlite, Config::default_test());
    import_signed(&srv, ZONE, Path::new(ZONE_FILE), denial);
    check_denial_shape(&srv, ZONE, denial);
    let anchors = ds_lines(&srv, ZONE);
    each_ds_line_anchors_alone(&srv, v, &anchors, ZONE);
    check_cases(&srv, v, &anchors, &[ZONE], &zone_cases(ZONE));
}

/// Every DS line of `pdm key ds` (SHA-256 and SHA-384) is a working trust anchor on its own:
/// a validator given both may check only one digest.
#[track_caller]
fn each_ds_line_anchors_alone(srv: &PdmServer, v: Validator, anchors: &[String], zone: &str) {
    let digest_types: Vec<u8> = parse_ds_lines(anchors)
        .iter()
        .map(|d| d.digest_type)
        .collect();
    assert!(
        digest_types.contains(&2),
        "pdm key ds {zone} must print a SHA-256 (digest type 2) DS: {anchors:?}"
    );
    for line in anchors {
        let r = v.validate(
            srv.dns_addr,
            std::slice::from_ref(line),
            &[zone],
            zone,
            "SOA",
        );
        assert!(
            r.secure_positive,
            "{zone} SOA does not validate with the single anchor {line:?}:\n{}",
            r.raw
        );
    }
}

/// Negative control: with a trust anchor whose digest is off by one hex digit, neither validator
/// may call anything secure (proves the verdict parsing in tests/common/validators.rs can fail).
#[test]
fn validators_reject_a_wrong_trust_anchor() {
    if !have_tools(VALIDATORS) {
        return;
    }
    let srv = start_or_skip!(Backend::Sqlite, Config::default_test());
    import_signed(&srv, ZONE, Path::new(ZONE_FILE), "nsec3");
    let good = ds_lines(&srv, ZONE);
    let bad: Vec<String> = good
        .iter()
        .map(|l| {
            let mut s = l.trim_end().to_string();
            let last = s.pop().expect("non-empty DS line");
            s.push(if last == '0' { '1' } else { '0' });
            s
        })
        .collect();
    let queries = [
        (at("www", ZONE), "A"),
        (at("nope", ZONE), "A"),
        (at("foo.w", ZONE), "A"),
    ];
    for v in [Validator::Delv, Validator::UnboundHost] {
        for (name, qtype) in &queries {
            let r = v.validate(srv.dns_addr, &bad, &[ZONE], name, qtype);
            assert!(
                !r.secure_positive && !r.secure_negative,
                "{} called {name} {qtype} {} with a wrong anchor {bad:?}:\n{}",
                v.tool(),
                r.verdict(),
                r.raw
            );
            let l = r.raw.to_lowercase();
            assert!(
                l.contains("bogus") || l.contains("broken trust chain") || l.contains("no valid"),
                "{} {name} {qtype}: want a security failure with a wrong anchor:\n{}",
                v.tool(),
                r.raw
            );
            // ...and the right anchor validates the same query.
            let ok = v.validate(srv.dns_addr, &good, &[ZONE], name, qtype);
            assert!(
                ok.secure_positive || ok.secure_negative,
                "{} {name} {qtype} with the right anchor:\n{}",
                v.tool(),
                ok.raw
            );
        }
    }
}

#[test]
fn nsec3_zone_validates_with_delv() {
    imported_zone("nsec3", Validator::Delv);
}

#[test]
fn nsec3_zone_validates_with_unbound_host() {
    imported_zone("nsec3", Validator::UnboundHost);
}

#[test]
fn compact_zone_validates_with_delv() {
    imported_zone("compact", Validator::Delv);
}

#[test]
fn compact_zone_validates_with_unbound_host() {
    imported_zone("compact", Validator::UnboundHost);
}

// ---------------------------------------------------------------------------------------------
// 2. Algorithms and key layouts
// ---------------------------------------------------------------------------------------------

/// Pool zone + a committed child under a non-default `[dnssec]` config: positive and NXDOMAIN
/// through delv with the pool anchor only. Returns the server for further checks.
fn pool_and_child_validate(dnssec_toml: &str) -> Option<(PdmServer, Vec<String>)> {
    if !have_tools(&["delv", "dig"]) {
        return None;
    }
    let srv = PdmServer::start(Backend::Sqlite, Config::default_test().extra(dnssec_toml))?;
    let anchors = ds_lines(&srv, POOL);
    let child = commit_child(&srv, "acme", "192.0.2.10", None);
    let cases = vec![
        case("pool apex SOA", POOL.into(), "SOA", Secure(&["hostmaster"])),
        case("pool glue A", at("ns1", POOL), "A", Secure(&["127.0.0.1"])),
        case("pool NXDOMAIN", at("nope", POOL), "A", Denied),
        case("child DS in the pool", child.clone(), "DS", Secure(&[])),
        case("child apex A", child.clone(), "A", Secure(&["192.0.2.10"])),
        case(
            "child wildcard A",
            at("www", &child),
            "A",
            Secure(&["192.0.2.10"]),
        ),
        case("child NODATA", child.clone(), "MX", Denied),
    ];
    check_cases(&srv, Validator::Delv, &anchors, &[POOL], &cases);
    Some((srv, anchors))
}

#[test]
fn ed25519_keys_validate_with_delv() {
    let Some((srv, anchors)) = pool_and_child_validate("[dnssec]\nalgorithm = \"ed25519\"") else {
        return;
    };
    for d in parse_ds_lines(&anchors) {
        assert_eq!(
            d.algorithm, 15,
            "ed25519 DS must have algorithm 15: {anchors:?}"
        );
    }
    let keys = key_list(&srv, POOL);
    for k in keys.as_array().expect("key list is an array") {
        assert_eq!(k["algorithm"], json!(15), "{keys:#}");
    }
    let child_keys = key_list(&srv, &at("acme", POOL));
    for k in child_keys.as_array().expect("key list is an array") {
        assert_eq!(k["algorithm"], json!(15), "{child_keys:#}");
    }
}

#[test]
fn split_ksk_zsk_validate_with_delv() {
    let Some((srv, anchors)) = pool_and_child_validate("[dnssec]\nsplit_keys = true") else {
        return;
    };
    for zone in [POOL.to_string(), at("acme", POOL)] {
        let keys = key_list(&srv, &zone);
        let arr = keys.as_array().expect("key list is an array");
        let mut roles: Vec<&str> = arr.iter().filter_map(|k| k["role"].as_str()).collect();
        roles.sort();
        assert_eq!(
            roles,
            vec!["ksk", "zsk"],
            "split_keys: one KSK and one ZSK in {zone}: {keys:#}"
        );
        for k in arr {
            let dnskey = k["dnskey"].as_str().unwrap_or_default();
            let (want_flags, in_parent) = if k["role"] == "ksk" {
                (" 257 ", true)
            } else {
                (" 256 ", false)
            };
            assert!(
                dnskey.contains(want_flags),
                "{zone} {} flags: {dnskey}",
                k["role"]
            );
            assert_eq!(k["in_parent"], json!(in_parent), "{zone}: {keys:#}");
        }
        // The served DNSKEY RRset holds both keys.
        let r = dig_dnssec(srv.dns_addr, &zone, "DNSKEY", &["+dnssec"]);
        let flags: Vec<String> = r
            .records
            .iter()
            .filter(|x| x.rtype == "DNSKEY")
            .map(|x| x.rdata.split_whitespace().next().unwrap_or("").to_string())
            .collect();
        let mut f = flags.clone();
        f.sort();
        assert_eq!(f, vec!["256", "257"], "DNSKEY RRset of {zone}:\n{}", r.raw);
    }
    // Only the KSK goes to the parent.
    let ksk_tag = key_list(&srv, POOL)
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "ksk")
        .and_then(|k| k["key_tag"].as_u64())
        .expect("ksk key_tag");
    for d in parse_ds_lines(&anchors) {
        assert_eq!(
            u64::from(d.key_tag),
            ksk_tag,
            "pdm key ds must list only the KSK: {anchors:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Chain of trust: pool anchor → committed child → released child (both backends)
// ---------------------------------------------------------------------------------------------

/// The DS RRset the pool serves for `child` (`tag alg type DIGEST`, upper-case), and the answer.
fn served_ds(srv: &PdmServer, child: &str) -> (Vec<String>, DigOut) {
    let r = dig_dnssec(srv.dns_addr, child, "DS", &["+dnssec"]);
    let ds = r
        .records
        .iter()
        .filter(|x| x.section == "ANSWER" && x.rtype == "DS")
        .map(|x| {
            // dig splits long digests: "tag alg type HEX HEX" -> "tag alg type HEXHEX"
            let t: Vec<&str> = x.rdata.split_whitespace().collect();
            format!("{} {} {} {}", t[0], t[1], t[2], t[3..].concat()).to_uppercase()
        })
        .collect();
    (ds, r)
}

/// `pdm key ds CHILD` as `tag alg type DIGEST`, upper-case; asserts the pool serves a subset.
#[track_caller]
fn child_ds_served(srv: &PdmServer, child: &str) -> Vec<String> {
    let want: Vec<String> = parse_ds_lines(&ds_lines(srv, child))
        .iter()
        .map(|d| {
            format!(
                "{} {} {} {}",
                d.key_tag, d.algorithm, d.digest_type, d.digest
            )
        })
        .map(|s| s.to_uppercase())
        .collect();
    let (served, r) = served_ds(srv, child);
    assert!(
        !served.is_empty() && served.iter().all(|d| want.contains(d)),
        "the pool must serve the child's DS, one of {want:?}:\n{}",
        r.raw
    );
    want
}

/// Pool anchor only: a child is denied before commit, validates after commit (DS in the pool,
/// answers signed by the child's keys), is denied again after release, and a re-commit of the
/// same name gets fresh keys that validate too.
fn chain_of_trust(b: Backend, denial: &str) {
    if !have_tools(VALIDATORS) {
        return;
    }
    let cfg = Config::default_test().extra(&format!("[dnssec]\ndenial = \"{denial}\""));
    let srv = start_or_skip!(b, cfg);
    let anchors = ds_lines(&srv, POOL);
    let child = at("acme", POOL);
    let both = [Validator::Delv, Validator::UnboundHost];
    let gone = |what: &'static str| {
        vec![
            case(what, child.clone(), "A", Denied),
            case(what, at("www", &child), "A", Denied),
            case(what, child.clone(), "DS", Denied),
            case(what, child.clone(), "DNSKEY", Denied),
        ]
    };
    let live = |lb: &'static [&'static str]| {
        vec![
            case("child apex A", child.clone(), "A", Secure(lb)),
            case("child wildcard A", at("www", &child), "A", Secure(lb)),
            case("child DS in the pool", child.clone(), "DS", Secure(&[])),
            case("child DNSKEY", child.clone(), "DNSKEY", Secure(&[])),
            case("child SOA", child.clone(), "SOA", Secure(&[])),
            case("child NODATA", child.clone(), "MX", Denied),
            case("child wildcard NODATA", at("www", &child), "TXT", Denied),
            case(
                "pool NXDOMAIN beside the child",
                at("other", POOL),
                "A",
                Denied,
            ),
        ]
    };
    for v in both {
        check_cases(&srv, v, &anchors, &[POOL], &gone("before commit"));
    }

    commit_child(&srv, "acme", "192.0.2.10", Some("192.0.2.11"));
    let first_ds = child_ds_served(&srv, &child);
    let mut cases = live(&["192.0.2.10"]);
    cases.push(case(
        "child console A",
        at("console", &child),
        "A",
        Secure(&["192.0.2.11"]),
    ));
    for v in both {
        check_cases(&srv, v, &anchors, &[POOL], &cases);
    }

    let (st, body) = srv.release(POOL, "acme");
    assert_eq!(st, 200, "release: {body}");
    // Without DO a nonexistent name is a plain NXDOMAIN, whatever the denial mode.
    dns_eventually(&srv, &child, RecordType::A, "child after release", |r| {
        r.is_nxdomain()
    });
    let (ds, after) = served_ds(&srv, &child);
    assert!(
        ds.is_empty(),
        "released child's DS still served:\n{}",
        after.raw
    );
    match denial {
        "nsec3" => assert_eq!(after.rcode, "NXDOMAIN", "{}", after.raw),
        _ => {
            assert_eq!(after.rcode, "NOERROR", "compact denial:\n{}", after.raw);
            assert!(
                after.records.iter().any(|x| x.rtype == "NSEC"
                    && x.owner == format!("{child}.")
                    && (x.rdata.contains("NXNAME") || x.rdata.contains("TYPE128"))),
                "released child must get an NXNAME NSEC:\n{}",
                after.raw
            );
        }
    }
    for v in both {
        check_cases(&srv, v, &anchors, &[POOL], &gone("after release"));
    }

    // Same name again: release deleted the keys, so the new child has new ones, and the pool
    // serves their DS (no stale DS, no stale signatures).
    commit_child(&srv, "acme", "192.0.2.20", None);
    let second_ds = child_ds_served(&srv, &child);
    assert!(
        first_ds.iter().all(|d| !second_ds.contains(d)),
        "re-committed child reuses released keys: {first_ds:?} / {second_ds:?}"
    );
    for v in both {
        check_cases(&srv, v, &anchors, &[POOL], &live(&["192.0.2.20"]));
    }
}

fn chain_of_trust_commit_release(b: Backend) {
    chain_of_trust(b, "nsec3");
}

#[test]
fn chain_of_trust_with_compact_pool() {
    chain_of_trust(Backend::Sqlite, "compact");
}

// ---------------------------------------------------------------------------------------------
// 4. Wrong secret key (both backends)
// ---------------------------------------------------------------------------------------------

/// Run the pdm binary with `PDM_SECRET_KEY=secret`, bounded by `timeout`; `None` if it was
/// still running then (it is killed).
fn pdm_with_secret(args: &[String], cwd: &Path, secret: &str, timeout: Duration) -> Option<CliOut> {
    let id = unique_id();
    let out_p = cwd.join(format!("wrongkey-{id}.out"));
    let err_p = cwd.join(format!("wrongkey-{id}.err"));
    let mut cmd = Command::new(PDM);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_p).unwrap())
        .stderr(std::fs::File::create(&err_p).unwrap());
    for k in ["PDM_CONFIG", "PDM_DATABASE_URL", "PDM_HTTP", "PDM_DNS"] {
        cmd.env_remove(k);
    }
    cmd.env("PDM_SECRET_KEY", secret).env("RUST_LOG", "info");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {PDM}: {e}"));
    let deadline = Instant::now() + timeout;
    let code = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st.code());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = std::fs::read_to_string(&out_p).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_p).unwrap_or_default();
    match code {
        Some(code) => Some(CliOut {
            code,
            stdout,
            stderr,
        }),
        None => {
            eprintln!("pdm {args:?} still running after {timeout:?}; stderr:\n{stderr}");
            None
        }
    }
}

fn wrong_secret_key_refuses_and_keeps_keys(b: Backend) {
    let mut srv = start_or_skip!(b, Config::default_test());
    let child = commit_child(&srv, "acme", "192.0.2.10", None);
    let zones = [POOL.to_string(), child.clone()];
    let before: Vec<Value> = zones.iter().map(|z| key_list(&srv, z)).collect();
    let anchors = ds_lines(&srv, POOL);
    srv.kill9();

    let good = std::env::var("PDM_SECRET_KEY").unwrap_or_else(|_| TEST_SECRET_KEY.to_string());
    let wrong = if good.trim().eq_ignore_ascii_case(&"ff".repeat(32)) {
        "ee".repeat(32)
    } else {
        "ff".repeat(32)
    };
    let names_a_zone = |s: &str| zones.iter().any(|z| s.contains(&format!("zone {z}")));
    let common_args = |mut v: Vec<String>| {
        v.extend([
            "--config".to_string(),
            srv.config_path.display().to_string(),
            "--database".to_string(),
            srv.db_url().to_string(),
        ]);
        v
    };

    // pdm serve: must stop before serving, naming the zone whose key it cannot open.
    let serve = common_args(vec![
        "serve".into(),
        "--http".into(),
        format!("127.0.0.1:{}", free_tcp_port()),
        "--dns".into(),
        format!("127.0.0.1:{}", free_udp_tcp_port()),
    ]);
    let out = pdm_with_secret(&serve, srv.dir.path(), &wrong, Duration::from_secs(20))
        .expect("pdm serve with a wrong PDM_SECRET_KEY kept running: it must refuse to start");
    assert!(
        !out.success() && out.code.is_some(),
        "pdm serve with a wrong PDM_SECRET_KEY must exit non-zero: {out:?}"
    );
    assert!(
        names_a_zone(&out.stderr) && out.stderr.to_lowercase().contains("decrypt"),
        "error must name the zone ({zones:?}) and say it cannot decrypt: {}",
        out.stderr
    );

    // zone export --signed: same refusal.
    let export = common_args(vec![
        "zone".into(),
        "export".into(),
        "--signed".into(),
        POOL.into(),
    ]);
    let out = pdm_with_secret(&export, srv.dir.path(), &wrong, CLI_TIMEOUT)
        .expect("pdm zone export --signed hung");
    assert!(
        !out.success() && out.code.is_some(),
        "zone export --signed with a wrong PDM_SECRET_KEY must fail: {out:?}"
    );
    assert!(
        names_a_zone(&out.stderr) && out.stderr.to_lowercase().contains("decrypt"),
        "error must name the zone ({zones:?}) and say it cannot decrypt: {}",
        out.stderr
    );
    assert!(
        !out.stdout.contains("RRSIG"),
        "nothing signed may be printed with a wrong key:\n{}",
        out.stdout
    );

    // Keys untouched: not replaced, not re-sealed, not deleted.
    let after: Vec<Value> = zones.iter().map(|z| key_list(&srv, z)).collect();
    assert_eq!(
        before, after,
        "key rows changed after runs with a wrong secret key"
    );

    // With the right key it serves again, and the old anchor still validates.
    srv.restart();
    assert_eq!(ds_lines(&srv, POOL), anchors, "pool DS changed");
    if have_tools(&["delv"]) {
        let cases = vec![
            case(
                "child A after restart",
                at("www", &child),
                "A",
                Secure(&["192.0.2.10"]),
            ),
            case("pool NXDOMAIN after restart", at("nope", POOL), "A", Denied),
        ];
        check_cases(&srv, Validator::Delv, &anchors, &[POOL], &cases);
    }
}

backend_tests!(
    chain_of_trust_commit_release,
    wrong_secret_key_refuses_and_keeps_keys
);

// ---------------------------------------------------------------------------------------------
// 5. Signed exports through the zone verifiers
// ---------------------------------------------------------------------------------------------

#[test]
fn signed_exports_pass_zone_verifiers() {
    if !have_tools(VERIFIERS) || !have_tools(&["dig"]) {
        return;
    }
    let srv = start_or_skip!(Backend::Sqlite, Config::default_test());
    // (A compact-denial zone has no NSEC chain to export: pdm refuses, by design.)
    import_signed(&srv, ZONE, Path::new(ZONE_FILE), "nsec3");
    let child = commit_child(&srv, "acme", "192.0.2.10", Some("192.0.2.11"));
    for zone in [ZONE, child.as_str(), POOL] {
        let p = export_signed(&srv, zone);
        verify_zone_file(&p, zone);
    }
}

#[test]
fn split_key_export_passes_zone_verifiers() {
    if !have_tools(VERIFIERS) {
        return;
    }
    let srv = start_or_skip!(
        Backend::Sqlite,
        Config::default_test().extra("[dnssec]\nsplit_keys = true\nalgorithm = \"ed25519\"")
    );
    let child = commit_child(&srv, "acme", "192.0.2.10", None);
    for zone in [POOL, child.as_str()] {
        let p = export_signed(&srv, zone);
        verify_zone_file(&p, zone);
    }
}

// ---------------------------------------------------------------------------------------------
// 6. The DO bit
// ---------------------------------------------------------------------------------------------

#[test]
fn do_bit_gates_dnssec_records() {
    if !have_tools(&["dig"]) {
        return;
    }
    let srv = start_or_skip!(Backend::Sqlite, Config::default_test());
    import_signed(&srv, ZONE, Path::new(ZONE_FILE), "nsec3");
    let child = commit_child(&srv, "acme", "192.0.2.10", None);
    let dnssec_types = ["RRSIG", "NSEC", "NSEC3"];
    // (name, type, positive?)
    let queries: Vec<(String, &str, bool)> = vec![
        (at("www", ZONE), "A", true),
        (at("nope", ZONE), "A", false),
        (at("www", ZONE), "MX", false),
        (at("foo.w", ZONE), "A", true),
        (at("cn2", ZONE), "A", true),
        (at("b.c", ZONE), "A", false),
        (ZONE.to_string(), "DNSKEY", true),
        (at("deleg-ds", ZONE), "DS", true),
        (child.clone(), "A", true),
        (at("www", &child), "A", true),
        (child.clone(), "DS", true),
        (at("nope", POOL), "A", false),
    ];
    for (name, qtype, positive) in &queries {
        // The harness dig sends no OPT record at all (hickory Message::query): DO=0.
        let rt: RecordType = qtype.parse().unwrap();
        let plain = srv.dig(name, rt);
        let leaked: Vec<&Rr> = plain
            .answer_rrs
            .iter()
            .chain(&plain.authority_rrs)
            .chain(&plain.additional_rrs)
            .filter(|r| {
                matches!(
                    r.rtype,
                    RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3
                )
            })
            .collect();
        assert!(
            leaked.is_empty(),
            "{name} {qtype} without EDNS must carry no DNSSEC records, got {leaked:?}:\n{plain}"
        );
        assert_eq!(
            !plain.answer_rrs.is_empty(),
            *positive,
            "{name} {qtype}:\n{plain}"
        );
        if *qtype == "DNSKEY" || *qtype == "DS" {
            assert!(
                plain.answer_rrs.iter().any(|r| r.rtype == rt),
                "an explicit {qtype} query is answered without DO too:\n{plain}"
            );
        }

        // EDNS without DO, and no EDNS, through dig.
        for flags in [&["+edns=0", "+nodnssec"][..], &["+noedns"][..]] {
            let r = dig_dnssec(srv.dns_addr, name, qtype, flags);
            for t in dnssec_types {
                assert!(
                    !r.has_type(t),
                    "{name} {qtype} {flags:?} carries {t}:\n{}",
                    r.raw
                );
            }
            assert!(
                !r.do_bit,
                "DO must not be set in the response to DO=0:\n{}",
                r.raw
            );
        }

        // DO=1: signatures, and the denial records for negative answers.
        let r = dig_dnssec(srv.dns_addr, name, qtype, &["+dnssec"]);
        assert!(
            r.do_bit,
            "the response to DO=1 must echo DO (RFC 3225):\n{}",
            r.raw
        );
        if *positive {
            assert!(
                r.types_in("ANSWER").contains(&"RRSIG".to_string()),
                "{name} {qtype} +dnssec: answer without RRSIG:\n{}",
                r.raw
            );
        } else {
            let auth = r.types_in("AUTHORITY");
            assert!(
                auth.contains(&"RRSIG".to_string()) && auth.contains(&"NSEC3".to_string()),
                "{name} {qtype} +dnssec: denial without NSEC3 + RRSIG:\n{}",
                r.raw
            );
        }
    }
    // kdig agrees on DO=1 (a second client implementation), when installed.
    if validators_have("kdig") {
        let out = validators::run_tool(
            "kdig",
            &[
                format!("@{}", srv.dns_addr.ip()),
                "-p".into(),
                srv.dns_addr.port().to_string(),
                "+dnssec".into(),
                "+norec".into(),
                at("www", ZONE),
                "A".into(),
            ],
            srv.dir.path(),
        );
        assert!(out.success(), "kdig failed: {out:?}");
        assert!(
            out.stdout.contains("RRSIG") && out.stdout.contains("192.0.2.10"),
            "kdig +dnssec www A: no RRSIG:\n{}",
            out.stdout
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 7. LUA records in a signed zone: synthesized answers, empty results, errors
// ---------------------------------------------------------------------------------------------

const LUA_ZONE: &str = "luasec.test";
const LUA_ZONE_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/lua-dnssec.test.zone"
);

/// Every LUA answer shape of tests/data/lua-dnssec.test.zone.
#[rustfmt::skip]
const LUA_CASES: &[(&str, &str, &str, Want)] = &[
    ("LUA positive: all()",            "all",      "A",     Secure(&["192.0.2.1", "192.0.2.2"])),
    ("LUA positive: wildcard",         "foo.w",    "A",     Secure(&["192.0.2.30"])),
    ("LUA positive: MX",               "mx",       "MX",    Secure(&["mail.luasec.test"])),
    ("LUA positive: SRV",              "srv",      "SRV",   Secure(&["web.luasec.test"])),
    ("LUA NODATA: other type",         "all",      "TXT",   Denied),
    ("LUA empty table",                "empty",    "A",     Denied),
    ("LUA empty sample",               "emptysmp", "A",     Denied),
    ("LUA empty: wildcard",            "foo.ew",   "A",     Denied),
    ("LUA empty CNAME",                "cne",      "A",     Denied),
    ("CNAME to an empty LUA result",   "tolua",    "A",     SecureChase),
    ("static type next to empty LUA",  "empty",    "TXT",   Secure(&["static next to"])),
];

/// The types in the bitmap of an NSEC3 or NSEC record as dig prints it.
fn bitmap(line: &validators::DigLine) -> Vec<String> {
    let skip = if line.rtype == "NSEC3" { 5 } else { 1 };
    line.rdata
        .split_whitespace()
        .skip(skip)
        .map(|t| t.to_uppercase())
        .collect()
}

fn lua_records_in_signed_zone(denial: &str) {
    if !have_tools(VALIDATORS) {
        return;
    }
    let srv = start_or_skip!(Backend::Sqlite, Config::default_test());
    import_signed(&srv, LUA_ZONE, Path::new(LUA_ZONE_FILE), denial);
    let anchors = ds_lines(&srv, LUA_ZONE);
    let cases: Vec<Case> = LUA_CASES
        .iter()
        .map(|&(what, label, qtype, want)| case(what, at(label, LUA_ZONE), qtype, want))
        .collect();
    for v in [Validator::Delv, Validator::UnboundHost] {
        check_cases(&srv, v, &anchors, &[LUA_ZONE], &cases);
    }

    // The empty result's denial record: the name's other types, not the LUA record's.
    let r = dig_dnssec(srv.dns_addr, &at("empty", LUA_ZONE), "A", &["+dnssec"]);
    assert_eq!(r.rcode, "NOERROR", "{}", r.raw);
    assert!(r.types_in("ANSWER").is_empty(), "{}", r.raw);
    let proofs: Vec<_> = r
        .records
        .iter()
        .filter(|x| x.section == "AUTHORITY" && (x.rtype == "NSEC3" || x.rtype == "NSEC"))
        .collect();
    assert_eq!(
        proofs.len(),
        1,
        "one denial record:
{}",
        r.raw
    );
    let b = bitmap(proofs[0]);
    assert!(
        b.contains(&"TXT".to_string()) && !b.contains(&"A".to_string()),
        "{denial}: bitmap of the empty LUA A must list TXT and not A: {b:?}\n{}",
        r.raw
    );
    // The type is still listed where nothing denies it (NODATA for another type).
    let r = dig_dnssec(srv.dns_addr, &at("all", LUA_ZONE), "TXT", &["+dnssec"]);
    let listed = r
        .records
        .iter()
        .filter(|x| x.rtype == "NSEC3" || x.rtype == "NSEC")
        .any(|x| bitmap(x).contains(&"A".to_string()));
    assert!(
        listed,
        "{denial}: NODATA at a LUA A name lists A:\n{}",
        r.raw
    );

    // A failing program is still SERVFAIL, signed zone or not.
    for flags in [&["+dnssec"][..], &[][..]] {
        let r = dig_dnssec(srv.dns_addr, &at("err", LUA_ZONE), "A", flags);
        assert_eq!(r.rcode, "SERVFAIL", "{}", r.raw);
    }

    // Synthesized MX/SRV get the in-zone A/AAAA of their targets in the additional section
    // (signed with DO=1).
    let addl = |r: &DigOut| -> Vec<(String, String)> {
        r.records
            .iter()
            .filter(|x| x.section == "ADDITIONAL")
            .map(|x| (x.owner.clone(), x.rtype.clone()))
            .collect()
    };
    let r = dig_dnssec(srv.dns_addr, &at("mx", LUA_ZONE), "MX", &[]);
    let want: Vec<(String, String)> = [("mail", "A"), ("mail", "AAAA"), ("web", "A")]
        .iter()
        .map(|(o, t)| (format!("{}.", at(o, LUA_ZONE)), t.to_string()))
        .collect();
    assert_eq!(addl(&r), want, "{}", r.raw);
    let r = dig_dnssec(srv.dns_addr, &at("srv", LUA_ZONE), "SRV", &["+dnssec"]);
    let web = format!("{}.", at("web", LUA_ZONE));
    assert_eq!(
        addl(&r),
        vec![(web.clone(), "A".to_string()), (web, "RRSIG".to_string())],
        "{}",
        r.raw
    );
}

#[test]
fn lua_records_validate_with_nsec3() {
    lua_records_in_signed_zone("nsec3");
}

#[test]
fn lua_records_validate_with_compact_denial() {
    lua_records_in_signed_zone("compact");
}

fn validators_have(tool: &str) -> bool {
    validators::find_tool(tool).is_some()
}
