//! What one commit into a pool zone of N delegations costs the data plane:
//! a whole rebuild (zone tree + NSEC3 signer) against `Zone::apply_tracked`
//! and `ZoneSigner::apply`. Ignored (a measurement, not an assertion):
//! `cargo test -p pdm-dns --test pool_commit_cost -- --ignored --nocapture`.

use hickory_proto::rr::{RData, Record};
use pdm_dns::dnssec::keys::generate;
use pdm_dns::dnssec::{
    DenialMode, KeyAlgorithm, KeyRole, SigCache, SigningPolicy, ZoneKey, ZoneSigner,
};
use pdm_dns::zone::file::parse_master;
use pdm_dns::zone::Zone;
use std::sync::Arc;
use std::time::Instant;

#[test]
#[ignore]
fn one_commit_into_a_pool_zone() {
    let n: usize = std::env::var("POOL_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut text = String::from(
        "$ORIGIN pool.test.\n$TTL 300\n@ SOA ns1 hm 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "c{i} NS ns1.provider.test.\nc{i} DS {} 13 2 2bb183af5f22588179a53b0a98631fad1a292118a7d2d2a6b7d6a2c7d0b3e8f1\n",
            i % 65535
        ));
    }
    let (origin, records) = parse_master(&text, None).unwrap();
    let key = Arc::new(
        ZoneKey::from_pkcs8(
            KeyAlgorithm::Ed25519,
            KeyRole::Csk,
            &generate(KeyAlgorithm::Ed25519).unwrap(),
        )
        .unwrap(),
    );
    let signer_for = |zone: &Zone| {
        ZoneSigner::new(
            zone,
            vec![key.clone()],
            vec![key.clone()],
            DenialMode::Nsec3,
            Arc::new(SigCache::new(1000)),
            SigningPolicy::default(),
        )
    };
    let zone = Zone::new(origin.clone(), records.clone()).unwrap();
    let signer = signer_for(&zone);

    // The commit: one new child (NS + DS), the serial bumped.
    let (_, added) = parse_master(
        "$ORIGIN pool.test.\n$TTL 300\nnewchild NS ns1.provider.test.\nnewchild DS 7 13 2 2bb183af5f22588179a53b0a98631fad1a292118a7d2d2a6b7d6a2c7d0b3e8f1\n",
        None,
    )
    .unwrap();
    let old_soa = zone.soa();
    let mut new_soa = old_soa.clone();
    if let RData::SOA(s) = &mut new_soa.data {
        s.serial = 2;
    }
    let removed: Vec<Record> = vec![old_soa];
    let added: Vec<Record> = added.into_iter().chain([new_soa]).collect();

    let start = Instant::now();
    let mut all = records.clone();
    all.retain(|r| !removed.contains(r));
    all.extend(added.iter().cloned());
    let rebuilt = Zone::new(origin.clone(), all).unwrap();
    let rebuilt_signer = signer_for(&rebuilt);
    let whole = start.elapsed();

    let start = Instant::now();
    let rounds = 100;
    let mut last = None;
    for _ in 0..rounds {
        let (z, delta) = zone.apply_tracked(&removed, &added).unwrap();
        let s = signer.apply(&z, &delta).unwrap();
        last = Some((z, s));
    }
    let applied = start.elapsed() / rounds;
    let (z, _) = last.unwrap();
    assert_eq!(z.node_count(), rebuilt.node_count());
    drop(rebuilt_signer);
    println!(
        "pool zone of {n} delegations, one commit: whole rebuild {:?}, apply {:?} ({:.0}x)",
        whole,
        applied,
        whole.as_secs_f64() / applied.as_secs_f64()
    );
}
