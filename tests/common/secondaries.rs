//! Real secondaries on 127.0.0.1 taking zones from a pdm under test by
//! AXFR/IXFR with TSIG and NOTIFY (recipes: shared reference
//! `secondaries.md`): Knot (`knotd`), each in its own directory on a free
//! port, stopped by PID.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use super::validators::{find_tool, have_tools, run_tool};
use super::{dig_at, free_udp_tcp_port, tail, terminate};

/// The TSIG key name the tests share with their secondaries.
pub const KEY_NAME: &str = "xfr";

/// A `knotd` secondary.
pub struct KnotSecondary {
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Child>,
    conf: PathBuf,
}

impl KnotSecondary {
    /// A free port for a secondary that will be started later (pdm's
    /// config names it as a NOTIFY target first).
    pub fn reserve_port() -> u16 {
        free_udp_tcp_port()
    }

    /// Start knotd on `port`, secondary for `zones` from `primary`, with
    /// the TSIG key `xfr` = `secret` (hmac-sha256) for transfers and
    /// NOTIFY, and AXFR out allowed to 127.0.0.0/8 (so tests can compare).
    /// `None` when knotd is missing outside CI.
    pub fn start(port: u16, primary: SocketAddr, secret: &str, zones: &[&str]) -> Option<Self> {
        if !have_tools(&["knotd", "knotc", "kdig"]) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("pdm-knot-secondary-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path().display().to_string();
        let mut conf = format!(
            r#"server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stdout
    any: info
database:
    storage: "{d}"
key:
  - id: {KEY_NAME}
    algorithm: hmac-sha256
    secret: {secret}
remote:
  - id: primary
    address: {ip}@{pport}
    key: {KEY_NAME}
acl:
  - id: notify_from_primary
    address: {ip}
    key: {KEY_NAME}
    action: notify
  - id: transfer_out
    address: 127.0.0.0/8
    action: transfer
template:
  - id: default
    storage: "{d}"
    master: primary
    acl: [notify_from_primary, transfer_out]
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
zone:
"#,
            ip = primary.ip(),
            pport = primary.port(),
        );
        for z in zones {
            conf.push_str(&format!("  - domain: {z}\n"));
        }
        let conf_path = dir.path().join("knot.conf");
        std::fs::write(&conf_path, conf).expect("write knot.conf");
        let knotd = find_tool("knotd")?;
        let log = std::fs::File::create(dir.path().join("log")).expect("log");
        let child = Command::new(knotd)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start knotd");
        Some(KnotSecondary {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            child: Some(child),
            conf: conf_path,
        })
    }

    /// What knotd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The directory knotd runs in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The SOA serial knotd serves for `zone`, if it serves it.
    pub fn serial(&self, zone: &str) -> Option<u32> {
        soa_serial(self.addr, zone)
    }

    /// Wait until knotd serves `zone` at `serial` or later; panics with
    /// its log after `timeout`. Returns how long it took.
    #[track_caller]
    pub fn wait_serial(&self, zone: &str, serial: u32, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.serial(zone).is_some_and(|s| s >= serial) {
                return start.elapsed();
            }
            if start.elapsed() > timeout {
                panic!(
                    "knotd does not serve {zone} at serial {serial} within {timeout:?} (has {:?}); log:\n{}",
                    self.serial(zone),
                    tail(&self.log(), 4000)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `knotc zone-status` and friends, for failure reports.
    pub fn knotc(&self, args: &[&str]) -> String {
        let mut full = vec!["-c".to_string(), self.conf.display().to_string()];
        full.extend(args.iter().map(|s| s.to_string()));
        run_tool("knotc", &full, self.dir.path()).both()
    }

    /// Stop knotd (SIGTERM by PID, then SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }
}

impl Drop for KnotSecondary {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- knotd log ---\n{}", tail(&self.log(), 6000));
        }
    }
}

/// The SOA serial `addr` serves for `zone` (UDP), if any.
pub fn soa_serial(addr: SocketAddr, zone: &str) -> Option<u32> {
    let r = dig_at(addr, zone, RecordType::SOA).ok()?;
    if r.rcode != "NOERROR" {
        return None;
    }
    r.answer_data(RecordType::SOA)
        .first()
        .and_then(|d| d.split_whitespace().nth(2))
        .and_then(|s| s.parse().ok())
}

/// `kdig` AXFR of `zone` from `addr`, signed with `key` (`name:secret`,
/// hmac-sha256) when given: (exit code, stdout + stderr). It asks from
/// 127.0.0.2: pdm keeps, per client address, which zone versions it sent
/// (the bases of IXFR), and the secondaries use 127.0.0.1.
pub fn kdig_axfr(addr: SocketAddr, zone: &str, key: Option<&str>) -> (Option<i32>, String) {
    let mut args = vec![
        "-b".into(),
        "127.0.0.2".into(),
        format!("@{}", addr.ip()),
        "-p".into(),
        addr.port().to_string(),
        "+tcp".into(),
        "+nocomments".into(),
        "+nostats".into(),
    ];
    if let Some(k) = key {
        args.push("-y".into());
        args.push(format!("hmac-sha256:{k}"));
    }
    args.extend(["AXFR".to_string(), zone.to_string()]);
    let dir = std::env::temp_dir();
    let out = run_tool("kdig", &args, &dir);
    (out.code, out.both())
}

/// The records of a kdig AXFR listing, normalised (one line each, fields
/// separated by one space, sorted), without the closing SOA and TSIG.
pub fn axfr_records(listing: &str) -> Vec<String> {
    let mut out: Vec<String> = listing
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.contains(" TSIG "))
        .collect();
    out.sort();
    out.dedup();
    out
}
