//! The hostile LUA record corpus (tests/data/lua_escapes.zone): sandbox
//! escapes (os, io, require, load of text and bytecode, debug, string
//! metatables, collectgarbage), memory bombs, deep recursion, coroutine and
//! finalizer loops. Over real UDP, each answers SERVFAIL within the limits,
//! a normal query is answered right after each, and nothing reaches the host.

use arc_swap::ArcSwap;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use pdm_dns::lua::{LuaConfig, LuaEngine};
use pdm_dns::server::{bind_pair, serve_handler, Handler, LuaRuntime, SharedZones, ZoneSet};
use pdm_dns::zone::file::parse_master;
use pdm_dns::zone::Zone;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

const CORPUS: &str = include_str!("data/lua_escapes.zone");

/// The one well-behaved record (queried after each hostile one).
const MAY_ANSWER: &[&str] = &["ok"];

/// Where `os.execute` would leave its mark.
const MARK: &str = "/tmp/pdm-lua-escaped";

/// The LUA names of the corpus with their record types.
fn corpus() -> Vec<(String, RecordType)> {
    CORPUS
        .lines()
        .filter(|l| !l.starts_with([';', '$', ' ']) && !l.is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"LUA")).then(|| {
                (
                    f[0].to_string(),
                    RecordType::from_str(f[3]).expect("record type"),
                )
            })
        })
        .collect()
}

fn zones() -> SharedZones {
    let (origin, records) = parse_master(CORPUS, None).expect("the corpus parses");
    let mut set = ZoneSet::new();
    set.insert(Arc::new(Zone::new(origin, records).expect("the corpus loads")).into());
    Arc::new(ArcSwap::from_pointee(set))
}

/// The engine as `pdm serve` builds it by default (config/lua.rs).
fn engine(max_instructions: u64, timeout: Duration) -> LuaEngine {
    LuaEngine::new(LuaConfig {
        max_instructions,
        timeout,
        pool_size: 4,
        ..LuaConfig::default()
    })
}

async fn start(runtime: LuaRuntime) -> SocketAddr {
    let handler = Handler::new(zones()).with_lua(Some(runtime));
    let (udp, tcp) = bind_pair("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = udp.local_addr().unwrap();
    serve_handler(udp, tcp, handler);
    addr
}

async fn ask(addr: SocketAddr, name: &str, t: RecordType) -> Option<Message> {
    let mut m = Message::query();
    m.metadata.id = rand_id(name);
    m.add_query(Query::query(
        Name::from_ascii(format!("{name}.escape.test.")).unwrap(),
        t,
    ));
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&m.to_vec().unwrap(), addr).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Message::from_vec(&buf[..n]).ok()
}

fn rand_id(name: &str) -> u16 {
    name.bytes()
        .fold(7u16, |h, b| h.wrapping_mul(31).wrapping_add(u16::from(b)))
}

/// Every hostile record, twice (compiled, then from the chunk cache), each
/// followed by a normal query; returns how many answered SERVFAIL.
async fn run_corpus(addr: SocketAddr, label: &str) -> usize {
    let names = corpus();
    assert!(names.len() >= 40, "corpus of {} records", names.len());
    let mut servfails = 0;
    for round in 0..2 {
        for (name, t) in &names {
            eprintln!("{label}: {name} (round {round})");
            let started = Instant::now();
            let reply = ask(addr, name, *t)
                .await
                .unwrap_or_else(|| panic!("{label}: {name} got no answer (round {round})"));
            let took = started.elapsed();
            // The engine's budget is 25 ms (time) or 1M instructions; a
            // loaded CI machine gets slack, a hang does not.
            assert!(
                took < Duration::from_secs(2),
                "{label}: {name} took {took:?}"
            );
            let rcode = reply.metadata.response_code;
            if MAY_ANSWER.contains(&name.as_str()) {
                assert_ne!(rcode, ResponseCode::Refused, "{label}: {name}");
            } else {
                assert_eq!(
                    rcode,
                    ResponseCode::ServFail,
                    "{label}: {name} answered {reply:?}"
                );
                assert!(reply.answers.is_empty(), "{label}: {name}");
                servfails += 1;
            }
            let normal = ask(addr, "ok", RecordType::A)
                .await
                .unwrap_or_else(|| panic!("{label}: no answer right after {name}"));
            assert_eq!(
                normal.metadata.response_code,
                ResponseCode::NoError,
                "after {name}"
            );
            let a: Vec<_> = normal
                .answers
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(a.0.to_string()),
                    _ => None,
                })
                .collect();
            assert_eq!(a, ["192.0.2.80"], "{label}: after {name}");
        }
    }
    servfails
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_records_servfail_within_limits_offloaded() {
    let full = engine(1_000_000, Duration::from_millis(25));
    let quick = engine(20_000, Duration::from_micros(300));
    let addr = start(LuaRuntime::new(full, 2).with_quick(quick)).await;
    let servfails = run_corpus(addr, "offloaded").await;
    assert_eq!(servfails, 2 * (corpus().len() - MAY_ANSWER.len()));
    // Many answers after the corpus: leftover finalizers cannot stall states.
    for i in 0..200 {
        let r = ask(addr, "ok", RecordType::A).await;
        assert!(r.is_some(), "answer {i} after the corpus");
    }
    assert!(!std::path::Path::new(MARK).exists(), "os.execute ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_records_servfail_within_limits_inline() {
    let full = engine(1_000_000, Duration::from_millis(25));
    let addr = start(LuaRuntime::new(full, 2).inline()).await;
    let servfails = run_corpus(addr, "inline").await;
    assert_eq!(servfails, 2 * (corpus().len() - MAY_ANSWER.len()));
    for i in 0..200 {
        let r = ask(addr, "ok", RecordType::A).await;
        assert!(r.is_some(), "answer {i} after the corpus");
    }
    assert!(!std::path::Path::new(MARK).exists(), "os.execute ran");
}
