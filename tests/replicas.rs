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

fn change_status(srv: &PdmServer, id: i64) -> Value {
    let (st, v) = srv.get(&format!("/api/v1/changes/{id}"), Some(&srv.admin_token()));
    assert_eq!(st, 200, "{v}");
    v
}

/// A change is PENDING until every live replica serves it, then INSYNC; a
/// replica killed with -9 drops out after its heartbeat timeout.
fn change_status_follows_the_replicas(b: Backend) {
    let a = start_or_skip!(b, Config::default_test());
    let mut second = a.replica();

    let (body, id) = a.commit_change("tracked", "192.0.2.50");
    // The serial the commit produced is the one this node answers.
    let serial = body["servedSerial"].as_u64().expect("servedSerial");
    let soa = a.dig("tracked.example.test", RecordType::SOA);
    let served: Vec<u64> = soa
        .answer_data(RecordType::SOA)
        .iter()
        .filter_map(|d| d.split_whitespace().nth(2).and_then(|x| x.parse().ok()))
        .collect();
    assert_eq!(served, vec![serial], "{soa:?}");

    let mut last = Value::Null;
    let insync = wait_for(Duration::from_secs(5), || {
        last = change_status(&a, id);
        last["status"] == "INSYNC" && last["replicas"].as_array().map(Vec::len) == Some(2)
    });
    assert!(insync, "never INSYNC on both replicas: {last:#}");
    // The commit's last journal entry: the delegation in the pool zone
    // (the child zone's entry comes just before it).
    assert_eq!(last["zone"], "example.test.", "{last:#}");
    assert!(last["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["inSync"] == true));
    // The other replica serves it too (it is why the status said so).
    assert_eq!(
        second
            .dig("tracked.example.test", RecordType::A)
            .answer_data(RecordType::A),
        ["192.0.2.50"]
    );

    // A replica dies: the next change waits for it only until its
    // heartbeat is stale, then it is no longer counted.
    second.kill9();
    let (_, id2) = a.commit_change("after", "192.0.2.51");
    let first = change_status(&a, id2);
    assert_eq!(first["status"], "PENDING", "{first:#}");
    let mut last = Value::Null;
    let resolved = wait_for(Duration::from_secs(12), || {
        last = change_status(&a, id2);
        last["status"] == "INSYNC"
    });
    assert!(
        resolved,
        "the dead replica kept the change PENDING: {last:#}"
    );
    assert_eq!(
        last["replicas"].as_array().map(Vec::len),
        Some(1),
        "{last:#}"
    );

    let (st, v) = a.get("/api/v1/changes/nope", Some(&a.admin_token()));
    assert_error(st, &v, 404, "not-found");
    let (st, v) = a.get(
        &format!("/api/v1/changes/{}", id2 + 1000),
        Some(&a.admin_token()),
    );
    assert_error(st, &v, 404, "not-found");
}

backend_tests!(replicas_share_changes, change_status_follows_the_replicas);
