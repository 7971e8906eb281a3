//! The UDP fast path answers exactly as the general path does.
//!
//! Two servers answer from the same zone table (so signed answers carry the
//! same cached signatures): one with the packet cache, whose repeat queries
//! are answered from an in-place read of the query, and one without, which
//! decodes and plans every query. Every query of the Knot differential
//! corpus (tests/data/diff.queries on tests/data/diff.test.zone), and every
//! owner and some absent names of tests/data/dnssec.test.zone signed with
//! NSEC3 and with compact denial, is sent in every header flag and EDNS
//! variant (none, a small and a large payload, DO, a client cookie, a
//! full cookie, case changes): the cached server's second answer must equal
//! the uncached server's byte for byte, truncation included.

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{Name, RecordType};
use pdm_dns::dnssec::keys::generate;
use pdm_dns::dnssec::{
    DenialMode, KeyAlgorithm, KeyRole, SigCache, SigningPolicy, ZoneKey, ZoneSigner,
};
use pdm_dns::server::cookie::CookieSettings;
use pdm_dns::server::{bind_pair, serve_handler, Handler, ServedZone, SharedZones, ZoneSet};
use pdm_dns::zone::file::parse_master;
use pdm_dns::zone::Zone;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// The COOKIE option code (RFC 7873).
const COOKIE: u16 = 10;

fn zone(path: &str) -> Zone {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (origin, records) = parse_master(&text, None).expect("zone parses");
    Zone::new(origin, records).expect("zone loads")
}

fn signed(zone: Zone, mode: DenialMode) -> ServedZone {
    let key = Arc::new(
        ZoneKey::from_pkcs8(
            KeyAlgorithm::Ecdsap256sha256,
            KeyRole::Csk,
            &generate(KeyAlgorithm::Ecdsap256sha256).expect("key"),
        )
        .expect("key loads"),
    );
    let signer = ZoneSigner::new(
        &zone,
        vec![key.clone()],
        vec![key],
        mode,
        Arc::new(SigCache::new(100_000)),
        SigningPolicy::default(),
    );
    ServedZone::signed(Arc::new(zone), Arc::new(signer))
}

/// The questions: the Knot corpus, and for the signed zones every owner
/// and a few absent names under several types.
fn questions(signed_origins: &[&str]) -> Vec<(Name, RecordType)> {
    let text = std::fs::read_to_string("../tests/data/diff.queries").expect("corpus");
    let mut out: Vec<(Name, RecordType)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (name, rtype) = l.split_once(' ')?;
            Some((
                Name::from_ascii(name).ok()?,
                RecordType::from_str(rtype.trim()).ok()?,
            ))
        })
        .collect();
    let zone = zone("../tests/data/dnssec.test.zone");
    let mut owners: Vec<Name> = zone_owners(&zone);
    for absent in ["nope", "a.b.nope", "zz-absent"] {
        owners.push(
            Name::from_ascii(absent)
                .unwrap()
                .append_domain(zone.origin())
                .unwrap(),
        );
    }
    for origin in signed_origins {
        let origin = Name::from_ascii(origin).unwrap();
        for owner in &owners {
            let Some(relative) = relative_to(owner, zone.origin()) else {
                continue;
            };
            let name = relative.append_domain(&origin).unwrap();
            for rtype in [
                RecordType::A,
                RecordType::AAAA,
                RecordType::MX,
                RecordType::TXT,
                RecordType::NS,
                RecordType::DS,
                RecordType::SOA,
                RecordType::DNSKEY,
                RecordType::NSEC3PARAM,
                RecordType::ANY,
            ] {
                out.push((name.clone(), rtype));
            }
        }
    }
    out
}

fn zone_owners(zone: &Zone) -> Vec<Name> {
    let text = std::fs::read_to_string("../tests/data/dnssec.test.zone").unwrap();
    let (_, records) = parse_master(&text, None).unwrap();
    let mut names: Vec<Name> = records.into_iter().map(|r| r.name).collect();
    names.push(zone.origin().clone());
    names.sort();
    names.dedup();
    names
}

/// `name` without `origin`'s labels (`@` is the root-less empty name).
fn relative_to(name: &Name, origin: &Name) -> Option<Name> {
    if !origin.zone_of(name) {
        return None;
    }
    let keep = name.num_labels() - origin.num_labels();
    let labels: Vec<&[u8]> = name.iter().take(usize::from(keep)).collect();
    Name::from_labels(labels).ok()
}

/// One variant of the header and OPT record.
#[derive(Clone, Copy, Debug)]
struct Variant {
    rd: bool,
    cd: bool,
    /// (payload, DO, cookie bytes: 0, 8 or 24)
    edns: Option<(u16, bool, usize)>,
    /// Swap the case of every other letter of the name.
    mixed_case: bool,
}

fn variants() -> Vec<Variant> {
    let mut out = Vec::new();
    let edns = [
        None,
        Some((512, false, 0)),
        Some((1232, true, 0)),
        Some((4096, true, 0)),
        Some((1232, false, 8)),
        Some((1232, true, 24)),
        // A cookie's room decides what fits under a small payload.
        Some((512, true, 8)),
    ];
    for (i, e) in edns.into_iter().enumerate() {
        for (rd, cd) in [(false, false), (true, true)] {
            out.push(Variant {
                rd,
                cd,
                edns: e,
                mixed_case: i % 2 == 1,
            });
        }
    }
    out
}

fn query(id: u16, name: &Name, rtype: RecordType, v: Variant) -> Vec<u8> {
    let name = if v.mixed_case {
        let ascii: String = name
            .to_ascii()
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        Name::from_ascii(ascii).unwrap()
    } else {
        name.clone()
    };
    let mut m = Message::query();
    m.metadata.id = id;
    m.metadata.recursion_desired = v.rd;
    m.metadata.checking_disabled = v.cd;
    m.add_query(Query::query(name, rtype));
    if let Some((payload, dnssec_ok, cookie)) = v.edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        e.set_dnssec_ok(dnssec_ok);
        if cookie > 0 {
            let data: Vec<u8> = (0..cookie as u8).collect();
            e.options_mut().insert(EdnsOption::Unknown(COOKIE, data));
        }
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

async fn start(zones: &SharedZones, packet_cache: bool) -> (SocketAddr, Handler) {
    let (udp, tcp) = bind_pair("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = udp.local_addr().unwrap();
    let cookies = CookieSettings {
        secret: Some([7; 16]),
        ..CookieSettings::default()
    };
    let mut handler = Handler::new(zones.clone()).with_cookies(Some(cookies));
    if packet_cache {
        handler = handler.with_packet_cache(100_000);
    }
    serve_handler(udp, tcp, handler.clone());
    (addr, handler)
}

async fn ask(sock: &UdpSocket, to: SocketAddr, bytes: &[u8], buf: &mut [u8]) -> Vec<u8> {
    sock.send_to(bytes, to).await.unwrap();
    let (n, _) = tokio::time::timeout(Duration::from_secs(3), sock.recv_from(buf))
        .await
        .expect("an answer in time")
        .unwrap();
    buf[..n].to_vec()
}

/// The Knot corpus zone and the DNSSEC test zone signed with NSEC3
/// (`nsec3.test.`) and with compact denial (`compact.test.`).
fn corpus_zones() -> ZoneSet {
    let mut set = ZoneSet::new();
    set.insert(Arc::new(zone("../tests/data/diff.test.zone")).into());
    let text = std::fs::read_to_string("../tests/data/dnssec.test.zone").unwrap();
    for (origin, mode) in [
        ("nsec3.test.", DenialMode::Nsec3),
        ("compact.test.", DenialMode::Compact),
    ] {
        let text = text.replace("dnssec.test.", origin);
        let (o, records) = parse_master(&text, None).unwrap();
        set.insert(signed(Zone::new(o, records).unwrap(), mode));
    }
    set
}

/// pdm's own encoder against hickory's generic one (the path every answer
/// took before): for every question and variant of the corpus, over UDP
/// and TCP, the same plan encodes to bytes that decode to the same message,
/// with every name spelled the same (case included), and never longer.
#[test]
fn own_encoder_decodes_as_hickory_encoding() {
    use hickory_proto::serialize::binary::BinEncoder;
    use hickory_server::net::xfer::Protocol;
    use hickory_server::server::Request;
    use pdm_dns::server::{respond, wire};
    let set = corpus_zones();
    let spelled = |m: &Message| -> Vec<String> {
        let q = m.queries.iter().map(|q| q.name().to_string());
        let records = m.answers.iter().chain(&m.authorities).chain(&m.additionals);
        q.chain(records.map(|r| format!("{} {}", r.name, r.data)))
            .collect()
    };
    let (mut compared, mut truncated, mut shorter, mut mismatches) = (0, 0, 0, Vec::new());
    let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
    let mut id: u16 = 1;
    for (name, rtype) in questions(&["nsec3.test.", "compact.test."]) {
        for v in variants() {
            for protocol in [Protocol::Udp, Protocol::Tcp] {
                id = id.wrapping_add(1);
                let request = Request::from_bytes(query(id, &name, rtype, v), src, protocol)
                    .expect("query decodes");
                let plan = respond::plan(&request, &set, protocol);
                let mut ours = Vec::new();
                wire::encode(&plan, &request.queries, protocol, &mut ours);
                let mut theirs = Vec::new();
                wire::response(&plan, &request.queries)
                    .destructive_emit(&mut BinEncoder::new(&mut theirs))
                    .expect("hickory encodes the plan");
                compared += 1;
                truncated += usize::from(plan.metadata.truncation);
                shorter += usize::from(ours.len() < theirs.len());
                let (a, b) = (Message::from_vec(&ours), Message::from_vec(&theirs));
                let same = match (&a, &b) {
                    (Ok(a), Ok(b)) => a == b && spelled(a) == spelled(b),
                    _ => false,
                };
                if !same || ours.len() > theirs.len() {
                    mismatches.push(format!("{name} {rtype} {v:?} {protocol:?}"));
                }
            }
        }
    }
    none_differ(&mismatches, compared, "encodings");
    assert!(compared > 10_000, "only {compared} plans");
    assert!(truncated > 0, "no truncated plan was compared");
    assert!(
        shorter > 0,
        "the question never served as a compression target"
    );
}

/// A query planned from its in-place read (`QueryView::of_query`, the UDP
/// path's cache miss) answers byte for byte as the same query decoded by
/// hickory and planned (`QueryView::of_message`): every question and
/// variant of the corpus the in-place reader accepts, over UDP and TCP.
#[test]
fn plans_from_the_in_place_read_equal_plans_from_hickory_decoding() {
    use hickory_server::net::xfer::Protocol;
    use hickory_server::server::Request;
    use pdm_dns::server::query::Query as InPlace;
    use pdm_dns::server::respond::{self, Env};
    use pdm_dns::server::wire;
    let set = corpus_zones();
    let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
    let (mut compared, mut truncated, mut mismatches) = (0, 0, Vec::new());
    let mut id: u16 = 1;
    for (name, rtype) in questions(&["nsec3.test.", "compact.test."]) {
        for v in variants() {
            for protocol in [Protocol::Udp, Protocol::Tcp] {
                id = id.wrapping_add(1);
                let raw = query(id, &name, rtype, v);
                let Some(read) = InPlace::parse(&raw) else {
                    continue;
                };
                let request = Request::from_bytes(raw.clone(), src, protocol).unwrap();
                // Decoded first: its signatures are cached for the second.
                let decoded = respond::plan(&request, &set, protocol);
                let mut want = Vec::new();
                wire::encode(&decoded, &request.queries, protocol, &mut want);
                let (_, got) = planned_in_place(&read, &set, protocol, &Env::default());
                compared += 1;
                truncated += usize::from(decoded.metadata.truncation);
                if got != want {
                    mismatches.push(format!("{name} {rtype} {v:?} {protocol:?}"));
                }
            }
        }
    }
    none_differ(&mismatches, compared, "plans");
    assert!(compared > 10_000, "only {compared} plans");
    assert!(truncated > 0, "no truncated plan was compared");
}

/// A signed NXDOMAIN written from the kept sets' wire images
/// (`Env::wire_images`) answers as the same query planned record by
/// record: byte for byte when the question spells the apex as the zone does
/// (then images are used), and the same message in every case. Every
/// question and variant of the corpus, plus random names under the signed
/// apexes (each falls in its own NSEC3 interval), over UDP and TCP.
#[test]
fn denials_written_from_wire_images_equal_denials_planned_record_by_record() {
    use hickory_server::net::xfer::Protocol;
    use pdm_dns::server::query::Query as InPlace;
    use pdm_dns::server::respond::Env;
    let set = corpus_zones();
    let mut names = questions(&["nsec3.test.", "compact.test."]);
    for origin in ["nsec3.test.", "compact.test."] {
        for i in 0..300u32 {
            // Labels of 1 to 63 bytes: the apex lands anywhere in the
            // question, and every pointer of the images moves with it.
            let hex = format!("{:08x}", i.wrapping_mul(2_654_435_761));
            let len = 1 + (i as usize * 7) % 63;
            let label: String = hex.chars().cycle().take(len).collect();
            let name = Name::from_ascii(format!("{label}.{origin}")).unwrap();
            names.push((name.clone(), RecordType::A));
            if i % 10 == 0 {
                let deep = format!("x.{}.{label}.{origin}", "y".repeat(1 + i as usize % 40));
                names.push((Name::from_ascii(deep).unwrap(), RecordType::TXT));
            }
        }
    }
    let images = Env {
        wire_images: true,
        ..Env::default()
    };
    let (mut compared, mut imaged, mut mismatches) = (0, 0, Vec::new());
    let mut id: u16 = 1;
    for (name, rtype) in names {
        for v in variants() {
            for protocol in [Protocol::Udp, Protocol::Tcp] {
                id = id.wrapping_add(1);
                let raw = query(id, &name, rtype, v);
                let Some(read) = InPlace::parse(&raw) else {
                    continue;
                };
                // Records first: the sets are kept for the images.
                let (_, want) = planned_in_place(&read, &set, protocol, &Env::default());
                let (imaging, got) = planned_in_place(&read, &set, protocol, &images);
                compared += 1;
                if imaging.images.is_some() {
                    imaged += 1;
                    if got != want {
                        mismatches.push(format!("bytes: {name} {rtype} {v:?} {protocol:?}"));
                    }
                }
                let decode = |b: &[u8]| Message::from_vec(b).map(|m| m.to_string());
                if decode(&got).ok() != decode(&want).ok() || decode(&got).is_err() {
                    mismatches.push(format!("message: {name} {rtype} {v:?} {protocol:?}"));
                }
            }
        }
    }
    none_differ(&mismatches, compared, "answers");
    assert!(
        imaged > 1_500,
        "only {imaged} of {compared} answers came as images"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_answers_read_in_place_equal_planned_answers() {
    let set = corpus_zones();
    let zones: SharedZones = Arc::new(arc_swap::ArcSwap::from_pointee(set));
    let (cached, cache_handler) = start(&zones, true).await;
    let (planned, _) = start(&zones, false).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = vec![0u8; 65_535];
    let (mut compared, mut truncated, mut mismatches) = (0usize, 0usize, Vec::new());
    let mut id: u16 = 1;
    for (name, rtype) in questions(&["nsec3.test.", "compact.test."]) {
        for v in variants() {
            id = id.wrapping_add(3);
            // Fill the cache (different id and flags), then ask again.
            let fill = Variant {
                rd: !v.rd,
                cd: !v.cd,
                ..v
            };
            ask(&sock, cached, &query(id, &name, rtype, fill), &mut buf).await;
            let q = query(id.wrapping_add(1), &name, rtype, v);
            let from_cache = ask(&sock, cached, &q, &mut buf).await;
            let from_plan = ask(&sock, planned, &q, &mut buf).await;
            compared += 1;
            truncated += usize::from(from_plan.get(2).is_some_and(|b| b & 0x02 != 0));
            if !same_answer(&from_cache, &from_plan, v) {
                mismatches.push(format!("{name} {rtype} {v:?}"));
            }
        }
    }
    none_differ(&mismatches, compared, "answers");
    assert!(compared > 5_000, "only {compared} questions");
    // Most were answered from the cache (NXDOMAIN is never cached).
    let hits = cache_handler.packet_cache_hits().unwrap_or(0) as usize;
    assert!(hits > compared / 2, "{hits} cache hits of {compared}");
    assert!(truncated > 0, "no truncated answer was compared");
}

/// Over TCP, pipelined on one connection per server: the cached server's
/// answer to a repeated question equals the planned server's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_tcp_answers_equal_planned_answers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut set = ZoneSet::new();
    set.insert(Arc::new(zone("../tests/data/diff.test.zone")).into());
    let text = std::fs::read_to_string("../tests/data/dnssec.test.zone").unwrap();
    let (o, records) = parse_master(&text.replace("dnssec.test.", "nsec3.test."), None).unwrap();
    set.insert(signed(Zone::new(o, records).unwrap(), DenialMode::Nsec3));
    let zones: SharedZones = Arc::new(arc_swap::ArcSwap::from_pointee(set));
    let (cached, cache_handler) = start(&zones, true).await;
    let (planned, _) = start(&zones, false).await;
    let mut to_cached = tokio::net::TcpStream::connect(cached).await.unwrap();
    let mut to_planned = tokio::net::TcpStream::connect(planned).await.unwrap();
    async fn frame(s: &mut tokio::net::TcpStream) -> Vec<u8> {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.unwrap();
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).await.unwrap();
        buf
    }
    let framed = |q: &[u8]| {
        let mut f = (q.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(q);
        f
    };
    let (mut compared, mut mismatches) = (0usize, Vec::new());
    let mut id: u16 = 7;
    for (name, rtype) in questions(&["nsec3.test."]) {
        for v in variants().into_iter().step_by(3) {
            id = id.wrapping_add(2);
            let q = query(id, &name, rtype, v);
            // Two in one write: the second is pipelined behind the first.
            let mut both = framed(&query(id.wrapping_add(1), &name, rtype, v));
            both.extend_from_slice(&framed(&q));
            to_cached.write_all(&both).await.unwrap();
            frame(&mut to_cached).await;
            let from_cache = frame(&mut to_cached).await;
            to_planned.write_all(&framed(&q)).await.unwrap();
            let from_plan = frame(&mut to_planned).await;
            compared += 1;
            if !same_answer(&from_cache, &from_plan, v) {
                mismatches.push(format!("{name} {rtype} {v:?}"));
            }
        }
    }
    none_differ(&mismatches, compared, "TCP answers");
    let hits = cache_handler.packet_cache_hits().unwrap_or(0) as usize;
    assert!(hits > compared / 2, "{hits} cache hits of {compared}");
}

/// The plan of a query read in place (the UDP path's cache miss) under
/// `env`, and its encoding.
fn planned_in_place(
    read: &pdm_dns::server::query::Query<'_>,
    set: &ZoneSet,
    protocol: hickory_server::net::xfer::Protocol,
    env: &pdm_dns::server::respond::Env<'_>,
) -> (pdm_dns::server::respond::Plan, Vec<u8>) {
    use pdm_dns::server::respond::{self, QueryView};
    let view = QueryView::of_query(read);
    let plan = respond::plan_view(&view, set, protocol, env);
    let mut out = Vec::new();
    pdm_dns::server::wire::encode_question(
        &plan,
        view.question,
        view.questions,
        protocol,
        &mut out,
    );
    (plan, out)
}

/// Byte for byte, except for the server cookie's timestamp and hash (the
/// last 16 bytes), which move with the clock's second between the two
/// answers when the query sent a cookie.
fn same_answer(a: &[u8], b: &[u8], v: Variant) -> bool {
    let cookie = v.edns.is_some_and(|(_, _, c)| c > 0);
    if !cookie || a.len() != b.len() || a.len() < 16 {
        return a == b;
    }
    let stamp = a.len() - 16;
    a[..stamp] == b[..stamp]
}

/// Fails listing the first few of `mismatches` (of `compared` `what`).
fn none_differ(mismatches: &[String], compared: usize, what: &str) {
    assert!(
        mismatches.is_empty(),
        "{} of {compared} {what} differ, e.g. {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(5)]
    );
}
