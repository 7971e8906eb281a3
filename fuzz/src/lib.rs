//! pdm's fuzz targets: each takes arbitrary bytes and must never panic,
//! hang or break the invariant it checks. The functions are the targets;
//! `fuzz_targets/*.rs` wrap them for libFuzzer (`--cfg fuzzing`, see
//! scripts/fuzz) and `tests/replay.rs` runs the committed corpus and every
//! regression input through them under plain `cargo test`.

mod fixture;

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::Name;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use pdm_dns::lua::{LuaRecord, QueryContext};
use pdm_dns::server::cache::{Echo, Key, KeyRef};
use pdm_dns::server::query::Query;
use pdm_dns::server::respond::{size_limit, QueryView};
use pdm_dns::server::{wire, Decision};
use pdm_dns::zone::file::{parse_master, plain_txt, write_master};
use pdm_dns::zone::Zone;
use std::net::SocketAddr;
use std::path::Path;

/// A fuzz target: bytes in, a panic on any broken invariant.
pub type Target = fn(&[u8]);

/// Every target by name (the names of `fuzz_targets/*.rs` and of the
/// `corpus/` and `regressions/` folders).
pub const TARGETS: &[(&str, Target)] = &[
    ("packet", packet),
    ("zone_file", zone_file),
    ("lua_record", lua_record),
    ("api_json", api_json),
];

/// The packet path as the server runs it, over UDP and TCP: bytes →
/// `Request` → plan (an unsigned, an NSEC3-signed, a compact-denial and a
/// LUA zone; the packet cache on UDP) → encode. Every reply must decode,
/// carry the request's id and, over UDP, fit the client's size limit.
pub fn packet(data: &[u8]) {
    let fx = fixture::get();
    let src: SocketAddr = "192.0.2.53:5353".parse().expect("literal address");
    let mut out = Vec::with_capacity(512);
    // The UDP fast path's in-place reader must accept only what hickory
    // decodes, and read it the same.
    let read = Query::parse(data);
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        out.clear();
        let request = match Request::from_bytes(data.to_vec(), src, protocol) {
            Ok(request) => request,
            Err(_) => {
                assert!(read.is_none(), "read in place what hickory refuses");
                if wire::undecodable(data, &mut out).is_some() {
                    assert_eq!(out.len(), 12, "an undecodable query gets a bare header");
                    assert_eq!(out[..2], data[..2], "the FORMERR keeps the id");
                }
                continue;
            }
        };
        if let Some(query) = &read {
            assert_eq!(
                Some(KeyRef::of(query, protocol).to_owned()),
                Key::of(&request)
            );
            assert_eq!(Echo::of_query(query), Echo::of(&request));
        }
        if request.metadata.message_type != MessageType::Query {
            continue;
        }
        let zones = fx.zones.load();
        let key = Key::of(&request);
        if let Some(key) = &key {
            // As the server does: by the borrowed key when read in place.
            let hit = match &read {
                Some(q) => fx.cache.answer(
                    &zones,
                    &KeyRef::of(q, protocol),
                    Echo::of_query(q),
                    &mut out,
                ),
                None => fx.cache.answer(&zones, key, Echo::of(&request), &mut out),
            };
            if hit {
                check_reply(&request, protocol, &out);
                continue;
            }
        }
        let plan = match fx.handler.plan_now(&request, &zones) {
            Decision::Ready(plan) => plan,
            // The runtime evaluates inline: nothing is ever offloaded.
            Decision::Offload => panic!("an inline LUA runtime offloaded"),
        };
        wire::encode(&plan, &request.queries, protocol, &mut out);
        check_reply(&request, protocol, &out);
        // The UDP path plans a query read in place without decoding it: the
        // same bytes (LUA answers aside: their programs may pick at random).
        if let Some(q) = read.as_ref().filter(|q| !q.is_transfer() && !plan.dynamic) {
            let view = QueryView::of_query(q);
            let plan_read =
                |images| match fx.handler.plan_view(&view, src, protocol, &zones, images) {
                    Decision::Ready(again) => {
                        let mut bytes = Vec::new();
                        wire::encode_question(
                            &again,
                            view.question,
                            view.questions,
                            protocol,
                            &mut bytes,
                        );
                        Some(bytes)
                    }
                    Decision::Offload => None,
                };
            if let Some(bytes) = plan_read(false) {
                assert_eq!(bytes, out, "planned from the in-place read, not as decoded");
            }
            // A signed NXDOMAIN may come from the kept sets' wire images:
            // the same message (its names compressed against the apex only).
            if let Some(bytes) = plan_read(true) {
                let text = |b: &[u8]| Message::from_vec(b).map(|m| m.to_string()).ok();
                assert_eq!(
                    text(&bytes),
                    text(&out),
                    "written from wire images, not as planned"
                );
                assert!(text(&bytes).is_some(), "an imaged reply does not decode");
            }
        }
        if let Some(key) = key {
            fx.cache.insert(&zones, key, &plan, &out);
        }
    }
}

/// The reply to `request` decodes, answers it (same id, QR set) and fits.
fn check_reply(request: &Request, protocol: Protocol, out: &[u8]) {
    let reply = match Message::from_vec(out) {
        Ok(reply) => reply,
        Err(e) => panic!("the reply does not decode: {e}\n{out:02x?}"),
    };
    assert_eq!(reply.metadata.id, request.metadata.id, "reply id");
    assert_eq!(reply.metadata.message_type, MessageType::Response);
    let limit = size_limit(request.edns.as_ref(), protocol);
    assert!(
        out.len() <= usize::from(limit),
        "{} bytes over a limit of {limit}",
        out.len()
    );
}

/// The master-file parser: any text either fails with an error or gives
/// records that [`write_master`] renders and `parse_master` reads back to
/// the same records (the property `write_master` documents); and TXT data
/// that `plain_txt` reads without the lexer reads the same through it.
pub fn zone_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Name::from_ascii("fuzz.test.").expect("literal name");
    // TXT data read without the lexer must read as the lexer reads it.
    if let Some(line) = text.lines().next() {
        if let Some(direct) = plain_txt(line) {
            let one = format!("t.fuzz.test. 3600 IN TXT {line}\n");
            let lexed = parse_master(&one, Some(&origin))
                .map(|(_, records)| records.into_iter().map(|r| r.data).collect::<Vec<_>>());
            assert_eq!(lexed.ok(), Some(vec![direct]), "plain TXT {line:?}");
        }
    }
    let Ok((origin, records)) = parse_master(text, Some(&origin)) else {
        return;
    };
    let written = write_master(&origin, &records);
    let (again_origin, again) = match parse_master(&written, None) {
        Ok(parsed) => parsed,
        Err(e) => panic!("write_master output does not parse: {e}\n{written}"),
    };
    assert_eq!(again_origin, origin, "origin round trip\n{written}");
    let mut before: Vec<_> = records.iter().map(ToString::to_string).collect();
    let mut after: Vec<_> = again.iter().map(ToString::to_string).collect();
    before.sort();
    after.sort();
    assert_eq!(before, after, "records round trip\n{written}");
    // Building the served zone may refuse the records, never panic.
    let _ = Zone::new(origin, records);
}

/// LUA record input: the RDATA text and wire forms, and the program's
/// evaluation under the engine's limits. Errors are answers; only a panic
/// (or a hang past the fuzzer's timeout) is a finding.
pub fn lua_record(data: &[u8]) {
    if let Ok(rec) = LuaRecord::from_wire(data) {
        let wire = rec.to_wire().expect("a record read from wire writes back");
        let again = LuaRecord::from_wire(&wire).expect("its own wire form reads");
        assert_eq!(again.to_wire().ok(), Some(wire), "wire round trip");
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let fx = fixture::get();
    // As RDATA text (`A "code"`), and as a bare program for an A record.
    let parsed = LuaRecord::parse(text);
    let bare = LuaRecord::parse(&format!("A {:?}", text));
    for rec in [parsed, bare].into_iter().flatten() {
        let ctx = QueryContext::new(
            Name::from_ascii("x.lua.test.").expect("literal name"),
            rec.rtype,
            Name::from_ascii("lua.test.").expect("literal name"),
            "192.0.2.7".parse().expect("literal address"),
        );
        let _ = fx.lua.evaluate(&rec, &ctx);
    }
}

/// The HTTP API's JSON bodies: every request body type, and the edge
/// parsers their fields go through.
pub fn api_json(data: &[u8]) {
    pdm::api::fuzz_bodies(data);
}

/// Run `target` over every file named on the command line (folders: every
/// file in them), as the replaying `fuzz_targets` binaries do.
pub fn replay_args(target: Target) {
    let mut count = 0usize;
    for arg in std::env::args_os().skip(1) {
        count += replay(Path::new(&arg), target);
    }
    println!("replayed {count} inputs");
}

/// Run `target` over `path` (a file, or every file in a folder); the count.
pub fn replay(path: &Path, target: Target) -> usize {
    if path.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            return 0;
        };
        let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        files.iter().map(|f| replay(f, target)).sum()
    } else {
        match std::fs::read(path) {
            Ok(bytes) => {
                target(&bytes);
                1
            }
            Err(_) => 0,
        }
    }
}
