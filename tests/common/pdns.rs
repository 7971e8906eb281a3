//! PowerDNS Authoritative 4.x (`pdns_server` + gsqlite3) on loopback for differential tests.
//!
//! [`PdnsServer::start`] creates a sqlite database from the packaged schema, loads zone files
//! with `pdnsutil load-zone` (before the server starts: with a zone cache, zones created later
//! are REFUSED for minutes), writes a config with LUA records enabled and every cache off, and
//! starts `pdns_server` on free ports of 127.0.0.1 (DNS and the HTTP API). It is stopped by PID
//! (SIGTERM, then SIGKILL after 5 s) on drop.
//!
//! Needs the Debian packages `pdns-server`, `pdns-backend-sqlite3` and `sqlite3`. Without them
//! [`PdnsServer::start`] prints `SKIP: ...` and returns `None`, unless `CI` is set, then it
//! panics.

use super::{free_tcp_port, free_udp_tcp_port};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs the gsqlite3 schema (the doc path is a symlink to it).
pub const SCHEMA_PATHS: &[&str] = &[
    "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql",
    "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql",
];

/// The API key of every test server.
pub const API_KEY: &str = "pdm-test-key";

/// A running `pdns_server`.
pub struct PdnsServer {
    /// DNS address (UDP and TCP).
    pub dns_addr: SocketAddr,
    /// HTTP API address (`/api/v1/...`, header `X-API-Key: API_KEY`).
    pub api_addr: SocketAddr,
    /// Config directory (pdns.conf, database, logs).
    pub dir: tempfile::TempDir,
    child: Child,
}

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

fn skip(why: &str) -> Option<PdnsServer> {
    if std::env::var_os("CI").is_some() {
        panic!("PowerDNS differential test cannot run in CI: {why}");
    }
    eprintln!("SKIP: {why} (install pdns-server pdns-backend-sqlite3 sqlite3)");
    None
}

fn run(label: &str, cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{label}: cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{label} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl PdnsServer {
    /// Start pdns with `zones` (`(zone name, zone file)`) loaded and `extra` config lines
    /// appended (e.g. `lua-health-checks-interval=1`). Waits until the first zone's SOA is
    /// served. `None` when PowerDNS is not installed (see the module docs).
    pub fn start(zones: &[(&str, &Path)], extra: &[&str]) -> Option<PdnsServer> {
        let Some(server) = find_tool("pdns_server") else {
            return skip("pdns_server not found");
        };
        let Some(pdnsutil) = find_tool("pdnsutil") else {
            return skip("pdnsutil not found");
        };
        let Some(sqlite) = find_tool("sqlite3") else {
            return skip("sqlite3 not found");
        };
        let Some(schema) = SCHEMA_PATHS.iter().map(Path::new).find(|p| p.is_file()) else {
            return skip("gsqlite3 schema not found");
        };
        let dir = tempfile::Builder::new()
            .prefix("pdns-test-")
            .tempdir()
            .expect("tempdir");
        let db = dir.path().join("pdns.sqlite3");
        let schema_sql = std::fs::read(schema).expect("read schema");
        let mut create = Command::new(&sqlite);
        create.arg(&db).stdin(Stdio::piped()).stdout(Stdio::null());
        let mut child = create.spawn().expect("spawn sqlite3");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("sqlite3 stdin");
            stdin.write_all(&schema_sql).expect("write schema");
        }
        assert!(child.wait().expect("sqlite3").success(), "sqlite3 schema");

        let run_dir = dir.path().join("run");
        std::fs::create_dir_all(&run_dir).unwrap();
        let dns_port = free_udp_tcp_port();
        let api_port = free_tcp_port();
        let mut conf = format!(
            "launch=gsqlite3\n\
             gsqlite3-database={db}\n\
             local-address=127.0.0.1\n\
             local-port={dns_port}\n\
             socket-dir={run}\n\
             daemon=no\n\
             guardian=no\n\
             disable-syslog=yes\n\
             loglevel=4\n\
             security-poll-suffix=\n\
             enable-lua-records=yes\n\
             edns-subnet-processing=yes\n\
             cache-ttl=0\n\
             query-cache-ttl=0\n\
             negquery-cache-ttl=0\n\
             zone-cache-refresh-interval=0\n\
             zone-metadata-cache-ttl=0\n\
             api=yes\n\
             api-key={API_KEY}\n\
             webserver=yes\n\
             webserver-address=127.0.0.1\n\
             webserver-port={api_port}\n\
             webserver-allow-from=127.0.0.0/8\n",
            db = db.display(),
            run = run_dir.display(),
        );
        for line in extra {
            conf.push_str(line);
            conf.push('\n');
        }
        std::fs::write(dir.path().join("pdns.conf"), conf).unwrap();
        for (zone, file) in zones {
            let r = run(
                "pdnsutil load-zone",
                Command::new(&pdnsutil)
                    .arg(format!("--config-dir={}", dir.path().display()))
                    .args(["load-zone", zone])
                    .arg(file),
            );
            if let Err(e) = r {
                panic!("{e}");
            }
            // Creates the empty non-terminals (without it pdns answers NXDOMAIN for them).
            let r = run(
                "pdnsutil rectify-zone",
                Command::new(&pdnsutil)
                    .arg(format!("--config-dir={}", dir.path().display()))
                    .args(["rectify-zone", zone]),
            );
            if let Err(e) = r {
                panic!("{e}");
            }
        }
        let log = std::fs::File::create(dir.path().join("pdns.log")).unwrap();
        let child = Command::new(&server)
            .arg(format!("--config-dir={}", dir.path().display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn pdns_server");
        let mut srv = PdnsServer {
            dns_addr: SocketAddr::from(([127, 0, 0, 1], dns_port)),
            api_addr: SocketAddr::from(([127, 0, 0, 1], api_port)),
            dir,
            child,
        };
        // Ports picked free can be taken by the time pdns_server binds them
        // (other tests start servers too): on a bind failure, pick again.
        let mut result = srv.wait_ready(zones.first().map_or(".", |z| z.0));
        for _ in 0..3 {
            if result.is_ok() || !srv.log().contains("Unable to bind") {
                break;
            }
            srv.respawn_on_new_ports(&server);
            result = srv.wait_ready(zones.first().map_or(".", |z| z.0));
        }
        if let Err(e) = result {
            panic!(
                "pdns_server did not start: {e}\n--- pdns log ---\n{}",
                srv.log()
            );
        }
        Some(srv)
    }

    /// Stops the server, moves it to fresh DNS and API ports and starts it again.
    fn respawn_on_new_ports(&mut self, server: &Path) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dns_port = free_udp_tcp_port();
        let api_port = free_tcp_port();
        let conf_path = self.dir.path().join("pdns.conf");
        let conf: String = std::fs::read_to_string(&conf_path)
            .unwrap()
            .lines()
            .map(|l| {
                if l.starts_with("local-port=") {
                    format!("local-port={dns_port}\n")
                } else if l.starts_with("webserver-port=") {
                    format!("webserver-port={api_port}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&conf_path, conf).unwrap();
        let log = std::fs::File::create(self.dir.path().join("pdns.log")).unwrap();
        self.child = Command::new(server)
            .arg(format!("--config-dir={}", self.dir.path().display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn pdns_server");
        self.dns_addr = SocketAddr::from(([127, 0, 0, 1], dns_port));
        self.api_addr = SocketAddr::from(([127, 0, 0, 1], api_port));
    }

    fn wait_ready(&mut self, zone: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("pdns_server exited with {status}"));
            }
            // The webserver listens after the DNS sockets are bound: until it does, a UDP
            // query would be lost and cost a 2 s timeout.
            if std::net::TcpStream::connect_timeout(&self.api_addr, Duration::from_millis(200))
                .is_err()
            {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            if let Ok(r) = super::dig_at(self.dns_addr, zone, hickory_proto::rr::RecordType::SOA) {
                if r.rcode == "NOERROR" && !r.answers.is_empty() {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("pdns_server did not answer SOA within 20 s".into())
    }

    /// The server log (last 80 lines).
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("pdns.log")).unwrap_or_default();
        super::tail(&text, 80)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Freeze the server (SIGSTOP by PID): connections are accepted by the kernel but
    /// nothing answers, so API calls hang until the client's timeout. [`PdnsServer::thaw`]
    /// resumes it.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Resume a [`PdnsServer::freeze`]d server (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // A frozen server would not act on SIGTERM.
        self.thaw();
        super::terminate(&mut self.child);
    }
}

impl Drop for PdnsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The zone the pdm-backend server is started with (so readiness can be checked by SOA).
pub const READY_ZONE: &str = "pdns-ready.test";

/// Config lines a server driven by pdm's PowerDNS backend needs: DNSSEC in gsqlite3, key
/// and metadata caches off (every API change visible at once).
pub const BACKEND_EXTRA: &[&str] = &[
    "gsqlite3-dnssec=yes",
    "dnssec-key-cache-ttl=0",
    "domain-metadata-cache-ttl=0",
    "default-soa-content=ns1.@ hostmaster.@ 0 10800 3600 604800 3600",
];

impl PdnsServer {
    /// A server for pdm's `[backend] kind = "powerdns"`: only [`READY_ZONE`] loaded, DNSSEC on,
    /// caches off. `None` when PowerDNS is not installed.
    pub fn start_for_backend() -> Option<PdnsServer> {
        Self::start_for_backend_with(&[])
    }

    /// [`PdnsServer::start_for_backend`] with extra `pdns.conf` lines (later lines win).
    pub fn start_for_backend_with(more: &[&str]) -> Option<PdnsServer> {
        let zdir = tempfile::tempdir().expect("tempdir");
        let file = zdir.path().join("ready.zone");
        std::fs::write(
            &file,
            format!(
                "$ORIGIN {READY_ZONE}.\n@ 3600 IN SOA ns1.{READY_ZONE}. hostmaster.{READY_ZONE}. 1 3600 600 86400 300\n@ 3600 IN NS ns1.{READY_ZONE}.\nns1 3600 IN A 127.0.0.1\n"
            ),
        )
        .unwrap();
        let extra: Vec<&str> = BACKEND_EXTRA
            .iter()
            .copied()
            .chain(more.iter().copied())
            .collect();
        Self::start(&[(READY_ZONE, file.as_path())], &extra)
    }

    /// The `[backend]` TOML section pointing pdm at this server.
    pub fn backend_toml(&self) -> String {
        format!(
            "[backend]\nkind = \"powerdns\"\nurl = \"http://{}\"\napi_key = \"{API_KEY}\"\n",
            self.api_addr
        )
    }

    /// Stop the server now (SIGTERM, then SIGKILL); [`PdnsServer::start_again`] restarts it.
    pub fn stop_now(&mut self) {
        self.stop();
    }

    /// Start the stopped server again on the same ports and database; waits for [`READY_ZONE`].
    pub fn start_again(&mut self) {
        let server = find_tool("pdns_server").expect("pdns_server");
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.path().join("pdns.log"))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.child = Command::new(&server)
                .arg(format!("--config-dir={}", self.dir.path().display()))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log.try_clone().unwrap())
                .spawn()
                .expect("spawn pdns_server");
            match self.wait_ready(READY_ZONE) {
                Ok(()) => return,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("pdns restart: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(300));
                }
                Err(e) => panic!("pdns_server did not restart: {e}\n{}", self.log()),
            }
        }
    }

    /// One API call (`path` below `/api/v1/servers/localhost`): status and JSON body
    /// (`Value::Null` when empty or not JSON).
    pub fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let url = format!("http://{}/api/v1/servers/localhost{path}", self.api_addr);
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut rb = client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                &url,
            )
            .header("X-API-Key", API_KEY)
            .header("Accept", "application/json");
        if let Some(b) = body {
            rb = rb.body(b.to_string());
        }
        let r = rb.send().unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let st = r.status().as_u16();
        let text = r.text().unwrap_or_default();
        (
            st,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// DS lines (`zone. IN DS tag alg 2 digest`) of the zone's active KSK/CSK, from
    /// `GET .../zones/ZONE/cryptokeys`.
    pub fn ds_lines(&self, zone: &str) -> Vec<String> {
        let zone = format!("{}.", zone.trim_end_matches('.'));
        let (st, keys) = self.api("GET", &format!("/zones/{zone}/cryptokeys"), None);
        assert_eq!(st, 200, "cryptokeys of {zone}: {keys}");
        let mut out = Vec::new();
        for k in keys.as_array().cloned().unwrap_or_default() {
            if k["active"] != serde_json::json!(true) {
                continue;
            }
            for ds in k["ds"].as_array().cloned().unwrap_or_default() {
                let ds = ds.as_str().unwrap_or_default();
                if ds.split_whitespace().nth(2) == Some("2") {
                    out.push(format!("{zone} IN DS {ds}"));
                }
            }
        }
        out
    }
}
