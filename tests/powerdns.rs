//! `[backend] kind = "powerdns"` against a real `pdns_server` 4.7 (gsqlite3, DNSSEC) on
//! loopback: the pool API scenarios, DNS answers and DNSSEC validation through the DS pdm
//! wrote, PowerDNS or pdm going away mid-operation, and `pdm reconcile`.

#[macro_use]
mod common;

use common::pdns::PdnsServer;
use common::validators::{delv, have_tools};
use common::*;
use hickory_proto::rr::RecordType;
use std::time::Duration;

const POOL: &str = "example.test";

/// pdm on `b` with the PowerDNS backend pointed at `pdns` (fast retries for the tests).
fn pdm_on(b: Backend, pdns: &PdnsServer, extra: &str) -> Option<PdmServer> {
    let cfg = Config::default_test().extra(extra).on_powerdns(pdns);
    PdmServer::start(b, cfg)
}

macro_rules! setup {
    ($b:expr) => {
        setup!($b, "")
    };
    ($b:expr, $extra:expr) => {{
        let Some(pdns) = PdnsServer::start_for_backend() else {
            return;
        };
        let Some(srv) = pdm_on($b, &pdns, $extra) else {
            return;
        };
        (pdns, srv)
    }};
}

fn answers(pdns: &PdnsServer, name: &str, t: RecordType) -> Vec<String> {
    dig_at(pdns.dns_addr, name, t)
        .unwrap_or_else(|e| panic!("dig {name}: {e}"))
        .answer_data(t)
}

fn op_status(v: &Value) -> String {
    v["operation"]["status"].as_str().unwrap_or("").to_string()
}

fn listed(srv: &PdmServer, sub: &str) -> Option<Value> {
    let (st, l) = srv.get(
        &format!("/api/v1/pool/{POOL}/list"),
        Some(&srv.admin_token()),
    );
    assert_eq!(st, 200, "{l}");
    l["allocations"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["subdomain"] == sub).cloned())
}

fn rrset(pdns: &PdnsServer, zone: &str, name: &str, t: &str) -> Vec<String> {
    let (st, z) = pdns.api("GET", &format!("/zones/{zone}."), None);
    assert_eq!(st, 200, "{z}");
    z["rrsets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == name && r["type"] == t)
        .flat_map(|r| r["records"].as_array().cloned().unwrap_or_default())
        .map(|r| r["content"].as_str().unwrap_or("").to_string())
        .collect()
}

/// reserve → commit (done inline) → retry → DNS + DNSSEC via PowerDNS → release → re-use.
fn pool_cycle_on_powerdns(b: Backend) {
    let (pdns, srv) = setup!(b);
    // The pool zone was created and secured at start.
    let (st, z) = pdns.api("GET", &format!("/zones/{POOL}."), None);
    assert_eq!(st, 200, "pool zone missing: {z}\n{}", srv.log());
    assert_eq!(z["nsec3param"], "1 0 0 -", "{z}");
    assert!(!pdns.ds_lines(POOL).is_empty());

    let tok = srv.reserve_ok(POOL, "acme");
    let (st, c) = srv.commit(POOL, "acme", &tok, "192.0.2.10", Some("192.0.2.20"));
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["state"], "active");
    assert_eq!(op_status(&c), "done", "{c}\n{}", srv.log());
    // A retried commit answers the same, with the same operation.
    let (st2, c2) = srv.commit(POOL, "acme", &tok, "192.0.2.10", Some("192.0.2.20"));
    assert_eq!(st2, 200, "{c2}");
    assert_eq!(c2["operation"], c["operation"]);
    assert_eq!(c2["sovereignFQDN"], c["sovereignFQDN"]);
    // Conflict and wrong-token answers are unchanged by the backend.
    let (st, e) = srv.reserve(POOL, "acme");
    assert_error(st, &e, 409, "conflict");

    assert_eq!(
        answers(&pdns, "acme.example.test", RecordType::A),
        ["192.0.2.10"]
    );
    assert_eq!(
        answers(&pdns, "console.acme.example.test", RecordType::A),
        ["192.0.2.20"]
    );
    assert_eq!(
        answers(&pdns, "anything.acme.example.test", RecordType::A),
        ["192.0.2.10"]
    );
    let ds_pool = rrset(&pdns, POOL, "acme.example.test.", "DS");
    assert_eq!(ds_pool.len(), 1, "DS in the pool zone");
    assert_eq!(
        rrset(&pdns, POOL, "acme.example.test.", "NS").len(),
        2,
        "NS in the pool zone"
    );
    let (_, child) = pdns.api("GET", "/zones/acme.example.test.", None);
    assert_eq!(child["nsec3param"], "1 0 0 -", "{child}");

    if have_tools(&["delv"]) {
        let v = delv(
            pdns.dns_addr,
            &pdns.ds_lines(POOL),
            POOL,
            "harbor.acme.example.test",
            "A",
        );
        v.assert_secure_positive();
        let v = delv(
            pdns.dns_addr,
            &pdns.ds_lines(POOL),
            POOL,
            "nope.example.test",
            "A",
        );
        v.assert_secure_negative();
    }

    let listed_acme = listed(&srv, "acme").expect("acme listed");
    assert_eq!(listed_acme["operation"]["status"], "done");
    assert!(!contains_key_deep(&listed_acme, "reservationToken"));
    let id = c["operation"]["id"].as_i64().unwrap();
    let (st, op) = srv.get(
        &format!("/api/v1/operations/{id}"),
        Some(&srv.admin_token()),
    );
    assert_eq!(st, 200, "{op}");
    assert_eq!(op["status"], "done");
    assert!(!op.to_string().contains(common::pdns::API_KEY));

    let (st, r) = srv.release(POOL, "acme");
    assert_eq!(st, 200, "{r}");
    assert_eq!(op_status(&r), "done", "{r}");
    assert_eq!(r["operation"]["kind"], "pdns-release");
    let (st, _) = pdns.api("GET", "/zones/acme.example.test.", None);
    assert_eq!(st, 404, "child zone left behind");
    assert!(rrset(&pdns, POOL, "acme.example.test.", "NS").is_empty());
    assert!(rrset(&pdns, POOL, "acme.example.test.", "DS").is_empty());
    assert!(dig_at(pdns.dns_addr, "acme.example.test", RecordType::A)
        .unwrap()
        .is_nxdomain());

    // The name can be taken again, with new keys and a new DS.
    let body = srv.allocate(POOL, "acme", "192.0.2.11", None);
    assert_eq!(op_status(&body), "done", "{body}");
    assert_eq!(
        answers(&pdns, "console.acme.example.test", RecordType::A),
        ["192.0.2.11"]
    );
    let ds2 = rrset(&pdns, POOL, "acme.example.test.", "DS");
    assert_eq!(ds2.len(), 1);
    assert_ne!(
        ds2, ds_pool,
        "a re-committed child gets new keys and a new DS"
    );
}

/// Idempotency-Key replays and a LUA template record served by PowerDNS.
fn idempotency_and_lua_template(b: Backend) {
    let (pdns, srv) = setup!(
        b,
        "[[pools]]\ndomain = \"lua.test\"\n[[pools.template]]\nname = \"@\"\n[[pools.template]]\nname = \"all\"\ntype = \"LUA\"\nvalue = \"A \\\"all({'192.0.2.1','192.0.2.2'})\\\"\"\n"
    );
    let tok = srv.reserve_ok("lua.test", "shop");
    let body = json!({"subdomain": "shop", "reservationToken": tok, "loadBalancerIP": "192.0.2.9"});
    let t = srv.admin_token();
    let r1 = srv.post_h(
        "/api/v1/pool/lua.test/commit",
        Some(&t),
        &body,
        &[("Idempotency-Key", "k1")],
    );
    let r2 = srv.post_h(
        "/api/v1/pool/lua.test/commit",
        Some(&t),
        &body,
        &[("Idempotency-Key", "k1")],
    );
    assert_eq!(r1.0, 200, "{}", r1.1);
    assert_eq!(r1, r2);
    assert_eq!(op_status(&r1.1), "done", "{}", r1.1);
    let mut all = answers(&pdns, "all.shop.lua.test", RecordType::A);
    all.sort();
    assert_eq!(all, ["192.0.2.1", "192.0.2.2"]);
    assert_eq!(
        answers(&pdns, "shop.lua.test", RecordType::A),
        ["192.0.2.9"]
    );
}

/// PowerDNS down during commit → pending with the error; up again → done without a call.
fn powerdns_down_during_commit(b: Backend) {
    let (mut pdns, srv) = setup!(b);
    let tok = srv.reserve_ok(POOL, "late");
    pdns.stop_now();
    let (st, c) = srv.commit(POOL, "late", &tok, "192.0.2.30", None);
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["state"], "active");
    assert_eq!(op_status(&c), "pending", "{c}");
    assert!(
        c["operation"]["lastError"]
            .as_str()
            .unwrap_or("")
            .contains("unavailable"),
        "{c}"
    );
    let id = c["operation"]["id"].as_i64().unwrap();
    let (_, op) = srv.get(
        &format!("/api/v1/operations/{id}"),
        Some(&srv.admin_token()),
    );
    assert_eq!(op["status"], "pending", "{op}");
    pdns.start_again();
    let done = wait_for(Duration::from_secs(30), || {
        listed(&srv, "late").is_some_and(|a| a["operation"]["status"] == "done")
    });
    assert!(
        done,
        "operation did not complete\n{}",
        tail(&srv.log(), 4000)
    );
    assert_eq!(
        answers(&pdns, "gitea.late.example.test", RecordType::A),
        ["192.0.2.30"]
    );
    assert_eq!(rrset(&pdns, POOL, "late.example.test.", "DS").len(), 1);

    // Release while down: pending, then the zone and delegation go.
    pdns.stop_now();
    let (st, r) = srv.release(POOL, "late");
    assert_eq!(st, 200, "{r}");
    assert_eq!(op_status(&r), "pending", "{r}");
    pdns.start_again();
    let gone = wait_for(Duration::from_secs(30), || {
        pdns.api("GET", "/zones/late.example.test.", None).0 == 404
            && rrset(&pdns, POOL, "late.example.test.", "NS").is_empty()
    });
    assert!(gone, "release did not complete\n{}", tail(&srv.log(), 4000));
    assert!(
        !srv.log().contains(common::pdns::API_KEY),
        "the PowerDNS API key was logged"
    );
}

/// pdm killed with the operation pending → the restarted pdm completes it.
fn pdm_killed_mid_operation(b: Backend) {
    let (mut pdns, mut srv) = setup!(b);
    let tok = srv.reserve_ok(POOL, "crash");
    pdns.stop_now();
    let (st, c) = srv.commit(POOL, "crash", &tok, "192.0.2.40", None);
    assert_eq!((st, op_status(&c).as_str()), (200, "pending"), "{c}");
    srv.kill9();
    pdns.start_again();
    srv.restart();
    let done = wait_for(Duration::from_secs(30), || {
        listed(&srv, "crash").is_some_and(|a| a["operation"]["status"] == "done")
    });
    assert!(
        done,
        "not completed after restart\n{}",
        tail(&srv.log(), 4000)
    );
    assert_eq!(
        answers(&pdns, "crash.example.test", RecordType::A),
        ["192.0.2.40"]
    );
}

/// The attempt history of operation `id`, newest first.
fn history(srv: &PdmServer, id: i64) -> Vec<Value> {
    let (st, op) = srv.get(
        &format!("/api/v1/operations/{id}"),
        Some(&srv.admin_token()),
    );
    assert_eq!(st, 200, "{op}");
    op["history"].as_array().cloned().unwrap_or_default()
}

/// Wait until operation `id` has an attempt running under a lease owner with `role`
/// (`worker` or `inline`); returns that owner.
fn wait_running(srv: &PdmServer, id: i64, role: &str) -> String {
    let mut owner = None;
    let ok = wait_for(Duration::from_secs(15), || {
        owner = history(srv, id)
            .iter()
            .find(|a| a["outcome"] == "running")
            .and_then(|a| a["worker"].as_str().map(str::to_string))
            .filter(|w| w.ends_with(&format!("/{role}")));
        owner.is_some()
    });
    assert!(
        ok,
        "no {role} attempt running on operation {id}: {:?}\n{}",
        history(srv, id),
        tail(&srv.log(), 3000)
    );
    owner.unwrap_or_default()
}

/// pdm SIGKILLed in the middle of a step, holding the operation's 60 s lease (PowerDNS frozen,
/// so the step's API call hangs): the restarted pdm sees that the lease's holder, a process
/// of its own node, is gone, takes the lease over at once and completes the operation well
/// before the lease would have expired. Once with the worker holding the lease (commit), once
/// with the API's inline try holding it (release).
fn pdm_killed_mid_step_holding_the_lease(b: Backend) {
    let Some(pdns) = PdnsServer::start_for_backend() else {
        return;
    };
    // Inline tries last 2 s; one API call may hang for 30 s; leases are 60 s.
    let cfg = Config::default_test()
        .extra("[operations]\nlease_secs = 60\ntick_ms = 100\nbackoff_initial_secs = 1\nbackoff_max_secs = 2")
        .on_powerdns_with(&pdns, &[("inline_ms", "2000"), ("timeout_ms", "30000")]);
    let Some(mut srv) = PdmServer::start(b, cfg) else {
        return;
    };
    // Well under the 60 s lease, with room for a slow CI machine.
    let bound = Duration::from_secs(20);

    // 1. The worker holds the lease: the inline try times out, the worker's step hangs.
    let tok = srv.reserve_ok(POOL, "frozen");
    pdns.freeze();
    let (st, c) = srv.commit(POOL, "frozen", &tok, "192.0.2.70", None);
    assert_eq!((st, op_status(&c).as_str()), (200, "pending"), "{c}");
    let id = c["operation"]["id"].as_i64().expect("operation id");
    let holder = wait_running(&srv, id, "worker");
    srv.kill9();
    let killed = std::time::Instant::now();
    pdns.thaw();
    srv.restart();
    let done = wait_for(bound, || {
        listed(&srv, "frozen").is_some_and(|a| a["operation"]["status"] == "done")
    });
    assert!(
        done,
        "commit not completed {:?} after the kill (lease 60 s): {:?}\n{}",
        killed.elapsed(),
        history(&srv, id),
        tail(&srv.log(), 4000)
    );
    let h = history(&srv, id);
    let dead = h
        .iter()
        .find(|a| a["worker"] == holder.as_str())
        .unwrap_or_else(|| panic!("the killed attempt is in the history: {h:?}"));
    assert_eq!(dead["outcome"], "abandoned", "{h:?}");
    assert!(
        dead["detail"].as_str().unwrap_or("").contains("is gone"),
        "{h:?}"
    );
    assert_eq!(h[0]["outcome"], "done", "{h:?}");
    assert_ne!(h[0]["worker"], holder.as_str(), "{h:?}");
    assert_eq!(
        answers(&pdns, "harbor.frozen.example.test", RecordType::A),
        ["192.0.2.70"]
    );
    assert_eq!(rrset(&pdns, POOL, "frozen.example.test.", "DS").len(), 1);

    // 2. The API's inline try holds the lease: pdm is killed while release is answering.
    pdns.freeze();
    let url = format!("{}/api/v1/pool/{POOL}/release", srv.http_base());
    let token = srv.admin_token();
    let caller = std::thread::spawn(move || {
        // Fails when pdm dies under it; only the effect counts.
        let _ = reqwest::blocking::Client::new()
            .delete(url)
            .bearer_auth(token)
            .json(&json!({"subdomain": "frozen"}))
            .send();
    });
    // The only operation recorded since the commit's.
    let rid = id + 1;
    let recorded = wait_for(Duration::from_secs(10), || {
        let (_, op) = srv.get(
            &format!("/api/v1/operations/{rid}"),
            Some(&srv.admin_token()),
        );
        op["kind"] == "pdns-release"
    });
    assert!(
        recorded,
        "release operation not recorded\n{}",
        tail(&srv.log(), 3000)
    );
    let holder = wait_running(&srv, rid, "inline");
    srv.kill9();
    let killed = std::time::Instant::now();
    let _ = caller.join();
    pdns.thaw();
    srv.restart();
    let gone = wait_for(bound, || {
        pdns.api("GET", "/zones/frozen.example.test.", None).0 == 404
            && rrset(&pdns, POOL, "frozen.example.test.", "NS").is_empty()
            && rrset(&pdns, POOL, "frozen.example.test.", "DS").is_empty()
    });
    assert!(
        gone,
        "release not completed {:?} after the kill: {:?}\n{}",
        killed.elapsed(),
        history(&srv, rid),
        tail(&srv.log(), 4000)
    );
    let h = history(&srv, rid);
    assert!(
        h.iter()
            .any(|a| a["worker"] == holder.as_str() && a["outcome"] == "abandoned"),
        "{h:?}"
    );
    assert!(
        wait_for(Duration::from_secs(5), || history(&srv, rid)[0]["outcome"]
            == "done"),
        "{:?}",
        history(&srv, rid)
    );
}

/// The DNSSEC algorithm numbers of `zone`'s active keys, from PowerDNS's cryptokeys
/// (DS field 2), and those of the DS pdm wrote for it into `parent`.
fn key_algorithms(pdns: &PdnsServer, zone: &str, parent: &str) -> (Vec<String>, Vec<String>) {
    let alg = |ds: &str| ds.split_whitespace().nth(1).unwrap_or("").to_string();
    let keys: Vec<String> = pdns
        .ds_lines(zone)
        .iter()
        .map(|l| alg(l.split(" IN DS ").nth(1).unwrap_or("")))
        .collect();
    let ds: Vec<String> = rrset(pdns, parent, &format!("{zone}."), "DS")
        .iter()
        .map(|d| alg(d))
        .collect();
    (keys, ds)
}

/// The CSK PowerDNS makes for a pool's zones follows the pool's `dnssec_algorithm`; pools
/// without one take `[backend] algorithm`. The DS pdm writes carries that algorithm, and the
/// chain validates through it.
fn pool_dnssec_algorithm_picks_the_csk_algorithm(b: Backend) {
    let Some(pdns) = PdnsServer::start_for_backend() else {
        return;
    };
    let cfg = Config::default_test()
        .extra("[[pools]]\ndomain = \"ed.test\"\ndnssec_algorithm = \"ed25519\"\n")
        .on_powerdns_with(&pdns, &[("algorithm", "\"ecdsa384\"")]);
    let Some(srv) = PdmServer::start(b, cfg) else {
        return;
    };
    srv.allocate(POOL, "plain", "192.0.2.80", None);
    srv.allocate("ed.test", "edwards", "192.0.2.81", None);

    // Pool zones: ed.test per its pool setting, example.test per [backend].
    assert_eq!(pdns.ds_lines("ed.test").len(), 1, "{}", srv.log());
    let (ed_pool, _) = key_algorithms(&pdns, "ed.test", "ed.test");
    assert_eq!(ed_pool, ["15"]);
    let (ex_pool, _) = key_algorithms(&pdns, POOL, POOL);
    assert_eq!(ex_pool, ["14"]);
    // Children: keys and the DS in the pool zone agree with their pool.
    let (keys, ds) = key_algorithms(&pdns, "edwards.ed.test", "ed.test");
    assert_eq!((keys, ds), (vec!["15".to_string()], vec!["15".to_string()]));
    let (keys, ds) = key_algorithms(&pdns, "plain.example.test", POOL);
    assert_eq!((keys, ds), (vec!["14".to_string()], vec!["14".to_string()]));

    if have_tools(&["delv"]) {
        delv(
            pdns.dns_addr,
            &pdns.ds_lines("ed.test"),
            "ed.test",
            "gitea.edwards.ed.test",
            "A",
        )
        .assert_secure_positive();
    }
}

/// The NSEC3PARAM of `zone` as PowerDNS's API reports it ("" = NSEC) and as it answers it.
fn nsec3param(pdns: &PdnsServer, zone: &str) -> (String, Vec<String>) {
    let (st, z) = pdns.api("GET", &format!("/zones/{zone}."), None);
    assert_eq!(st, 200, "{zone}: {z}");
    let api = z["nsec3param"].as_str().unwrap_or("").trim().to_string();
    (api, answers(pdns, zone, RecordType::NSEC3PARAM))
}

/// A pool's `dnssec_denial = "nsec3"` wins over `[backend] nsec3 = false`: that pool zone
/// and its children get NSEC3 `1 0 0 -` (RFC 9276) in PowerDNS, pools without the setting
/// keep NSEC as `[backend] nsec3` says.
fn pool_dnssec_denial_nsec3_wins_over_backend_nsec(b: Backend) {
    let Some(pdns) = PdnsServer::start_for_backend() else {
        return;
    };
    let cfg = Config::default_test()
        .extra("[[pools]]\ndomain = \"n3.test\"\ndnssec_denial = \"nsec3\"\n")
        .on_powerdns_with(&pdns, &[("nsec3", "false")]);
    let Some(srv) = PdmServer::start(b, cfg) else {
        return;
    };
    srv.allocate(POOL, "plain", "192.0.2.90", None);
    srv.allocate("n3.test", "hashed", "192.0.2.91", None);

    for zone in ["n3.test", "hashed.n3.test"] {
        let (api, dns) = nsec3param(&pdns, zone);
        assert_eq!(api, "1 0 0 -", "{zone}\n{}", srv.log());
        assert_eq!(dns.len(), 1, "{zone} NSEC3PARAM over DNS: {dns:?}");
        assert!(
            dns[0].split_whitespace().take(3).eq(["1", "0", "0"]),
            "{zone} NSEC3PARAM over DNS: {dns:?}"
        );
    }
    for zone in [POOL, "plain.example.test"] {
        assert_eq!(
            nsec3param(&pdns, zone),
            (String::new(), Vec::new()),
            "{zone}: [backend] nsec3 = false means NSEC"
        );
    }
    // A reconcile finds nothing to change: the per-pool choice is the desired state.
    let again = srv.cli(&["reconcile", "--dry-run"]);
    assert!(again.success(), "{again:?}");
    assert!(again.stdout.trim().is_empty(), "{}", again.stdout);

    // The NSEC3 proofs PowerDNS serves validate: NXDOMAIN in the pool zone, NODATA in the
    // child (its template has a wildcard, so no NXDOMAIN there).
    if have_tools(&["delv"]) {
        for (name, qtype) in [("nothing.n3.test", "A"), ("hashed.n3.test", "TXT")] {
            delv(
                pdns.dns_addr,
                &pdns.ds_lines("n3.test"),
                "n3.test",
                name,
                qtype,
            )
            .assert_secure_negative();
        }
    }
}

/// `dnssec_denial = "compact"` on a pool with the PowerDNS backend: `pdm serve` refuses to
/// start, naming the pool and what to use instead (PowerDNS has no compact denial), instead
/// of serving the pool with another denial. No PowerDNS needed: the config is refused first.
#[test]
fn pool_dnssec_denial_compact_refused_at_start() {
    let cfg = Config::default_test()
        .extra("[backend]\nkind = \"powerdns\"\nurl = \"http://127.0.0.1:9\"\napi_key = \"k\"\n")
        .extra("[[pools]]\ndomain = \"black.test\"\ndnssec_denial = \"compact\"\n");
    let out = serve_with(&cfg);
    assert!(!out.success(), "serve must refuse: {out:?}");
    assert!(
        out.stderr.contains("pool black.test")
            && out.stderr.contains("compact")
            && out.stderr.contains("dnssec_denial = \"nsec3\""),
        "the error names the pool and the alternative: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("example.test:"),
        "only the compact pool is named: {}",
        out.stderr
    );
}

/// Run `pdm serve` with `cfg` on fresh ports and a fresh database until it exits (the callers
/// expect a refusal at start).
fn serve_with(cfg: &Config) -> common::CliOut {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pdm.toml");
    std::fs::write(&path, cfg.to_toml()).unwrap();
    let db = format!("sqlite://{}", dir.path().join("pdm.db").display());
    let args: Vec<String> = [
        "--config",
        &path.display().to_string(),
        "--database",
        &db,
        "serve",
        "--http",
        &format!("127.0.0.1:{}", free_tcp_port()),
        "--dns",
        &format!("127.0.0.1:{}", free_udp_tcp_port()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    run_cli(&args, dir.path())
}

/// A record and the DS deleted behind pdm's back: reconcile reports and restores exactly those.
fn reconcile_restores_drift(b: Backend) {
    let (pdns, srv) = setup!(b);
    srv.allocate(POOL, "drift", "192.0.2.50", Some("192.0.2.51"));
    let ds_before = rrset(&pdns, POOL, "drift.example.test.", "DS");
    let out = srv.cli(&["reconcile", "--dry-run"]);
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.trim().is_empty(), "in sync, yet: {}", out.stdout);

    let (st, e) = pdns.api(
        "PATCH",
        "/zones/drift.example.test.",
        Some(&json!({"rrsets": [{"name": "console.drift.example.test.", "type": "A", "changetype": "DELETE"}]})),
    );
    assert_eq!(st, 204, "{e}");
    let (st, e) = pdns.api(
        "PATCH",
        &format!("/zones/{POOL}."),
        Some(&json!({"rrsets": [{"name": "drift.example.test.", "type": "DS", "changetype": "DELETE"}]})),
    );
    assert_eq!(st, 204, "{e}");
    assert!(answers(&pdns, "console.drift.example.test", RecordType::A) != ["192.0.2.51"]);

    let dry = srv.cli(&["reconcile", "--dry-run"]);
    assert!(dry.success(), "{dry:?}");
    let lines: Vec<&str> = dry.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", dry.stdout);
    assert!(
        lines[0].contains("replace drift.example.test.")
            && lines[0].contains("console.drift.example.test. A"),
        "{}",
        dry.stdout
    );
    assert!(
        lines[1].contains("delegate example.test.") && lines[1].contains("DS"),
        "{}",
        dry.stdout
    );
    // A dry run changes nothing.
    assert!(rrset(&pdns, POOL, "drift.example.test.", "DS").is_empty());

    let fix = srv.cli(&["reconcile"]);
    assert!(fix.success(), "{fix:?}");
    assert_eq!(fix.stdout.lines().count(), 2, "{}", fix.stdout);
    assert_eq!(
        answers(&pdns, "console.drift.example.test", RecordType::A),
        ["192.0.2.51"]
    );
    assert_eq!(rrset(&pdns, POOL, "drift.example.test.", "DS"), ds_before);
    let again = srv.cli(&["reconcile"]);
    assert!(again.stdout.trim().is_empty(), "{}", again.stdout);
}

/// `pdm import --from-powerdns`: a child zone made by hand in PowerDNS becomes an active
/// allocation; reconcile then adds the template records and the delegation; release removes it.
fn import_adopts_existing_zones(b: Backend) {
    let (pdns, srv) = setup!(b);
    let (st, e) = pdns.api(
        "POST",
        "/zones",
        Some(&json!({"name": "old.example.test.", "kind": "Native", "rrsets": [
            {"name": "old.example.test.", "type": "NS", "ttl": 3600, "records": [{"content": "ns1.example.test.", "disabled": false}]},
            {"name": "old.example.test.", "type": "A", "ttl": 300, "records": [{"content": "192.0.2.60", "disabled": false}]},
            {"name": "console.old.example.test.", "type": "A", "ttl": 300, "records": [{"content": "192.0.2.61", "disabled": false}]}
        ]})),
    );
    assert_eq!(st, 201, "{e}");
    let url = format!("http://{}", pdns.api_addr);
    let dry = srv.cli(&["import", "--from-powerdns", &url, "--dry-run"]);
    assert!(dry.success(), "{dry:?}");
    assert_eq!(
        dry.stdout.trim(),
        "would adopt old.example.test (192.0.2.60, console 192.0.2.61)"
    );
    assert!(listed(&srv, "old").is_none());
    let out = srv.cli(&["import", "--from-powerdns", &url]);
    assert!(out.success(), "{out:?}");
    let a = listed(&srv, "old").expect("adopted");
    assert_eq!(
        (a["state"].as_str(), a["loadBalancerIP"].as_str()),
        (Some("active"), Some("192.0.2.60"))
    );
    let (st, e) = srv.reserve(POOL, "old");
    assert_error(st, &e, 409, "conflict");
    let fix = srv.cli(&["reconcile"]);
    assert!(fix.success(), "{fix:?}");
    assert!(
        fix.stdout.contains("delegate example.test."),
        "{}",
        fix.stdout
    );
    assert_eq!(
        answers(&pdns, "gitea.old.example.test", RecordType::A),
        ["192.0.2.60"]
    );
    assert_eq!(rrset(&pdns, POOL, "old.example.test.", "DS").len(), 1);
    let (st, r) = srv.release(POOL, "old");
    assert_eq!((st, op_status(&r).as_str()), (200, "done"), "{r}");
    assert_eq!(pdns.api("GET", "/zones/old.example.test.", None).0, 404);
}

/// A LUA record template against a PowerDNS with LUA records disabled: `pdm serve` refuses to
/// start and says which setting to change, instead of failing at the first commit.
#[test]
fn lua_template_needs_lua_enabled_in_powerdns() {
    let Some(pdns) = PdnsServer::start_for_backend_with(&["enable-lua-records=no"]) else {
        return;
    };
    let cfg = Config::default_test()
        .extra(&pdns.backend_toml())
        .extra("[[pools]]\ndomain = \"lua.test\"\n[[pools.template]]\nname = \"all\"\ntype = \"LUA\"\nvalue = \"A \\\"all({'192.0.2.1'})\\\"\"\n");
    let out = serve_with(&cfg);
    assert!(!out.success(), "serve must refuse: {out:?}");
    assert!(
        out.stderr.contains("enable-lua-records=no") && out.stderr.contains("lua.test"),
        "the error names the setting and the pool: {}",
        out.stderr
    );
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A customer's own domain (byo-manual, and the legacy `POST /api/v1/zones`)
/// lands in PowerDNS like a pool child: served by pdns_server, signed, with
/// the DS the API shows equal to the one PowerDNS derives from its key, and
/// gone from PowerDNS when the domain is deleted.
fn byo_domain_is_served_by_powerdns(b: Backend) {
    let (pdns, srv) = setup!(b);
    let admin = srv.admin_token();
    let (st, d) = srv.post(
        "/api/v1/domains",
        Some(&admin),
        &json!({"domain": "customer.example.org", "mode": "byo-manual"}),
    );
    assert_eq!(st, 202, "{d}\n{}", srv.log());
    let (st, z) = pdns.api("GET", "/zones/customer.example.org.", None);
    assert_eq!(st, 200, "byo zone not in PowerDNS: {z}\n{}", srv.log());
    assert_eq!(
        sorted(answers(&pdns, "customer.example.org", RecordType::NS)),
        ["ns1.example.test.", "ns2.example.test."]
    );
    assert_eq!(
        answers(&pdns, "customer.example.org", RecordType::SOA).len(),
        1
    );
    // Signed: DNSKEY served, and the DS the API shows is PowerDNS's.
    assert!(!answers(&pdns, "customer.example.org", RecordType::DNSKEY).is_empty());
    let (st, status) = srv.get("/api/v1/domains/customer.example.org", Some(&admin));
    assert_eq!(st, 200, "{status}");
    let api_ds: Vec<String> = status["ds"]
        .as_array()
        .expect("ds list")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_ascii_lowercase())
        .collect();
    let pdns_ds: Vec<String> = pdns
        .ds_lines("customer.example.org")
        .iter()
        .map(|l| l.to_ascii_lowercase())
        .collect();
    assert_eq!(pdns_ds.len(), 1, "{pdns_ds:?}");
    let digest = pdns_ds[0].split_whitespace().last().unwrap().to_string();
    assert!(
        api_ds.iter().any(|d| d.ends_with(&digest)),
        "API DS {api_ds:?} is not PowerDNS's {pdns_ds:?}"
    );
    if have_tools(&["delv"]) {
        delv(
            pdns.dns_addr,
            &pdns.ds_lines("customer.example.org"),
            "customer.example.org",
            "customer.example.org",
            "SOA",
        )
        .assert_secure_positive();
    }

    // The legacy zones endpoint takes the same path.
    let (st, z) = srv.post(
        "/api/v1/zones",
        Some(&admin),
        &json!({"name": "legacy.example.org", "kind": "Native"}),
    );
    assert_eq!(st, 201, "{z}");
    assert_eq!(
        sorted(answers(&pdns, "legacy.example.org", RecordType::NS)),
        ["ns1.example.test.", "ns2.example.test."]
    );

    // Deleting the domain removes the zone from PowerDNS.
    let (st, b) = srv.delete("/api/v1/domains/customer.example.org", Some(&admin), None);
    assert_eq!(st, 200, "{b}");
    let gone = wait_for(Duration::from_secs(5), || {
        pdns.api("GET", "/zones/customer.example.org.", None).0 == 404
    });
    assert!(gone, "byo zone left in PowerDNS\n{}", srv.log());
}

backend_tests!(
    byo_domain_is_served_by_powerdns,
    import_adopts_existing_zones,
    pool_cycle_on_powerdns,
    idempotency_and_lua_template,
    powerdns_down_during_commit,
    pdm_killed_mid_operation,
    pdm_killed_mid_step_holding_the_lease,
    pool_dnssec_algorithm_picks_the_csk_algorithm,
    pool_dnssec_denial_nsec3_wins_over_backend_nsec,
    reconcile_restores_drift,
);
