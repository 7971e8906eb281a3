//! A pool allocation: one subdomain of one pool, through its lifecycle.
//!
//! `reserved` → `active` (commit) → `released`; a reservation may also end as
//! `expired`. Released and expired rows are kept as history.

use std::fmt;
use std::str::FromStr;

/// Where an allocation is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllocationState {
    /// Held with a TTL and a reservation token.
    Reserved,
    /// Committed: the child zone exists and is delegated.
    Active,
    /// Freed by `release`; kept as history.
    Released,
    /// A reservation whose TTL ran out; kept as history.
    Expired,
}

impl AllocationState {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AllocationState::Reserved => "reserved",
            AllocationState::Active => "active",
            AllocationState::Released => "released",
            AllocationState::Expired => "expired",
        }
    }
}

impl fmt::Display for AllocationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AllocationState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "reserved" => AllocationState::Reserved,
            "active" => AllocationState::Active,
            "released" => AllocationState::Released,
            "expired" => AllocationState::Expired,
            other => return Err(format!("unknown allocation state {other:?}")),
        })
    }
}

/// One allocation row as the store returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// Store identity.
    pub id: i64,
    /// Pool domain without trailing dot, e.g. `example.test`.
    pub pool: String,
    /// The label, e.g. `acme`.
    pub subdomain: String,
    /// Lifecycle state.
    pub state: AllocationState,
    /// Unix milliseconds.
    pub reserved_at_ms: i64,
    /// Unix milliseconds; set while reserved.
    pub expires_at_ms: Option<i64>,
    /// Who reserved it (free text from the caller).
    pub created_by: String,
    /// `sub.pool`, set at commit.
    pub sovereign_fqdn: Option<String>,
    /// Main load balancer address, set at commit.
    pub load_balancer_ip: Option<String>,
    /// Console load balancer address, set at commit when given.
    pub console_load_balancer_ip: Option<String>,
    /// Unix milliseconds, set at commit.
    pub committed_at_ms: Option<i64>,
    /// Unix milliseconds, set at release.
    pub released_at_ms: Option<i64>,
}
