//! Namespaces, Nodes and Events: little beyond their metadata.

use serde_json::Value;

use super::access::{list_at, str_at};
use super::meta::{validate_object_meta, validate_object_meta_update, NameRule};
use super::names;
use crate::field_error::FieldError;

fn meta(obj: &Value, old: Option<&Value>, namespaced: bool, rule: NameRule) -> Vec<FieldError> {
    match old {
        Some(old) => validate_object_meta_update(obj, old),
        None => validate_object_meta(obj, namespaced, rule),
    }
}

/// A namespace name is a DNS label (it becomes part of DNS names).
pub fn validate_namespace(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = meta(obj, old, false, NameRule::Label);
    for (i, f) in list_at(obj, &["spec", "finalizers"]).iter().enumerate() {
        let f = f.as_str().unwrap_or("");
        // Finalizers are qualified names; the built-in `kubernetes` has no
        // prefix and is allowed.
        for msg in names::qualified_name(f) {
            errs.push(FieldError::invalid(format!("spec.finalizers[{i}]"), f, msg));
        }
    }
    errs
}

/// Nodes: a DNS subdomain name and unique addresses.
pub fn validate_node(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = meta(obj, old, false, NameRule::Subdomain);
    if old.is_some() {
        let addrs = list_at(obj, &["status", "addresses"]);
        for (i, a) in addrs.iter().enumerate() {
            if addrs[..i].contains(a) {
                errs.push(FieldError::duplicate(
                    format!("status.addresses[{i}]"),
                    a.clone(),
                ));
            }
        }
    }
    errs
}

/// Events: metadata, and an involved object in the Event's namespace.
pub fn validate_event(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = meta(obj, old, true, NameRule::Subdomain);
    let ns = str_at(obj, &["metadata", "namespace"]);
    let involved_ns = str_at(obj, &["involvedObject", "namespace"]);
    // Events about cluster-scoped objects live in `default`.
    let ok = if involved_ns.is_empty() {
        ns.is_empty() || ns == "default"
    } else {
        ns == involved_ns
    };
    if !ok {
        errs.push(FieldError::invalid(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        ));
    }
    errs
}
