//! Black-box tests of the pool HTTP API (docs/contract.md "HTTP"), run against the real binary on
//! SQLite, on Postgres (`PDM_TEST_POSTGRES_URL`) and with the PowerDNS zone backend (SQLite
//! store, a `pdns_server` per scenario). Each scenario runs as `sqlite::x`, `postgres::x` and
//! `powerdns::x`: the API answers the same whichever backend holds the zones.

#[macro_use]
mod common;
use common::*;
use std::time::Duration;

const P: &str = "/api/v1/pool/example.test";

/// example.test (defaults), other.test (public), private.test (check needs a token),
/// expiring.test (1 s reservations).
fn api_cfg() -> Config {
    Config::default_test()
        .pool("other.test")
        .pool_with("private.test", Some(600), Some(false))
        .pool_with("expiring.test", Some(1), Some(true))
}

fn start(b: Backend) -> Option<PdmServer> {
    PdmServer::start(b, api_cfg())
}

macro_rules! srv {
    ($b:expr) => {
        match start($b) {
            Some(s) => s,
            None => return,
        }
    };
}

fn first_reserved(srv: &PdmServer) -> String {
    let (st, b) = srv.get("/api/v1/reserved", None);
    assert_eq!(st, 200, "{b}");
    b["reserved"][0]
        .as_str()
        .expect("reserved list non-empty")
        .to_string()
}

// ------------------------------------------------------------------------------------------
// Public endpoints
// ------------------------------------------------------------------------------------------

fn health_endpoints(b: Backend) {
    let srv = srv!(b);
    let (st, body) = srv.get("/healthz", None);
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
    let got: Vec<&str> = body["managedDomains"]
        .as_array()
        .expect("managedDomains array")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        vec![
            "example.test",
            "expiring.test",
            "other.test",
            "private.test"
        ],
        "managedDomains sorted: {body}"
    );

    let (st, body) = srv.get("/livez", None);
    assert_eq!(st, 200, "{body}");
    let (st, body) = srv.get("/readyz", None);
    assert_eq!(st, 200, "{body}");
}

fn reserved_list(b: Backend) {
    let srv = srv!(b);
    let (st, body) = srv.get("/api/v1/reserved", None);
    assert_eq!(st, 200, "{body}");
    let list: Vec<String> = body["reserved"]
        .as_array()
        .expect("reserved array")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let mut sorted = list.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(list, sorted, "reserved list must be sorted and unique");
    for name in GO_RESERVED {
        assert!(
            list.iter().any(|x| x == name),
            "Go reserved name {name} missing from {list:?}"
        );
    }
    // Each reserved name is reported as such by check and refused by reserve.
    let (st, c) = srv.get(&format!("{P}/check?sub={}", list[0]), None);
    assert_eq!(st, 200);
    assert_eq!(c["available"], false, "{c}");
    assert_eq!(c["reason"], "reserved", "{c}");
}

// ------------------------------------------------------------------------------------------
// check
// ------------------------------------------------------------------------------------------

fn check_available(b: Backend) {
    let srv = srv!(b);
    for sub in ["acme", "a", "a1-b2", &"a".repeat(63)] {
        let (st, body) = srv.get(&format!("{P}/check?sub={sub}"), None);
        assert_eq!(st, 200, "{sub}: {body}");
        assert_eq!(body["available"], true, "{sub}: {body}");
        assert_eq!(body["fqdn"], format!("{sub}.example.test"), "{sub}: {body}");
        assert!(
            body.get("reason").map(|r| r.is_null()).unwrap_or(true),
            "no reason when available: {body}"
        );
    }
}

fn check_invalid_format(b: Backend) {
    let srv = srv!(b);
    let long = "a".repeat(64);
    for sub in [
        "-abc",
        "abc-",
        "1abc",
        "a_b",
        "a.b",
        long.as_str(),
        "",
        "%C3%A9t%C3%A9",
    ] {
        let (st, body) = srv.get(&format!("{P}/check?sub={sub}"), None);
        assert_eq!(st, 200, "{sub:?}: {body}");
        assert_eq!(body["available"], false, "{sub:?}: {body}");
        assert_eq!(body["reason"], "invalid-format", "{sub:?}: {body}");
        assert!(
            body.get("fqdn").map(|f| f.is_null()).unwrap_or(true),
            "no fqdn when unavailable: {body}"
        );
    }
}

fn check_unsupported_pool(b: Backend) {
    let srv = srv!(b);
    let (st, body) = srv.get("/api/v1/pool/nope.test/check?sub=acme", None);
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["available"], false, "{body}");
    assert_eq!(body["reason"], "unsupported-pool", "{body}");
}

fn check_reserved_name(b: Backend) {
    let srv = srv!(b);
    let name = first_reserved(&srv);
    let (st, body) = srv.get(&format!("{P}/check?sub={name}"), None);
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["available"], false, "{body}");
    assert_eq!(body["reason"], "reserved", "{body}");
}

fn check_reserved_then_active_state(b: Backend) {
    let srv = srv!(b);
    let tok = srv.reserve_ok("example.test", "acme");
    let (st, body) = srv.get(&format!("{P}/check?sub=acme"), None);
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["available"], false, "{body}");
    assert_eq!(body["reason"], "reserved-state", "{body}");
    // Another name is still available: the state is per name.
    let (_, other) = srv.get(&format!("{P}/check?sub=acme2"), None);
    assert_eq!(other["available"], true, "{other}");
    // Same label in another pool is independent.
    let (_, other) = srv.get("/api/v1/pool/other.test/check?sub=acme", None);
    assert_eq!(other["available"], true, "{other}");

    let (st, c) = srv.commit("example.test", "acme", &tok, "192.0.2.10", None);
    assert_eq!(st, 200, "{c}");
    let (st, body) = srv.get(&format!("{P}/check?sub=acme"), None);
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["available"], false, "{body}");
    assert_eq!(body["reason"], "active-state", "{body}");
}

fn check_public_vs_private(b: Backend) {
    let srv = srv!(b);
    // Public pool: no token needed.
    let (st, body) = srv.get(&format!("{P}/check?sub=acme"), None);
    assert_eq!(st, 200, "{body}");
    // Private pool: token required.
    let path = "/api/v1/pool/private.test/check?sub=acme";
    let (st, body) = srv.get(path, None);
    assert_error(st, &body, 401, "unauthorized");
    let (st, body) = srv.get(path, Some("not-a-real-token"));
    assert_error(st, &body, 401, "unauthorized");
    let other = srv.token_with_scope("pool:other.test");
    let (st, body) = srv.get(path, Some(&other));
    assert_error(st, &body, 403, "forbidden");
    let scoped = srv.token_with_scope("pool:private.test");
    let (st, body) = srv.get(path, Some(&scoped));
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["available"], true, "{body}");
    assert_eq!(body["fqdn"], "acme.private.test", "{body}");
    let (st, body) = srv.get(path, Some(&srv.admin_token()));
    assert_eq!(st, 200, "{body}");
    let star = srv.token_with_scope("pool:*");
    let (st, body) = srv.get(path, Some(&star));
    assert_eq!(st, 200, "{body}");
}

// ------------------------------------------------------------------------------------------
// reserve
// ------------------------------------------------------------------------------------------

fn reserve_created_shape(b: Backend) {
    let srv = srv!(b);
    let tok = srv.admin_token();
    let (st, r) = srv.post(
        &format!("{P}/reserve"),
        Some(&tok),
        &json!({"subdomain": "acme"}),
    );
    assert_eq!(st, 201, "{r}");
    assert_eq!(r["poolDomain"], "example.test", "{r}");
    assert_eq!(r["subdomain"], "acme", "{r}");
    assert_eq!(r["state"], "reserved", "{r}");
    assert_eq!(r["createdBy"], "catalyst-api", "default createdBy: {r}");
    let at = assert_rfc3339_utc(&r["reservedAt"]);
    let exp = assert_rfc3339_utc(&r["expiresAt"]);
    let ttl = (exp - at).num_seconds();
    assert!(
        (598..=602).contains(&ttl),
        "expiresAt - reservedAt should be the pool TTL 600 s, got {ttl}: {r}"
    );
    let now = chrono::Utc::now().timestamp();
    assert!(
        (at.timestamp() - now).abs() < 60,
        "reservedAt should be now: {r}"
    );
    let t = r["reservationToken"].as_str().expect("token string");
    let u = uuid::Uuid::parse_str(t)
        .unwrap_or_else(|e| panic!("reservationToken not a uuid: {t}: {e}"));
    assert_eq!(u.get_version_num(), 4, "uuid v4: {t}");

    // createdBy echoed; tokens differ per reservation.
    let (st, r2) = srv.post(
        &format!("{P}/reserve"),
        Some(&tok),
        &json!({"subdomain": "beta", "createdBy": "alice"}),
    );
    assert_eq!(st, 201, "{r2}");
    assert_eq!(r2["createdBy"], "alice", "{r2}");
    assert_ne!(r2["reservationToken"], r["reservationToken"]);

    // The reservation shows in list without its token.
    let (st, l) = srv.get(&format!("{P}/list"), Some(&tok));
    assert_eq!(st, 200, "{l}");
    let subs: Vec<&str> = l["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["subdomain"].as_str().unwrap())
        .collect();
    assert_eq!(subs, vec!["acme", "beta"], "{l}");
}

fn reserve_conflict(b: Backend) {
    let srv = srv!(b);
    let tok = srv.reserve_ok("example.test", "acme");
    let (st, body) = srv.reserve("example.test", "acme");
    assert_error(st, &body, 409, "conflict");
    assert!(
        !contains_key_deep(&body, "reservationToken"),
        "a conflict must not leak the token: {body}"
    );
    let (st, c) = srv.commit("example.test", "acme", &tok, "192.0.2.10", None);
    assert_eq!(st, 200, "{c}");
    let (st, body) = srv.reserve("example.test", "acme");
    assert_error(st, &body, 409, "conflict");
    // The same label in another pool is fine.
    let (st, body) = srv.reserve("other.test", "acme");
    assert_eq!(st, 201, "{body}");
}

fn reserve_reserved_name(b: Backend) {
    let srv = srv!(b);
    let name = first_reserved(&srv);
    let (st, body) = srv.reserve("example.test", &name);
    assert_error(st, &body, 409, "reserved");
    let (st, body) = srv.reserve("example.test", "www");
    assert_error(st, &body, 409, "reserved");
}

fn reserve_unprocessable(b: Backend) {
    let srv = srv!(b);
    for sub in ["-abc", "abc-", "1abc", "a_b", "", &"a".repeat(64)] {
        let (st, body) = srv.reserve("example.test", sub);
        assert_error(st, &body, 422, "invalid-format");
    }
    let (st, body) = srv.reserve("nope.test", "acme");
    assert_error(st, &body, 422, "unsupported-pool");
    // Nothing was created by the failed calls.
    let (_, l) = srv.get(&format!("{P}/list"), Some(&srv.admin_token()));
    assert_eq!(l["allocations"], json!([]), "{l}");
}

fn malformed_json(b: Backend) {
    let srv = srv!(b);
    let tok = srv.admin_token();
    for path in [
        format!("{P}/reserve"),
        format!("{P}/commit"),
        "/api/v1/release".to_string(),
    ] {
        for raw in [&b"{"[..], b"{\"subdomain\": }", b"not json at all"] {
            let (st, body) = srv.post_raw(&path, Some(&tok), raw);
            assert_error(st, &body, 400, "invalid-json");
        }
    }
}

fn oversized_body(b: Backend) {
    let srv = srv!(b);
    let tok = srv.admin_token();
    let path = format!("{P}/reserve");
    // Valid JSON padded with whitespace, so only the size differs between the two calls.
    let padded = |total: usize| {
        let head = br#"{"subdomain": "acme""#;
        let mut v = head.to_vec();
        v.resize(total - 1, b' ');
        v.push(b'}');
        v
    };
    let big = padded(70 * 1024);
    let (st, r) = srv.post_raw(&path, Some(&tok), &big);
    assert_error(st, &r, 413, "payload-too-large");
    let big = json!({"subdomain": "acme", "createdBy": "x".repeat(70 * 1024)});
    let (st, r) = srv.post(&path, Some(&tok), &big);
    assert_error(st, &r, 413, "payload-too-large");
    // Nothing reserved.
    let (_, c) = srv.get(&format!("{P}/check?sub=acme"), None);
    assert_eq!(c["available"], true, "{c}");
    // Just under the limit (64 KiB) is accepted.
    let ok = padded(60 * 1024);
    let (st, r) = srv.post_raw(&path, Some(&tok), &ok);
    assert_eq!(
        st,
        201,
        "60 KiB body must be accepted: {}",
        tail(&r.to_string(), 300)
    );
}

fn auth_required_for_writes(b: Backend) {
    let srv = srv!(b);
    let body = json!({"subdomain": "acme"});
    let reserve = format!("{P}/reserve");
    let (st, r) = srv.post(&reserve, None, &body);
    assert_error(st, &r, 401, "unauthorized");
    let (st, r) = srv.post(&reserve, Some("bogus"), &body);
    assert_error(st, &r, 401, "unauthorized");
    let (st, r) = srv
        .request(
            "POST",
            &reserve,
            None,
            Body::Json(&body),
            &[("Authorization", "Basic dXNlcjpwYXNz")],
        )
        .into_pair();
    assert_error(st, &r, 401, "unauthorized");

    let other = srv.token_with_scope("pool:other.test");
    let (st, r) = srv.post(&reserve, Some(&other), &body);
    assert_error(st, &r, 403, "forbidden");
    // Nothing happened.
    let (_, c) = srv.get(&format!("{P}/check?sub=acme"), None);
    assert_eq!(c["available"], true, "{c}");

    // Scoped token works on its own pool and on reads/writes there.
    let scoped = srv.token_with_scope("pool:example.test");
    let (st, r) = srv.post(&reserve, Some(&scoped), &body);
    assert_eq!(st, 201, "{r}");
    let tok = r["reservationToken"].as_str().unwrap().to_string();
    let star = srv.token_with_scope("pool:*");
    let (st, r) = srv.post(&reserve, Some(&star), &json!({"subdomain": "beta"}));
    assert_eq!(st, 201, "{r}");
    let multi = srv.token_with_scopes(&["pool:other.test", "pool:example.test"]);
    let (st, r) = srv.post(&reserve, Some(&multi), &json!({"subdomain": "gamma"}));
    assert_eq!(st, 201, "{r}");

    // commit / list / release: 401 without token, 403 with the wrong pool's token.
    let commit =
        json!({"subdomain": "acme", "reservationToken": tok, "loadBalancerIP": "192.0.2.1"});
    let (st, r) = srv.post(&format!("{P}/commit"), None, &commit);
    assert_error(st, &r, 401, "unauthorized");
    let (st, r) = srv.post(&format!("{P}/commit"), Some(&other), &commit);
    assert_error(st, &r, 403, "forbidden");
    let (st, r) = srv.get(&format!("{P}/list"), None);
    assert_error(st, &r, 401, "unauthorized");
    let (st, r) = srv.get(&format!("{P}/list"), Some(&other));
    assert_error(st, &r, 403, "forbidden");
    let (st, r) = srv.delete(
        &format!("{P}/release"),
        None,
        Some(&json!({"subdomain": "acme"})),
    );
    assert_error(st, &r, 401, "unauthorized");
    let (st, r) = srv.delete(
        &format!("{P}/release"),
        Some(&other),
        Some(&json!({"subdomain": "acme"})),
    );
    assert_error(st, &r, 403, "forbidden");
    let (st, r) = srv.post(
        "/api/v1/release",
        None,
        &json!({"sovereignFQDN": "acme.example.test"}),
    );
    assert_error(st, &r, 401, "unauthorized");
    let (st, r) = srv.post(
        "/api/v1/release",
        Some(&other),
        &json!({"sovereignFQDN": "acme.example.test"}),
    );
    assert_error(st, &r, 403, "forbidden");
    // Still reserved after all the refused calls.
    let (_, c) = srv.get(&format!("{P}/check?sub=acme"), None);
    assert_eq!(c["reason"], "reserved-state", "{c}");
    // And the scoped token can commit it.
    let (st, r) = srv.post(&format!("{P}/commit"), Some(&scoped), &commit);
    assert_eq!(st, 200, "{r}");
}

fn idempotency_key(b: Backend) {
    let srv = srv!(b);
    let tok = srv.admin_token();
    let path = format!("{P}/reserve");
    let body = json!({"subdomain": "acme"});
    let key = [("Idempotency-Key", "key-reserve-1")];
    let (st1, b1) = srv.post_h(&path, Some(&tok), &body, &key);
    assert_eq!(st1, 201, "{b1}");
    let (st2, b2) = srv.post_h(&path, Some(&tok), &body, &key);
    assert_eq!(st2, 201, "replay must return the first status: {b2}");
    assert_eq!(
        b2, b1,
        "replay must return the first body (same reservationToken)"
    );
    // Without the key the same request is a real retry: conflict.
    let (st, r) = srv.post(&path, Some(&tok), &body);
    assert_error(st, &r, 409, "conflict");
    // Same key, different body.
    let (st, r) = srv.post_h(&path, Some(&tok), &json!({"subdomain": "other"}), &key);
    assert_error(st, &r, 422, "idempotency-key-reused");
    let (_, c) = srv.get(&format!("{P}/check?sub=other"), None);
    assert_eq!(
        c["available"], true,
        "a refused key reuse must not reserve: {c}"
    );

    // Commit through a key: the replay is identical too, and the first token still commits.
    let ctok = b1["reservationToken"].as_str().unwrap();
    let cbody = json!({"subdomain": "acme", "reservationToken": ctok, "sovereignFQDN": "acme.example.test", "loadBalancerIP": "192.0.2.7"});
    let ckey = [("Idempotency-Key", "key-commit-1")];
    let (s1, c1) = srv.post_h(&format!("{P}/commit"), Some(&tok), &cbody, &ckey);
    assert_eq!(s1, 200, "{c1}");
    let (s2, c2) = srv.post_h(&format!("{P}/commit"), Some(&tok), &cbody, &ckey);
    assert_eq!((s2, &c2), (200, &c1));

    // An error answer is replayed too (a reserved name under a key).
    let rkey = [("Idempotency-Key", "key-reserved-name")];
    let (s1, e1) = srv.post_h(&path, Some(&tok), &json!({"subdomain": "www"}), &rkey);
    let (s2, e2) = srv.post_h(&path, Some(&tok), &json!({"subdomain": "www"}), &rkey);
    assert_eq!(s1, 409, "{e1}");
    assert_eq!((s2, e2), (s1, e1));
}

// ------------------------------------------------------------------------------------------
// commit
// ------------------------------------------------------------------------------------------

fn commit_shape_and_retry(b: Backend) {
    let srv = srv!(b);
    let tok = srv.admin_token();
    let (st, r) = srv.post(
        &format!("{P}/reserve"),
        Some(&tok),
        &json!({"subdomain": "acme", "createdBy": "bob"}),
    );
    assert_eq!(st, 201, "{r}");
    let rtok = r["reservationToken"].as_str().unwrap().to_string();
    let (st, c) = srv.commit(
        "example.test",
        "acme",
        &rtok,
        "192.0.2.10",
        Some("192.0.2.20"),
    );
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["poolDomain"], "example.test", "{c}");
    assert_eq!(c["subdomain"], "acme", "{c}");
    assert_eq!(c["state"], "active", "{c}");
    assert_eq!(c["createdBy"], "bob", "{c}");
    assert_eq!(c["sovereignFQDN"], "acme.example.test", "{c}");
    assert_eq!(c["loadBalancerIP"], "192.0.2.10", "{c}");
    assert_eq!(c["consoleLoadBalancerIP"], "192.0.2.20", "{c}");
    let at = assert_rfc3339_utc(&c["reservedAt"]);
    assert_eq!(
        at,
        assert_rfc3339_utc(&r["reservedAt"]),
        "reservedAt kept from reserve: {c}"
    );
    assert!(
        !contains_key_deep(&c, "reservationToken"),
        "commit must not echo the token: {c}"
    );
    assert!(
        c.get("expiresAt").map(|v| v.is_null()).unwrap_or(true),
        "active allocation has no expiry: {c}"
    );

    // Retry with the same token: 200, identical body.
    let (st, c2) = srv.commit(
        "example.test",
        "acme",
        &rtok,
        "192.0.2.10",
        Some("192.0.2.20"),
    );
    assert_eq!(st, 200, "{c2}");
    assert_eq!(c2, c, "commit retry must return the same body");

    // A different token on an active allocation: 403.
    let (st, e) = srv.commit(
        "example.test",
        "acme",
        &uuid::Uuid::new_v4().to_string(),
        "192.0.2.10",
        None,
    );
    assert_error(st, &e, 403, "token-mismatch");
    let (st, e) = srv.commit("example.test", "acme", "not-a-uuid", "192.0.2.10", None);
    assert_error(st, &e, 403, "token-mismatch");

    // The list reports it active, with the LB IP, no token.
    let (_, l) = srv.get(&format!("{P}/list"), Some(&tok));
    assert_eq!(l["allocations"][0]["state"], "active", "{l}");
    assert_eq!(l["allocations"][0]["loadBalancerIP"], "192.0.2.10", "{l}");
}

fn commit_without_optional_fields(b: Backend) {
    let srv = srv!(b);
    let tok = srv.admin_token();
    let rtok = srv.reserve_ok("example.test", "acme");
    let body =
        json!({"subdomain": "acme", "reservationToken": rtok, "loadBalancerIP": "192.0.2.10"});
    let (st, c) = srv.post(&format!("{P}/commit"), Some(&tok), &body);
    assert_eq!(st, 200, "{c}");
    assert_eq!(
        c["sovereignFQDN"], "acme.example.test",
        "default sovereignFQDN is sub.pool: {c}"
    );
    assert!(
        c.get("consoleLoadBalancerIP")
            .map(|v| v.is_null())
            .unwrap_or(true),
        "no console IP given: {c}"
    );
    // IPv6 load balancer is accepted.
    let rtok = srv.reserve_ok("example.test", "six");
    let (st, c) = srv.commit(
        "example.test",
        "six",
        &rtok,
        "2001:db8::10",
        Some("2001:db8::20"),
    );
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["loadBalancerIP"], "2001:db8::10", "{c}");
}

fn commit_wrong_token_on_reserved(b: Backend) {
    let srv = srv!(b);
    let rtok = srv.reserve_ok("example.test", "acme");
    let (st, e) = srv.commit(
        "example.test",
        "acme",
        &uuid::Uuid::new_v4().to_string(),
        "192.0.2.10",
        None,
    );
    assert_error(st, &e, 403, "token-mismatch");
    let (_, c) = srv.get(&format!("{P}/check?sub=acme"), None);
    assert_eq!(
        c["reason"], "reserved-state",
        "a refused commit leaves the reservation: {c}"
    );
    let (st, c) = srv.commit("example.test", "acme", &rtok, "192.0.2.10", None);
    assert_eq!(st, 200, "{c}");
}

fn commit_not_found(b: Backend) {
    let srv = srv!(b);
    let (st, e) = srv.commit(
        "example.test",
        "ghost",
        &uuid::Uuid::new_v4().to_string(),
        "192.0.2.10",
        None,
    );
    assert_error(st, &e, 404, "not-found");
    // A token from another name does not help.
    let other = srv.reserve_ok("example.test", "acme");
    let (st, e) = srv.commit("example.test", "ghost", &other, "192.0.2.10", None);
    assert_error(st, &e, 404, "not-found");
}

fn commit_expired(b: Backend) {
    let srv = srv!(b);
    let rtok = srv.reserve_ok("expiring.test", "acme");
    std::thread::sleep(Duration::from_millis(2100));
    let (st, e) = srv.commit("expiring.test", "acme", &rtok, "192.0.2.10", None);
    assert_error(st, &e, 410, "reservation-expired");
    // The expired reservation no longer blocks the name.
    let (_, c) = srv.get("/api/v1/pool/expiring.test/check?sub=acme", None);
    assert_eq!(
        c["available"], true,
        "expired reservation frees the name: {c}"
    );
    let (st, r) = srv.reserve("expiring.test", "acme");
    assert_eq!(st, 201, "{r}");
    assert_ne!(
        r["reservationToken"].as_str(),
        Some(rtok.as_str()),
        "new reservation, new token"
    );
    let new_tok = r["reservationToken"].as_str().unwrap().to_string();
    let (st, c) = srv.commit("expiring.test", "acme", &new_tok, "192.0.2.10", None);
    assert_eq!(st, 200, "commit within the TTL: {c}");
    // Active allocations never expire.
    std::thread::sleep(Duration::from_millis(1500));
    let (_, c) = srv.get("/api/v1/pool/expiring.test/check?sub=acme", None);
    assert_eq!(c["reason"], "active-state", "{c}");
}

fn commit_unprocessable(b: Backend) {
    let srv = srv!(b);
    let tok = srv.admin_token();
    let rtok = srv.reserve_ok("example.test", "acme");
    let path = format!("{P}/commit");
    let base = json!({"subdomain": "acme", "reservationToken": rtok, "sovereignFQDN": "acme.example.test", "loadBalancerIP": "192.0.2.10"});
    let with = |k: &str, v: Value| {
        let mut x = base.clone();
        x[k] = v;
        x
    };
    let without = |k: &str| {
        let mut x = base.clone();
        x.as_object_mut().unwrap().remove(k);
        x
    };
    let cases: Vec<(Value, &str)> = vec![
        (without("loadBalancerIP"), "missing-lb-ip"),
        (with("loadBalancerIP", json!("")), "missing-lb-ip"),
        (with("loadBalancerIP", json!("not-an-ip")), "invalid-lb-ip"),
        (with("loadBalancerIP", json!("999.1.1.1")), "invalid-lb-ip"),
        (
            with("loadBalancerIP", json!("192.0.2.10/24")),
            "invalid-lb-ip",
        ),
        (
            with("consoleLoadBalancerIP", json!("nope")),
            "invalid-console-lb-ip",
        ),
        (
            with("sovereignFQDN", json!("other.example.test")),
            "fqdn-mismatch",
        ),
        (
            with("sovereignFQDN", json!("acme.other.test")),
            "fqdn-mismatch",
        ),
        (with("subdomain", json!("-acme")), "invalid-format"),
    ];
    for (body, code) in cases {
        let (st, e) = srv.post(&path, Some(&tok), &body);
        assert_error(st, &e, 422, code);
    }
    let (st, e) = srv.post("/api/v1/pool/nope.test/commit", Some(&tok), &base);
    assert_error(st, &e, 422, "unsupported-pool");
    // The reservation survived every refused commit.
    let (_, c) = srv.get(&format!("{P}/check?sub=acme"), None);
    assert_eq!(c["reason"], "reserved-state", "{c}");
    let (st, c) = srv.post(&path, Some(&tok), &base);
    assert_eq!(st, 200, "{c}");
}

// ------------------------------------------------------------------------------------------
// list
// ------------------------------------------------------------------------------------------

fn list_allocations(b: Backend) {
    let srv = srv!(b);
    let tok = srv.admin_token();
    srv.reserve_ok("example.test", "zulu");
    srv.allocate("example.test", "alpha", "192.0.2.1", None);
    srv.reserve_ok("example.test", "mike");
    srv.allocate("example.test", "gone", "192.0.2.2", None);
    let (st, r) = srv.release("example.test", "gone");
    assert_eq!(st, 200, "{r}");
    srv.reserve_ok("other.test", "elsewhere");

    let (st, l) = srv.get(&format!("{P}/list"), Some(&tok));
    assert_eq!(st, 200, "{l}");
    assert_eq!(l["poolDomain"], "example.test", "{l}");
    let allocs = l["allocations"].as_array().expect("allocations array");
    let subs: Vec<&str> = allocs
        .iter()
        .map(|a| a["subdomain"].as_str().unwrap())
        .collect();
    assert_eq!(
        subs,
        vec!["alpha", "mike", "zulu"],
        "reserved + active, ordered, released excluded: {l}"
    );
    let states: Vec<&str> = allocs
        .iter()
        .map(|a| a["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["active", "reserved", "reserved"], "{l}");
    for a in allocs {
        assert_eq!(a["poolDomain"], "example.test", "{a}");
    }
    assert!(
        !contains_key_deep(&l, "reservationToken"),
        "list must never contain a token: {l}"
    );

    let scoped = srv.token_with_scope("pool:example.test");
    let (st, l2) = srv.get(&format!("{P}/list"), Some(&scoped));
    assert_eq!(st, 200, "{l2}");
    assert_eq!(l2, l);

    let (st, e) = srv.get("/api/v1/pool/nope.test/list", Some(&tok));
    assert_error(st, &e, 422, "unsupported-pool");
}

// ------------------------------------------------------------------------------------------
// release
// ------------------------------------------------------------------------------------------

fn release_via_body_and_query(b: Backend) {
    let srv = srv!(b);
    let tok = srv.admin_token();
    srv.allocate("example.test", "acme", "192.0.2.10", None);
    let (st, r) = srv.delete(
        &format!("{P}/release"),
        Some(&tok),
        Some(&json!({"subdomain": "acme"})),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["freed"]["subdomain"], "acme", "{r}");
    assert_eq!(r["freed"]["poolDomain"], "example.test", "{r}");
    assert_eq!(r["freed"]["state"], "released", "{r}");
    assert!(!contains_key_deep(&r, "reservationToken"), "{r}");
    let (st, e) = srv.delete(
        &format!("{P}/release"),
        Some(&tok),
        Some(&json!({"subdomain": "acme"})),
    );
    assert_error(st, &e, 404, "not-found");
    let (_, c) = srv.get(&format!("{P}/check?sub=acme"), None);
    assert_eq!(c["available"], true, "{c}");

    // ?sub= form, on a reservation that was never committed.
    srv.reserve_ok("example.test", "beta");
    let (st, r) = srv.delete(&format!("{P}/release?sub=beta"), Some(&tok), None);
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["freed"]["subdomain"], "beta", "{r}");
    assert_eq!(r["freed"]["state"], "released", "{r}");
    let (st, e) = srv.delete(&format!("{P}/release?sub=beta"), Some(&tok), None);
    assert_error(st, &e, 404, "not-found");

    // A released name can be reserved and committed again.
    let rtok = srv.reserve_ok("example.test", "acme");
    let (st, c) = srv.commit("example.test", "acme", &rtok, "192.0.2.11", None);
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["loadBalancerIP"], "192.0.2.11", "{c}");
}

fn release_unprocessable(b: Backend) {
    let srv = srv!(b);
    let tok = srv.admin_token();
    let (st, e) = srv.delete(
        &format!("{P}/release"),
        Some(&tok),
        Some(&json!({"subdomain": "-bad"})),
    );
    assert_error(st, &e, 422, "invalid-format");
    let (st, e) = srv.delete(&format!("{P}/release?sub=a_b"), Some(&tok), None);
    assert_error(st, &e, 422, "invalid-format");
    let (st, e) = srv.delete(
        "/api/v1/pool/nope.test/release",
        Some(&tok),
        Some(&json!({"subdomain": "acme"})),
    );
    assert_error(st, &e, 422, "unsupported-pool");
    let (st, e) = srv.delete(
        &format!("{P}/release"),
        Some(&tok),
        Some(&json!({"subdomain": "never"})),
    );
    assert_error(st, &e, 404, "not-found");
}

fn release_by_fqdn(b: Backend) {
    let srv = srv!(b);
    let tok = srv.admin_token();
    srv.allocate("example.test", "acme", "192.0.2.10", None);
    let (st, r) = srv.post(
        "/api/v1/release",
        Some(&tok),
        &json!({"sovereignFQDN": "acme.example.test"}),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["sovereignFQDN"], "acme.example.test", "{r}");
    assert_eq!(r["freed"]["subdomain"], "acme", "{r}");
    assert_eq!(r["freed"]["state"], "released", "{r}");
    assert_rfc3339_utc(&r["releasedAt"]);
    let (_, c) = srv.get(&format!("{P}/check?sub=acme"), None);
    assert_eq!(c["available"], true, "{c}");

    let (st, e) = srv.post(
        "/api/v1/release",
        Some(&tok),
        &json!({"sovereignFQDN": "acme.example.test"}),
    );
    assert_error(st, &e, 404, "not-found");
    let (st, e) = srv.post(
        "/api/v1/release",
        Some(&tok),
        &json!({"sovereignFQDN": "acme.customer-owned.test"}),
    );
    assert_error(st, &e, 404, "not-managed");
    for bad in ["nodot", ".example.test", "acme."] {
        let (st, e) = srv.post(
            "/api/v1/release",
            Some(&tok),
            &json!({"sovereignFQDN": bad}),
        );
        assert_error(st, &e, 422, "invalid-fqdn");
    }
    // Reserved-only allocations are released too.
    srv.reserve_ok("other.test", "beta");
    let (st, r) = srv.post(
        "/api/v1/release",
        Some(&tok),
        &json!({"sovereignFQDN": "beta.other.test"}),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["freed"]["poolDomain"], "other.test", "{r}");
}

backend_tests!(
    with_powerdns:
    health_endpoints,
    reserved_list,
    check_available,
    check_invalid_format,
    check_unsupported_pool,
    check_reserved_name,
    check_reserved_then_active_state,
    check_public_vs_private,
    reserve_created_shape,
    reserve_conflict,
    reserve_reserved_name,
    reserve_unprocessable,
    malformed_json,
    oversized_body,
    auth_required_for_writes,
    idempotency_key,
    commit_shape_and_retry,
    commit_without_optional_fields,
    commit_wrong_token_on_reserved,
    commit_not_found,
    commit_expired,
    commit_unprocessable,
    list_allocations,
    release_via_body_and_query,
    release_unprocessable,
    release_by_fqdn,
);
