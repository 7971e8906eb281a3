//! Cost of the lookup hot path on a pool-sized zone: allocations per
//! lookup and a rough time. Ignored (a measurement, not an assertion):
//! `cargo test -p pdm-dns --test lookup_cost -- --ignored --nocapture`.

use hickory_proto::rr::{Name, RecordType};
use pdm_dns::zone::file::parse_master;
use pdm_dns::zone::{lookup, Zone};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Counts allocations made by this test binary.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
#[ignore]
fn lookup_allocations_and_time() {
    let n = 20_000;
    let mut text = String::from(
        "$ORIGIN pool.test.\n$TTL 300\n@ SOA ns1 hm 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n*.w A 192.0.2.2\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "c{i} NS ns.c{i}\nc{i} DS {} 13 2 2bb183af5f22588179a53b0a98631fad1a292118a7d2d2a6b7d6a2c7d0b3e8f1\nns.c{i} A 192.0.2.3\nh{i} A 192.0.2.4\n",
            i % 65535
        ));
    }
    let (origin, records) = parse_master(&text, None).unwrap();
    let zone = Zone::new(origin, records).unwrap();
    let queries: Vec<(Name, RecordType)> = (0..1000)
        .flat_map(|i| {
            let i = i * 17 % n;
            [
                (format!("h{i}.pool.test."), RecordType::A),
                (format!("h{i}.pool.test."), RecordType::TXT),
                (format!("www.c{i}.pool.test."), RecordType::A),
                (format!("c{i}.pool.test."), RecordType::DS),
                (format!("nx{i}.pool.test."), RecordType::A),
                (format!("x{i}.w.pool.test."), RecordType::A),
            ]
        })
        .map(|(q, t)| (Name::from_ascii(q).unwrap(), t))
        .collect();
    let before = ALLOCS.load(Ordering::Relaxed);
    let start = Instant::now();
    let rounds = 20;
    let mut answers = 0usize;
    for _ in 0..rounds {
        for (q, t) in &queries {
            answers += lookup(&zone, q, *t).answers.len();
        }
    }
    let took = start.elapsed();
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    let count = (queries.len() * rounds) as f64;
    println!(
        "{} lookups: {:.2} allocations and {:.0} ns per lookup ({answers} answer records)",
        count,
        allocs as f64 / count,
        took.as_nanos() as f64 / count
    );
}
