//! The transfer path end to end on loopback: a real server, AXFR/IXFR and
//! signed queries over TCP and UDP, TSIG checked as a client would.

use super::acl::{Prefix, TransferPolicy, TransferRule};
use super::tsig::{self, Algorithm, KeySet, TsigKey};
use super::Transfers;
use crate::dnssec::keys::{generate, KeyAlgorithm, KeyRole, ZoneKey};
use crate::dnssec::{DenialMode, SigCache, SigningPolicy, ZoneSigner};
use crate::server::{bind_pair, serve_handler, Handler, ServedZone, ZoneSet};
use crate::zone::file::parse_master;
use crate::zone::Zone;
use arc_swap::ArcSwap;
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

const SECRET: &[u8] = b"a secret of thirty-two bytes!!!!";

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn key(n: &str, secret: &[u8]) -> TsigKey {
    TsigKey::new(&name(n), Algorithm::HmacSha256, secret)
}

/// `pool.test`, signed (NSEC3), big enough for several messages; and
/// `plain.test`, unsigned.
fn zones() -> ZoneSet {
    let csk = Arc::new(
        ZoneKey::from_pkcs8(
            KeyAlgorithm::Ecdsap256sha256,
            KeyRole::Csk,
            &generate(KeyAlgorithm::Ecdsap256sha256).unwrap(),
        )
        .unwrap(),
    );
    let mut text = String::from(
        "$ORIGIN pool.test.\n$TTL 300\n@ IN SOA ns1 hm 42 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n",
    );
    for i in 0..400 {
        text.push_str(&format!(
            "c{i} IN NS ns.c{i}\nns.c{i} IN A 192.0.2.{}\n",
            i % 250 + 1
        ));
        text.push_str(&format!("t{i} IN TXT \"{}\"\n", "x".repeat(100)));
    }
    let (origin, mut records) = parse_master(&text, None).unwrap();
    records.push(Record::from_rdata(
        origin.clone(),
        300,
        RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::DNSKEY(
            csk.dnskey().clone(),
        )),
    ));
    let zone = Zone::new(origin, records).unwrap();
    let signer = ZoneSigner::new(
        &zone,
        vec![csk.clone()],
        vec![csk],
        DenialMode::Nsec3,
        Arc::new(SigCache::new(10_000)),
        SigningPolicy::default(),
    );
    let mut set = ZoneSet::new();
    set.insert(ServedZone::signed(Arc::new(zone), Arc::new(signer)));
    let (o, r) = parse_master(
        "$ORIGIN plain.test.\n$TTL 300\n@ IN SOA ns1 hm 7 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n",
        None,
    )
    .unwrap();
    set.insert(Arc::new(Zone::new(o, r).unwrap()).into());
    // LUA records: no secondary but pdm can evaluate them.
    let (o, r) = parse_master(
        "$ORIGIN lua.test.\n$TTL 60\n@ IN SOA ns1 hm 1 3600 600 86400 30\n@ IN NS ns1\nns1 IN A 192.0.2.1\n\
         www IN LUA A \"ifportup(443, {'192.0.2.1','192.0.2.2'})\"\n",
        None,
    )
    .unwrap();
    set.insert(Arc::new(Zone::new(o, r).unwrap()).into());
    // Compact denial: NSEC made per query, nothing static to send.
    let (o, r) = parse_master(
        "$ORIGIN compact.test.\n$TTL 60\n@ IN SOA ns1 hm 1 3600 600 86400 30\n@ IN NS ns1\nns1 IN A 192.0.2.1\n",
        None,
    )
    .unwrap();
    let zone = Zone::new(o, r).unwrap();
    let csk = Arc::new(
        ZoneKey::from_pkcs8(
            KeyAlgorithm::Ecdsap256sha256,
            KeyRole::Csk,
            &generate(KeyAlgorithm::Ecdsap256sha256).unwrap(),
        )
        .unwrap(),
    );
    let signer = ZoneSigner::new(
        &zone,
        vec![csk.clone()],
        vec![csk],
        DenialMode::Compact,
        Arc::new(SigCache::new(100)),
        SigningPolicy::default(),
    );
    set.insert(ServedZone::signed(Arc::new(zone), Arc::new(signer)));
    set
}

/// A server whose policy lets 127.0.0.0/8 transfer `pool.test` with key
/// `xfr` and `plain.test` without one.
async fn start() -> SocketAddr {
    start_with_zones().await.0
}

/// [`start`], also returning the zone table (tests swap versions in).
async fn start_with_zones() -> (SocketAddr, crate::server::SharedZones) {
    let transfers = Arc::new(Transfers::new());
    let mut keys = KeySet::new();
    keys.insert(key("xfr.", SECRET));
    transfers.set_policy(TransferPolicy {
        keys,
        rules: vec![
            TransferRule {
                zones: vec![name("pool.test.")],
                from: vec![Prefix::parse("127.0.0.0/8").unwrap()],
                key: Some(name("xfr.")),
            },
            TransferRule {
                zones: vec![
                    name("plain.test."),
                    name("lua.test."),
                    name("compact.test."),
                ],
                from: vec![Prefix::parse("127.0.0.1").unwrap()],
                key: None,
            },
        ],
    });
    let shared = Arc::new(ArcSwap::from_pointee(zones()));
    let handler = Handler::new(shared.clone()).with_transfers(transfers);
    let (udp, tcp) = bind_pair("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = udp.local_addr().unwrap();
    serve_handler(udp, tcp, handler);
    (addr, shared)
}

fn request(zone: &str, t: RecordType, serial: Option<u32>) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 0x5151;
    m.add_query(Query::query(name(zone), t));
    if let Some(s) = serial {
        let soa = hickory_proto::rr::rdata::SOA::new(name("ns1."), name("hm."), s, 1, 1, 1, 1);
        m.add_authority(Record::from_rdata(name(zone), 0, RData::SOA(soa)));
    }
    m.to_vec().unwrap()
}

async fn read_message(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    timeout(Duration::from_secs(5), s.read_exact(&mut len))
        .await
        .expect("a message in time")
        .expect("read");
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).await.unwrap();
    buf
}

async fn send(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(&(msg.len() as u16).to_be_bytes())
        .await
        .unwrap();
    s.write_all(msg).await.unwrap();
}

/// Every message of a transfer (until the closing SOA), as raw bytes.
async fn transfer(addr: SocketAddr, msg: &[u8]) -> Vec<Vec<u8>> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    send(&mut s, msg).await;
    let mut out = Vec::new();
    let mut soas = 0;
    while soas < 2 {
        let m = read_message(&mut s).await;
        let parsed = Message::from_vec(&m).unwrap();
        let rcode = parsed.metadata.response_code;
        soas += parsed
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        out.push(m);
        if rcode != ResponseCode::NoError {
            break;
        }
        assert!(out.len() < 1000, "runaway transfer");
    }
    out
}

#[tokio::test]
async fn signed_axfr_is_complete_multi_message_and_every_message_verifies() {
    let addr = start().await;
    let k = key("xfr.", SECRET);
    let mut req = request("pool.test.", RecordType::AXFR, None);
    let req_mac = tsig::sign_request(&mut req, &k, tsig::unix_now());
    let messages = transfer(addr, &req).await;
    assert!(messages.len() >= 2, "{} messages", messages.len());
    // The first MAC covers the request's, each later one the previous MAC.
    tsig::verify_answer(&messages[0], &k, &req_mac).expect("first message verifies");
    let mut prior = tsig::mac_of(&messages[0]).unwrap();
    for m in &messages[1..] {
        prior = tsig::verify_next(m, &k, &prior).expect("later message verifies");
    }
    let records: Vec<Record> = messages
        .iter()
        .flat_map(|m| Message::from_vec(m).unwrap().answers)
        .collect();
    let first = records.first().unwrap();
    let last = records.last().unwrap();
    assert_eq!(first.record_type(), RecordType::SOA);
    assert_eq!(last.record_type(), RecordType::SOA);
    assert_eq!(
        records
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count(),
        2
    );
    let count = |t: RecordType| records.iter().filter(|r| r.record_type() == t).count();
    assert_eq!(count(RecordType::TXT), 400);
    assert_eq!(count(RecordType::NS), 401);
    assert_eq!(count(RecordType::A), 401, "glue included");
    assert_eq!(count(RecordType::DNSKEY), 1);
    // Apex SOA/NS/DNSKEY, ns1 A, 400 TXT, and one per NSEC3: every
    // authoritative RRset signed, delegations and glue not.
    let nsec3 = count(RecordType::NSEC3);
    assert_eq!(nsec3, 1 + 1 + 400 + 400, "apex, ns1, t*, c*");
    assert_eq!(count(RecordType::RRSIG), 3 + 1 + 400 + nsec3);
    // Only the first message repeats the question.
    let second = Message::from_vec(&messages[1]).unwrap();
    assert!(second.queries.is_empty());
}

#[tokio::test]
async fn unsigned_axfr_of_an_unsigned_zone_for_an_allowed_address() {
    let addr = start().await;
    let messages = transfer(addr, &request("plain.test.", RecordType::AXFR, None)).await;
    assert_eq!(messages.len(), 1);
    let m = Message::from_vec(&messages[0]).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    let types: Vec<RecordType> = m.answers.iter().map(Record::record_type).collect();
    assert_eq!(
        types,
        [
            RecordType::SOA,
            RecordType::NS,
            RecordType::A,
            RecordType::SOA
        ]
    );
    assert!(m.signature.is_none());
}

async fn one(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    send(&mut s, msg).await;
    read_message(&mut s).await
}

#[tokio::test]
async fn refusals_and_tsig_errors_have_the_right_codes() {
    let addr = start().await;
    let rcode = |m: &[u8]| Message::from_vec(m).unwrap().metadata.response_code;
    // The ACL wants the key for pool.test.
    let m = one(addr, &request("pool.test.", RecordType::AXFR, None)).await;
    assert_eq!(rcode(&m), ResponseCode::Refused);
    // A zone not served.
    let mut req = request("nowhere.test.", RecordType::AXFR, None);
    tsig::sign_request(&mut req, &key("xfr.", SECRET), tsig::unix_now());
    let m = one(addr, &req).await;
    assert_eq!(rcode(&m), ResponseCode::NotAuth);
    let t = tsig::find(&m).unwrap().expect("signed refusal");
    assert_eq!(t.error, 0);
    // Wrong secret, unknown key, forged time.
    for (k, at, code) in [
        (
            key("xfr.", b"not the secret, not the secret.."),
            tsig::unix_now(),
            tsig::BADSIG,
        ),
        (key("other.", SECRET), tsig::unix_now(), tsig::BADKEY),
        (key("xfr.", SECRET), tsig::unix_now() - 3600, tsig::BADTIME),
    ] {
        let mut req = request("pool.test.", RecordType::AXFR, None);
        tsig::sign_request(&mut req, &k, at);
        let m = one(addr, &req).await;
        assert_eq!(rcode(&m), ResponseCode::NotAuth, "tsig error {code}");
        let t = tsig::find(&m).unwrap().expect("TSIG in the error answer");
        assert_eq!(t.error, code);
        assert_eq!(Message::from_vec(&m).unwrap().answers.len(), 0);
    }
    // plain.test is open to 127.0.0.1 only; 127.0.0.2 is refused.
    let sock = TcpStream::connect(addr).await.unwrap();
    drop(sock);
    let from2 = tokio::net::TcpSocket::new_v4().unwrap();
    from2.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut s = from2.connect(addr).await.unwrap();
    send(&mut s, &request("plain.test.", RecordType::AXFR, None)).await;
    assert_eq!(rcode(&read_message(&mut s).await), ResponseCode::Refused);
}

async fn udp(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.send_to(msg, addr).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = timeout(Duration::from_secs(2), s.recv_from(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    buf.truncate(n);
    buf
}

#[tokio::test]
async fn udp_ixfr_gets_one_soa_axfr_is_refused_and_signed_queries_are_signed() {
    let addr = start().await;
    let k = key("xfr.", SECRET);
    let mut req = request("pool.test.", RecordType::IXFR, Some(41));
    let mac = tsig::sign_request(&mut req, &k, tsig::unix_now());
    let m = udp(addr, &req).await;
    tsig::verify_answer(&m, &k, &mac).expect("signed");
    let parsed = Message::from_vec(&m).unwrap();
    assert_eq!(parsed.metadata.message_type, MessageType::Response);
    assert_eq!(parsed.answers.len(), 1);
    match &parsed.answers[0].data {
        RData::SOA(soa) => assert_eq!(soa.serial, 42),
        other => panic!("{other:?}"),
    }
    let m = udp(addr, &request("plain.test.", RecordType::AXFR, None)).await;
    assert_eq!(
        Message::from_vec(&m).unwrap().metadata.response_code,
        ResponseCode::Refused
    );
    // A secondary's SOA probe, signed: answered as usual, and signed.
    let mut req = request("pool.test.", RecordType::SOA, None);
    let mac = tsig::sign_request(&mut req, &k, tsig::unix_now());
    let m = udp(addr, &req).await;
    tsig::verify_answer(&m, &k, &mac).expect("signed SOA answer");
    assert_eq!(Message::from_vec(&m).unwrap().answers.len(), 1);
    // IXFR over TCP from an older serial: the whole zone (no history yet).
    let mut req = request("pool.test.", RecordType::IXFR, Some(41));
    tsig::sign_request(&mut req, &k, tsig::unix_now());
    let messages = transfer(addr, &req).await;
    assert!(messages.len() >= 2);
    // ... and from the current serial: one SOA.
    let mut req = request("pool.test.", RecordType::IXFR, Some(42));
    tsig::sign_request(&mut req, &k, tsig::unix_now());
    let m = one(addr, &req).await;
    assert_eq!(Message::from_vec(&m).unwrap().answers.len(), 1);
}

/// The records of a transfer, normalised for set comparison.
fn record_set(messages: &[Vec<u8>]) -> std::collections::BTreeSet<String> {
    messages
        .iter()
        .flat_map(|m| Message::from_vec(m).unwrap().answers)
        .map(|r| r.to_string().to_lowercase())
        .collect()
}

fn answers(messages: &[Vec<u8>]) -> Vec<Record> {
    messages
        .iter()
        .flat_map(|m| Message::from_vec(m).unwrap().answers)
        .collect()
}

fn serial_of(r: &Record) -> u32 {
    match &r.data {
        RData::SOA(s) => s.serial,
        other => panic!("not a SOA: {other:?}"),
    }
}

/// Move `pool.test` in `shared` to `serial`: `txt` (a `t<i>` owner)
/// removed, a delegation `child` with glue added.
fn bump(shared: &crate::server::SharedZones, serial: u32, txt: &str, child: &str) {
    let served = shared.load().get(&name("pool.test.")).unwrap().clone();
    let zone = served.zone();
    let rec = |text: &str| {
        let (_, mut r) =
            parse_master(&format!("$ORIGIN pool.test.\n$TTL 300\n{text}\n"), None).unwrap();
        r.remove(0)
    };
    let mut new_soa = zone.soa();
    if let RData::SOA(s) = &mut new_soa.data {
        s.serial = serial;
    }
    let owner = name(&format!("{txt}.pool.test."));
    let gone = zone.node(&owner).unwrap().rrsets[0].records(&owner)[0].clone();
    let removed = vec![zone.soa(), gone];
    let added = vec![
        new_soa,
        rec(&format!("{child} IN NS ns.{child}")),
        rec(&format!("ns.{child} IN A 192.0.2.99")),
    ];
    let (next, delta) = zone.apply_tracked(&removed, &added).unwrap();
    let next = Arc::new(next);
    let signer = served.signer().unwrap().apply(&next, &delta).unwrap();
    let mut set = (**shared.load()).clone();
    set.insert(ServedZone::signed(next, Arc::new(signer)));
    shared.store(Arc::new(set));
}

#[tokio::test]
async fn ixfr_sends_the_differences_signatures_included_and_they_rebuild_the_new_zone() {
    let (addr, shared) = start_with_zones().await;
    let k = key("xfr.", SECRET);
    let signed = |t: RecordType, serial: Option<u32>| {
        let mut req = request("pool.test.", t, serial);
        tsig::sign_request(&mut req, &k, tsig::unix_now());
        req
    };
    // A client that did not get 42 from this server (it may hold other
    // signatures: from before a restart, or another replica) gets the
    // whole zone at 43.
    bump(&shared, 43, "t7", "newbie");
    let at43 = transfer(addr, &signed(RecordType::IXFR, Some(42))).await;
    assert!(answers(&at43).len() > 1000, "the whole zone");
    // From 43, which it got here, the difference only.
    bump(&shared, 44, "t8", "other");
    let diff = transfer_ixfr(addr, &signed(RecordType::IXFR, Some(43))).await;
    let recs = answers(&diff);
    assert!(
        recs.len() < 60,
        "a small diff, not the zone: {} records",
        recs.len()
    );
    assert_eq!(serial_of(&recs[0]), 44);
    assert_eq!(serial_of(&recs[1]), 43);
    let soas: Vec<usize> = recs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.record_type() == RecordType::SOA)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(soas.len(), 4, "new, old, new, new");
    let (gone, came) = (&recs[2..soas[2]], &recs[soas[2] + 1..soas[3]]);
    assert!(gone.iter().any(|r| r.record_type() == RecordType::TXT));
    assert!(gone.iter().any(|r| r.record_type() == RecordType::RRSIG));
    assert!(came.iter().any(|r| r.record_type() == RecordType::NS));
    assert!(came.iter().any(|r| r.record_type() == RecordType::NSEC3));
    assert!(came.iter().any(|r| r.record_type() == RecordType::RRSIG));
    // Applying the diff to the copy at 43 gives exactly what AXFR at 44 sends.
    let mut copy = record_set(&at43);
    let norm = |r: &Record| r.to_string().to_lowercase();
    for r in gone {
        assert!(copy.remove(&norm(r)), "removes what the secondary has: {r}");
    }
    for r in came {
        assert!(copy.insert(norm(r)), "adds what it lacks: {r}");
    }
    copy.retain(|r| !r.contains(" soa "));
    let mut at44 = record_set(&transfer(addr, &signed(RecordType::AXFR, None)).await);
    at44.retain(|r| !r.contains(" soa "));
    assert_eq!(copy, at44);
    // A serial never sent (or forgotten) gets the whole zone.
    let whole = transfer(addr, &signed(RecordType::IXFR, Some(40))).await;
    assert!(answers(&whole).len() > 1000);
}

/// An IXFR answer: messages until the final SOA (the fourth SOA of a diff,
/// the second of a whole zone).
async fn transfer_ixfr(addr: SocketAddr, msg: &[u8]) -> Vec<Vec<u8>> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    send(&mut s, msg).await;
    let mut out = Vec::new();
    let mut soas = 0;
    while soas < 4 {
        let m = read_message(&mut s).await;
        soas += Message::from_vec(&m)
            .unwrap()
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        out.push(m);
        assert!(out.len() < 100);
    }
    out
}

#[tokio::test]
async fn zones_with_lua_records_or_compact_denial_are_not_transferred() {
    let addr = start().await;
    for zone in ["lua.test.", "compact.test."] {
        let m = one(addr, &request(zone, RecordType::AXFR, None)).await;
        let m = Message::from_vec(&m).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{zone}");
        assert!(m.answers.is_empty());
    }
    // The ACL admits them: an allowed unsigned zone next to them transfers.
    let ok = transfer(addr, &request("plain.test.", RecordType::AXFR, None)).await;
    assert_eq!(ok.len(), 1);
}
