//! End-to-end allocation lifecycle against the real binary: concurrency, crash safety (kill -9),
//! and the DNS effects of commit/release as seen by a UDP client. Both stores (`sqlite::x`,
//! `postgres::x`) and the PowerDNS zone backend (`powerdns::x`: DNS is asked of `pdns_server`).

#[macro_use]
mod common;
use common::*;
use hickory_proto::rr::RecordType;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const POOL: &str = "example.test";
const P: &str = "/api/v1/pool/example.test";
/// DNS changes must be visible within this long after the HTTP answer.
const DNS_DEADLINE: Duration = Duration::from_secs(1);

fn start(b: Backend) -> Option<PdmServer> {
    PdmServer::start(b, Config::default_test())
}

macro_rules! srv {
    ($b:expr) => {
        match start($b) {
            Some(s) => s,
            None => return,
        }
    };
}

fn strip_dot(s: &str) -> String {
    s.trim_end_matches('.').to_lowercase()
}

/// Poll `dig name qtype` until `ok` holds, for at most `DNS_DEADLINE`; panic with the last answer.
#[track_caller]
fn dns_eventually(
    srv: &PdmServer,
    name: &str,
    qtype: RecordType,
    what: &str,
    ok: impl Fn(&DigResult) -> bool,
) -> DigResult {
    let start = Instant::now();
    let mut last = None;
    let hit = wait_for(DNS_DEADLINE, || {
        let r = srv.dig(name, qtype);
        let good = ok(&r);
        last = Some(r);
        good
    });
    let last = last.expect("at least one query");
    assert!(
        hit,
        "{what}: `{name} {qtype}` not as expected within {:?} (waited {:?}); last answer:\n{last}",
        DNS_DEADLINE,
        start.elapsed()
    );
    last
}

/// Authoritative answer whose `qtype` RDATA set (ignoring order) is exactly `want`.
fn answers_exactly(r: &DigResult, qtype: RecordType, want: &[&str]) -> bool {
    let mut got: Vec<String> = r.answer_data(qtype).iter().map(|s| strip_dot(s)).collect();
    got.sort();
    let mut w: Vec<String> = want.iter().map(|s| strip_dot(s)).collect();
    w.sort();
    r.rcode == "NOERROR" && r.aa && got == w
}

/// NXDOMAIN answered authoritatively by the pool zone (SOA of the pool in authority, no child NS).
fn nxdomain_from_pool(r: &DigResult, child: &str) -> bool {
    let soa_owner_is_pool = r
        .authority_of(RecordType::SOA)
        .iter()
        .any(|s| strip_dot(&s.name) == POOL);
    let child_ns = r
        .authority_rrs
        .iter()
        .any(|x| x.rtype == RecordType::NS && strip_dot(&x.name) == child);
    r.rcode == "NXDOMAIN" && r.aa && soa_owner_is_pool && !child_ns && r.answer_rrs.is_empty()
}

/// Owners of NS records in `pdm zone export <zone>` output (absolute, lower-case, no trailing dot).
fn exported_ns_owners(srv: &PdmServer, zone: &str) -> Vec<String> {
    let out = srv.cli(&["zone", "export", zone]);
    assert!(out.success(), "pdm zone export {zone} failed: {out:?}");
    let mut origin = format!("{zone}.");
    let mut last_owner = origin.clone();
    let mut owners = Vec::new();
    for line in out.stdout.lines() {
        let line = line.split(';').next().unwrap_or("");
        if line.trim().is_empty() {
            continue;
        }
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks[0].eq_ignore_ascii_case("$ORIGIN") {
            if let Some(o) = toks.get(1) {
                origin = o.to_string();
            }
            continue;
        }
        if toks[0].starts_with('$') {
            continue;
        }
        let owner = if line.starts_with(' ') || line.starts_with('\t') {
            last_owner.clone()
        } else if toks[0] == "@" {
            origin.clone()
        } else if toks[0].ends_with('.') {
            toks[0].to_string()
        } else {
            format!("{}.{}", toks[0], origin)
        };
        last_owner = owner.clone();
        if toks.iter().skip(1).any(|t| t.eq_ignore_ascii_case("NS")) {
            owners.push(strip_dot(&owner));
        }
    }
    owners
}

// ------------------------------------------------------------------------------------------

fn concurrent_reserve_single_winner(b: Backend) {
    let srv = srv!(b);
    let tok = srv.admin_token();
    const N: usize = 50;
    let barrier = Arc::new(Barrier::new(N));
    let results: Vec<(u16, Value)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..N)
            .map(|_| {
                let barrier = barrier.clone();
                let srv = &srv;
                let tok = &tok;
                s.spawn(move || {
                    barrier.wait();
                    srv.post(
                        &format!("{P}/reserve"),
                        Some(tok),
                        &json!({"subdomain": "contested"}),
                    )
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(st, _)| *st == 201)
        .map(|(_, b)| b)
        .collect();
    let others: Vec<&(u16, Value)> = results.iter().filter(|(st, _)| *st != 201).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one 201 expected; statuses: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    for (st, body) in &others {
        assert_error(*st, body, 409, "conflict");
    }
    // The winner's token is the one that commits.
    let wtok = winners[0]["reservationToken"].as_str().unwrap();
    let (st, c) = srv.commit(POOL, "contested", wtok, "192.0.2.10", None);
    assert_eq!(st, 200, "{c}");
    let (_, l) = srv.get(&format!("{P}/list"), Some(&tok));
    assert_eq!(l["allocations"].as_array().map(|a| a.len()), Some(1), "{l}");
}

fn concurrent_reserves_of_distinct_names_all_succeed(b: Backend) {
    let srv = srv!(b);
    let tok = srv.admin_token();
    const N: usize = 50;
    let barrier = Arc::new(Barrier::new(N));
    let results: Vec<(usize, u16, Value)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..N)
            .map(|i| {
                let barrier = barrier.clone();
                let srv = &srv;
                let tok = &tok;
                s.spawn(move || {
                    barrier.wait();
                    let (st, b) = srv.post(
                        &format!("{P}/reserve"),
                        Some(tok),
                        &json!({"subdomain": format!("n{i}")}),
                    );
                    (i, st, b)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, st, body) in &results {
        assert_eq!(*st, 201, "n{i}: {body}");
    }
    let (_, l) = srv.get(&format!("{P}/list"), Some(&tok));
    assert_eq!(l["allocations"].as_array().map(|a| a.len()), Some(N), "{l}");
}

fn reservation_survives_kill9(b: Backend) {
    let mut srv = srv!(b);
    let rtok = srv.reserve_ok(POOL, "acme");
    srv.kill9();
    srv.restart();
    let (_, c) = srv.get(&format!("{P}/check?sub=acme"), None);
    assert_eq!(
        c["reason"], "reserved-state",
        "reservation must survive kill -9: {c}"
    );
    let (st, c1) = srv.commit(POOL, "acme", &rtok, "192.0.2.10", None);
    assert_eq!(st, 200, "commit with the pre-crash token: {c1}");
    dns_eventually(
        &srv,
        "acme.example.test",
        RecordType::A,
        "apex A after commit",
        |r| answers_exactly(r, RecordType::A, &["192.0.2.10"]),
    );

    // Crash again: the active allocation and its zone come back from the store.
    srv.kill9();
    srv.restart();
    dns_eventually(
        &srv,
        "www.acme.example.test",
        RecordType::A,
        "wildcard after restart",
        |r| answers_exactly(r, RecordType::A, &["192.0.2.10"]),
    );
    let (st, c2) = srv.commit(POOL, "acme", &rtok, "192.0.2.10", None);
    assert_eq!(st, 200, "{c2}");
    assert_eq!(c2, c1, "commit retry after restart returns the same body");
    // Tokens survive restarts too (admin token cached from before the crash).
    let (st, l) = srv.get(&format!("{P}/list"), Some(&srv.admin_token()));
    assert_eq!(st, 200, "{l}");
    assert_eq!(l["allocations"][0]["state"], "active", "{l}");
}

fn commit_publishes_dns(b: Backend) {
    let srv = srv!(b);
    // The pool zone itself is served.
    let soa = srv.dig("example.test", RecordType::SOA);
    assert!(
        soa.rcode == "NOERROR" && soa.aa && soa.answer_data(RecordType::SOA).len() == 1,
        "pool SOA:\n{soa}"
    );
    let ns = srv.dig("example.test", RecordType::NS);
    assert!(
        answers_exactly(
            &ns,
            RecordType::NS,
            &["ns1.example.test", "ns2.example.test"]
        ),
        "pool NS:\n{ns}"
    );
    let glue = srv.dig("ns1.example.test", RecordType::A);
    assert!(
        answers_exactly(&glue, RecordType::A, &["127.0.0.1"]),
        "nameserver address in the pool zone:\n{glue}"
    );

    let rtok = srv.reserve_ok(POOL, "acme");
    // Reserved only: nothing published yet.
    let r = srv.dig("acme.example.test", RecordType::A);
    assert!(
        nxdomain_from_pool(&r, "acme.example.test"),
        "reserved (not committed) name must not resolve:\n{r}"
    );

    let (st, c) = srv.commit(POOL, "acme", &rtok, "192.0.2.10", Some("192.0.2.20"));
    assert_eq!(st, 200, "{c}");
    let lb = ["192.0.2.10"];
    let console = ["192.0.2.20"];
    dns_eventually(
        &srv,
        "acme.example.test",
        RecordType::A,
        "child apex A",
        |r| answers_exactly(r, RecordType::A, &lb),
    );
    for (name, want) in [
        ("www.acme.example.test", &lb),
        ("anything-else.acme.example.test", &lb),
        ("gitea.acme.example.test", &lb),
        ("harbor.acme.example.test", &lb),
        ("console.acme.example.test", &console),
        ("api.acme.example.test", &console),
        ("marketplace.acme.example.test", &console),
    ] {
        dns_eventually(&srv, name, RecordType::A, "template record", |r| {
            answers_exactly(r, RecordType::A, want)
        });
    }
    let a = srv.dig("acme.example.test", RecordType::A);
    assert!(
        a.answer_rrs.iter().all(|r| r.ttl == 300),
        "template TTL 300:\n{a}"
    );
    // The child zone has its own SOA and NS (the configured nameservers).
    let soa = srv.dig("acme.example.test", RecordType::SOA);
    assert!(
        soa.rcode == "NOERROR"
            && soa.aa
            && soa
                .answer_rrs
                .iter()
                .any(|r| r.rtype == RecordType::SOA && strip_dot(&r.name) == "acme.example.test"),
        "child SOA:\n{soa}"
    );
    let ns = srv.dig("acme.example.test", RecordType::NS);
    assert!(
        answers_exactly(
            &ns,
            RecordType::NS,
            &["ns1.example.test", "ns2.example.test"]
        ),
        "child NS:\n{ns}"
    );
    // No AAAA for an IPv4 LB: NODATA, not NXDOMAIN.
    let aaaa = srv.dig("acme.example.test", RecordType::AAAA);
    assert!(
        aaaa.rcode == "NOERROR" && aaaa.aa && aaaa.answer_data(RecordType::AAAA).is_empty(),
        "AAAA NODATA:\n{aaaa}"
    );

    // The pool zone holds the delegation (NS at acme.example.test).
    let owners = exported_ns_owners(&srv, POOL);
    assert!(
        owners.iter().any(|o| o == "acme.example.test"),
        "pool zone must delegate acme.example.test; NS owners in export: {owners:?}"
    );
}

/// RFC 4035 §3.1.4.1: a server authoritative for both sides of a cut answers DS from the parent.
/// This is the only way to see the pool zone's side of the cut over DNS from the same server.
fn child_ds_query_answered_by_pool_zone(b: Backend) {
    let srv = srv!(b);
    srv.allocate(POOL, "acme", "192.0.2.10", None);
    dns_eventually(
        &srv,
        "acme.example.test",
        RecordType::A,
        "child apex A",
        |r| answers_exactly(r, RecordType::A, &["192.0.2.10"]),
    );
    let ds = srv.dig("acme.example.test", RecordType::DS);
    let from_parent_nodata = ds.answer_rrs.is_empty()
        && ds
            .authority_of(RecordType::SOA)
            .iter()
            .any(|s| strip_dot(&s.name) == POOL);
    let ds_answer = !ds.answer_data(RecordType::DS).is_empty();
    assert!(
        ds.rcode == "NOERROR" && ds.aa && (from_parent_nodata || ds_answer),
        "DS must be answered from the pool zone:\n{ds}"
    );
}

fn commit_without_console_ip_points_everything_at_lb(b: Backend) {
    let srv = srv!(b);
    srv.allocate(POOL, "acme", "192.0.2.30", None);
    for name in [
        "acme.example.test",
        "console.acme.example.test",
        "api.acme.example.test",
        "www.acme.example.test",
    ] {
        dns_eventually(&srv, name, RecordType::A, "no console IP", |r| {
            answers_exactly(r, RecordType::A, &["192.0.2.30"])
        });
    }
}

fn commit_ipv6_publishes_aaaa(b: Backend) {
    let srv = srv!(b);
    srv.allocate(POOL, "six", "2001:db8::10", Some("2001:db8::20"));
    dns_eventually(
        &srv,
        "six.example.test",
        RecordType::AAAA,
        "apex AAAA",
        |r| answers_exactly(r, RecordType::AAAA, &["2001:db8::10"]),
    );
    dns_eventually(
        &srv,
        "www.six.example.test",
        RecordType::AAAA,
        "wildcard AAAA",
        |r| answers_exactly(r, RecordType::AAAA, &["2001:db8::10"]),
    );
    dns_eventually(
        &srv,
        "console.six.example.test",
        RecordType::AAAA,
        "console AAAA",
        |r| answers_exactly(r, RecordType::AAAA, &["2001:db8::20"]),
    );
    let a = srv.dig("six.example.test", RecordType::A);
    assert!(
        a.rcode == "NOERROR" && a.answer_data(RecordType::A).is_empty(),
        "no A for an IPv6 LB:\n{a}"
    );
}

fn release_removes_dns_and_delegation(b: Backend) {
    let srv = srv!(b);
    srv.allocate(POOL, "acme", "192.0.2.10", Some("192.0.2.20"));
    srv.allocate(POOL, "keep", "192.0.2.40", None);
    dns_eventually(
        &srv,
        "acme.example.test",
        RecordType::A,
        "child apex A",
        |r| answers_exactly(r, RecordType::A, &["192.0.2.10"]),
    );

    let (st, r) = srv.release(POOL, "acme");
    assert_eq!(st, 200, "{r}");
    for name in [
        "acme.example.test",
        "www.acme.example.test",
        "console.acme.example.test",
    ] {
        dns_eventually(&srv, name, RecordType::A, "after release", |r| {
            nxdomain_from_pool(r, "acme.example.test")
        });
    }
    let ns = srv.dig("acme.example.test", RecordType::NS);
    assert!(
        nxdomain_from_pool(&ns, "acme.example.test"),
        "no delegation may remain:\n{ns}"
    );
    let owners = exported_ns_owners(&srv, POOL);
    assert!(
        !owners.iter().any(|o| o == "acme.example.test"),
        "delegation left in pool zone export: {owners:?}"
    );
    assert!(
        owners.iter().any(|o| o == "keep.example.test"),
        "the other delegation must stay: {owners:?}"
    );
    // The other allocation is untouched.
    let k = srv.dig("www.keep.example.test", RecordType::A);
    assert!(answers_exactly(&k, RecordType::A, &["192.0.2.40"]), "{k}");

    // Release by FQDN removes DNS as well.
    let (st, r) = srv.post(
        "/api/v1/release",
        Some(&srv.admin_token()),
        &json!({"sovereignFQDN": "keep.example.test"}),
    );
    assert_eq!(st, 200, "{r}");
    dns_eventually(
        &srv,
        "keep.example.test",
        RecordType::A,
        "after release by fqdn",
        |r| nxdomain_from_pool(r, "keep.example.test"),
    );
}

fn release_of_reservation_only_leaves_nothing(b: Backend) {
    let srv = srv!(b);
    srv.reserve_ok(POOL, "acme");
    let (st, r) = srv.release(POOL, "acme");
    assert_eq!(st, 200, "{r}");
    let d = srv.dig("acme.example.test", RecordType::A);
    assert!(nxdomain_from_pool(&d, "acme.example.test"), "{d}");
    let owners = exported_ns_owners(&srv, POOL);
    assert!(
        !owners.iter().any(|o| o == "acme.example.test"),
        "{owners:?}"
    );
}

fn recommit_after_release(b: Backend) {
    let srv = srv!(b);
    srv.allocate(POOL, "acme", "192.0.2.10", None);
    dns_eventually(
        &srv,
        "acme.example.test",
        RecordType::A,
        "first commit",
        |r| answers_exactly(r, RecordType::A, &["192.0.2.10"]),
    );
    let (st, r) = srv.release(POOL, "acme");
    assert_eq!(st, 200, "{r}");
    dns_eventually(
        &srv,
        "acme.example.test",
        RecordType::A,
        "after release",
        |r| nxdomain_from_pool(r, "acme.example.test"),
    );

    let rtok = srv.reserve_ok(POOL, "acme");
    let (st, c) = srv.commit(POOL, "acme", &rtok, "192.0.2.99", None);
    assert_eq!(st, 200, "{c}");
    dns_eventually(
        &srv,
        "acme.example.test",
        RecordType::A,
        "second commit, new IP only",
        |r| answers_exactly(r, RecordType::A, &["192.0.2.99"]),
    );
    dns_eventually(
        &srv,
        "www.acme.example.test",
        RecordType::A,
        "second commit wildcard",
        |r| answers_exactly(r, RecordType::A, &["192.0.2.99"]),
    );
    let owners = exported_ns_owners(&srv, POOL);
    assert_eq!(
        owners.iter().filter(|o| *o == "acme.example.test").count(),
        2,
        "one delegation (2 NS records) after re-commit: {owners:?}"
    );
}

fn names_outside_every_zone_are_refused(b: Backend) {
    let srv = srv!(b);
    let r = srv.dig("nothing.invalid", RecordType::A);
    assert_eq!(r.rcode, "REFUSED", "{r}");
    assert!(!r.aa, "{r}");
}

backend_tests!(
    with_powerdns:
    concurrent_reserve_single_winner,
    concurrent_reserves_of_distinct_names_all_succeed,
    reservation_survives_kill9,
    commit_publishes_dns,
    child_ds_query_answered_by_pool_zone,
    commit_without_console_ip_points_everything_at_lb,
    commit_ipv6_publishes_aaaa,
    release_removes_dns_and_delegation,
    release_of_reservation_only_leaves_nothing,
    recommit_after_release,
    names_outside_every_zone_are_refused,
);
