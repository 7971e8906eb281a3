//! Stores under test: the [`Backend`] choice, a fresh database per server, Postgres helpers.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
    pub(super) pg: Option<(String, String)>,
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
