//! GarbageCollector: dependents whose owners are gone are deleted.

pub mod controller;
pub mod plan;

pub use controller::GarbageCollector;
pub use plan::{owner_location, owner_state, plan_collection, OwnerState, Verdict};
