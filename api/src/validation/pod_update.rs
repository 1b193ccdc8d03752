//! `ValidatePodUpdate`: what may change in a running Pod.

use serde_json::Value;

use super::access::{int_at, list_at, str_at};
use crate::field_error::FieldError;

/// What an update may change in a Pod's spec (Kubernetes 1.35's list).
const UPDATABLE_POD_SPEC_FIELDS: &[&str] = &[
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
    "`spec.containers[*].resources` (for CPU/memory only)",
];

/// `ValidatePodUpdate`: a Pod's spec is fixed once created, but for
/// container images, `activeDeadlineSeconds`, added tolerations and
/// CPU/memory resources. minik8s' scheduler binds a Pod by setting
/// `spec.nodeName` once, so that is allowed too (Kubernetes uses a
/// `binding` subresource for it).
pub(crate) fn validate_pod_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for list in ["containers", "initContainers"] {
        let (n, o) = (list_at(new, &["spec", list]), list_at(old, &["spec", list]));
        if n.len() != o.len() {
            errs.push(FieldError::forbidden(
                format!("spec.{list}"),
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in n.iter().enumerate() {
            let image = str_at(c, &["image"]);
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    format!("spec.{list}[{i}].image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    if let (Some(n), Some(o)) = (
        int_at(new, &["spec", "activeDeadlineSeconds"]),
        int_at(old, &["spec", "activeDeadlineSeconds"]),
    ) {
        if o < n {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
    }
    let mut munged = new.get("spec").cloned().unwrap_or(Value::Null);
    let old_spec = old.get("spec").cloned().unwrap_or(Value::Null);
    for list in ["containers", "initContainers"] {
        if let Some(cs) = munged.get_mut(list).and_then(Value::as_array_mut) {
            for (i, c) in cs.iter_mut().enumerate() {
                let old_c = &old_spec[list][i];
                if let Some(m) = c.as_object_mut() {
                    set_or_remove(m, "image", old_c.get("image"));
                    if list == "containers" {
                        set_or_remove(m, "resources", old_c.get("resources"));
                    }
                }
            }
        }
    }
    if let Some(m) = munged.as_object_mut() {
        for key in ["activeDeadlineSeconds", "tolerations", "schedulingGates"] {
            set_or_remove(m, key, old_spec.get(key));
        }
        if str_at(&old_spec, &["nodeName"]).is_empty() {
            set_or_remove(m, "nodeName", old_spec.get("nodeName"));
        }
        let old_grace = int_at(&old_spec, &["terminationGracePeriodSeconds"]);
        if old_grace.is_some_and(|g| g < 0)
            && m.get("terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                == Some(1)
        {
            set_or_remove(
                m,
                "terminationGracePeriodSeconds",
                old_spec.get("terminationGracePeriodSeconds"),
            );
        }
    }
    if munged != old_spec {
        let mut diff = String::new();
        spec_diff(&old_spec, &munged, "", &mut diff);
        errs.push(FieldError::forbidden(
            "spec",
            format!(
                "pod updates may not change fields other than {}\n  core.PodSpec{{\n{diff}  }}\n",
                UPDATABLE_POD_SPEC_FIELDS.join(",")
            ),
        ));
    }
    errs
}

fn set_or_remove(m: &mut serde_json::Map<String, Value>, key: &str, v: Option<&Value>) {
    match v {
        Some(v) => {
            m.insert(key.to_string(), v.clone());
        }
        None => {
            m.remove(key);
        }
    }
}

/// A short `-`/`+` listing of the leaves that differ, in the spirit of the
/// `cmp.Diff` Kubernetes appends.
fn spec_diff(old: &Value, new: &Value, path: &str, out: &mut String) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut keys: Vec<&String> = o
                .keys()
                .chain(n.keys().filter(|k| !o.contains_key(*k)))
                .collect();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                spec_diff(
                    o.get(k).unwrap_or(&Value::Null),
                    n.get(k).unwrap_or(&Value::Null),
                    &p,
                    out,
                );
            }
        }
        (Value::Array(o), Value::Array(n)) if o.len() == n.len() => {
            for (i, (a, b)) in o.iter().zip(n).enumerate() {
                spec_diff(a, b, &format!("{path}[{i}]"), out);
            }
        }
        (a, b) if a != b => {
            if !a.is_null() {
                out.push_str(&format!("- \t{path}: {a}\n"));
            }
            if !b.is_null() {
                out.push_str(&format!("+ \t{path}: {b}\n"));
            }
        }
        _ => {}
    }
}
