//! The API's contract: which kinds exist and how they are named, defaulted,
//! validated and printed. Pure: no I/O here.

pub mod registry;
