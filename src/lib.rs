//! pdm: an authoritative DNS server and pool-domain control plane.
//!
//! Data flows one way: `api` → `pool` → `store` (rows + journal) →
//! `snapshot` → the zone table served by `server`. The data plane imports
//! one way too: `lua` ← `zone` ← `dnssec` ← `server`, in the crate
//! `pdm-dns` (dns/), which cannot import the control plane; it is re-exported
//! here so `crate::zone::…` and `pdm::zone::…` paths stay as they were.
//! docs/architecture.md has the whole who-may-import-whom table;
//! tests/architecture.rs keeps it true.

pub mod api;
pub mod backend;
pub mod config;
pub mod delegation;
mod demo;
pub mod keyring;
pub mod metrics;
pub mod model;
pub mod operations;
pub mod policy;
pub mod pool;
pub mod rrsets;
pub mod secret;
pub mod serve;
pub mod snapshot;
pub mod store;
pub mod transfer;
pub mod update;

pub use pdm_dns::{dnssec, lua, server, zone};
