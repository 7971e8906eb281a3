//! Zone contents and the authoritative lookup algorithm. Pure: no IO.
//!
//! `Zone` holds one zone's records in a name tree; `lookup` answers a
//! question against it; `ZoneSet` finds the zone for a query name.

pub mod file;
pub mod key;
pub mod lookup;
pub mod set;
pub mod template;
mod tree;

pub use lookup::{lookup, lookup_with, Answer, AnswerKind, Synthesizer};
pub use set::{SharedZones, ZoneSet};
pub use tree::{DynamicRRset, Node, RRset, Zone, ZoneError, ZoneOptions, LUA};
