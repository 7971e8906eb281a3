//! Real secondaries on 127.0.0.1 taking zones from a pdm under test by
//! AXFR/IXFR with TSIG and NOTIFY (recipes: shared reference
//! `secondaries.md`): Knot (`knotd`), BIND (`named`) and NSD, each in its
//! own directory on a free port, stopped by PID.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use super::validators::{find_tool, have_tools, run_tool};
use super::{dig_at, free_udp_tcp_port, tail, terminate};

/// The TSIG key name the tests share with their secondaries.
pub const KEY_NAME: &str = "xfr";

/// A secondary server process (Knot, BIND or NSD).
pub struct Secondary {
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Child>,
    conf: PathBuf,
    name: &'static str,
    /// The program and arguments it was started with (for [`Secondary::start_again`]).
    command: (PathBuf, Vec<String>),
}

impl Secondary {
    /// A free port for a secondary that will be started later (pdm's
    /// config names it as a NOTIFY target first).
    pub fn reserve_port() -> u16 {
        free_udp_tcp_port()
    }

    /// Start Knot's `knotd` on `port`, secondary for `zones` from `primary`, with
    /// the TSIG key `xfr` = `secret` (hmac-sha256) for transfers and
    /// NOTIFY, and AXFR out allowed to 127.0.0.0/8 (so tests can compare).
    /// `None` when knotd is missing outside CI.
    pub fn knot(port: u16, primary: SocketAddr, secret: &str, zones: &[&str]) -> Option<Self> {
        Self::knot_with(port, primary, secret, zones, None)
    }

    /// [`Secondary::knot`], also consuming the catalog zone `catalog`
    /// (RFC 9432): its members become zones of this secondary.
    pub fn knot_with(
        port: u16,
        primary: SocketAddr,
        secret: &str,
        zones: &[&str],
        catalog: Option<&str>,
    ) -> Option<Self> {
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
    journal-content: all
  - id: catalog_member
    storage: "{d}"
    master: primary
    acl: [notify_from_primary, transfer_out]
    zonefile-sync: -1
    zonefile-load: none
    journal-content: all
zone:
"#,
            ip = primary.ip(),
            pport = primary.port(),
        );
        for z in zones {
            conf.push_str(&format!("  - domain: {z}\n"));
        }
        if let Some(c) = catalog {
            conf.push_str(&format!(
                "  - domain: {c}\n    catalog-role: interpret\n    catalog-template: catalog_member\n"
            ));
        }
        let conf_path = dir.path().join("knot.conf");
        std::fs::write(&conf_path, conf).expect("write knot.conf");
        let command = (
            find_tool("knotd")?,
            vec!["-c".to_string(), conf_path.display().to_string()],
        );
        Some(Secondary::spawn("knotd", port, dir, conf_path, command))
    }

    /// Start BIND's `named` on `port` as secondary for `zones` from
    /// `primary` with the TSIG key `xfr` = `secret`. `None` when named is
    /// missing outside CI.
    pub fn bind(port: u16, primary: SocketAddr, secret: &str, zones: &[&str]) -> Option<Self> {
        Self::bind_with(port, primary, secret, zones, None)
    }

    /// [`Secondary::bind`], also consuming the catalog zone `catalog`.
    pub fn bind_with(
        port: u16,
        primary: SocketAddr,
        secret: &str,
        zones: &[&str],
        catalog: Option<&str>,
    ) -> Option<Self> {
        if !have_tools(&["named"]) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("pdm-bind-secondary-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path().display().to_string();
        let (ip, pport) = (primary.ip(), primary.port());
        let catz = match catalog {
            Some(c) => {
                std::fs::create_dir_all(dir.path().join("catz")).expect("catz dir");
                format!(
                    "catalog-zones {{ zone \"{c}\" default-primaries {{ {ip} port {pport} key \"{KEY_NAME}\"; }} in-memory no zone-directory \"catz\" min-update-interval 1; }};"
                )
            }
            None => String::new(),
        };
        let mut conf = format!(
            r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-transfer {{ 127.0.0.0/8; }};
    {catz}
}};
controls {{ }};
key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{secret}"; }};
"#
        );
        for z in zones.iter().copied().chain(catalog) {
            conf.push_str(&format!(
                "zone \"{z}\" {{ type secondary; file \"{z}.db\"; primaries {{ {ip} port {pport} key \"{KEY_NAME}\"; }}; }};\n"
            ));
        }
        let conf_path = dir.path().join("named.conf");
        std::fs::write(&conf_path, conf).expect("write named.conf");
        let args = ["-g", "-d", "3", "-c"].map(String::from);
        let mut args = args.to_vec();
        args.push(conf_path.display().to_string());
        let command = (find_tool("named")?, args);
        Some(Secondary::spawn("named", port, dir, conf_path, command))
    }

    /// Start NSD on `port` as secondary for `zones` (explicitly configured;
    /// NSD 4.6 has no catalog zones) from `primary` with the TSIG key.
    pub fn nsd(port: u16, primary: SocketAddr, secret: &str, zones: &[&str]) -> Option<Self> {
        if !have_tools(&["nsd"]) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("pdm-nsd-secondary-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path().display().to_string();
        let (ip, pport) = (primary.ip(), primary.port());
        let mut conf = format!(
            r#"server:
    ip-address: 127.0.0.1@{port}
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    pidfile: "{d}/nsd.pid"
    verbosity: 2
    xfrd-reload-timeout: 0
remote-control:
    control-enable: yes
    control-interface: {d}/nsd.ctl
key:
    name: "{KEY_NAME}"
    algorithm: hmac-sha256
    secret: "{secret}"
pattern:
    name: "frompri"
    zonefile: "%s.zone"
    request-xfr: {ip}@{pport} {KEY_NAME}
    allow-notify: {ip} {KEY_NAME}
    provide-xfr: 127.0.0.0/8 NOKEY
"#
        );
        for z in zones {
            conf.push_str(&format!(
                "zone:\n    name: \"{z}\"\n    include-pattern: \"frompri\"\n"
            ));
        }
        let conf_path = dir.path().join("nsd.conf");
        std::fs::write(&conf_path, conf).expect("write nsd.conf");
        let args = vec![
            "-d".to_string(),
            "-c".to_string(),
            conf_path.display().to_string(),
        ];
        let command = (find_tool("nsd")?, args);
        Some(Secondary::spawn("nsd", port, dir, conf_path, command))
    }

    /// Start PowerDNS (`pdns_server`, gsqlite3 with DNSSEC metadata) on
    /// `port` as secondary for `zones` from `primary` with the TSIG key for
    /// transfers and IXFR enabled per zone (recipe: secondaries.md §3).
    pub fn powerdns(port: u16, primary: SocketAddr, secret: &str, zones: &[&str]) -> Option<Self> {
        const SCHEMA: &str = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";
        if !have_tools(&["pdns_server", "pdnsutil", "sqlite3"]) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("pdm-pdns-secondary-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path().display().to_string();
        let conf = format!(
            "launch=gsqlite3\ngsqlite3-database={d}/pdns.sqlite3\ngsqlite3-dnssec=yes\n\
             local-address=127.0.0.1:{port}\nsocket-dir={d}\ndaemon=no\nguardian=no\n\
             disable-syslog=yes\nloglevel=6\nsecondary=yes\nxfr-cycle-interval=5\n\
             zone-metadata-cache-ttl=0\nwebserver=no\napi=no\n"
        );
        std::fs::write(dir.path().join("pdns.conf"), conf).expect("write pdns.conf");
        let schema = std::fs::read_to_string(SCHEMA).expect("the gsqlite3 schema");
        let db = dir.path().join("pdns.sqlite3");
        let out = std::process::Command::new("sqlite3")
            .arg(&db)
            .arg(schema)
            .output()
            .expect("sqlite3");
        assert!(out.status.success(), "schema: {out:?}");
        let util = |args: &[&str]| {
            let mut full = vec![format!("--config-dir={d}")];
            full.extend(args.iter().map(|s| s.to_string()));
            let out = run_tool("pdnsutil", &full, dir.path());
            assert!(out.success(), "pdnsutil {args:?}: {}", out.both());
        };
        util(&["import-tsig-key", KEY_NAME, "hmac-sha256", secret]);
        let master = primary.to_string();
        for z in zones {
            util(&["create-secondary-zone", z, &master]);
            util(&["set-meta", z, "AXFR-MASTER-TSIG", KEY_NAME]);
            util(&["set-meta", z, "IXFR", "1"]);
        }
        let conf_path = dir.path().join("pdns.conf");
        let command = (find_tool("pdns_server")?, vec![format!("--config-dir={d}")]);
        Some(Secondary::spawn(
            "pdns_server",
            port,
            dir,
            conf_path,
            command,
        ))
    }

    fn spawn(
        name: &'static str,
        port: u16,
        dir: tempfile::TempDir,
        conf: PathBuf,
        command: (PathBuf, Vec<String>),
    ) -> Self {
        let mut s = Secondary {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            child: None,
            conf,
            name,
            command,
        };
        s.start_again();
        s
    }

    /// Start it again (after [`Secondary::stop`]) with the same
    /// configuration and state directory; its log goes on.
    pub fn start_again(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("log"))
            .expect("log");
        let child = Command::new(&self.command.0)
            .args(&self.command.1)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.name));
        self.child = Some(child);
    }

    /// What the secondary logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The directory the secondary runs in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The SOA serial the secondary serves for `zone`, if it serves it.
    pub fn serial(&self, zone: &str) -> Option<u32> {
        soa_serial(self.addr, zone)
    }

    /// Wait until the secondary serves `zone` at `serial` or later; panics with
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
                    "{} does not serve {zone} at serial {serial} within {timeout:?} (has {:?}); log:\n{}",
                    self.name,
                    self.serial(zone),
                    tail(&self.log(), 4000)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The configuration file it runs with.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// Stop it (SIGTERM by PID, then SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }
}

impl Drop for Secondary {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.name, tail(&self.log(), 6000));
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
