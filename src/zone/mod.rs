//! Zone contents and the authoritative lookup algorithm. Pure: no IO.
//!
//! `Zone` holds one zone's records in a name tree; `lookup` answers a
//! question against it.

pub mod file;
pub mod key;
mod lookup;
pub mod template;
mod tree;

pub use lookup::{lookup, lookup_with, Answer, AnswerKind, Synthesizer};
pub use tree::{DynamicRRset, Node, RRset, Zone, ZoneError, ZoneOptions, LUA};
