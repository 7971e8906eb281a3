//! What one committed child zone costs the data plane in memory and build
//! time, part by part: the records as read, the zone tree, the opened key and
//! the signer (NSEC3 chain). Ignored (a measurement, not an assertion):
//! `cargo test --release -p pdm-dns --test child_zone_cost -- --ignored --nocapture`.

use hickory_proto::rr::Record;
use pdm_dns::dnssec::keys::{apex_key_records, generate};
use pdm_dns::dnssec::{
    DenialMode, KeyAlgorithm, KeyRole, SigCache, SigningPolicy, ZoneKey, ZoneSigner,
};
use pdm_dns::zone::file::parse_master;
use pdm_dns::zone::Zone;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// The rows of a committed child zone under the default template.
fn child_records(i: usize) -> Vec<Record> {
    let text = format!(
        "$ORIGIN c{i}.pool.test.\n$TTL 300\n\
         @ SOA ns1.pool.test. hostmaster.pool.test. 1 7200 3600 1209600 300\n\
         @ NS ns1.pool.test.\n@ NS ns2.pool.test.\n\
         @ A 192.0.2.10\n* A 192.0.2.10\nconsole A 192.0.2.11\napi A 192.0.2.11\n\
         marketplace A 192.0.2.11\ngitea A 192.0.2.10\nharbor A 192.0.2.10\n"
    );
    parse_master(&text, None).unwrap().1
}

#[test]
#[ignore]
fn one_child_zone() {
    let n: usize = std::env::var("CHILDREN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let cache = Arc::new(SigCache::new(1000));
    let alg = KeyAlgorithm::Ecdsap256sha256;
    let ders: Vec<Vec<u8>> = (0..n).map(|_| generate(alg).unwrap()).collect();

    let (mut t_key, mut t_zone, mut t_signer) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut m_rows, mut m_key, mut m_zone, mut m_signer) = (0isize, 0isize, 0isize, 0isize);
    let mut kept = Vec::with_capacity(n);
    for (i, der) in ders.iter().enumerate() {
        let m0 = live();
        let mut records = child_records(i);
        let m1 = live();
        let t = Instant::now();
        let key = Arc::new(ZoneKey::from_pkcs8(alg, KeyRole::Csk, der).unwrap());
        t_key += t.elapsed();
        let m2 = live();
        let origin = records[0].name.clone();
        records.extend(apex_key_records(&origin, 3600, &[key.dnskey()], &[key.dnskey()]).unwrap());
        let t = Instant::now();
        let zone = Zone::new(origin, records).unwrap();
        t_zone += t.elapsed();
        let m3 = live();
        let t = Instant::now();
        let signer = ZoneSigner::new(
            &zone,
            vec![key.clone()],
            vec![key],
            DenialMode::Nsec3,
            cache.clone(),
            SigningPolicy::default(),
        );
        t_signer += t.elapsed();
        let m4 = live();
        (m_rows, m_key, m_zone, m_signer) = (
            m_rows + (m1 - m0),
            m_key + (m2 - m1),
            m_zone + (m3 - m2),
            m_signer + (m4 - m3),
        );
        kept.push((Arc::new(zone), Arc::new(signer)));
    }
    let per = |m: isize| m as f64 / n as f64 / 1024.0;
    let us = |t: Duration| t.as_secs_f64() * 1e6 / n as f64;
    println!("{n} child zones (default template, P-256 CSK, NSEC3), per zone:");
    println!(
        "  records as read  {:>7.2} KiB (freed once the zone is built)",
        per(m_rows)
    );
    println!(
        "  opened key       {:>7.2} KiB  {:>7.1} us",
        per(m_key),
        us(t_key)
    );
    println!(
        "  zone tree        {:>7.2} KiB  {:>7.1} us",
        per(m_zone),
        us(t_zone)
    );
    println!(
        "  signer (NSEC3)   {:>7.2} KiB  {:>7.1} us",
        per(m_signer),
        us(t_signer)
    );
    assert_eq!(kept.len(), n);
}

#[test]
#[ignore]
fn sizes() {
    use hickory_proto::rr::{Name, RData};
    println!(
        "Record {} Name {} RData {}",
        std::mem::size_of::<Record>(),
        std::mem::size_of::<Name>(),
        std::mem::size_of::<RData>()
    );
    println!(
        "Node {} RRset {}",
        std::mem::size_of::<pdm_dns::zone::Node>(),
        std::mem::size_of::<pdm_dns::zone::RRset>()
    );
    let m0 = live();
    let mut m: imbl::OrdMap<Box<[u8]>, Arc<u64>> = imbl::OrdMap::new();
    for i in 0..7u64 {
        m.insert(vec![i as u8; 20].into_boxed_slice(), Arc::new(i));
    }
    println!("OrdMap of 7: {} bytes", live() - m0);
    let m0 = live();
    let v: imbl::Vector<Arc<u64>> = (0..8u64).map(Arc::new).collect();
    println!("Vector of 8: {} bytes", live() - m0);
    drop((m, v));
}

/// Bytes one cached signature holds, to document the signature cache's bound.
#[test]
#[ignore]
fn one_cached_signature() {
    let n = 1000;
    let alg = KeyAlgorithm::Ecdsap256sha256;
    let zones: Vec<(Zone, Arc<ZoneKey>)> = (0..n)
        .map(|i| {
            let mut records = child_records(i);
            let key =
                Arc::new(ZoneKey::from_pkcs8(alg, KeyRole::Csk, &generate(alg).unwrap()).unwrap());
            let origin = records[0].name.clone();
            records
                .extend(apex_key_records(&origin, 3600, &[key.dnskey()], &[key.dnskey()]).unwrap());
            (Zone::new(origin, records).unwrap(), key)
        })
        .collect();
    // Export every zone with a cache that keeps (almost) nothing and with
    // one that keeps everything: the difference is the cache.
    let grown = |capacity: usize| {
        let cache = Arc::new(SigCache::new(capacity));
        let signers: Vec<ZoneSigner> = zones
            .iter()
            .map(|(zone, key)| {
                ZoneSigner::new(
                    zone,
                    vec![key.clone()],
                    vec![key.clone()],
                    DenialMode::Nsec3,
                    cache.clone(),
                    SigningPolicy::default(),
                )
            })
            .collect();
        let m0 = live();
        for ((zone, _), signer) in zones.iter().zip(&signers) {
            drop(pdm_dns::dnssec::export::signed_records(zone, signer, 1_800_000_000).unwrap());
        }
        (live() - m0, cache.len())
    };
    let (tiny, _) = grown(16);
    let (big, entries) = grown(1 << 20);
    println!("growth: tiny cache {tiny} bytes, big cache {big} bytes");
    println!(
        "{entries} signatures cached: {:.0} bytes each",
        (big - tiny) as f64 / entries as f64
    );
}
