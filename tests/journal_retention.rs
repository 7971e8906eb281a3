//! Journal retention: per zone, entries beyond the newest `keep_changes`
//! and older than `keep_days` are compacted away, never one a live replica
//! does not serve yet; what is served is unchanged.

#[macro_use]
mod common;
use common::*;
use hickory_proto::rr::RecordType;
use std::time::Duration;

fn known(srv: &PdmServer, id: i64) -> bool {
    let (st, _) = srv.get(&format!("/api/v1/changes/{id}"), Some(&srv.admin_token()));
    st == 200
}

fn old_entries_are_compacted(b: Backend) {
    let cfg = Config::default_test()
        .extra("[journal]\nkeep_changes = 2\nkeep_days = 0\ncompact_interval_secs = 1\n");
    let srv = start_or_skip!(b, cfg);
    // Each commit's last entry is the pool zone's delegation update.
    let ids: Vec<i64> = (0..6)
        .map(|i| {
            srv.commit_change(&format!("c{i}"), &format!("192.0.2.{}", i + 1))
                .1
        })
        .collect();
    let compacted = wait_for(Duration::from_secs(8), || !known(&srv, ids[0]));
    assert!(
        compacted,
        "the oldest pool-zone change was kept\n{}",
        tail(&srv.log(), 2000)
    );
    for (i, id) in ids.iter().enumerate() {
        // The pool zone keeps its two newest changes.
        assert_eq!(known(&srv, *id), i >= 4, "change {i} (id {id})");
    }
    // Serving is untouched, on this node and on a replica that loads now.
    let fresh = srv.replica();
    for i in 0..6 {
        let name = format!("c{i}.example.test");
        let want = [format!("192.0.2.{}", i + 1)];
        assert_eq!(
            srv.dig(&name, RecordType::A).answer_data(RecordType::A),
            want
        );
        assert_eq!(
            fresh.dig(&name, RecordType::A).answer_data(RecordType::A),
            want
        );
    }
    // And the journal still follows new changes on both.
    let (st, r) = srv.release("example.test", "c0");
    assert_eq!(st, 200, "{r}");
    assert!(srv.dig("c0.example.test", RecordType::A).is_nxdomain());
    let gone = wait_for(Duration::from_secs(2), || {
        fresh.dig("c0.example.test", RecordType::A).is_nxdomain()
    });
    assert!(gone, "the replica missed a change after compaction");
}

/// With the default policy (1000 changes, 7 days) nothing recent goes.
fn recent_entries_are_kept(b: Backend) {
    let cfg = Config::default_test().extra("[journal]\ncompact_interval_secs = 1\n");
    let srv = start_or_skip!(b, cfg);
    let ids: Vec<i64> = (0..3)
        .map(|i| srv.commit_change(&format!("k{i}"), "192.0.2.9").1)
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    for id in ids {
        assert!(
            known(&srv, id),
            "change {id} was compacted under the default policy"
        );
    }
}

backend_tests!(old_entries_are_compacted, recent_entries_are_kept);
