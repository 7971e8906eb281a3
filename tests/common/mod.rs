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
//!
//! One concern a file: `config` (the TOML builder), `db` (backends and fresh databases),
//! `server` ([`PdmServer`] lifecycle and CLI), `http` (requests and API assertions), `dns`
//! (queries and parsed answers), `process` (subprocesses, ports, polling), and `pdns`,
//! `registrars`, `validators` for the external programs. Everything is re-exported here.
#![allow(dead_code, unused_macros, unused_imports)]

pub mod pdns;
pub mod pgcluster;
pub mod registrars;
pub mod secondaries;
pub mod validators;

mod config;
mod db;
mod dns;
mod http;
mod process;
mod server;

pub use config::*;
pub use db::*;
pub use dns::*;
pub use http::*;
pub use process::*;
pub use server::*;

pub use serde_json::{json, Value};

/// Path of the binary under test.
pub const PDM: &str = env!("CARGO_BIN_EXE_pdm");

/// The Go service's reserved-names list (its `internal/reserved` package).
pub const GO_RESERVED: &[&str] = &[
    "admin", "api", "app", "catalyst", "console", "docs", "flux", "gitea", "harbor", "imap", "k8s",
    "keycloak", "mail", "openbao", "openova", "smtp", "status", "system", "vault", "vpn", "www",
];

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
