//! Label and field selectors: parsing with Kubernetes' messages, and
//! matching against objects.

mod attributes;
mod field;
mod label;
mod label_parser;

pub use attributes::selection_attributes;
pub use field::{field_value, selectable_fields, FieldSelector, FieldTerm};
pub use label::{LabelSelector, Operator, Requirement};

#[cfg(test)]
mod tests;
