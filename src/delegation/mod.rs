//! Delegation of customer ("byo") domains: registrar adapters wired to
//! config (`registry`), the offline fakes (`fakes`, feature
//! `fake-registrars`), the managed-domain
//! service and its durable steps (`byo`), and the check at the parent:
//! pure comparison (`propagation`) apart from the DNS questions (`probe`).

pub mod byo;
#[cfg(feature = "fake-registrars")]
pub mod fakes;
mod metered;
pub mod probe;
pub mod propagation;
pub mod registry;

pub use byo::{ByoError, ByoService};
pub use registry::Registrars;
