//! Key rollovers judged by a validator at every step: unbound-host (a fresh
//! cache per query) must validate a positive answer and an NXDOMAIN with the
//! trust anchor the parent publishes at that moment, and the API must show
//! each step. TTLs are 2 s so that a whole rollover runs in seconds.

#[macro_use]
mod common;
use common::validators::{ds_lines, have_tools, import_signed, unbound_host};
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const ZONE: &str = "roll.test";
const TTL: u32 = 2;

fn config(split_keys: bool) -> Config {
    Config::default_test().extra(&format!(
        "[dnssec]\ndnskey_ttl = {TTL}\npropagation_delay_secs = 0\nsplit_keys = {split_keys}\n"
    ))
}

/// A small zone whose every TTL (and negative TTL) is `TTL`.
fn zone_file(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("roll.test.zone");
    std::fs::write(
        &p,
        format!(
            "$ORIGIN {ZONE}.\n$TTL {TTL}\n@ SOA ns1 hostmaster 1 3600 600 86400 {TTL}\n@ NS ns1\n\
             ns1 A 127.0.0.1\nwww A 192.0.2.80\n*.w A 192.0.2.81\n"
        ),
    )
    .unwrap();
    p
}

fn dnssec_status(srv: &PdmServer) -> Value {
    let token = srv.admin_token();
    let (code, body) = srv.get(&format!("/api/v1/zones/{ZONE}/dnssec"), Some(&token));
    assert_eq!(code, 200, "{body}");
    body
}

/// Positive and NXDOMAIN answers validate with `anchor` (the parent's DS set).
#[track_caller]
fn assert_validates(srv: &PdmServer, anchor: &[String], step: &str) {
    let pos = unbound_host(srv.dns_addr, anchor, &[ZONE], &format!("www.{ZONE}"), "A");
    assert!(
        pos.secure_positive,
        "step {step}: www not secure\n{}",
        pos.raw
    );
    let wild = unbound_host(srv.dns_addr, anchor, &[ZONE], &format!("x.w.{ZONE}"), "A");
    assert!(
        wild.secure_positive,
        "step {step}: wildcard not secure\n{}",
        wild.raw
    );
    let neg = unbound_host(srv.dns_addr, anchor, &[ZONE], &format!("nope.{ZONE}"), "A");
    assert!(
        neg.secure_negative,
        "step {step}: NXDOMAIN not secure\n{}",
        neg.raw
    );
}

/// Only the SHA-256 DS lines of `pdm key ds`.
fn sha256_ds(srv: &PdmServer) -> Vec<String> {
    ds_lines(srv, ZONE)
        .into_iter()
        .filter(|l| l.split_whitespace().nth(6) == Some("2"))
        .collect()
}

fn tags(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
        .collect()
}

/// Follow the rollover through the API until it disappears, validating at
/// every state with the anchor `anchor_for(state)`. Returns the states seen.
fn follow(srv: &PdmServer, anchor_for: impl Fn(&str) -> Vec<String>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "rollover did not finish: {seen:?}"
        );
        let st = dnssec_status(srv);
        let state = match st["rollover"].as_object() {
            None => "done".to_string(),
            Some(r) => r["state"].as_str().unwrap_or("?").to_string(),
        };
        if seen.last() != Some(&state) {
            assert_validates(srv, &anchor_for(&state), &state);
            seen.push(state.clone());
        }
        if state == "done" {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn csk_double_ds_rollover_validates_at_every_step() {
    if !have_tools(&["unbound-host"]) {
        return;
    }
    let srv = PdmServer::start(Backend::Sqlite, config(false)).expect("sqlite");
    let dir = tempfile::tempdir().unwrap();
    import_signed(&srv, ZONE, &zone_file(dir.path()), "nsec3");
    let old = sha256_ds(&srv);
    assert_eq!(old.len(), 1, "one CSK: {old:?}");
    assert_validates(&srv, &old, "before");

    let token = srv.admin_token();
    let (code, body) = srv.post(
        &format!("/api/v1/zones/{ZONE}/dnssec/rollover"),
        Some(&token),
        &serde_json::json!({"kind": "csk"}),
    );
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["rollover"]["state"], "new-ds-in-parent");
    assert_eq!(body["rollover"]["waiting_for_parent_ds"], true, "{body}");
    // A second rollover while one runs is refused.
    let (code, body2) = srv.post(
        &format!("/api/v1/zones/{ZONE}/dnssec/rollover"),
        Some(&token),
        &serde_json::json!({"kind": "csk"}),
    );
    assert_error(code, &body2, 409, "rollover-in-progress");

    // The parent has not published the new DS yet: the old anchor alone still works,
    // and the rollover waits for the operator.
    assert_validates(&srv, &old, "waiting-for-parent");
    std::thread::sleep(Duration::from_secs(u64::from(TTL) + 2));
    assert_eq!(
        dnssec_status(&srv)["rollover"]["step"],
        0,
        "must not move on before the parent's DS is confirmed"
    );
    let both = sha256_ds(&srv);
    assert_eq!(both.len(), 2, "old + new DS for the parent: {both:?}");
    let new: Vec<String> = both.iter().filter(|l| !old.contains(l)).cloned().collect();

    let (code, body) = srv.post(
        &format!("/api/v1/zones/{ZONE}/dnssec/rollover/ds-published"),
        Some(&token),
        &serde_json::json!({}),
    );
    assert_eq!(code, 200, "{body}");
    // While the rollover runs the parent holds both DS; once done, only the new one.
    let seen = follow(&srv, |state| {
        if state == "done" {
            new.clone()
        } else {
            both.clone()
        }
    });
    assert_eq!(
        seen,
        ["new-ds-in-parent", "new-csk-double-signing", "done"],
        "every step observed"
    );
    // Old DS gone from what the parent must hold; the new key alone validates.
    assert_eq!(tags(&sha256_ds(&srv)), tags(&new));
    assert_validates(&srv, &new, "after");
    let (code, body) = srv.post(
        &format!("/api/v1/zones/{ZONE}/dnssec/rollover/ds-published"),
        Some(&token),
        &serde_json::json!({}),
    );
    assert_error(code, &body, 409, "not-waiting-for-ds");
}

#[test]
fn zsk_prepublication_rollover_validates_at_every_step() {
    if !have_tools(&["unbound-host"]) {
        return;
    }
    let srv = PdmServer::start(Backend::Sqlite, config(true)).expect("sqlite");
    let dir = tempfile::tempdir().unwrap();
    import_signed(&srv, ZONE, &zone_file(dir.path()), "nsec3");
    let ksk = sha256_ds(&srv);
    assert_eq!(ksk.len(), 1, "only the KSK goes to the parent: {ksk:?}");
    assert_validates(&srv, &ksk, "before");

    // A ZSK rollover on a zone asked for a CSK one is refused with a clear code.
    let token = srv.admin_token();
    let (code, body) = srv.post(
        &format!("/api/v1/zones/{ZONE}/dnssec/rollover"),
        Some(&token),
        &serde_json::json!({"kind": "csk"}),
    );
    assert_error(code, &body, 422, "no-such-key");

    let out = srv.cli(&["key", "rollover", ZONE, "--zsk"]);
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("new-zsk-published"), "{}", out.stdout);
    // The parent's DS never changes in a ZSK rollover.
    let seen = follow(&srv, |_| ksk.clone());
    assert_eq!(seen, ["new-zsk-published", "new-zsk-signing", "done"]);
    let keys = dnssec_status(&srv)["keys"].as_array().cloned().unwrap();
    let zsks: Vec<&Value> = keys.iter().filter(|k| k["role"] == "zsk").collect();
    assert_eq!(zsks.len(), 1, "the old ZSK is removed: {keys:?}");
    assert_eq!(sha256_ds(&srv), ksk);
}
