//! LUA records in the answer path: the [`Synthesizer`] the server hands to
//! [`crate::zone::lookup_with`], and EDNS Client Subnet (RFC 7871) parsing.
//!
//! The lookup decides *where* synthesized records go (exact or wildcard
//! name, CNAME chase, NODATA when empty); this module only runs programs.

use crate::lua::{LuaEngine, LuaError, QueryContext};
use crate::zone::{DynamicRRset, Synthesizer};
use hickory_proto::op::Edns;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData};
use std::net::IpAddr;

/// Runs the LUA programs of dynamic RRsets for one query.
pub struct LuaSynth<'a> {
    engine: &'a LuaEngine,
    base: QueryContext<'a>,
    /// Largest ECS scope an evaluation asked for (PowerDNS: the source prefix).
    pub scope: Option<u8>,
    /// Programs evaluated.
    pub evaluated: usize,
}

impl<'a> LuaSynth<'a> {
    /// A synthesizer evaluating with `engine` in the query context `base`
    /// (its `qname` is replaced by the name each RRset is asked for).
    pub fn new(engine: &'a LuaEngine, base: QueryContext<'a>) -> Self {
        LuaSynth {
            engine,
            base,
            scope: None,
            evaluated: 0,
        }
    }
}

impl Synthesizer for LuaSynth<'_> {
    type Error = LuaError;

    fn synthesize(&mut self, qname: &Name, set: &DynamicRRset) -> Result<Vec<RData>, LuaError> {
        let mut ctx = self.base.clone();
        ctx.qname = qname.clone();
        let mut out = Vec::new();
        for program in &set.programs {
            self.evaluated += 1;
            let answer = self.engine.evaluate(program, &ctx)?;
            // PowerDNS scopes the records it synthesized: an empty result
            // leaves the response at scope 0.
            if let Some(s) = answer.ecs_scope.filter(|_| !answer.records.is_empty()) {
                self.scope = Some(self.scope.map_or(s, |old| old.max(s)));
            }
            out.extend(answer.records);
        }
        Ok(out)
    }
}

/// The client subnet of a request: address and source prefix length.
pub fn client_subnet(edns: Option<&Edns>) -> Option<(IpAddr, u8)> {
    match edns?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(cs) => Some((cs.addr(), cs.source_prefix())),
        _ => None,
    }
}

/// The ECS option of a response: the request's subnet with `scope`.
pub fn subnet_option(subnet: (IpAddr, u8), scope: u8) -> EdnsOption {
    EdnsOption::Subnet(ClientSubnet::new(subnet.0, subnet.1, scope))
}

/// Wire size of an ECS option with this source prefix (header included).
pub fn subnet_option_len(source_prefix: u8) -> usize {
    4 + 4 + usize::from(source_prefix).div_ceil(8)
}
