//! Read your writes: when a commit or a release answers 200, the node that
//! answered already serves the change, over UDP and over TCP. Checked right
//! after each of many writes, on SQLite and on Postgres.

#[macro_use]
mod common;
use common::*;
use hickory_proto::rr::RecordType;

/// Commits (then releases) this many children, asking DNS right after each answer.
const ROUNDS: usize = 200;

fn every_write_is_served_on_return(b: Backend) {
    let Some(srv) = PdmServer::start(b, Config::default_test()) else {
        return;
    };
    let addr = srv.zone_dns_addr();
    let mut misses = Vec::new();
    for i in 0..ROUNDS {
        let sub = format!("t{i}");
        let name = format!("{sub}.example.test.");
        let ip = format!("192.0.2.{}", i % 250 + 1);
        srv.allocate("example.test", &sub, &ip, None);
        // At once, no retries: the 200 promised this.
        for (transport, r) in [
            ("udp", dig_at(addr, &name, RecordType::A)),
            ("tcp", dig_tcp_at(addr, &name, RecordType::A)),
        ] {
            match r {
                Ok(d) if d.rcode == "NOERROR" && d.answer_data(RecordType::A) == [ip.clone()] => {}
                other => misses.push(format!("after commit of {name} ({transport}): {other:?}")),
            }
        }
    }
    for i in 0..ROUNDS {
        let sub = format!("t{i}");
        let name = format!("{sub}.example.test.");
        let (st, r) = srv.release("example.test", &sub);
        assert_eq!(st, 200, "{r}");
        for (transport, r) in [
            ("udp", dig_at(addr, &name, RecordType::A)),
            ("tcp", dig_tcp_at(addr, &name, RecordType::A)),
        ] {
            match r {
                // The pool zone answers for the name again: no delegation, no zone.
                Ok(d) if d.is_nxdomain() => {}
                other => misses.push(format!("after release of {name} ({transport}): {other:?}")),
            }
        }
    }
    assert!(
        misses.is_empty(),
        "{} of {} answers right after a 200 were stale:\n{}",
        misses.len(),
        ROUNDS * 4,
        misses
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

backend_tests!(every_write_is_served_on_return);
