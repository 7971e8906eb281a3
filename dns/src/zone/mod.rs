//! Zone contents and the authoritative lookup algorithm. Pure: no IO.
//!
//! `Zone` holds one zone's records in a name tree; `lookup` answers a
//! question against it. Imports only `lua` (the LUA record type): never
//! `dnssec`, `server` or the control plane. Whether a zone is served signed
//! is not the tree's business (see `server::ServedZone`).

// Public because other rooms use them: master-file text (import/export,
// the store's row form, backends, the keyring's DS text) ...
pub mod file;
// ... canonical name keys (the server's zone table probes them) ...
pub mod key;
mod lookup;
// ... and record templates (config, pool, backends render child zones).
mod intern;
mod rdataset;
pub mod template;
mod tree;

pub use lookup::{lookup, lookup_key, lookup_keyed, lookup_with, Answer, AnswerKind, Synthesizer};
pub use tree::{DynamicRRset, Node, RRset, Zone, ZoneDelta, ZoneError, ZoneOptions, LUA};
