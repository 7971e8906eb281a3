//! Pool allocation: name rules, the reserved list, and the
//! reserve/commit/release service over the store.

pub mod reserved;
pub mod service;

pub use service::{PoolError, PoolService};
