//! PowerDNS-compatible LUA records: a sandboxed Lua 5.4 runtime with
//! reused states, and the shared background health checker.
//!
//! The answer path uses three calls:
//!
//! ```ignore
//! let rec = LuaRecord::parse(r#"A "ifportup(443, {'192.0.2.1','192.0.2.2'})""#)?;
//! engine.prime(&rec, &owner, &zone, None)?;            // at zone load: registers checks
//! let ctx = QueryContext::new(qname, qtype, zone, client_ip).with_ecs(net, 24);
//! match engine.evaluate(&rec, &ctx) {                  // per query
//!     Ok(ans) => /* ans.records (rdata of rec.rtype), ans.ecs_scope */,
//!     Err(e) => /* SERVFAIL */,
//! }
//! ```
//!
//! Semantics follow PowerDNS 4.7 (docs/lua.md): `return `
//! is prepended unless the code starts with `;`; a string or an array of
//! strings is parsed as rdata of the record's type; errors, `nil` and
//! unparsable results are errors (SERVFAIL); an empty array is NODATA.
//! Deliberate differences are listed on [`LuaEngine`].
//!
//! Files: `record.rs` (the record type), `hash.rs`, `addr.rs`, `synth.rs`
//! and `geo.rs` (pure rules); the Lua side: `engine.rs` (the state pool and
//! one evaluation end to end), `sandbox.rs` (building a state and its
//! environment), `eval.rs` (running a record in a state), `limits.rs` (the
//! instruction/time budget), `convert.rs` and `rawlist.rs` (Lua values
//! read as PowerDNS reads them), `userdata.rs` (`DNSName`, `ComboAddress`,
//! ...), `builtins/` (the LUA functions, one file per family) and
//! `selection.rs` (the pure if*up choice); `observer.rs` (the read-only
//! handle the API reads health and counters through);
//! `health.rs` (check registry and state machine) and `health_io.rs` (the
//! background task and probes).

#![warn(missing_docs)]

mod addr;
mod builtins;
mod convert;
mod engine;
mod eval;
mod geo;
mod hash;
mod health;
mod health_io;
mod limits;
mod observer;
mod rawlist;
mod record;
mod sandbox;
mod selection;
mod synth;
mod userdata;

#[cfg(test)]
mod tests;

pub use engine::{LuaEngine, LuaStats};
pub use geo::{GeoInfo, GeoProvider, MaxMindGeo, StaticGeo};
pub use health::{Health, HealthChecker, HealthConfig, HealthCounters, TargetStatus};
pub use observer::LuaObserver;
pub use record::{LuaParseError, LuaRecord, LUA_TYPE_CODE};

use hickory_proto::rr::{Name, RData, RecordType};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Resolves `include('name')`: the LUA records at a name of the same zone.
pub type IncludeFn = dyn Fn(&Name) -> Vec<LuaRecord> + Sync;

/// Engine settings.
#[derive(Clone)]
pub struct LuaConfig {
    /// Lua VM instructions one evaluation may run (PowerDNS 5.0's
    /// `lua-records-exec-limit` counts the same thing; its default is 1000).
    pub max_instructions: u64,
    /// Wall-clock budget of one evaluation.
    pub timeout: Duration,
    /// Bytes one evaluation may allocate on top of the warmed state.
    pub memory_limit: usize,
    /// Idle Lua states kept for reuse (extra states are created on demand).
    pub pool_size: usize,
    /// Compiled chunks cached per state.
    pub chunk_cache: usize,
    /// The process-wide health checker.
    pub health: HealthChecker,
    /// GeoIP source for the geo functions; without it they fail.
    pub geo: Option<Arc<dyn GeoProvider>>,
}

impl Default for LuaConfig {
    fn default() -> Self {
        LuaConfig {
            max_instructions: 1_000_000,
            timeout: Duration::from_millis(25),
            memory_limit: 8 << 20,
            pool_size: 16,
            chunk_cache: 1024,
            health: HealthChecker::default(),
            geo: None,
        }
    }
}

impl std::fmt::Debug for LuaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LuaConfig")
            .field("max_instructions", &self.max_instructions)
            .field("timeout", &self.timeout)
            .field("memory_limit", &self.memory_limit)
            .field("pool_size", &self.pool_size)
            .field("geo", &self.geo.is_some())
            .finish()
    }
}

/// Everything an evaluation may know about the query.
#[derive(Clone)]
pub struct QueryContext<'a> {
    /// The query name (`qname`), case as received.
    pub qname: Name,
    /// The query type (not visible to Lua, as in PowerDNS).
    pub qtype: RecordType,
    /// The zone apex (`zone`).
    pub zone: Name,
    /// The zone id (`zoneid`).
    pub zone_id: i64,
    /// The source address of the query (`who`).
    pub who: IpAddr,
    /// EDNS Client Subnet: address and source prefix length (`ecswho`).
    pub ecs: Option<(IpAddr, u8)>,
    /// DO bit (`dnssecOK`).
    pub dnssec_ok: bool,
    /// Arrived over TCP (`tcp`).
    pub tcp: bool,
    /// The client's EDNS UDP size (`ednsPKTSize`).
    pub edns_size: u16,
    /// Header id, RD and CD (`dh:getID()`, `dh:getRD()`, `dh:getCD()`).
    pub header: (u16, bool, bool),
    /// Resolver for `include()`; without it `include` does nothing.
    pub include: Option<&'a IncludeFn>,
}

impl<'a> QueryContext<'a> {
    /// A context with the required fields; the rest default to "plain UDP query".
    pub fn new(qname: Name, qtype: RecordType, zone: Name, who: IpAddr) -> Self {
        QueryContext {
            qname,
            qtype,
            zone,
            zone_id: 0,
            who,
            ecs: None,
            dnssec_ok: false,
            tcp: false,
            edns_size: 0,
            header: (0, false, false),
            include: None,
        }
    }

    /// Set the EDNS Client Subnet option.
    pub fn with_ecs(mut self, addr: IpAddr, source_prefix: u8) -> Self {
        self.ecs = Some((addr, source_prefix));
        self
    }

    /// Set the `include()` resolver.
    pub fn with_include(mut self, include: &'a IncludeFn) -> Self {
        self.include = Some(include);
        self
    }

    /// The address the client-dependent functions use (`bestwho`): the ECS
    /// network when present, else the source address.
    pub fn bestwho(&self) -> IpAddr {
        match self.ecs {
            Some((a, bits)) => addr::truncate(&a, bits),
            None => self.who,
        }
    }
}

/// The result of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct LuaAnswer {
    /// The type of the records (the LUA record's covered type).
    pub rtype: RecordType,
    /// The synthesized rdata; empty means NODATA.
    pub records: Vec<RData>,
    /// ECS scope prefix to answer with: PowerDNS sets the client's source
    /// prefix on every LUA answer to an ECS query (static answers use /0).
    pub ecs_scope: Option<u8>,
    /// TTL override; PowerDNS has none (synthesized records carry the LUA
    /// record's TTL), so this is always `None` today.
    pub ttl: Option<u32>,
}

/// Why an evaluation failed (the server answers SERVFAIL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LuaError {
    /// Syntax or runtime error in the Lua code (including errors raised by
    /// the LUA functions, e.g. `pickrandom({})`).
    #[error("LUA record error: {0}")]
    Script(String),
    /// The code returned `nil` (or nothing).
    #[error("LUA record returned nil")]
    Nil,
    /// The code returned something other than a string, number or array of them.
    #[error("LUA record returned an unusable value: {0}")]
    BadReturn(String),
    /// A returned string is not valid rdata of the record's type.
    #[error("LUA record result {value:?} is not valid {rtype}: {reason}")]
    BadRdata {
        /// The string returned.
        value: String,
        /// The type it had to parse as.
        rtype: RecordType,
        /// The parser's complaint.
        reason: String,
    },
    /// The instruction budget ran out.
    #[error("LUA record exceeded its instruction limit")]
    InstructionLimit,
    /// The wall-clock budget ran out.
    #[error("LUA record exceeded its time limit")]
    Timeout,
    /// The memory budget ran out.
    #[error("LUA record exceeded its memory limit")]
    MemoryLimit,
    /// A geo function was called but no GeoIP database is configured.
    #[error("LUA record uses a GeoIP function but no GeoIP database is configured")]
    GeoUnavailable,
    /// The record cannot be evaluated at all (e.g. type `LUA`).
    #[error("LUA record cannot be evaluated: {0}")]
    NotEvaluable(String),
    /// The Lua runtime itself failed (state creation).
    #[error("LUA runtime failure: {0}")]
    Internal(String),
}
