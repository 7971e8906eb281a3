//! pdm-dns: pdm's data plane, answering DNS from an in-memory snapshot of
//! the zones.
//!
//! Imports point one way: `lua` ← `zone` ← `dnssec` ← `server`, with `image`
//! (wire images, importing nothing) used by the last two
//! (docs/architecture.md, "Who may import whom"). Being its own crate, it
//! cannot reach the store, the HTTP API, the configuration or the pool
//! service: the control plane (crate `pdm`) builds the zones and hands the
//! server a `server::ZoneSet`.

pub mod dnssec;
pub mod image;
pub mod lua;
pub mod server;
pub mod zone;
