//! The API's contract: which kinds exist and how they are named, defaulted,
//! validated and printed. Pure: no I/O here.

pub mod defaults;
pub mod discovery;
pub mod field_error;
pub mod openapi;
pub mod patch;
pub mod printers;
pub mod registry;
pub mod selector;
pub mod service_admission;
pub mod status;
pub mod strict;
pub mod validation;
