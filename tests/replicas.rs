//! Several `pdm serve` processes on one database behave as one service:
//! a change made through either is answered in DNS by both, within 100 ms
//! of the HTTP answer on an idle machine (each follows the shared journal).

#[macro_use]
mod common;
use common::*;
use hickory_proto::rr::RecordType;
use std::time::{Duration, Instant};

/// Poll `srv`'s DNS until `name A` answers `want` (or NXDOMAIN when `None`).
fn time_until(
    srv: &PdmServer,
    name: &str,
    want: Option<&str>,
    limit: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        let r = srv.dig(name, RecordType::A);
        let ok = match want {
            Some(ip) => r.answer_data(RecordType::A) == vec![ip.to_string()],
            None => r.is_nxdomain(),
        };
        if ok {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

fn replicas_share_changes(b: Backend) {
    let a = start_or_skip!(b, Config::default_test());
    let second = a.replica();
    // The target is 100 ms (25 ms journal poll + one zone load); the bound here is
    // loose so a loaded CI machine does not flake. bench/api.sh measures it.
    let limit = Duration::from_secs(1);

    // Commit through A: both serve the zone.
    a.allocate("example.test", "shared", "192.0.2.77", None);
    let t_a = time_until(
        &a,
        "shared.example.test",
        Some("192.0.2.77"),
        Duration::from_secs(2),
    );
    let t_b = time_until(
        &second,
        "shared.example.test",
        Some("192.0.2.77"),
        Duration::from_secs(2),
    );
    assert!(
        t_a.is_some_and(|t| t <= limit),
        "commit via A served by A after {t_a:?}"
    );
    assert!(
        t_b.is_some_and(|t| t <= limit),
        "commit via A served by B after {t_b:?}"
    );

    // Release through B: both stop serving it.
    let (st, body) = second.release("example.test", "shared");
    assert_eq!(st, 200, "{body}");
    let t_a = time_until(&a, "shared.example.test", None, Duration::from_secs(2));
    let t_b = time_until(&second, "shared.example.test", None, Duration::from_secs(2));
    assert!(
        t_a.is_some_and(|t| t <= limit),
        "release via B seen by A after {t_a:?}"
    );
    assert!(
        t_b.is_some_and(|t| t <= limit),
        "release via B seen by B after {t_b:?}"
    );

    // One name, one winner across replicas.
    let (s1, _) = a.reserve("example.test", "race");
    let (s2, body2) = second.reserve("example.test", "race");
    assert_eq!(s1, 201);
    assert_eq!(s2, 409, "{body2}");
}

backend_tests!(replicas_share_changes);
