//! Pool allocation: name rules, the reserved list, record templates, and the
//! reserve/commit/release service over the store.

pub mod reserved;
pub mod service;
pub mod template;

pub use service::{PoolError, PoolService};
