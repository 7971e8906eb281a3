//! Zones and signers moved forward by diffs ([`Zone::apply_tracked`],
//! [`ZoneSigner::apply`]) answer exactly as ones built from scratch from
//! the same final record set: random change sequences (seeded, so a
//! failure reproduces), unsigned, NSEC3 and compact denial, every query
//! name and type of interest, denial proofs and signatures included.

use hickory_proto::rr::{Name, Record, RecordType};
use pdm_dns::dnssec::answer::secure;
use pdm_dns::dnssec::keys::generate;
use pdm_dns::dnssec::{
    DenialMode, KeyAlgorithm, KeyRole, SigCache, SigningPolicy, ZoneKey, ZoneSigner,
};
use pdm_dns::zone::file::parse_master;
use pdm_dns::zone::{lookup, Zone, ZoneOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

const ORIGIN: &str = "example.com.";
const NOW: u32 = 1_800_000_000;

fn recs(text: &str) -> Vec<Record> {
    parse_master(&format!("$ORIGIN {ORIGIN}\n{text}"), None)
        .unwrap()
        .1
}

fn soa(serial: u32, minimum: u32) -> Record {
    recs(&format!(
        "@ 3600 SOA ns1 hm {serial} 7200 3600 1209600 {minimum}\n"
    ))
    .remove(0)
}

/// Owners the random changes use: siblings, deep names (empty
/// non-terminals), wildcards, names under delegations.
const OWNERS: &[&str] = &[
    "a",
    "b",
    "c.d",
    "x.c.d",
    "*.w",
    "y.w",
    "deep.e.f.g",
    "*.h",
    "m",
    "sub1",
    "ns.sub1",
    "z.q.sub1",
    "sub2",
    "ns.sub2",
    "*.sub2",
    "cn",
    "cn2",
    "l",
    "*.l2",
];

/// One random record (it may conflict: a CNAME next to data is refused by
/// both paths alike).
fn candidate(rng: &mut StdRng) -> Vec<Record> {
    let owner = OWNERS[rng.gen_range(0..OWNERS.len())];
    let ttl = [60, 300, 3600][rng.gen_range(0..3)];
    let v = rng.gen_range(1..4);
    let text = match rng.gen_range(0..10) {
        0 => format!("{owner} {ttl} A 192.0.2.{v}\n"),
        1 => format!("{owner} {ttl} AAAA 2001:db8::{v}\n"),
        2 => format!("{owner} {ttl} TXT t{v}\n"),
        3 => format!("{owner} {ttl} MX {v} {}\n", OWNERS[rng.gen_range(0..OWNERS.len())]),
        // A delegation with DS and glue.
        4 => format!(
            "{owner} {ttl} NS ns.{owner}\n{owner} {ttl} DS 1{v} 13 2 2bb183af5f22588179a53b0a98631fad1a292118a7d2d2a6b7d6a2c7d0b3e8f1\nns.{owner} {ttl} A 192.0.2.5{v}\n"
        ),
        5 => format!("{owner} {ttl} NS ns{v}\n"),
        6 => format!("{owner} {ttl} CNAME {}\n", OWNERS[rng.gen_range(0..OWNERS.len())]),
        7 => format!("{owner} {ttl} LUA A \"'192.0.2.{v}'\"\n"),
        8 => format!("{owner} {ttl} SRV 1 1 {v} ns1\n"),
        _ => format!("ns{v} {ttl} A 192.0.2.9{v}\n"),
    };
    recs(&text)
        .into_iter()
        .filter(|r| !r.name.is_wildcard() || r.record_type() != RecordType::NS)
        .collect()
}

fn same_record(a: &Record, b: &Record) -> bool {
    a.name.to_lowercase() == b.name.to_lowercase() && a.data == b.data
}

/// Query names: every owner, its ancestors, names below it, a wildcard match.
fn query_names() -> Vec<Name> {
    let mut out: Vec<Name> = Vec::new();
    let origin = Name::from_ascii(ORIGIN).unwrap();
    for o in OWNERS
        .iter()
        .chain(&["ns1", "ns2", "ns3", "nope", "x.nope", "q.w", "r.q.l2"])
    {
        let n = Name::from_ascii(format!("{o}.{ORIGIN}")).unwrap();
        let mut anc = n.clone();
        while anc.num_labels() > origin.num_labels() {
            out.push(anc.clone());
            anc = anc.base_name();
        }
        out.push(Name::from_ascii(format!("zz.{n}")).unwrap());
    }
    out.push(origin);
    out.sort();
    out.dedup();
    out
}

const QTYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::TXT,
    RecordType::NS,
    RecordType::DS,
    RecordType::MX,
    RecordType::CNAME,
    RecordType::SOA,
    RecordType::SRV,
];

/// The answers of `zone` (secured by `signer` when given) to every query.
fn answers(zone: &Zone, signer: Option<&ZoneSigner>, names: &[Name]) -> Vec<String> {
    let mut out = Vec::new();
    for q in names {
        for &t in QTYPES {
            let mut a = lookup(zone, q, t);
            if let Some(s) = signer {
                let r = secure(&mut a, zone, s, q, NOW);
                out.push(format!("{q} {t} {r:?}"));
            }
            out.push(format!("{q} {t} {a:?}"));
        }
    }
    out
}

#[test]
fn applied_diffs_answer_like_fresh_builds() {
    let key = Arc::new(
        ZoneKey::from_pkcs8(
            KeyAlgorithm::Ed25519,
            KeyRole::Csk,
            &generate(KeyAlgorithm::Ed25519).unwrap(),
        )
        .unwrap(),
    );
    let cache = Arc::new(SigCache::new(100_000));
    let names = query_names();
    let origin = Name::from_ascii(ORIGIN).unwrap();
    let modes = [None, Some(DenialMode::Nsec3), Some(DenialMode::Compact)];
    let signer_for = |zone: &Zone, mode: DenialMode| {
        ZoneSigner::new(
            zone,
            vec![key.clone()],
            vec![key.clone()],
            mode,
            Arc::clone(&cache),
            SigningPolicy::default(),
        )
    };
    let (mut applied_steps, mut refused_steps) = (0, 0);
    for seq in 0..250u64 {
        let mut rng = StdRng::seed_from_u64(seq);
        let options = ZoneOptions {
            lua_records: seq % 3 != 0,
        };
        let mut records = recs("@ 3600 NS ns1\nns1 3600 A 192.0.2.1\n");
        let mut serial = 1;
        records.push(soa(serial, 300));
        let mut zone = Zone::with_options(origin.clone(), records.clone(), options).unwrap();
        let mode = modes[(seq % 3) as usize];
        let mut signer = mode.map(|m| signer_for(&zone, m));
        for _ in 0..rng.gen_range(1..12) {
            let mut removed: Vec<Record> = Vec::new();
            let mut added: Vec<Record> = Vec::new();
            for _ in 0..rng.gen_range(1..4) {
                if rng.gen_bool(0.4) && records.len() > 3 {
                    let i = rng.gen_range(0..records.len());
                    if records[i].record_type() != RecordType::SOA {
                        let r = records[i].clone();
                        if !removed.iter().any(|x| same_record(x, &r)) {
                            removed.push(r);
                        }
                    }
                } else {
                    for r in candidate(&mut rng) {
                        let present = records.iter().any(|x| same_record(x, &r));
                        let dup = added.iter().any(|x| same_record(x, &r));
                        let gone = removed.iter().any(|x| same_record(x, &r));
                        if !present && !dup && !gone {
                            added.push(r);
                        }
                    }
                }
            }
            // Most changes bump the serial; some change the negative TTL.
            if rng.gen_bool(0.8) {
                let old = records
                    .iter()
                    .find(|r| r.record_type() == RecordType::SOA)
                    .cloned()
                    .unwrap();
                serial += 1;
                removed.push(old);
                added.push(soa(serial, if rng.gen_bool(0.1) { 60 } else { 300 }));
            }
            let mut next: Vec<Record> = records
                .iter()
                .filter(|r| !removed.iter().any(|x| same_record(x, r)))
                .cloned()
                .collect();
            next.extend(added.iter().cloned());
            let fresh = Zone::with_options(origin.clone(), next.clone(), options);
            match zone.apply_tracked(&removed, &added) {
                Ok((z, delta)) => {
                    let fresh = fresh.expect("apply accepted what a fresh build refuses");
                    assert_eq!(z.records(), fresh.records(), "seq {seq}");
                    signer = signer.map(|s| {
                        s.apply(&z, &delta)
                            .unwrap_or_else(|| panic!("no key change in seq {seq}"))
                    });
                    zone = z;
                    records = next;
                    applied_steps += 1;
                }
                Err(e) => {
                    assert!(
                        fresh.is_err(),
                        "seq {seq}: apply refused ({e}), fresh build did not"
                    );
                    refused_steps += 1;
                }
            }
        }
        let fresh = Zone::with_options(origin.clone(), records.clone(), options).unwrap();
        let fresh_signer = mode.map(|m| signer_for(&fresh, m));
        let got = answers(&zone, signer.as_ref(), &names);
        let want = answers(&fresh, fresh_signer.as_ref(), &names);
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "seq {seq}, mode {mode:?}");
        }
        if let (Some(s), Some(f)) = (&signer, &fresh_signer) {
            let signed = |z: &Zone, s: &ZoneSigner| {
                pdm_dns::dnssec::export::signed_records(z, s, NOW)
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_default()
            };
            assert_eq!(
                signed(&zone, s),
                signed(&fresh, f),
                "seq {seq}: signed export"
            );
        }
    }
    assert!(applied_steps > 800, "{applied_steps} steps applied");
    assert!(refused_steps > 10, "{refused_steps} steps refused");
}
