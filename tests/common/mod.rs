//! Shared helpers for black-box tests: they drive the real `pdm` binary over
//! its CLI, HTTP and DNS interfaces (docs/contract.md), never its internals.
//!
//! Usage from a test file:
//! ```ignore
//! #[macro_use]
//! mod common;
//! use common::*;
//!
//! fn my_scenario(b: Backend) {
//!     let srv = start_or_skip!(b, Config::default_test());
//!     let tok = srv.admin_token();
//!     let (st, body) = srv.post("/api/v1/pool/example.test/reserve", Some(&tok), &json!({"subdomain": "acme"}));
//!     assert_eq!(st, 201, "{body}");
//! }
//! backend_tests!(my_scenario);   // -> sqlite::my_scenario, postgres::my_scenario
//! ```
//!
//! `backend_tests!(with_powerdns: a, b; embedded_only: c)` also runs `a` and `b` as
//! `powerdns::a` / `powerdns::b`: pdm on SQLite with `[backend] kind = "powerdns"` pointed at
//! a `pdns_server` started for that scenario ([`Backend::PowerDns`]); [`PdmServer::dig`] then
//! asks that `pdns_server`, which serves the zones. `c` runs on the embedded backend only.
//!
//! Postgres: set `PDM_TEST_POSTGRES_URL` (e.g. `postgres://postgres@127.0.0.1:5432/postgres`); each
//! server gets a fresh database `pdm_t_<random>` created through it and dropped afterwards. Without it,
//! Postgres tests print `SKIP: PDM_TEST_POSTGRES_URL not set` and pass, unless `CI` is set, then they panic.
#![allow(dead_code, unused_macros, unused_imports)]

pub mod pdns;
pub mod registrars;
pub mod validators;

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use serde_json::{json, Value};

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};

/// Path of the binary under test.
pub const PDM: &str = env!("CARGO_BIN_EXE_pdm");

/// How long a server may take to answer `GET /readyz` with 200.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound for any CLI invocation.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// The Go service's reserved-names list (reference/openova-pdm.md §5.1).
pub const GO_RESERVED: &[&str] = &[
    "admin", "api", "app", "catalyst", "console", "docs", "flux", "gitea", "harbor", "imap", "k8s",
    "keycloak", "mail", "openbao", "openova", "smtp", "status", "system", "vault", "vpn", "www",
];

// ---------------------------------------------------------------------------------------------
// Config builder
// ---------------------------------------------------------------------------------------------

/// One `[[pools]]` entry.
#[derive(Debug, Clone)]
pub struct PoolCfg {
    pub domain: String,
    pub reservation_ttl_secs: Option<u64>,
    pub public_check: Option<bool>,
}

/// One `[[nameservers]]` entry.
#[derive(Debug, Clone)]
pub struct NsCfg {
    pub name: String,
    pub addresses: Vec<String>,
}

/// Builder for the TOML config file (contract.md "Config").
/// `http`, `dns` and `database` are never written: the harness passes them as flags.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub hostmaster: Option<String>,
    pub nameservers: Vec<NsCfg>,
    pub pools: Vec<PoolCfg>,
    /// Extra raw TOML appended verbatim (for keys the builder does not know).
    pub extra: String,
}

impl Config {
    /// No pools, no nameservers.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Two nameservers in `example.test` (glue 127.0.0.1 / 127.0.0.2), hostmaster set,
    /// and the pool `example.test` (TTL 600, public check).
    pub fn default_test() -> Self {
        Self::empty()
            .hostmaster("hostmaster.example.test")
            .nameserver("ns1.example.test", &["127.0.0.1"])
            .nameserver("ns2.example.test", &["127.0.0.2"])
            .pool("example.test")
    }

    pub fn hostmaster(mut self, h: &str) -> Self {
        self.hostmaster = Some(h.to_string());
        self
    }

    pub fn nameserver(mut self, name: &str, addrs: &[&str]) -> Self {
        self.nameservers.push(NsCfg {
            name: name.to_string(),
            addresses: addrs.iter().map(|s| s.to_string()).collect(),
        });
        self
    }

    /// Pool with defaults (TTL and public_check keys omitted).
    pub fn pool(mut self, domain: &str) -> Self {
        self.pools.push(PoolCfg {
            domain: domain.to_string(),
            reservation_ttl_secs: None,
            public_check: None,
        });
        self
    }

    /// Pool with explicit TTL / public_check.
    pub fn pool_with(
        mut self,
        domain: &str,
        reservation_ttl_secs: Option<u64>,
        public_check: Option<bool>,
    ) -> Self {
        self.pools.push(PoolCfg {
            domain: domain.to_string(),
            reservation_ttl_secs,
            public_check,
        });
        self
    }

    pub fn extra(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self.extra.push('\n');
        self
    }

    /// This config with `[backend] kind = "powerdns"` pointed at `pdns`, operations tried
    /// inline for up to 3 s, no periodic reconcile, and (unless the config has its own
    /// `[operations]`) fast worker retries for tests.
    pub fn on_powerdns(self, pdns: &pdns::PdnsServer) -> Self {
        self.on_powerdns_with(pdns, &[])
    }

    /// [`Config::on_powerdns`] with `[backend]` keys set or overridden, e.g.
    /// `&[("inline_ms", "0"), ("timeout_ms", "20000")]` (values are TOML).
    pub fn on_powerdns_with(self, pdns: &pdns::PdnsServer, backend: &[(&str, &str)]) -> Self {
        assert!(
            !self.extra.contains("[backend]"),
            "config already has a [backend] section"
        );
        let fast_ops = !self.extra.contains("[operations]");
        let mut keys: Vec<(&str, &str)> =
            vec![("inline_ms", "3000"), ("reconcile_interval_secs", "0")];
        for (k, v) in backend {
            keys.retain(|(d, _)| d != k);
            keys.push((k, v));
        }
        let mut section = pdns.backend_toml();
        for (k, v) in keys {
            section.push_str(&format!("{k} = {v}\n"));
        }
        let mut c = self.extra(&section);
        if fast_ops {
            c = c.extra(
                "[operations]\ntick_ms = 100\nbackoff_initial_secs = 1\nbackoff_max_secs = 2",
            );
        }
        c
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> String {
        let q = |s: &str| toml_str(s);
        let mut out = String::new();
        if let Some(h) = &self.hostmaster {
            out.push_str(&format!("hostmaster = {}\n", q(h)));
        }
        out.push_str(&self.extra);
        for ns in &self.nameservers {
            let addrs: Vec<String> = ns.addresses.iter().map(|a| q(a)).collect();
            out.push_str(&format!(
                "\n[[nameservers]]\nname = {}\naddresses = [{}]\n",
                q(&ns.name),
                addrs.join(", ")
            ));
        }
        for p in &self.pools {
            out.push_str(&format!("\n[[pools]]\ndomain = {}\n", q(&p.domain)));
            if let Some(t) = p.reservation_ttl_secs {
                out.push_str(&format!("reservation_ttl_secs = {t}\n"));
            }
            if let Some(pc) = p.public_check {
                out.push_str(&format!("public_check = {pc}\n"));
            }
        }
        out
    }
}

fn toml_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

// ---------------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------------

/// Which store (and zone backend) the server under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite store, embedded zone backend (pdm serves the zones).
    Sqlite,
    /// Postgres store (`PDM_TEST_POSTGRES_URL`), embedded zone backend.
    Postgres,
    /// SQLite store, `[backend] kind = "powerdns"`: a fresh `pdns_server` per server
    /// (see [`pdns::PdnsServer::start_for_backend`]) holds and serves the zones.
    PowerDns,
}

/// A fresh, empty database for one server. Postgres databases are dropped on Drop.
pub struct Db {
    pub url: String,
    pub backend: Backend,
    /// (admin url, database name) for Postgres.
    pg: Option<(String, String)>,
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A short random-ish lowercase id, unique within the process.
pub fn unique_id() -> String {
    let n = UNIQUE.fetch_add(1, Ordering::SeqCst);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let r = uuid::Uuid::new_v4().simple().to_string();
    format!("{}{:x}{}", &r[..8], n, (t % 1000) as u32)
}

impl Backend {
    /// A fresh database in `dir` (SQLite) or on `PDM_TEST_POSTGRES_URL` (Postgres).
    /// `None` means "skip this test" (Postgres not configured, outside CI).
    pub fn fresh_db(self, dir: &Path) -> Option<Db> {
        match self {
            Backend::Sqlite | Backend::PowerDns => {
                let path = dir.join("pdm.db");
                Some(Db {
                    url: format!("sqlite://{}", path.display()),
                    backend: self,
                    pg: None,
                })
            }
            Backend::Postgres => {
                let admin = match std::env::var("PDM_TEST_POSTGRES_URL") {
                    Ok(u) if !u.trim().is_empty() => u.trim().to_string(),
                    _ => {
                        if std::env::var_os("CI").is_some() {
                            panic!("PDM_TEST_POSTGRES_URL not set but CI is set: Postgres tests must run in CI");
                        }
                        eprintln!("SKIP: PDM_TEST_POSTGRES_URL not set (Postgres test skipped)");
                        return None;
                    }
                };
                let name = format!("pdm_t_{}", unique_id());
                pg_exec(&admin, &format!("CREATE DATABASE \"{name}\"")).unwrap_or_else(|e| {
                    panic!("cannot create database {name} through PDM_TEST_POSTGRES_URL: {e}")
                });
                let url = replace_db_in_url(&admin, &name);
                Some(Db {
                    url,
                    backend: self,
                    pg: Some((admin, name)),
                })
            }
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.pg {
            let _ = pg_exec(
                admin,
                &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            );
        }
    }
}

fn pg_exec(url: &str, sql: &str) -> Result<(), String> {
    use sqlx::Connection;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut conn = tokio::time::timeout(
            Duration::from_secs(15),
            sqlx::postgres::PgConnection::connect(url),
        )
        .await
        .map_err(|_| "timeout connecting to postgres".to_string())?
        .map_err(|e| e.to_string())?;
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let _ = conn.close().await;
        Ok(())
    })
}

/// `postgres://u@h:p/db?x=y` with `db` replaced by `name` (query string kept).
pub fn replace_db_in_url(url: &str, name: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    format!("{}/{}{}", &base[..authority_end], name, query)
}

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

static PORT_LOCK: Mutex<()> = Mutex::new(());

/// A TCP port free on 127.0.0.1 (for HTTP).
pub fn free_tcp_port() -> u16 {
    let _g = PORT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port free on 127.0.0.1 for both UDP and TCP (for DNS).
pub fn free_udp_tcp_port() -> u16 {
    let _g = PORT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..100 {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = u.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no free UDP+TCP port found");
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/// HTTP answer: status, parsed JSON body (a JSON string with the raw text if not JSON), raw text.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub content_type: Option<String>,
}

impl Resp {
    /// `(status, body)`, like the short helpers.
    pub fn into_pair(self) -> (u16, Value) {
        (self.status, self.body)
    }
}

/// Request body kinds for [`PdmServer::request`].
pub enum Body<'a> {
    None,
    Json(&'a Value),
    /// Raw bytes sent with `Content-Type: application/json`.
    Raw(&'a [u8]),
}

/// Output of one CLI invocation.
#[derive(Debug, Clone)]
pub struct CliOut {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOut {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// A running `pdm serve` with its own config, database and ports.
pub struct PdmServer {
    pub backend: Backend,
    pub http_addr: SocketAddr,
    pub dns_addr: SocketAddr,
    pub config_path: PathBuf,
    pub config: Config,
    child: Option<Child>,
    client: reqwest::blocking::Client,
    admin: Mutex<Option<String>>,
    starts: u32,
    /// Where the zones are served: `pdns_server` with [`Backend::PowerDns`], else `dns_addr`.
    zone_dns: Option<SocketAddr>,
    /// The `pdns_server` this server drives ([`Backend::PowerDns`]; not on replicas).
    pub pdns: Option<pdns::PdnsServer>,
    // Field order matters: db is dropped (Postgres DROP DATABASE) before the temp dir,
    // and both after Drop::drop has killed the child.
    pub db: Db,
    pub dir: tempfile::TempDir,
}

/// Start a server or `return` from the calling test when the backend is skipped.
macro_rules! start_or_skip {
    ($backend:expr, $cfg:expr) => {
        match $crate::common::PdmServer::start($backend, $cfg) {
            Some(s) => s,
            None => return,
        }
    };
}

/// Write each scenario `fn name(b: Backend)` once; get `sqlite::name` and `postgres::name` tests.
///
/// `backend_tests!(with_powerdns: a, b; embedded_only: c)`: `a`, `b` and `c` run on SQLite and
/// Postgres, and `a`, `b` also as `powerdns::a`, `powerdns::b` ([`Backend::PowerDns`]).
/// Give each `embedded_only` scenario a one-line reason in a comment.
macro_rules! backend_tests {
    (with_powerdns: $($scenario:ident),* $(,)?) => {
        backend_tests!(with_powerdns: $($scenario),* ; embedded_only: );
    };
    (with_powerdns: $($scenario:ident),* $(,)? ; embedded_only: $($embedded:ident),* $(,)?) => {
        backend_tests!($($scenario,)* $($embedded,)*);
        mod powerdns {
            $( #[test] fn $scenario() { super::$scenario($crate::common::Backend::PowerDns) } )*
        }
    };
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $scenario() { super::$scenario($crate::common::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $scenario() { super::$scenario($crate::common::Backend::Postgres) } )*
        }
    };
}

impl PdmServer {
    /// Start `pdm serve` on fresh ports with a fresh database; waits for `/readyz` == 200.
    /// With [`Backend::PowerDns`], first starts a `pdns_server` and points the config at it
    /// ([`Config::on_powerdns`]). Returns `None` only when the backend is skipped (Postgres
    /// without `PDM_TEST_POSTGRES_URL`, PowerDNS not installed; both outside CI).
    pub fn start(backend: Backend, config: Config) -> Option<PdmServer> {
        let (config, pdns) = match backend {
            Backend::PowerDns => {
                let pdns = pdns::PdnsServer::start_for_backend()?;
                (config.on_powerdns(&pdns), Some(pdns))
            }
            Backend::Sqlite | Backend::Postgres => (config, None),
        };
        let dir = tempfile::Builder::new()
            .prefix("pdm-test-")
            .tempdir()
            .expect("tempdir");
        let db = backend.fresh_db(dir.path())?;
        let zone_dns = pdns.as_ref().map(|p| p.dns_addr);
        Some(Self::start_on(backend, config, db, dir, zone_dns, pdns))
    }

    /// A second `pdm serve` on the same database and config, on its own ports:
    /// a replica. It does not own (drop) the database.
    #[allow(dead_code)]
    pub fn replica(&self) -> PdmServer {
        let dir = tempfile::Builder::new()
            .prefix("pdm-test-replica-")
            .tempdir()
            .expect("tempdir");
        let db = Db {
            url: self.db.url.clone(),
            backend: self.backend,
            pg: None,
        };
        Self::start_on(
            self.backend,
            self.config.clone(),
            db,
            dir,
            self.zone_dns,
            None,
        )
    }

    fn start_on(
        backend: Backend,
        config: Config,
        db: Db,
        dir: tempfile::TempDir,
        zone_dns: Option<SocketAddr>,
        pdns: Option<pdns::PdnsServer>,
    ) -> PdmServer {
        let config_path = dir.path().join("pdm.toml");
        fs::write(&config_path, config.to_toml()).expect("write config");
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(15))
            .pool_max_idle_per_host(64)
            .build()
            .expect("reqwest client");
        let mut srv = PdmServer {
            backend,
            http_addr: "127.0.0.1:0".parse().unwrap(),
            dns_addr: "127.0.0.1:0".parse().unwrap(),
            config_path,
            config,
            child: None,
            client,
            admin: Mutex::new(None),
            starts: 0,
            zone_dns,
            pdns,
            db,
            dir,
        };
        let mut last = String::new();
        for _attempt in 0..4 {
            srv.http_addr = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
            srv.dns_addr = SocketAddr::from(([127, 0, 0, 1], free_udp_tcp_port()));
            match srv.spawn_and_wait(READY_TIMEOUT) {
                Ok(()) => return srv,
                Err(e) => {
                    last = e;
                    if !looks_like_bind_failure(&last) {
                        break;
                    }
                }
            }
        }
        panic!(
            "pdm serve did not become ready: {last}\n--- server log ---\n{}",
            srv.log()
        );
    }

    /// Database URL given to the server.
    pub fn db_url(&self) -> &str {
        &self.db.url
    }

    pub fn http_base(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    fn log_paths(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("stdout.log"),
            self.dir.path().join("stderr.log"),
        )
    }

    /// Everything the server printed so far (all starts), stdout then stderr.
    pub fn log(&self) -> String {
        let (o, e) = self.log_paths();
        format!(
            "[stdout {}]\n{}\n[stderr {}]\n{}",
            o.display(),
            fs::read_to_string(&o).unwrap_or_default(),
            e.display(),
            fs::read_to_string(&e).unwrap_or_default()
        )
    }

    fn spawn_and_wait(&mut self, timeout: Duration) -> Result<(), String> {
        let (o, e) = self.log_paths();
        let open = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .expect("log file")
        };
        let mut out = open(&o);
        let mut err = open(&e);
        self.starts += 1;
        use std::io::Write;
        let banner = format!(
            "\n===== start #{} http={} dns={} =====\n",
            self.starts, self.http_addr, self.dns_addr
        );
        let _ = out.write_all(banner.as_bytes());
        let _ = err.write_all(banner.as_bytes());
        let mut cmd = Command::new(PDM);
        cmd.arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .arg("--database")
            .arg(&self.db.url)
            .arg("--http")
            .arg(self.http_addr.to_string())
            .arg("--dns")
            .arg(self.dns_addr.to_string())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        scrub_env(&mut cmd);
        let child = cmd.spawn().map_err(|e| format!("spawn {PDM}: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + timeout;
        let url = format!("{}/readyz", self.http_base());
        let quick = reqwest::blocking::Client::builder()
            .timeout(Duration::from_millis(1000))
            .build()
            .unwrap();
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    self.child = None;
                    return Err(format!(
                        "pdm serve exited early with {st}: {}",
                        tail(&self.log(), 3000)
                    ));
                }
            }
            if let Ok(r) = quick.get(&url).send() {
                if r.status().as_u16() == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                self.kill9();
                return Err(format!("GET /readyz not 200 within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL the server (no graceful shutdown) and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// PID of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Kill (if running) and start again with the same database, config and ports.
    /// Retries for a while if the ports are still held by the dying process.
    pub fn restart(&mut self) {
        self.kill9();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.spawn_and_wait(READY_TIMEOUT) {
                Ok(()) => return,
                Err(e) if looks_like_bind_failure(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("restart failed: {e}\n--- server log ---\n{}", self.log()),
            }
        }
    }

    // ----- CLI -----

    /// Run `pdm <args> --database <url> --config <cfg>` (bounded by [`CLI_TIMEOUT`]).
    pub fn cli(&self, args: &[&str]) -> CliOut {
        let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        full.push("--database".into());
        full.push(self.db.url.clone());
        full.push("--config".into());
        full.push(self.config_path.display().to_string());
        run_cli(&full, self.dir.path())
    }

    /// A token with the given scopes (`pdm token create --name t --scope S ...`).
    pub fn token_with_scopes(&self, scopes: &[&str]) -> String {
        let mut args = vec!["token", "create", "--name", "t"];
        for s in scopes {
            args.push("--scope");
            args.push(s);
        }
        let out = self.cli(&args);
        assert!(out.success(), "pdm token create failed: {out:?}");
        let tok = out.stdout.trim().to_string();
        assert!(
            !tok.is_empty() && !tok.contains('\n'),
            "token create must print one line, got {:?}",
            out.stdout
        );
        tok
    }

    pub fn token_with_scope(&self, scope: &str) -> String {
        self.token_with_scopes(&[scope])
    }

    /// An `admin` token (created once per server, cached).
    pub fn admin_token(&self) -> String {
        let mut g = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = g.as_ref() {
            return t.clone();
        }
        let t = self.token_with_scope("admin");
        *g = Some(t.clone());
        t
    }

    // ----- HTTP -----

    /// General request. `headers` are extra (name, value) pairs.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Body<'_>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let url = format!("{}{}", self.http_base(), path);
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.client.request(m, &url);
        if let Some(t) = token {
            rb = rb.header("Authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb = match body {
            Body::None => rb,
            Body::Json(v) => rb
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(v).unwrap()),
            Body::Raw(b) => rb
                .header("Content-Type", "application/json")
                .body(b.to_vec()),
        };
        let r = rb.send().unwrap_or_else(|e| {
            panic!(
                "{method} {path}: {e}\n--- server log ---\n{}",
                tail(&self.log(), 4000)
            )
        });
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.to_string());
        let text = r.text().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Resp {
            status,
            body,
            text,
            content_type,
        }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let r = self.request("GET", path, token, Body::None, &[]);
        (r.status, r.body)
    }

    pub fn post(&self, path: &str, token: Option<&str>, json: &Value) -> (u16, Value) {
        let r = self.request("POST", path, token, Body::Json(json), &[]);
        (r.status, r.body)
    }

    /// POST with extra headers (e.g. `Idempotency-Key`).
    pub fn post_h(
        &self,
        path: &str,
        token: Option<&str>,
        json: &Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let r = self.request("POST", path, token, Body::Json(json), headers);
        (r.status, r.body)
    }

    /// POST raw bytes as `application/json` (for malformed or oversized bodies).
    pub fn post_raw(&self, path: &str, token: Option<&str>, raw: &[u8]) -> (u16, Value) {
        let r = self.request("POST", path, token, Body::Raw(raw), &[]);
        (r.status, r.body)
    }

    /// DELETE with an optional JSON body.
    pub fn delete(&self, path: &str, token: Option<&str>, json: Option<&Value>) -> (u16, Value) {
        let body = match json {
            Some(v) => Body::Json(v),
            None => Body::None,
        };
        let r = self.request("DELETE", path, token, body, &[]);
        (r.status, r.body)
    }

    // ----- pool API shortcuts (admin token) -----

    pub fn reserve(&self, pool: &str, sub: &str) -> (u16, Value) {
        let t = self.admin_token();
        self.post(
            &format!("/api/v1/pool/{pool}/reserve"),
            Some(&t),
            &json!({ "subdomain": sub }),
        )
    }

    /// Reserve and assert 201; returns the reservation token.
    pub fn reserve_ok(&self, pool: &str, sub: &str) -> String {
        let (st, b) = self.reserve(pool, sub);
        assert_eq!(st, 201, "reserve {sub}.{pool}: {b}");
        b["reservationToken"]
            .as_str()
            .unwrap_or_else(|| panic!("no reservationToken in {b}"))
            .to_string()
    }

    pub fn commit(
        &self,
        pool: &str,
        sub: &str,
        token: &str,
        lb: &str,
        console: Option<&str>,
    ) -> (u16, Value) {
        let t = self.admin_token();
        let mut body = json!({
            "subdomain": sub,
            "reservationToken": token,
            "sovereignFQDN": format!("{sub}.{pool}"),
            "loadBalancerIP": lb,
        });
        if let Some(c) = console {
            body["consoleLoadBalancerIP"] = json!(c);
        }
        self.post(&format!("/api/v1/pool/{pool}/commit"), Some(&t), &body)
    }

    /// Reserve + commit, asserting success; returns the commit body.
    pub fn allocate(&self, pool: &str, sub: &str, lb: &str, console: Option<&str>) -> Value {
        let tok = self.reserve_ok(pool, sub);
        let (st, b) = self.commit(pool, sub, &tok, lb, console);
        assert_eq!(st, 200, "commit {sub}.{pool}: {b}");
        b
    }

    pub fn release(&self, pool: &str, sub: &str) -> (u16, Value) {
        let t = self.admin_token();
        self.delete(
            &format!("/api/v1/pool/{pool}/release"),
            Some(&t),
            Some(&json!({ "subdomain": sub })),
        )
    }

    pub fn check(&self, pool: &str, sub: &str) -> (u16, Value) {
        let t = self.admin_token();
        self.get(&format!("/api/v1/pool/{pool}/check?sub={sub}"), Some(&t))
    }

    // ----- DNS -----

    /// Where the zones this server manages are served: its own DNS port, or the
    /// `pdns_server` with [`Backend::PowerDns`].
    pub fn zone_dns_addr(&self) -> SocketAddr {
        self.zone_dns.unwrap_or(self.dns_addr)
    }

    /// One UDP query (RD=0) to where the zones are served ([`PdmServer::zone_dns_addr`]),
    /// 2 s timeout, 3 tries.
    pub fn dig(&self, name: &str, qtype: RecordType) -> DigResult {
        dig_at(self.zone_dns_addr(), name, qtype)
            .unwrap_or_else(|e| panic!("dig {name} {qtype}: {e}\n{}", tail(&self.log(), 3000)))
    }
}

impl Drop for PdmServer {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "--- pdm server log ({:?}, {}) ---\n{}",
                self.backend,
                self.db.url,
                tail(&self.log(), 8000)
            );
            if let Some(p) = &self.pdns {
                eprintln!("--- pdns_server log ---\n{}", p.log());
            }
        }
    }
}

/// The secret key test servers seal DNSSEC private keys with.
pub const TEST_SECRET_KEY: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn scrub_env(cmd: &mut Command) {
    for k in ["PDM_CONFIG", "PDM_DATABASE_URL", "PDM_HTTP", "PDM_DNS"] {
        cmd.env_remove(k);
    }
    // DNSSEC private keys are sealed with this; the same key across restarts.
    if std::env::var_os("PDM_SECRET_KEY").is_none() {
        cmd.env("PDM_SECRET_KEY", TEST_SECRET_KEY);
    }
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info");
    }
}

fn looks_like_bind_failure(s: &str) -> bool {
    let l = s.to_lowercase();
    l.contains("address already in use") || l.contains("addrinuse") || l.contains("os error 98")
}

/// Last `n` bytes of `s` (on a char boundary).
pub fn tail(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut i = s.len() - n;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    format!("...{}", &s[i..])
}

/// Run the pdm binary with `args` in `cwd`, bounded by [`CLI_TIMEOUT`].
pub fn run_cli(args: &[String], cwd: &Path) -> CliOut {
    let mut cmd = Command::new(PDM);
    cmd.args(args);
    scrub_env(&mut cmd);
    let (code, stdout, stderr) = run_bounded(cmd, &format!("pdm {args:?}"), cwd, CLI_TIMEOUT);
    CliOut {
        code,
        stdout,
        stderr,
    }
}

/// Run `cmd` in `cwd` with a null stdin, its output captured through files
/// (no pipe can fill up), killed and panicking after `timeout`.
/// Returns (exit code, stdout, stderr).
pub fn run_bounded(
    mut cmd: Command,
    what: &str,
    cwd: &Path,
    timeout: Duration,
) -> (Option<i32>, String, String) {
    let id = unique_id();
    let out_p = cwd.join(format!("run-{id}.out"));
    let err_p = cwd.join(format!("run-{id}.err"));
    cmd.current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(File::create(&out_p).unwrap())
        .stderr(File::create(&err_p).unwrap());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let deadline = Instant::now() + timeout;
    let code = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let rd = |p: &Path| {
        let mut s = String::new();
        if let Ok(mut f) = File::open(p) {
            let _ = f.read_to_string(&mut s);
        }
        let _ = fs::remove_file(p);
        s
    };
    (code, rd(&out_p), rd(&err_p))
}

// ---------------------------------------------------------------------------------------------
// DNS
// ---------------------------------------------------------------------------------------------

/// One resource record, flattened for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rr {
    /// Owner, lower-case, fully qualified with trailing dot.
    pub name: String,
    pub rtype: RecordType,
    pub ttl: u32,
    /// RDATA in presentation format (hickory's Display), e.g. `192.0.2.1`, `ns1.example.test.`.
    pub data: String,
}

impl std::fmt::Display for Rr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {} {}", self.name, self.ttl, self.rtype, self.data)
    }
}

/// A parsed DNS response.
#[derive(Debug, Clone)]
pub struct DigResult {
    /// `NOERROR`, `NXDOMAIN`, `SERVFAIL`, `REFUSED`, `FORMERR`, `NOTIMP`, or hickory's Debug otherwise.
    pub rcode: String,
    pub aa: bool,
    pub tc: bool,
    /// `"<owner> <TYPE> <rdata>"`, e.g. `"acme.example.test. A 192.0.2.1"`.
    pub answers: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
    pub answer_rrs: Vec<Rr>,
    pub authority_rrs: Vec<Rr>,
    pub additional_rrs: Vec<Rr>,
}

impl DigResult {
    /// RDATA of answer records of type `t`.
    pub fn answer_data(&self, t: RecordType) -> Vec<String> {
        self.answer_rrs
            .iter()
            .filter(|r| r.rtype == t)
            .map(|r| r.data.clone())
            .collect()
    }

    /// Authority records of type `t`.
    pub fn authority_of(&self, t: RecordType) -> Vec<&Rr> {
        self.authority_rrs.iter().filter(|r| r.rtype == t).collect()
    }

    pub fn is_nxdomain(&self) -> bool {
        self.rcode == "NXDOMAIN"
    }
}

impl std::fmt::Display for DigResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "rcode={} aa={} tc={}", self.rcode, self.aa, self.tc)?;
        for (sec, rrs) in [
            ("ANSWER", &self.answer_rrs),
            ("AUTHORITY", &self.authority_rrs),
            ("ADDITIONAL", &self.additional_rrs),
        ] {
            for r in rrs {
                writeln!(f, "  {sec}: {r}")?;
            }
        }
        Ok(())
    }
}

fn rr_of(r: &Record) -> Rr {
    Rr {
        name: r.name.to_lowercase().to_string(),
        rtype: r.record_type(),
        ttl: r.ttl,
        data: r.data.to_string(),
    }
}

fn rcode_str(c: ResponseCode) -> String {
    match c {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        other => format!("{other:?}"),
    }
}

/// Send one UDP query to `addr` and parse the answer.
pub fn dig_at(addr: SocketAddr, name: &str, qtype: RecordType) -> Result<DigResult, String> {
    let mut qname = Name::from_ascii(name).map_err(|e| format!("bad name {name}: {e}"))?;
    qname.set_fqdn(true);
    let mut last = String::from("no attempt");
    for _ in 0..3 {
        let mut msg = Message::query();
        msg.metadata.recursion_desired = false;
        msg.add_query(Query::query(qname.clone(), qtype));
        let id = msg.metadata.id;
        let bytes = msg.to_vec().map_err(|e| e.to_string())?;
        let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        sock.send_to(&bytes, addr).map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 65535];
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            if Instant::now() > deadline {
                last = "timeout".into();
                break;
            }
            match sock.recv_from(&mut buf) {
                Ok((n, _)) => {
                    let resp = match Message::from_vec(&buf[..n]) {
                        Ok(m) => m,
                        Err(e) => return Err(format!("unparseable response: {e}")),
                    };
                    if resp.metadata.id != id || resp.metadata.message_type != MessageType::Response
                    {
                        continue;
                    }
                    let answer_rrs: Vec<Rr> = resp.answers.iter().map(rr_of).collect();
                    let authority_rrs: Vec<Rr> = resp.authorities.iter().map(rr_of).collect();
                    let additional_rrs: Vec<Rr> = resp.additionals.iter().map(rr_of).collect();
                    let short = |v: &Vec<Rr>| {
                        v.iter()
                            .map(|r| format!("{} {} {}", r.name, r.rtype, r.data))
                            .collect()
                    };
                    return Ok(DigResult {
                        rcode: rcode_str(resp.metadata.response_code),
                        aa: resp.metadata.authoritative,
                        tc: resp.metadata.truncation,
                        answers: short(&answer_rrs),
                        authority: short(&authority_rrs),
                        additional: short(&additional_rrs),
                        answer_rrs,
                        authority_rrs,
                        additional_rrs,
                    });
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    last = "timeout (no answer within 2 s)".into();
                    break;
                }
                Err(e) => {
                    last = e.to_string();
                    break;
                }
            }
        }
    }
    Err(last)
}

// ---------------------------------------------------------------------------------------------
// Misc
// ---------------------------------------------------------------------------------------------

/// Poll `cond` every 20 ms until it is true or `timeout` passes. Returns whether it became true.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Assert an error body `{"error": code, "detail": string}`.
#[track_caller]
pub fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(
        status, want_status,
        "want {want_status} {want_code}, got {status}: {body}"
    );
    assert_eq!(
        body["error"].as_str(),
        Some(want_code),
        "want error code {want_code:?}, got {status}: {body}"
    );
    assert!(
        body.get("detail").map(|d| d.is_string()).unwrap_or(false),
        "error body must have a string detail: {body}"
    );
}

/// Assert `v` is an RFC 3339 timestamp in UTC; returns it.
#[track_caller]
pub fn assert_rfc3339_utc(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("timestamp must be a string: {v}"));
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("not RFC 3339: {s}: {e}"));
    assert_eq!(
        t.offset().local_minus_utc(),
        0,
        "timestamp must be UTC: {s}"
    );
    t
}

/// Whether `key` occurs anywhere (any depth) in `v`.
pub fn contains_key_deep(v: &Value, key: &str) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, x)| k == key || contains_key_deep(x, key)),
        Value::Array(a) => a.iter().any(|x| contains_key_deep(x, key)),
        _ => false,
    }
}

/// Stop a server the test started: SIGTERM by its PID, up to 5 s to exit, then SIGKILL through
/// the same handle (never by name).
pub fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
