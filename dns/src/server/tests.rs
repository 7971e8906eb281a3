//! End-to-end tests: a real server on loopback, queried over UDP and TCP.

use super::ZoneSet;
use super::*;
use crate::zone::file::parse_master;
use crate::zone::Zone;
use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

fn zones() -> SharedZones {
    let mut text = String::from(
        "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 hm 7 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.2\n",
    );
    for i in 0..40 {
        text.push_str(&format!("big IN TXT \"{i:03}{}\"\n", "x".repeat(97)));
    }
    let (origin, records) = parse_master(&text, None).unwrap();
    let mut set = ZoneSet::new();
    set.insert(Arc::new(Zone::new(origin, records).unwrap()).into());
    Arc::new(ArcSwap::from_pointee(set))
}

async fn start() -> (SocketAddr, SharedZones) {
    let z = zones();
    let (addr, _handle) = spawn_bound("127.0.0.1:0".parse().unwrap(), z.clone())
        .await
        .unwrap();
    (addr, z)
}

fn query(id: u16, name: &str, t: RecordType, edns: Option<(u16, u8)>) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    if let Some((size, version)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        e.set_version(version);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

async fn udp(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match timeout(Duration::from_secs(2), sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => {
            buf.truncate(n);
            Some(buf)
        }
        _ => None,
    }
}

async fn tcp_exchange(stream: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
    let len = u16::try_from(bytes.len()).unwrap().to_be_bytes();
    stream.write_all(&len).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut lb = [0u8; 2];
    timeout(Duration::from_secs(2), stream.read_exact(&mut lb))
        .await
        .unwrap()
        .unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(lb) as usize];
    stream.read_exact(&mut buf).await.unwrap();
    buf
}

#[tokio::test]
async fn udp_answer_preserves_case_byte_for_byte() {
    let (addr, _) = start().await;
    let q = query(7, "WwW.eXaMpLe.CoM.", RecordType::A, None);
    let r = udp(addr, &q).await.expect("answer");
    let m = Message::from_vec(&r).unwrap();
    assert_eq!(m.metadata.id, 7);
    assert!(m.metadata.authoritative);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(&r[12..q.len()], &q[12..]);
    assert!(m.answers[0]
        .name
        .eq_case(&Name::from_ascii("WwW.eXaMpLe.CoM.").unwrap()));
}

#[tokio::test]
async fn udp_truncates_at_512_without_edns_and_1232_with() {
    let (addr, _) = start().await;
    let r = udp(addr, &query(1, "big.example.com.", RecordType::TXT, None))
        .await
        .unwrap();
    assert!(r.len() <= 512);
    let m = Message::from_vec(&r).unwrap();
    assert!(m.metadata.truncation);

    let r = udp(
        addr,
        &query(2, "big.example.com.", RecordType::TXT, Some((4096, 0))),
    )
    .await
    .unwrap();
    assert!(r.len() <= 1232, "{}", r.len());
    let m = Message::from_vec(&r).unwrap();
    assert!(m.metadata.truncation);
    assert_eq!(m.edns.unwrap().max_payload(), 1232);
}

#[tokio::test]
async fn udp_badvers_and_refused() {
    let (addr, _) = start().await;
    let r = udp(
        addr,
        &query(3, "www.example.com.", RecordType::A, Some((1232, 1))),
    )
    .await
    .unwrap();
    let m = Message::from_vec(&r).unwrap();
    // 16 decodes as BADSIG (same code as BADVERS).
    assert_eq!(u16::from(m.metadata.response_code), 16);
    assert!(m.answers.is_empty());

    let r = udp(addr, &query(4, "www.example.org.", RecordType::A, None))
        .await
        .unwrap();
    let m = Message::from_vec(&r).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

#[tokio::test]
async fn tcp_two_queries_one_connection_full_answer() {
    let (addr, _) = start().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let r1 = tcp_exchange(
        &mut s,
        &query(10, "big.example.com.", RecordType::TXT, None),
    )
    .await;
    let m1 = Message::from_vec(&r1).unwrap();
    assert_eq!(m1.metadata.id, 10);
    assert!(!m1.metadata.truncation);
    assert_eq!(m1.answers.len(), 40);
    let r2 = tcp_exchange(&mut s, &query(11, "nx.example.com.", RecordType::A, None)).await;
    let m2 = Message::from_vec(&r2).unwrap();
    assert_eq!(m2.metadata.id, 11);
    assert_eq!(m2.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m2.authorities.len(), 1);
}

#[tokio::test]
async fn garbage_gets_formerr_or_nothing_and_server_survives() {
    let (addr, _) = start().await;
    // A header claiming one question followed by junk.
    let junk = [
        0xab, 0xcd, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xff, 0x01,
    ];
    if let Some(r) = udp(addr, &junk).await {
        let m = Message::from_vec(&r).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(m.metadata.id, 0xabcd);
    }
    // Too short for a header: silently dropped.
    assert!(udp(addr, &[1, 2, 3]).await.is_none());
    // Still answering.
    let r = udp(addr, &query(5, "www.example.com.", RecordType::A, None))
        .await
        .unwrap();
    assert_eq!(Message::from_vec(&r).unwrap().answers.len(), 1);
}

#[tokio::test]
async fn zone_swap_is_seen_by_next_query() {
    let (addr, z) = start().await;
    let (origin, records) = parse_master(
        "$ORIGIN example.org.\n@ 60 IN SOA ns hm 1 1 1 1 1\nwww 60 IN A 192.0.2.9\n",
        None,
    )
    .unwrap();
    let mut set = (**z.load()).clone();
    set.insert(Arc::new(Zone::new(origin, records).unwrap()).into());
    z.store(Arc::new(set));
    let r = udp(addr, &query(6, "www.example.org.", RecordType::A, None))
        .await
        .unwrap();
    let m = Message::from_vec(&r).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
}

#[tokio::test]
async fn spawn_fails_when_port_taken() {
    let (addr, _) = start().await;
    assert!(spawn(addr, zones()).await.is_err());
}

/// A server with the packet cache on.
async fn start_cached() -> (SocketAddr, SharedZones, Handler) {
    let z = zones();
    let (udp, tcp) = bind_pair("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = udp.local_addr().unwrap();
    let handler = Handler::new(z.clone()).with_packet_cache(100);
    serve_handler(udp, tcp, handler.clone());
    (addr, z, handler)
}

fn a_records(m: &Message) -> Vec<String> {
    m.answers.iter().map(|r| r.data.to_string()).collect()
}

#[tokio::test]
async fn cached_answers_carry_each_querys_id_flags_and_case() {
    let (addr, _, handler) = start_cached().await;
    let mut seen = Vec::new();
    for (id, name, rd, cd) in [
        (1, "www.example.com.", true, false),
        (2, "www.example.com.", false, true),
        (3, "WwW.eXaMpLe.CoM.", false, false),
        (4, "www.example.com.", true, true),
    ] {
        let mut m = Message::from_vec(&query(id, name, RecordType::A, None)).unwrap();
        m.metadata.recursion_desired = rd;
        m.metadata.checking_disabled = cd;
        let raw = udp(addr, &m.to_vec().unwrap()).await.expect("answer");
        let r = Message::from_vec(&raw).unwrap();
        assert_eq!(r.metadata.id, id);
        assert_eq!(
            (r.metadata.recursion_desired, r.metadata.checking_disabled),
            (rd, cd),
            "query {id}"
        );
        assert!(r.metadata.authoritative);
        assert_eq!(a_records(&r), ["192.0.2.2"]);
        // The question (and so the owner, compressed onto it) as spelled.
        assert_eq!(
            &raw[12..12 + name.len() + 1],
            &m.to_vec().unwrap()[12..12 + name.len() + 1]
        );
        seen.push(raw);
    }
    // Same question, same bytes apart from the header's id and flags.
    assert_eq!(seen[0][4..], seen[1][4..]);
    assert_eq!(seen[0][4..], seen[3][4..]);
    // Queries 2 and 4 were served from the cache; 3 (other case) was not.
    assert_eq!(handler.packet_cache_hits(), Some(2));
}

#[tokio::test]
async fn cached_answers_follow_a_zone_swap_and_edns() {
    let (addr, z, handler) = start_cached().await;
    let ask = |id| async move {
        let q = query(id, "www.example.com.", RecordType::A, None);
        let raw = udp(addr, &q).await.expect("answer");
        Message::from_vec(&raw).unwrap()
    };
    let first = ask(1).await;
    assert_eq!(a_records(&first), ["192.0.2.2"]);
    // EDNS is part of the key: the EDNS answer carries an OPT record.
    let with_edns = udp(
        addr,
        &query(2, "www.example.com.", RecordType::A, Some((1232, 0))),
    )
    .await
    .unwrap();
    assert!(Message::from_vec(&with_edns).unwrap().edns.is_some());
    let again = ask(3).await;
    assert!(again.edns.is_none());
    // A new zone table: the next query sees it, not the cached answer.
    let (origin, records) = parse_master(
        "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 hm 8 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.77\n",
        None,
    )
    .unwrap();
    let mut set = ZoneSet::new();
    set.insert(Arc::new(Zone::new(origin, records).unwrap()).into());
    z.store(Arc::new(set));
    assert_eq!(handler.packet_cache_hits(), Some(1));
    let after = ask(4).await;
    assert_eq!(a_records(&after), ["192.0.2.77"]);
}

#[tokio::test]
async fn answers_from_zones_with_lua_records_are_never_cached() {
    let (origin, records) = parse_master(
        "$ORIGIN lua.test.\n$TTL 60\n@ IN SOA ns hm 1 1 1 1 1\n@ IN NS ns\nns IN A 192.0.2.1\n\
         n IN LUA TXT \"tostring(math.random(1, 1000000000))\"\n",
        None,
    )
    .unwrap();
    let mut set = ZoneSet::new();
    set.insert(Arc::new(Zone::new(origin, records).unwrap()).into());
    let z: SharedZones = Arc::new(ArcSwap::from_pointee(set));
    let engine = crate::lua::LuaEngine::new(crate::lua::LuaConfig::default());
    let handler = Handler::new(z)
        .with_lua(Some(LuaRuntime::new(engine, 2).inline()))
        .with_packet_cache(100);
    let (udp_sock, tcp) = bind_pair("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = udp_sock.local_addr().unwrap();
    serve_handler(udp_sock, tcp, handler.clone());
    let mut answers = std::collections::HashSet::new();
    for id in 0..5 {
        let raw = udp(addr, &query(id, "n.lua.test.", RecordType::TXT, None))
            .await
            .unwrap();
        let m = Message::from_vec(&raw).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        answers.insert(a_records(&m));
        // Static names of such a zone are not cached either (same plan path).
        udp(addr, &query(id, "ns.lua.test.", RecordType::A, None))
            .await
            .unwrap();
    }
    assert!(
        answers.len() > 1,
        "every query runs the program: {answers:?}"
    );
    assert_eq!(handler.packet_cache_hits(), Some(0));
}

#[tokio::test]
async fn refused_is_never_cached_and_nxdomain_only_when_asked_again() {
    let (addr, _, handler) = start_cached().await;
    let cache = handler.packet_cache().unwrap().clone();
    // A random-name stream: every NXDOMAIN is seen once, nothing is kept.
    for i in 0..50u16 {
        let name = format!("n{i}.example.com.");
        let reply = udp(addr, &query(i, &name, RecordType::A, None))
            .await
            .unwrap();
        assert_eq!(
            Message::from_vec(&reply).unwrap().metadata.response_code,
            ResponseCode::NXDomain
        );
    }
    assert_eq!(cache.len(), 0, "a random NXDOMAIN stream filled the cache");
    for id in 0..3 {
        udp(addr, &query(id, "elsewhere.test.", RecordType::A, None))
            .await
            .unwrap();
    }
    assert_eq!(handler.packet_cache_hits(), Some(0));
    assert_eq!(cache.len(), 0, "REFUSED was cached");
    // The same NXDOMAIN a second time is cached; the third is a hit, with
    // its own id.
    for id in 100..103 {
        let reply = udp(addr, &query(id, "nope.example.com.", RecordType::A, None))
            .await
            .unwrap();
        let m = Message::from_vec(&reply).unwrap();
        assert_eq!(
            (m.metadata.id, m.metadata.response_code),
            (id, ResponseCode::NXDomain)
        );
    }
    assert_eq!(handler.packet_cache_hits(), Some(1));
    // NODATA is cached like any answer.
    for id in 0..2 {
        udp(addr, &query(id, "www.example.com.", RecordType::MX, None))
            .await
            .unwrap();
    }
    assert_eq!(handler.packet_cache_hits(), Some(2));
}

/// A short `recvmmsg` batch clears the socket's readiness (one syscall less
/// per wake-up): queries that arrive while a batch is being answered, from
/// several clients at uneven gaps, must still each be answered at once,
/// never left in the queue until a later datagram wakes the loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_arriving_after_a_short_batch_are_all_answered() {
    let (addr, _) = start().await;
    let mut clients = Vec::new();
    for c in 0..3u16 {
        clients.push(tokio::spawn(async move {
            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let mut buf = vec![0u8; 2048];
            for i in 0..300u16 {
                let id = c * 1000 + i;
                sock.send_to(&query(id, "www.example.com.", RecordType::A, None), addr)
                    .await
                    .unwrap();
                // Uneven gaps: none, a yield, or a few microseconds.
                match i % 3 {
                    0 => {}
                    1 => tokio::task::yield_now().await,
                    _ => tokio::time::sleep(Duration::from_micros(50)).await,
                }
                let (n, _) = timeout(Duration::from_secs(1), sock.recv_from(&mut buf))
                    .await
                    .unwrap_or_else(|_| panic!("client {c}: query {i} not answered in 1 s"))
                    .unwrap();
                let m = Message::from_vec(&buf[..n]).unwrap();
                assert_eq!(m.metadata.id, id);
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
}
