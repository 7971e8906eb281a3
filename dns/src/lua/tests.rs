//! Engine tests: every LUA function through real Lua, result typing, the
//! sandbox, limits, concurrency, and the health checker against loopback
//! listeners opened and closed by the tests.

use super::health::{CheckKind, CheckOptions, TargetKey};
use super::*;
use hickory_proto::rr::{Name, RData, RecordType};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn engine() -> LuaEngine {
    LuaEngine::new(LuaConfig {
        pool_size: 2,
        ..Default::default()
    })
}

fn ctx(qname: &str) -> QueryContext<'static> {
    QueryContext::new(
        n(qname),
        RecordType::A,
        n("example.test."),
        ip("192.0.2.10"),
    )
}

fn eval(e: &LuaEngine, rec: &str, c: &QueryContext<'_>) -> Result<Vec<String>, LuaError> {
    let rec = LuaRecord::parse(rec).unwrap();
    e.evaluate(&rec, c)
        .map(|a| a.records.iter().map(rdata_str).collect())
}

fn rdata_str(r: &RData) -> String {
    match r {
        RData::TXT(t) => t
            .txt_data
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect::<Vec<_>>()
            .join(""),
        other => other.to_string(),
    }
}

fn one(e: &LuaEngine, rec: &str) -> String {
    let v = eval(e, rec, &ctx("www.example.test.")).unwrap();
    assert_eq!(v.len(), 1, "{rec}: {v:?}");
    v[0].clone()
}

#[test]
fn return_rule_and_chunks() {
    let e = engine();
    assert_eq!(one(&e, r#"A "'192.0.2.1'""#), "192.0.2.1");
    assert_eq!(one(&e, r#"A ";return '192.0.2.1'""#), "192.0.2.1");
    assert_eq!(one(&e, r#"TXT "'ab" "cd'""#), "ab   cd");
    // A script (leading ';') that does not return gives nil.
    assert_eq!(
        eval(&e, r#"A ";local x = 1""#, &ctx("a.example.test.")),
        Err(LuaError::Nil)
    );
}

#[test]
fn result_typing() {
    let e = engine();
    let c = ctx("a.example.test.");
    assert_eq!(one(&e, r#"TXT "42""#), "42");
    assert_eq!(one(&e, r#"TXT "1.5""#), "1.5");
    let mut v = eval(&e, r#"A "{'192.0.2.1','192.0.2.2'}""#, &c).unwrap();
    v.sort();
    assert_eq!(v, vec!["192.0.2.1", "192.0.2.2"]);
    assert_eq!(eval(&e, r#"A "{}""#, &c).unwrap(), Vec::<String>::new());
    assert_eq!(
        one(&e, r#"CNAME "'target.example.org'""#),
        "target.example.org."
    );
    assert_eq!(one(&e, r#"MX "'10 mx.example.org'""#), "10 mx.example.org.");
    assert_eq!(one(&e, r#"AAAA "'2001:db8::1'""#), "2001:db8::1");
    assert!(matches!(
        eval(&e, r#"A "'not-an-ip'""#, &c),
        Err(LuaError::BadRdata { .. })
    ));
    assert!(matches!(
        eval(&e, r#"AAAA "'192.0.2.1'""#, &c),
        Err(LuaError::BadRdata { .. })
    ));
    assert_eq!(eval(&e, r#"A "nil""#, &c), Err(LuaError::Nil));
    assert!(matches!(
        eval(&e, r#"A "true""#, &c),
        Err(LuaError::BadReturn(_))
    ));
    assert!(matches!(
        eval(&e, r#"A "{a='192.0.2.1'}""#, &c),
        Err(LuaError::BadReturn(_))
    ));
    assert!(matches!(
        eval(&e, r#"A "{{}}""#, &c),
        Err(LuaError::BadReturn(_))
    ));
    assert!(matches!(
        eval(&e, r#"A "'192.0.2.1' +""#, &c),
        Err(LuaError::Script(_))
    ));
    assert!(matches!(
        eval(&e, r#"A "nosuchfunction()""#, &c),
        Err(LuaError::Script(_))
    ));
    // 4.9-only function in 4.7 terms is fine here, but a 5.0-only one is unknown.
    assert!(matches!(
        eval(&e, r#"A "pickchashed({{1,'192.0.2.1'}})""#, &c),
        Err(LuaError::Script(_))
    ));
    let lua_type = LuaRecord::parse(r#"LUA "x = 1""#).unwrap();
    assert!(matches!(
        e.evaluate(&lua_type, &c),
        Err(LuaError::NotEvaluable(_))
    ));
}

#[test]
fn selectors_and_pickers() {
    let e = engine();
    let c = ctx("a.example.test.");
    let set: HashSet<&str> = ["192.0.2.1", "192.0.2.2", "192.0.2.3"].into();
    let mut seen = HashMap::new();
    for _ in 0..600 {
        let v = one(
            &e,
            r#"A "pickrandom({'192.0.2.1','192.0.2.2','192.0.2.3'})""#,
        );
        assert!(set.contains(v.as_str()));
        *seen.entry(v).or_insert(0) += 1;
    }
    assert!(seen.values().all(|&k| (120..280).contains(&k)), "{seen:?}");
    assert!(matches!(
        eval(&e, r#"A "pickrandom({})""#, &c),
        Err(LuaError::Script(_))
    ));

    let mut all = eval(&e, r#"A "all({'192.0.2.1','192.0.2.2'})""#, &c).unwrap();
    all.sort();
    assert_eq!(all, vec!["192.0.2.1", "192.0.2.2"]);
    assert!(eval(&e, r#"A "all({})""#, &c).is_err());

    for _ in 0..50 {
        let v = eval(
            &e,
            r#"A "pickrandomsample(2, {'192.0.2.1','192.0.2.2','192.0.2.3'})""#,
            &c,
        )
        .unwrap();
        assert_eq!(v.len(), 2);
        assert_ne!(v[0], v[1]);
        assert!(v.iter().all(|x| set.contains(x.as_str())));
    }
    assert!(eval(&e, r#"A "pickrandomsample(0, {'192.0.2.1'})""#, &c)
        .unwrap()
        .is_empty());

    // pickhashed: addressOnlyHash(bestwho) % n, same answer every time.
    let items = ["192.0.2.1", "192.0.2.2", "192.0.2.3"];
    let expect = items[hash::address_hash(&ip("192.0.2.10")) as usize % 3];
    for _ in 0..5 {
        assert_eq!(
            one(
                &e,
                r#"A "pickhashed({'192.0.2.1','192.0.2.2','192.0.2.3'})""#
            ),
            expect
        );
    }
    // With ECS, bestwho is the ECS network, not the source address.
    let ecs = ctx("a.example.test.").with_ecs(ip("10.1.2.3"), 24);
    let expect = items[hash::address_hash(&ip("10.1.2.0")) as usize % 3];
    let v = eval(
        &e,
        r#"A "pickhashed({'192.0.2.1','192.0.2.2','192.0.2.3'})""#,
        &ecs,
    )
    .unwrap();
    assert_eq!(v, vec![expect]);

    // pickwhashed: weights accumulate in libstdc++ unordered_map order,
    // which for a short list is the reverse of the Lua order.
    let h = hash::address_hash(&ip("192.0.2.10")) % 4;
    let expect = if h < 3 { "192.0.2.2" } else { "192.0.2.1" };
    assert_eq!(
        one(&e, r#"A "pickwhashed({{1,'192.0.2.1'},{3,'192.0.2.2'}})""#),
        expect
    );
    assert!(eval(&e, r#"A "pickwhashed({{0,'192.0.2.1'}})""#, &c).is_err());

    let mut twos = 0;
    for _ in 0..800 {
        if one(&e, r#"A "pickwrandom({{1,'192.0.2.1'},{3,'192.0.2.2'}})""#) == "192.0.2.2" {
            twos += 1;
        }
    }
    assert!((520..680).contains(&twos), "{twos}");

    let a = one(
        &e,
        r#"A "picknamehashed({{1,'192.0.2.1'},{1,'192.0.2.2'}})""#,
    );
    assert_eq!(
        a,
        one(
            &e,
            r#"A "picknamehashed({{1,'192.0.2.1'},{1,'192.0.2.2'}})""#
        )
    );
}

#[test]
fn netmask_and_view() {
    let e = engine();
    let c = ctx("a.example.test.");
    let rec = r#"A ";if netmask({'192.0.2.0/24'}) then return '198.51.100.1' else return '198.51.100.2' end""#;
    assert_eq!(eval(&e, rec, &c).unwrap(), vec!["198.51.100.1"]);
    let other = QueryContext::new(
        n("a.example.test."),
        RecordType::A,
        n("example.test."),
        ip("203.0.113.9"),
    );
    assert_eq!(eval(&e, rec, &other).unwrap(), vec!["198.51.100.2"]);
    let ecs = other.clone().with_ecs(ip("192.0.2.77"), 24);
    assert_eq!(eval(&e, rec, &ecs).unwrap(), vec!["198.51.100.1"]);

    let view = r#"A "view({{{'10.0.0.0/8'},{'192.0.2.1'}},{{'192.0.2.0/24'},{'192.0.2.2','192.0.2.3'}}})""#;
    let v = eval(&e, view, &c).unwrap();
    assert!(v == ["192.0.2.2"] || v == ["192.0.2.3"], "{v:?}");
    // No rule matches: empty string, which is not an A record (SERVFAIL, verified on 4.7.3).
    assert!(matches!(
        eval(&e, view, &other),
        Err(LuaError::BadRdata { .. })
    ));
    assert!(eval(&e, r#"A "view({{{'bad/99'},{'192.0.2.1'}}})""#, &c).is_err());
}

#[test]
fn create_functions() {
    let e = engine();
    let z = n("example.test.");
    let q = |name: &str| QueryContext::new(n(name), RecordType::A, z.clone(), ip("192.0.2.10"));
    assert_eq!(
        eval(
            &e,
            r#"A "createForward()""#,
            &q("1.2.3.4.static.example.test.")
        )
        .unwrap(),
        vec!["1.2.3.4"]
    );
    assert_eq!(
        eval(
            &e,
            r#"A "createForward()""#,
            &q("ip-10-0-0-7.example.test.")
        )
        .unwrap(),
        vec!["10.0.0.7"]
    );
    assert_eq!(
        eval(&e, r#"A "createForward()""#, &q("www.example.test.")).unwrap(),
        vec!["0.0.0.0"]
    );
    let mut c6 = q("2001-db8--5.example.test.");
    c6.qtype = RecordType::AAAA;
    assert_eq!(
        eval(&e, r#"AAAA "createForward6()""#, &c6).unwrap(),
        vec!["2001:db8::5"]
    );

    let rz = n("2.0.192.in-addr.arpa.");
    let rq = QueryContext::new(
        n("5.2.0.192.in-addr.arpa."),
        RecordType::PTR,
        rz,
        ip("192.0.2.10"),
    );
    assert_eq!(
        eval(&e, r#"PTR "createReverse('%5%.static.example.test')""#, &rq).unwrap(),
        vec!["192-0-2-5.static.example.test."]
    );
    assert_eq!(
        eval(
            &e,
            r#"PTR "createReverse('%5%.example.', {['192.0.2.5']='mail.example.'})""#,
            &rq
        )
        .unwrap(),
        vec!["mail.example."]
    );
    let nib = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
    let rq6 = QueryContext::new(
        n(nib),
        RecordType::PTR,
        n("8.b.d.0.1.0.0.2.ip6.arpa."),
        ip("::1"),
    );
    assert_eq!(
        eval(&e, r#"PTR "createReverse6('%33%.example.')""#, &rq6).unwrap(),
        vec!["2001-db8--1.example."]
    );

    let c = q("1.2.3.4.example.test.");
    let ff = r#"A "filterForward(createForward(), newNMG({'1.2.3.0/24'}))""#;
    assert_eq!(eval(&e, ff, &c).unwrap(), vec!["1.2.3.4"]);
    let ff2 = r#"A "filterForward(createForward(), newNMG({'10.0.0.0/8'}))""#;
    assert_eq!(eval(&e, ff2, &c).unwrap(), vec!["0.0.0.0"]);
    let ff3 = r#"A "filterForward(createForward(), newNMG({'10.0.0.0/8'}), '')""#;
    assert!(eval(&e, ff3, &c).unwrap().is_empty());
}

#[test]
fn presets_and_helpers() {
    let e = engine();
    let mut c = ctx("WWW.example.test.").with_ecs(ip("10.9.8.7"), 16);
    c.zone_id = 7;
    c.dnssec_ok = true;
    c.header = (4242, true, false);
    let rec = r#"TXT ";return table.concat({qname:toString(), zone:toStringNoDot(), zoneid, who:toString(), bestwho:toString(), ecswho:toString(), tostring(dnssecOK), tostring(tcp), dh:getID(), tostring(dh:getRD()), qname:countLabels(), tostring(qname:isPartOf(zone))}, ' ')""#;
    let v = eval(&e, rec, &c).unwrap();
    assert_eq!(
        v,
        vec!["WWW.example.test. example.test 7 192.0.2.10 10.9.0.0 10.9.0.0/16 true false 4242 true 3 true"]
    );
    let a = e
        .evaluate(&LuaRecord::parse(r#"TXT "'x'""#).unwrap(), &c)
        .unwrap();
    assert_eq!(a.ecs_scope, Some(16));
    assert_eq!(a.ttl, None);
    let plain = e
        .evaluate(
            &LuaRecord::parse(r#"TXT "'x'""#).unwrap(),
            &ctx("a.example.test."),
        )
        .unwrap();
    assert_eq!(plain.ecs_scope, None);

    assert_eq!(
        one(
            &e,
            r#"TXT ";pdnslog('hello', 4) return newCA('192.0.2.1:53'):toStringWithPort()""#
        ),
        "192.0.2.1:53"
    );
    assert_eq!(
        one(
            &e,
            r#"TXT "tostring(newNetmask('10.0.0.0/8'):match('10.1.1.1'))""#
        ),
        "true"
    );
    assert_eq!(one(&e, r#"TXT "newDN('a.b.'):toString()""#), "a.b.");
    assert_eq!(
        one(
            &e,
            r#"TXT ";local r = pdnsrandom(3) return tostring(r >= 0 and r < 3)""#
        ),
        "true"
    );
    assert_eq!(one(&e, r#"TXT "os.date('!%Y', 0)""#), "1970");
    assert_eq!(one(&e, r#"TXT "string.format('%s-%d', 'a', 3)""#), "a-3");
}

#[test]
fn include_runs_config_records_in_the_same_environment() {
    let e = engine();
    let config = vec![LuaRecord::parse(
        r#"LUA "servers = {'192.0.2.7'} function first() return servers[1] end""#,
    )
    .unwrap()];
    let resolver = move |name: &Name| -> Vec<LuaRecord> {
        if name == &n("config.example.test.") {
            config.clone()
        } else {
            vec![]
        }
    };
    let c = ctx("a.example.test.").with_include(&resolver);
    assert_eq!(
        eval(&e, r#"A ";include('config') return first()""#, &c).unwrap(),
        vec!["192.0.2.7"]
    );
    // Missing include records are ignored (as PowerDNS); the record then fails on its own.
    assert!(eval(&e, r#"A ";include('nothing') return first()""#, &c).is_err());
    // Without a resolver include does nothing.
    assert!(eval(
        &e,
        r#"A ";include('config') return first()""#,
        &ctx("a.example.test.")
    )
    .is_err());
}

#[test]
fn geo_functions() {
    let e = engine();
    let c = ctx("a.example.test.");
    for rec in [
        r#"A ";if country('NL') then return '192.0.2.1' end return '192.0.2.2'""#,
        r#"TXT "countryCode()""#,
        r#"A "pickclosest({'192.0.2.1','198.51.100.1'})""#,
        r#"TXT "latlon()""#,
        r#"TXT ";return tostring(asnum(64500))""#,
    ] {
        assert_eq!(eval(&e, rec, &c), Err(LuaError::GeoUnavailable), "{rec}");
    }
    let geo = StaticGeo::default()
        .with(
            "192.0.2.0/24",
            GeoInfo {
                country: Some("NL".into()),
                continent: Some("EU".into()),
                asn: Some(64500),
                location: Some((52.0, 5.0)),
                ..Default::default()
            },
        )
        .with(
            "198.51.100.0/24",
            GeoInfo {
                country: Some("US".into()),
                location: Some((40.0, -74.0)),
                ..Default::default()
            },
        )
        .with(
            "203.0.113.0/24",
            GeoInfo {
                location: Some((51.5, 4.5)),
                ..Default::default()
            },
        );
    let e = LuaEngine::new(LuaConfig {
        pool_size: 1,
        geo: Some(std::sync::Arc::new(geo)),
        ..Default::default()
    });
    assert_eq!(
        eval(
            &e,
            r#"A ";if country({'DE','nl'}) then return '192.0.2.1' end return '192.0.2.2'""#,
            &c
        )
        .unwrap(),
        vec!["192.0.2.1"]
    );
    assert_eq!(
        one(
            &e,
            r#"TXT "countryCode() .. continentCode() .. regionCode()""#
        ),
        "NLEU--"
    );
    assert_eq!(
        one(&e, r#"TXT ";return tostring(asnum({64500, 1}))""#),
        "true"
    );
    assert_eq!(
        one(&e, r#"TXT ";return tostring(continent('EU'))""#),
        "true"
    );
    assert_eq!(one(&e, r#"TXT "latlon()""#), "52.000000 5.000000");
    assert_eq!(
        one(&e, r#"A "pickclosest({'198.51.100.1','203.0.113.1'})""#),
        "203.0.113.1"
    );
    let magic = QueryContext::new(
        n("198-51-100-1.203-0-113-1.example.test."),
        RecordType::A,
        n("example.test."),
        ip("192.0.2.10"),
    );
    assert_eq!(
        eval(&e, r#"A "closestMagic()""#, &magic).unwrap(),
        vec!["203.0.113.1"]
    );
    let ifp = r#"A "ifportup(1, {'198.51.100.1','203.0.113.1'}, {backupSelector='pickclosest'})""#;
    assert_eq!(one(&e, ifp), "203.0.113.1");
}

#[test]
fn health_functions_before_first_check() {
    // Nothing checked yet: every target is down, backupSelector applies
    // (random → one address; all → every address), as 4.7.3 does.
    let e = engine();
    let c = ctx("a.example.test.");
    for _ in 0..20 {
        let v = eval(&e, r#"A "ifportup(8080, {'192.0.2.1','192.0.2.2'})""#, &c).unwrap();
        assert_eq!(v.len(), 1);
        assert!(v[0] == "192.0.2.1" || v[0] == "192.0.2.2");
    }
    let mut v = eval(
        &e,
        r#"A "ifportup(8080, {'192.0.2.1','192.0.2.2'}, {backupSelector='all'})""#,
        &c,
    )
    .unwrap();
    v.sort();
    assert_eq!(v, vec!["192.0.2.1", "192.0.2.2"]);
    let v = eval(&e, r#"A "ifurlup('http://example.test/', {{'192.0.2.1'},{'192.0.2.2'}}, {backupSelector='all'})""#, &c).unwrap();
    assert_eq!(v.len(), 2);
    let v = eval(
        &e,
        r#"A "ifurlextup({{['192.0.2.1']='http://a.test/'},{['192.0.2.2']='http://b.test/'}})""#,
        &c,
    )
    .unwrap();
    assert_eq!(v.len(), 1);
    assert!(eval(
        &e,
        r#"A "ifportup(80, {'192.0.2.1'}, {failOnIncompleteCheck=true})""#,
        &c
    )
    .is_err());
    assert!(eval(&e, r#"A "ifportup(80, {'nope'})""#, &c).is_err());
    // Distinct (address, port, options) are distinct targets; selectors are not.
    let hc = &e.config().health;
    let before = hc.target_count();
    eval(
        &e,
        r#"A "ifportup(8080, {'192.0.2.1','192.0.2.2'}, {selector='hashed'})""#,
        &c,
    )
    .unwrap();
    assert_eq!(hc.target_count(), before);
    eval(&e, r#"A "ifportup(8080, {'192.0.2.1'}, {timeout=1})""#, &c).unwrap();
    assert_eq!(hc.target_count(), before + 1);
}

#[test]
fn prime_registers_every_target() {
    let e = engine();
    let rec =
        LuaRecord::parse(r#"A "ifportup(443, {{'192.0.2.1','192.0.2.2'},{'198.51.100.1'}})""#)
            .unwrap();
    e.prime(&rec, &n("www.example.test."), &n("example.test."), None)
        .unwrap();
    assert_eq!(e.config().health.target_count(), 3);
}

#[test]
fn sandbox_forbids_escape_hatches() {
    let e = engine();
    let c = ctx("a.example.test.");
    for code in [
        "io.open('/etc/passwd')",
        "os.execute('true')",
        "os.getenv('HOME')",
        "os.exit(1)",
        "os.remove('/tmp/x')",
        "require('os')",
        "load('return 1')()",
        "loadstring('return 1')()",
        "loadfile('/etc/passwd')",
        "dofile('/etc/passwd')",
        "debug.getinfo(1)",
        "collectgarbage('count')",
        "coroutine.create(print)",
        "package.loaded",
        "string.dump(print)",
        "getmetatable('').__index",
        "rawset(_G, 'x', 1)",
    ] {
        let rec = format!("TXT \";return tostring({code})\"");
        let r = eval(&e, &rec, &c);
        assert!(
            r.is_err() || r.as_ref().is_ok_and(|v| v == &["nil"]),
            "{code} should fail, got {r:?}"
        );
    }
    // Shared library tables are read-only.
    assert!(eval(
        &e,
        r#"TXT ";string.upper = function() return 'pwned' end return 'x'""#,
        &c
    )
    .is_err());
    assert!(eval(&e, r#"TXT ";setmetatable(string, {}) return 'x'""#, &c).is_err());
    assert_eq!(one(&e, r#"TXT "string.upper('ok')""#), "OK");
}

#[test]
fn catastrophic_patterns_are_refused() {
    let e = engine();
    let c = ctx("www.example.test.");
    let t = Instant::now();
    for code in [
        r#"TXT ";return tostring(string.rep('a', 5000):find(string.rep('a-', 12) .. 'b'))""#,
        r#"TXT ";return tostring(('a'):rep(5000):match(('a*'):rep(12) .. 'b'))""#,
        r#"TXT ";return tostring(('a'):rep(100000):find('.-b'))""#,
    ] {
        assert!(
            matches!(eval(&e, code, &c), Err(LuaError::Script(m)) if m.contains("too complex")),
            "{code}"
        );
    }
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    // Ordinary record patterns still work, including method syntax.
    assert_eq!(one(&e, r#"TXT "qname:toString():match('^(.-)%.')""#), "www");
    assert_eq!(
        one(
            &e,
            r#"TXT ";local a, b = ('ip-1-2'):match('(%d+)-(%d+)') return a .. b""#
        ),
        "12"
    );
    assert_eq!(
        one(&e, r#"TXT "(string.gsub('a.b.c', '%.', '-'))""#),
        "a-b-c"
    );
    assert_eq!(
        one(&e, r#"TXT "tostring(('x.y'):find('.', 1, true))""#),
        "2"
    );
}

#[test]
fn empty_repetitions_return_at_once() {
    let e = engine();
    let t = Instant::now();
    // Empty copies allocate nothing, so nothing bounded the C loop (fuzz:
    // `string.rep('', 1 << 40)` ran past the fuzzer's timeout).
    for code in [
        r#"TXT "'<' .. string.rep('',1 << 40) .. '>'""#,
        r#"TXT "'<' .. (''):rep(1e12, '') .. '>'""#,
        r#"TXT "'<' .. string.rep('', '99999999999') .. '>'""#,
    ] {
        assert_eq!(one(&e, code), "<>", "{code}");
    }
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(one(&e, r#"TXT "string.rep('ab', 3, '-')""#), "ab-ab-ab");
    assert_eq!(one(&e, r#"TXT "('x'):rep(2)""#), "xx");
    assert_eq!(
        one(&e, r#"TXT "'<' .. string.rep('', 3, ',') .. '>'""#),
        "<,,>"
    );
}

#[test]
fn globals_do_not_leak_between_evaluations() {
    let e = LuaEngine::new(LuaConfig {
        pool_size: 1,
        ..Default::default()
    });
    let c = ctx("a.example.test.");
    assert_eq!(
        eval(
            &e,
            r#"TXT ";leak = 'yes' pickrandom = nil return 'set'""#,
            &c
        )
        .unwrap(),
        vec!["set"]
    );
    assert_eq!(
        eval(&e, r#"TXT "tostring(leak)""#, &c).unwrap(),
        vec!["nil"]
    );
    assert_eq!(
        eval(&e, r#"A "pickrandom({'192.0.2.1'})""#, &c).unwrap(),
        vec!["192.0.2.1"]
    );
    // Through `_G`, and from inside an expression (no `;`): still gone.
    eval(&e, r#"TXT ";_G.viaG = 1 return 'x'""#, &c).unwrap();
    eval(&e, r#"TXT "(function() inexpr = 1 return 'x' end)()""#, &c).unwrap();
    assert_eq!(
        eval(&e, r#"TXT "tostring(viaG) .. tostring(inexpr)""#, &c).unwrap(),
        vec!["nilnil"]
    );
    // Presets read once are the next query's, not a stale copy.
    assert_eq!(
        eval(&e, r#"TXT "qname:toString()""#, &c).unwrap(),
        vec!["a.example.test."]
    );
    let other = ctx("b.example.test.");
    assert_eq!(
        eval(&e, r#"TXT "qname:toString()""#, &other).unwrap(),
        vec!["b.example.test."]
    );
    assert_eq!(e.stats().states_created, 1);
}

#[test]
fn instruction_limit_stops_infinite_loops_fast() {
    let e = engine();
    let c = ctx("a.example.test.");
    for code in [
        r#"A ";while true do end""#,
        r#"A ";while true do pcall(function() while true do end end) end""#,
        r#"A ";local function f() return f() end return f()""#,
    ] {
        let t = Instant::now();
        let r = eval(&e, code, &c);
        assert!(
            matches!(r, Err(LuaError::InstructionLimit | LuaError::Timeout)),
            "{code}: {r:?}"
        );
        assert!(
            t.elapsed() < Duration::from_millis(50),
            "{code} took {:?}",
            t.elapsed()
        );
    }
    // The engine keeps serving afterwards.
    assert_eq!(one(&e, r#"A "'192.0.2.1'""#), "192.0.2.1");
    assert!(e.stats().limit_errors >= 3);
}

#[test]
fn memory_limit() {
    let e = LuaEngine::new(LuaConfig {
        pool_size: 1,
        max_instructions: u64::MAX / 2,
        timeout: Duration::from_secs(10),
        memory_limit: 4 << 20,
        ..Default::default()
    });
    let c = ctx("a.example.test.");
    let r = eval(&e, r#"A ";local t={} for i=1,1e8 do t[i]=i end""#, &c);
    assert_eq!(r, Err(LuaError::MemoryLimit));
    let r = eval(&e, r#"TXT "string.rep('x', 1e9)""#, &c);
    assert_eq!(r, Err(LuaError::MemoryLimit));
    assert_eq!(one(&e, r#"A "'192.0.2.1'""#), "192.0.2.1");
    // With default limits the same record fails one way or another, fast.
    let t = Instant::now();
    assert!(eval(
        &engine(),
        r#"A ";local t={} for i=1,1e8 do t[i]=i end""#,
        &c
    )
    .is_err());
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn parallel_evaluations_proceed_while_one_loops() {
    let e = LuaEngine::new(LuaConfig {
        pool_size: 4,
        ..Default::default()
    });
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let looper = {
        let e = e.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let rec = LuaRecord::parse(r#"A ";while true do end""#).unwrap();
            let c = ctx("loop.example.test.");
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                assert!(e.evaluate(&rec, &c).is_err());
                n += 1;
            }
            n
        })
    };
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let e = e.clone();
            std::thread::spawn(move || {
                let rec = LuaRecord::parse(r#"A "pickhashed({'192.0.2.1','192.0.2.2'})""#).unwrap();
                let c = ctx("ok.example.test.");
                let t = Instant::now();
                for _ in 0..300 {
                    let a = e.evaluate(&rec, &c).unwrap();
                    assert_eq!(a.records.len(), 1);
                }
                (i, t.elapsed())
            })
        })
        .collect();
    for w in workers {
        let (_, took) = w.join().unwrap();
        assert!(took < Duration::from_secs(10), "{took:?}");
    }
    stop.store(true, Ordering::Relaxed);
    let loops = looper.join().unwrap();
    assert!(loops >= 1);
}

// ------------------------------------------------------------ health checker

async fn wait_for(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fast_checker() -> HealthChecker {
    HealthChecker::new(HealthConfig {
        interval: Duration::from_millis(300),
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_checks_follow_a_real_listener() {
    let hc = fast_checker();
    hc.start();
    let e = LuaEngine::new(LuaConfig {
        pool_size: 1,
        health: hc.clone(),
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // 127.0.0.2 is loopback too, but nothing listens there on this port.
    let rec = LuaRecord::parse(&format!(
        "A \"ifportup({port}, {{'127.0.0.1','127.0.0.2'}})\""
    ))
    .unwrap();
    let c = ctx("a.example.test.");
    e.prime(&rec, &n("a.example.test."), &n("example.test."), None)
        .unwrap();
    let up_only =
        || e.evaluate(&rec, &c).unwrap().records == vec![RData::A("127.0.0.1".parse().unwrap())];
    wait_for("127.0.0.1 up", Duration::from_secs(3), || {
        (0..10).all(|_| up_only())
    })
    .await;
    wait_for("127.0.0.2 checked", Duration::from_secs(3), || {
        hc.snapshot().iter().all(|s| s.status != Health::Unknown)
    })
    .await;
    let snap = hc.snapshot();
    let s = snap
        .iter()
        .find(|s| s.target == format!("127.0.0.1:{port}"))
        .unwrap();
    assert_eq!(s.status, Health::Up);
    assert!(s.latency_ms.is_some());
    let s2 = snap
        .iter()
        .find(|s| s.target == format!("127.0.0.2:{port}"))
        .unwrap();
    assert_eq!(s2.status, Health::Down);
    assert!(s2.last_error.is_some());

    drop(listener);
    let down_at = Instant::now();
    let status = |hc: &HealthChecker| {
        hc.snapshot()
            .into_iter()
            .find(|s| s.target == format!("127.0.0.1:{port}"))
            .map(|s| s.status)
    };
    wait_for("127.0.0.1 down", Duration::from_secs(3), || {
        status(&hc) == Some(Health::Down)
    })
    .await;
    assert!(
        down_at.elapsed() <= Duration::from_millis(2 * 300 + 200),
        "{:?}",
        down_at.elapsed()
    );

    let _again = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    wait_for("127.0.0.1 up again", Duration::from_secs(3), || {
        status(&hc) == Some(Health::Up)
    })
    .await;
    let counters = hc.counters();
    assert!(counters.checks_total >= 4);
    assert!(counters.transitions_total >= 2);
    // The snapshot serializes for the API.
    let json = serde_json::to_string(&hc.snapshot()).unwrap();
    assert!(json.contains("\"status\":\"up\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_checks_follow_a_tiny_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let healthy = std::sync::Arc::new(AtomicBool::new(true));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let h2 = healthy.clone();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let ok = h2.load(Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let resp: &[u8] = if ok {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nall is ok"
                } else {
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nsick"
                };
                let _ = s.write_all(resp).await;
                let _ = s.shutdown().await;
            });
        }
    });
    let hc = fast_checker();
    hc.start();
    let e = LuaEngine::new(LuaConfig {
        pool_size: 1,
        health: hc.clone(),
        ..Default::default()
    });
    let rec = LuaRecord::parse(&format!(
        "A \"ifurlup('http://localhost:{port}/health', {{'127.0.0.1'}}, {{stringmatch='is ok', backupSelector='all'}})\""
    ))
    .unwrap();
    let c = ctx("a.example.test.");
    e.evaluate(&rec, &c).unwrap();
    let status = |hc: &HealthChecker| hc.snapshot().first().map(|s| s.status);
    wait_for("url up", Duration::from_secs(3), || {
        status(&hc) == Some(Health::Up)
    })
    .await;
    healthy.store(false, Ordering::Relaxed);
    let t = Instant::now();
    wait_for("url down", Duration::from_secs(3), || {
        status(&hc) == Some(Health::Down)
    })
    .await;
    assert!(
        t.elapsed() <= Duration::from_millis(2 * 300 + 300),
        "{:?}",
        t.elapsed()
    );
    let err = hc.snapshot()[0].last_error.clone().unwrap();
    assert!(err.contains("503"), "{err}");
    healthy.store(true, Ordering::Relaxed);
    wait_for("url up again", Duration::from_secs(3), || {
        status(&hc) == Some(Health::Up)
    })
    .await;
    assert_eq!(e.evaluate(&rec, &c).unwrap().records.len(), 1);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimum_failures_keeps_a_flapping_target_up() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hc = fast_checker();
    hc.start();
    let key = TargetKey {
        kind: CheckKind::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], port))),
        opts: CheckOptions {
            timeout_secs: 1,
            minimum_failures: 3,
            ..Default::default()
        },
    };
    hc.status(&key);
    wait_for("up", Duration::from_secs(3), || {
        hc.status(&key) == Health::Up
    })
    .await;
    drop(listener);
    let t = Instant::now();
    wait_for("down", Duration::from_secs(5), || {
        hc.status(&key) == Health::Down
    })
    .await;
    // Three failed rounds are needed, so at least two intervals pass.
    assert!(
        t.elapsed() >= Duration::from_millis(550),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_check_per_target_however_many_records_use_it() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hc = fast_checker();
    hc.start();
    let e = LuaEngine::new(LuaConfig {
        pool_size: 2,
        health: hc.clone(),
        ..Default::default()
    });
    let c = ctx("a.example.test.");
    for sel in ["random", "all", "hashed"] {
        let rec = LuaRecord::parse(&format!(
            "A \"ifportup({port}, {{'127.0.0.1'}}, {{selector='{sel}'}})\""
        ))
        .unwrap();
        for _ in 0..50 {
            e.evaluate(&rec, &c).unwrap();
        }
    }
    assert_eq!(hc.target_count(), 1);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let checks = hc.counters().checks_total;
    // ~1000 ms / 300 ms interval: a handful of checks, not one per query.
    assert!((2..=6).contains(&checks), "{checks}");
    drop(listener);
}

#[test]
fn list_arguments_read_off_the_stack_match_the_general_conversion() {
    // The common shapes are read straight off the Lua stack; anything
    // else (userdata, metatables, odd keys) takes the mlua conversion.
    // Both must give the same answers and errors.
    let e = engine();
    let c = ctx("a.example.test.");
    let a = |rec: &str| eval(&e, rec, &c);
    // Numbers coerce like strings.
    assert_eq!(one(&e, r#"TXT "pickrandom({42})""#), "42");
    assert_eq!(one(&e, r#"TXT "pickrandom({1.5})""#), "1.5");
    // Userdata items (general path).
    assert_eq!(
        one(&e, r#"A "pickrandom({newCA('192.0.2.7')})""#),
        "192.0.2.7"
    );
    assert_eq!(
        one(&e, r#"A "ifportup(8080, {newCA('192.0.2.8')})""#),
        "192.0.2.8"
    );
    // Non-integer keys and non-convertible values are errors either way.
    assert!(matches!(
        a(r#"A "pickrandom({x='192.0.2.1'})""#),
        Err(LuaError::Script(_))
    ));
    assert!(matches!(
        a(r#"A "pickrandom({true})""#),
        Err(LuaError::Script(_))
    ));
    assert!(matches!(
        a(r#"A "pickwhashed({{1,true}})""#),
        Err(LuaError::Script(_))
    ));
    assert!(matches!(
        a(r#"A "ifportup(80, {'192.0.2.1', {}})""#),
        Err(LuaError::Script(_))
    ));
    // Weights as strings go through atoi; an inner table's metatable is
    // honoured (general path reads it with `get`).
    let h = hash::address_hash(&ip("192.0.2.10")) % 4;
    let expect = if h < 3 { "192.0.2.2" } else { "192.0.2.1" };
    assert_eq!(
        one(
            &e,
            r#"A "pickwhashed({{'1','192.0.2.1'},{'3x','192.0.2.2'}})""#
        ),
        expect
    );
    assert_eq!(
        one(
            &e,
            r#"A "pickwhashed({{1,'192.0.2.1'},setmetatable({3},{__index=function() return '192.0.2.2' end})})""#
        ),
        expect
    );
    // A list whose first element is read through a metatable.
    let v =
        a(r#"A "ifportup(8080, setmetatable({}, {__index=function() return {'192.0.2.9'} end}))""#);
    assert!(v.is_err(), "{v:?}");
    // Lists of lists and returned lists with numbers.
    let mut v =
        a(r#"A "ifportup(8080, {{'192.0.2.1'},{'192.0.2.2'}}, {backupSelector='all'})""#).unwrap();
    v.sort();
    assert_eq!(v, vec!["192.0.2.1", "192.0.2.2"]);
    assert_eq!(one(&e, r#"TXT "{42}""#), "42");
    assert!(matches!(
        a(r#"A "{x='192.0.2.1'}""#),
        Err(LuaError::BadReturn(_))
    ));
    // createForward without per-label strings.
    let f = |q: &str| {
        eval(
            &e,
            r#"A "createForward()""#,
            &ctx(&format!("{q}.example.test.")),
        )
        .unwrap()
    };
    assert_eq!(f("192.0.2.10.fwd"), vec!["192.0.2.10"]);
    assert_eq!(f("ip-192-0-2-11.fwd"), vec!["192.0.2.11"]);
    assert_eq!(f("ip-192-0-2-300"), vec!["0.0.0.0"]);
    assert_eq!(f("c0000201"), vec!["0.0.0.0"]);
    assert_eq!(f("0xc0000201"), vec!["192.0.2.1"]);
}
