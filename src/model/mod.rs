//! Domain types shared by every layer. No IO here.

pub mod allocation;
pub mod label;
pub mod name;
pub mod rtype;
pub mod serial;

pub use allocation::{Allocation, AllocationState};
pub use label::{Label, LabelError};
pub use name::{DomainName, NameError};
pub use serial::SerialPolicy;
