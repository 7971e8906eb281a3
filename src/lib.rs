//! pdm: an authoritative DNS server and pool-domain control plane.
//!
//! Data flows one way: `api` → `pool` → `store` (rows + journal) →
//! `snapshot` → `zone` tables served by `server`.

pub mod api;
pub mod backend;
pub mod config;
pub mod delegation;
mod demo;
pub mod dnssec;
pub mod keyring;
pub mod lua;
pub mod model;
pub mod operations;
pub mod pool;
pub mod secret;
pub mod serve;
pub mod server;
pub mod snapshot;
pub mod store;
pub mod zone;
