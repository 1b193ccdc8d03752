//! The API's contract: which kinds exist and how they are named, defaulted,
//! validated and printed. Pure: no I/O here.

pub mod registry;
pub mod field_error;
pub mod status;
pub mod selector;
pub mod patch;
pub mod discovery;
pub mod defaults;
pub mod printers;
pub mod service_admission;
pub mod strict;
pub mod validation;
pub mod openapi;
