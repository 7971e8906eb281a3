//! `pdm backup FILE` copies a live SQLite database consistently (writes go on
//! meanwhile), and a pdm started on the copy with the same secret key serves
//! the same zones, signed with the same keys; without that key it refuses to
//! start (README "Backup and restore"). Postgres is pointed to pg_dump.

#[macro_use]
mod common;
use common::*;
use hickory_proto::rr::RecordType;

fn export(srv: &PdmServer, zone: &str) -> String {
    let out = srv.cli(&["zone", "export", zone]);
    assert!(out.success(), "{out:?}");
    out.stdout
}

#[test]
fn backup_then_restore_serves_the_same_zones() {
    let Some(srv) = PdmServer::start(Backend::Sqlite, Config::default_test()) else {
        return;
    };
    for (i, sub) in ["alpha", "beta", "gamma"].iter().enumerate() {
        srv.allocate("example.test", sub, &format!("192.0.2.{}", i + 1), None);
    }
    let copy = srv.dir.path().join("backup.db");
    // Online: a writer keeps committing while the copy is taken.
    let out = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            for i in 0..10 {
                srv.allocate("example.test", &format!("busy{i}"), "192.0.2.50", None);
            }
        });
        let out = srv.cli(&["backup", copy.to_str().expect("utf-8 path")]);
        writer.join().expect("writer");
        out
    });
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("backup written"), "{out:?}");
    // Never over an existing file.
    let again = srv.cli(&["backup", copy.to_str().expect("utf-8 path")]);
    assert!(
        !again.success() && again.stderr.contains("exists"),
        "{again:?}"
    );

    let zones = [
        "example.test",
        "alpha.example.test",
        "beta.example.test",
        "gamma.example.test",
    ];
    let before: Vec<String> = zones.iter().map(|z| export(&srv, z)).collect();
    let dnskey_before = srv
        .dig("alpha.example.test", RecordType::DNSKEY)
        .answer_data(RecordType::DNSKEY);
    assert!(!dnskey_before.is_empty());

    // Restore: a fresh pdm on the copy, same config and secret key.
    let restored_file = srv.dir.path().join("restored.db");
    std::fs::copy(&copy, &restored_file).expect("copy the backup into place");
    let restored = PdmServer::start_on_sqlite(srv.config.clone(), &restored_file, &[]);
    for (zone, want) in zones.iter().zip(&before) {
        let got = export(&restored, zone);
        if *zone == "example.test" {
            // The pool zone may hold delegations the writer added after the
            // snapshot: the three taken before it must be there, the same.
            for sub in ["alpha", "beta", "gamma"] {
                let line = |t: &str| -> Vec<String> {
                    t.lines()
                        .filter(|l| l.starts_with(&format!("{sub}.example.test.")))
                        .map(str::to_string)
                        .collect()
                };
                assert_eq!(line(&got), line(want), "{sub} in the pool zone");
            }
        } else {
            assert_eq!(&got, want, "{zone} differs after restore");
        }
    }
    for (i, sub) in ["alpha", "beta", "gamma"].iter().enumerate() {
        let a = restored
            .dig(&format!("www.{sub}.example.test"), RecordType::A)
            .answer_data(RecordType::A);
        assert_eq!(a, vec![format!("192.0.2.{}", i + 1)]);
    }
    let dnskey_after = restored
        .dig("alpha.example.test", RecordType::DNSKEY)
        .answer_data(RecordType::DNSKEY);
    assert_eq!(dnskey_after, dnskey_before, "same keys after restore");
    // The copy is consistent: every allocation it lists active has its zone.
    let (st, list) = restored.get(
        "/api/v1/pool/example.test/list",
        Some(&restored.admin_token()),
    );
    assert_eq!(st, 200, "{list}");
    let all = list["allocations"].as_array().expect("allocations");
    let active: Vec<&Value> = all.iter().filter(|a| a["state"] == "active").collect();
    assert!(active.len() >= 3, "{list}");
    for a in active {
        let sub = a["subdomain"].as_str().expect("subdomain");
        let soa = restored.dig(&format!("{sub}.example.test"), RecordType::SOA);
        assert_eq!(soa.rcode, "NOERROR", "{sub}: {soa:?}");
    }
    drop(restored);

    // Without the secret key the sealed DNSSEC keys cannot be opened.
    let wrong = srv.dir.path().join("wrong-key.db");
    std::fs::copy(&copy, &wrong).expect("copy");
    let mut cmd = std::process::Command::new(PDM);
    cmd.args([
        "serve",
        "--http",
        "127.0.0.1:0",
        "--dns",
        "127.0.0.1:0",
        "--config",
    ])
    .arg(&srv.config_path)
    .arg("--database")
    .arg(format!("sqlite://{}", wrong.display()))
    .env("PDM_SECRET_KEY", "11".repeat(32));
    let (code, _, stderr) = run_bounded(
        cmd,
        "pdm serve (wrong key)",
        srv.dir.path(),
        std::time::Duration::from_secs(20),
    );
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("example.test"),
        "the error names the zone: {stderr}"
    );
}

#[test]
fn postgres_is_pointed_to_its_tools() {
    let Some(srv) = PdmServer::start(Backend::Postgres, Config::default_test()) else {
        return;
    };
    let file = srv.dir.path().join("pg.db");
    let out = srv.cli(&["backup", file.to_str().expect("utf-8 path")]);
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("pg_dump"), "{out:?}");
    assert!(!file.exists());
}
