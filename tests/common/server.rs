//! [`PdmServer`]: one `pdm serve` under test, with its lifecycle (start, replica, restart,
//! kill, log) and its CLI (tokens). HTTP and DNS helpers on it live in `http.rs` and `dns.rs`.

use std::fs::{self, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::process::scrub_env;
use super::{
    free_tcp_port, free_udp_tcp_port, pdns, run_cli, tail, Backend, CliOut, Config, Db, PDM,
};

/// How long a server may take to answer `GET /readyz` with 200.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `pdm serve` with its own config, database and ports.
pub struct PdmServer {
    pub backend: Backend,
    pub http_addr: SocketAddr,
    pub dns_addr: SocketAddr,
    pub config_path: PathBuf,
    pub config: Config,
    child: Option<Child>,
    pub(super) client: reqwest::blocking::Client,
    admin: Mutex<Option<String>>,
    starts: u32,
    /// Extra environment for `pdm serve` ([`PdmServer::start_with_env`]).
    env: Vec<(String, String)>,
    /// Where the zones are served: `pdns_server` with [`Backend::PowerDns`], else `dns_addr`.
    zone_dns: Option<SocketAddr>,
    /// The `pdns_server` this server drives ([`Backend::PowerDns`]; not on replicas).
    pub pdns: Option<pdns::PdnsServer>,
    // Field order matters: db is dropped (Postgres DROP DATABASE) before the temp dir,
    // and both after Drop::drop has killed the child.
    pub db: Db,
    pub dir: tempfile::TempDir,
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
        Some(Self::start_on(
            backend,
            config,
            db,
            dir,
            zone_dns,
            pdns,
            Vec::new(),
        ))
    }

    /// Like [`PdmServer::start`], with extra environment variables for `pdm serve`
    /// (e.g. `PDM_LOG_FORMAT`), kept across restarts. Embedded backends only.
    pub fn start_with_env(
        backend: Backend,
        config: Config,
        env: &[(&str, &str)],
    ) -> Option<PdmServer> {
        let dir = tempfile::Builder::new()
            .prefix("pdm-test-")
            .tempdir()
            .expect("tempdir");
        let db = backend.fresh_db(dir.path())?;
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(Self::start_on(backend, config, db, dir, None, None, env))
    }

    /// `pdm serve` on an existing SQLite file (e.g. a restored backup), which
    /// it does not own, with extra environment for `pdm serve`.
    pub fn start_on_sqlite(config: Config, file: &Path, env: &[(&str, &str)]) -> PdmServer {
        let dir = tempfile::Builder::new()
            .prefix("pdm-test-restored-")
            .tempdir()
            .expect("tempdir");
        let db = Db {
            url: format!("sqlite://{}", file.display()),
            backend: Backend::Sqlite,
            pg: None,
        };
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::start_on(Backend::Sqlite, config, db, dir, None, None, env)
    }

    /// `pdm serve` on a database it does not own (a cluster the test starts
    /// and stops itself, see [`super::pgcluster::PgCluster`]).
    pub fn start_on_url(backend: Backend, config: Config, url: &str) -> PdmServer {
        let dir = tempfile::Builder::new()
            .prefix("pdm-test-")
            .tempdir()
            .expect("tempdir");
        let db = Db {
            url: url.to_string(),
            backend,
            pg: None,
        };
        Self::start_on(backend, config, db, dir, None, None, Vec::new())
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
            self.env.clone(),
        )
    }

    fn start_on(
        backend: Backend,
        config: Config,
        db: Db,
        dir: tempfile::TempDir,
        zone_dns: Option<SocketAddr>,
        pdns: Option<pdns::PdnsServer>,
        env: Vec<(String, String)>,
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
            env,
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
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
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

    /// Send SIGTERM to the server (by its PID) and return at once.
    pub fn sigterm(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Wait up to `timeout` for the server to exit; its exit status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.child.as_mut()?;
            if let Ok(Some(st)) = c.try_wait() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
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

    /// Where the zones this server manages are served: its own DNS port, or the
    /// `pdns_server` with [`Backend::PowerDns`].
    pub fn zone_dns_addr(&self) -> SocketAddr {
        self.zone_dns.unwrap_or(self.dns_addr)
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

fn looks_like_bind_failure(s: &str) -> bool {
    let l = s.to_lowercase();
    l.contains("address already in use") || l.contains("addrinuse") || l.contains("os error 98")
}
