//! Cost of a signed random-name NXDOMAIN answer, for callgrind: the zone
//! and parameters of `DNSSEC=1 bench/dns.sh` (bench/bench.test.zone, ECDSA
//! P-256 CSK, NSEC3 with 0 iterations and no salt, DO=1), N queries for
//! names that do not exist, planned (and encoded) as the server does.
//!
//! ```text
//! cargo build --release -p pdm-dns --example nxdomain_cost
//! valgrind --tool=callgrind --toggle-collect='*nxdomain_cost*plan_all*' \
//!     target/release/examples/nxdomain_cost 20000
//! ```
//!
//! Instructions per answer = the toggled total / N (the warm-up round,
//! which makes the first signatures, is outside the toggled functions).
//! `plan_all` plans only (look-up, proofs, signatures, size fit);
//! `encode_all` (toggle `*encode_all*`) plans and encodes. Args: N
//! (default 20000) and the denial mode (`nsec3`, default, or `compact`).

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use pdm_dns::dnssec::keys::generate;
use pdm_dns::dnssec::{
    DenialMode, KeyAlgorithm, KeyRole, SigCache, SigningPolicy, ZoneKey, ZoneSigner,
};
use pdm_dns::server::respond::plan;
use pdm_dns::server::{ServedZone, ZoneSet};
use pdm_dns::zone::file::parse_master;
use pdm_dns::zone::Zone;
use std::hint::black_box;
use std::sync::Arc;

/// The query for `name` type A with DO=1, as dnsperf sends it.
fn query(name: &str, id: u16) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.add_query(Query::query(
        Name::from_ascii(name).expect("valid name"),
        RecordType::A,
    ));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.set_dnssec_ok(true);
    m.set_edns(e);
    m.to_vec().expect("encodable query")
}

/// Pseudo-random label, as the bench's random-name mix makes them.
fn label(i: u64) -> String {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x0005_DEEC_E66D;
    let mut s = String::new();
    for _ in 0..12 {
        s.push((b'a' + (x % 26) as u8) as char);
        x /= 26;
        if x == 0 {
            x = i.wrapping_add(7).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        }
    }
    s
}

#[inline(never)]
fn plan_all(requests: &[Request], zones: &ZoneSet) -> usize {
    let mut n = 0;
    for r in requests {
        let p = plan(r, zones, Protocol::Udp);
        n += p.answer.authority.len();
        black_box(&p);
    }
    n
}

#[inline(never)]
fn encode_all(requests: &[Request], zones: &ZoneSet, buf: &mut Vec<u8>) -> usize {
    let mut n = 0;
    for r in requests {
        let p = plan(r, zones, Protocol::Udp);
        buf.clear();
        pdm_dns::server::wire::encode(&p, &r.queries, Protocol::Udp, buf);
        n += buf.len();
    }
    n
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let mode = args
        .next()
        .and_then(|m| DenialMode::parse(&m))
        .unwrap_or(DenialMode::Nsec3);
    let text = include_str!("../../bench/bench.test.zone");
    let (origin, records) = parse_master(text, None).expect("bench zone parses");
    let zone = Zone::new(origin, records).expect("bench zone loads");
    let alg = KeyAlgorithm::Ecdsap256sha256;
    let key = Arc::new(
        ZoneKey::from_pkcs8(alg, KeyRole::Csk, &generate(alg).expect("key")).expect("key"),
    );
    let signer = ZoneSigner::new(
        &zone,
        vec![key.clone()],
        vec![key],
        mode,
        Arc::new(SigCache::new(100_000)),
        SigningPolicy::default(),
    );
    let mut zones = ZoneSet::new();
    zones.insert(ServedZone::signed(Arc::new(zone), Arc::new(signer)));
    let src = "127.0.0.1:5353".parse().expect("address");
    let make = |from: u64, count: u64| -> Vec<Request> {
        (from..from + count)
            .map(|i| {
                let name = format!("{}.bench.test.", label(i));
                Request::from_bytes(query(&name, i as u16), src, Protocol::Udp)
                    .expect("query parses")
            })
            .collect()
    };
    // Warm-up: the bench zone's chain is small, so these make every
    // signature the measured rounds use.
    let warm = make(1_000_000, 2_000);
    for r in &warm {
        black_box(plan(r, &zones, Protocol::Udp));
    }
    let requests = make(0, n);
    let sample = plan(&requests[0], &zones, Protocol::Udp);
    let types: Vec<_> = sample
        .answer
        .authority
        .iter()
        .map(|r| r.record_type())
        .collect();
    eprintln!(
        "{mode:?}: rcode {:?}, authority {types:?}",
        sample.metadata.response_code
    );
    let records = plan_all(&requests, &zones);
    let mut buf = Vec::with_capacity(1232);
    let bytes = encode_all(&requests, &zones, &mut buf);
    eprintln!(
        "{n} answers: {records} authority records, {} bytes each",
        bytes / n.max(1) as usize
    );
}
