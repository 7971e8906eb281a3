//! NOTIFY at start-up: a restarted pdm announces every zone that has
//! secondaries, without waiting for a change, so a secondary that missed
//! changes while pdm was down asks for them at once; `startup_notify_rate = 0`
//! turns it off.

#[macro_use]
mod common;
use common::*;
use hickory_proto::op::{Message, OpCode};
use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// The zones NOTIFY named at `sock` within `wait` (no answer is sent: pdm
/// retries, which does not matter here).
fn notified(sock: &UdpSocket, wait: Duration) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let end = Instant::now() + wait;
    let mut buf = [0u8; 4096];
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            break;
        };
        if let Ok(m) = Message::from_vec(&buf[..n]) {
            if m.op_code == OpCode::Notify {
                for q in &m.queries {
                    out.insert(q.name().to_ascii());
                }
            }
        }
    }
    out
}

fn announced_at_start(b: Backend) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let extra = format!(
        "[transfer]\nalso_notify = [{{ address = \"{addr}\" }}]\nnotify_retry_initial_ms = 60000\n"
    );
    let Some(mut srv) = PdmServer::start(b, Config::default_test().extra(&extra)) else {
        return;
    };
    srv.allocate("example.test", "acme", "192.0.2.10", None);
    // The commit's own NOTIFYs (and the start's), then quiet.
    let _ = notified(&sock, Duration::from_secs(2));
    srv.restart();
    let got = notified(&sock, Duration::from_secs(5));
    for zone in ["example.test.", "acme.example.test."] {
        assert!(
            got.contains(zone),
            "no NOTIFY for {zone} after a restart without changes: {got:?}"
        );
    }
}

fn off_when_the_rate_is_zero(b: Backend) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let extra = format!("[transfer]\nalso_notify = [{{ address = \"{addr}\" }}]\nstartup_notify_rate = 0\nnotify_retry_initial_ms = 60000\n");
    let Some(mut srv) = PdmServer::start(b, Config::default_test().extra(&extra)) else {
        return;
    };
    srv.allocate("example.test", "acme", "192.0.2.10", None);
    let changed = notified(&sock, Duration::from_secs(2));
    assert!(
        changed.contains("acme.example.test."),
        "a change is still announced: {changed:?}"
    );
    srv.restart();
    let got = notified(&sock, Duration::from_secs(3));
    assert!(
        got.is_empty(),
        "startup_notify_rate = 0 still announced {got:?}"
    );
}

backend_tests!(announced_at_start, off_when_the_rate_is_zero);
