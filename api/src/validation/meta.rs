//! Validation of `metadata` (names, namespace, labels, annotations, owner
//! references) and of label selectors, shared by every kind.

use serde_json::Value;

use super::access::{at, int_at, list_at, map_at, str_at};
use super::names;
use crate::field_error::FieldError;

/// Which format an object's name must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// Most kinds (`NameIsDNSSubdomain`).
    Subdomain,
    /// Namespaces (`NameIsDNSLabel`).
    Label,
    /// Services, whose names become DNS labels (`NameIsDNS1035Label`).
    Dns1035,
}

impl NameRule {
    fn check(self, name: &str, prefix: bool) -> Vec<String> {
        let name = if prefix {
            names::mask_trailing_dash(name)
        } else {
            name.to_string()
        };
        match self {
            NameRule::Subdomain => names::dns1123_subdomain(&name),
            NameRule::Label => names::dns1123_label(&name),
            NameRule::Dns1035 => names::dns1035_label(&name),
        }
    }
}

/// Total size of all annotation keys and values.
const ANNOTATIONS_SIZE_LIMIT: usize = 256 * 1024;

/// `ValidateObjectMeta` for a new object. Cluster-scoped objects are not
/// checked for a namespace: the API server clears it before validating,
/// as Kubernetes does.
pub fn validate_object_meta(obj: &Value, namespaced: bool, rule: NameRule) -> Vec<FieldError> {
    let empty = Value::Null;
    let meta = obj.get("metadata").unwrap_or(&empty);
    let mut errs = Vec::new();
    let generate_name = str_at(meta, &["generateName"]);
    if !generate_name.is_empty() {
        for msg in rule.check(generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                generate_name,
                msg,
            ));
        }
    }
    let name = str_at(meta, &["name"]);
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for msg in rule.check(name, false) {
            errs.push(FieldError::invalid("metadata.name", name, msg));
        }
    }
    if namespaced {
        let ns = str_at(meta, &["namespace"]);
        if ns.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for msg in names::dns1123_label(ns) {
                errs.push(FieldError::invalid("metadata.namespace", ns, msg));
            }
        }
    }
    errs.extend(validate_common_meta(meta));
    errs
}

/// The checks shared by create and update.
fn validate_common_meta(meta: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(g) = int_at(meta, &["generation"]) {
        if g < 0 {
            errs.push(FieldError::invalid(
                "metadata.generation",
                g,
                "must be greater than or equal to 0",
            ));
        }
    }
    errs.extend(validate_labels(at(meta, &["labels"]), "metadata.labels"));
    errs.extend(validate_annotations(
        at(meta, &["annotations"]),
        "metadata.annotations",
    ));
    errs.extend(validate_owner_references(list_at(
        meta,
        &["ownerReferences"],
    )));
    errs
}

/// `ValidateLabels`: keys are qualified names, values label values.
/// Keys are checked in sorted order so messages come out stable.
pub fn validate_labels(labels: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(map) = labels.and_then(Value::as_object) else {
        return errs;
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for k in keys {
        errs.extend(validate_label_name(k, path));
        let v = map[k].as_str().unwrap_or("");
        for msg in names::label_value(v) {
            errs.push(FieldError::invalid(path, v, msg));
        }
    }
    errs
}

/// `ValidateLabelName`.
pub fn validate_label_name(key: &str, path: &str) -> Vec<FieldError> {
    names::qualified_name(key)
        .into_iter()
        .map(|msg| FieldError::invalid(path, key, msg))
        .collect()
}

/// `ValidateAnnotations`: keys are qualified names (case does not matter)
/// and all annotations together stay under 256 kB.
pub fn validate_annotations(annotations: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(map) = annotations.and_then(Value::as_object) else {
        return errs;
    };
    let mut total = 0;
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for k in keys {
        for msg in names::qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
        total += k.len() + map[k].as_str().map_or(0, str::len);
    }
    if total > ANNOTATIONS_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, ANNOTATIONS_SIZE_LIMIT));
    }
    errs
}

/// `ValidateOwnerReferences` (the field path carries no index, as in
/// Kubernetes).
fn validate_owner_references(refs: &[Value]) -> Vec<FieldError> {
    let path = "metadata.ownerReferences";
    let mut errs = Vec::new();
    let mut controllers = Vec::new();
    for r in refs {
        let api_version = str_at(r, &["apiVersion"]);
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        for key in ["kind", "name", "uid"] {
            let v = str_at(r, &[key]);
            if v.is_empty() {
                errs.push(FieldError::invalid(
                    format!("{path}.{key}"),
                    v,
                    "must not be empty",
                ));
            }
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            controllers.push(format!("{}/{}", str_at(r, &["kind"]), str_at(r, &["name"])));
        }
    }
    if controllers.len() > 1 {
        errs.push(FieldError::invalid(
            path,
            Value::Array(refs.to_vec()),
            format!(
                "Only one reference can have Controller set to true. Found \"true\" in references for {}",
                controllers.join(" and ")
            ),
        ));
    }
    errs
}

/// `ValidateObjectMetaUpdate`: name and namespace never change, nor a UID
/// that is given (the API server fills a missing one from the stored
/// object, as Kubernetes does).
pub fn validate_object_meta_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let empty = Value::Null;
    let meta = new.get("metadata").unwrap_or(&empty);
    let old_meta = old.get("metadata").unwrap_or(&empty);
    let mut errs = Vec::new();
    for key in ["name", "namespace"] {
        let (n, o) = (str_at(meta, &[key]), str_at(old_meta, &[key]));
        if n != o {
            errs.push(FieldError::invalid(
                format!("metadata.{key}"),
                n,
                "field is immutable",
            ));
        }
    }
    let uid = str_at(meta, &["uid"]);
    if !uid.is_empty() && uid != str_at(old_meta, &["uid"]) {
        errs.push(FieldError::invalid(
            "metadata.uid",
            uid,
            "field is immutable",
        ));
    }
    let (g, og) = (
        int_at(meta, &["generation"]),
        int_at(old_meta, &["generation"]),
    );
    if let (Some(g), Some(og)) = (g, og) {
        if g < og {
            errs.push(FieldError::invalid(
                "metadata.generation",
                g,
                "must not be decremented",
            ));
        }
    }
    errs.extend(validate_common_meta(meta));
    errs
}

/// `ValidateLabelSelector` with invalid label values rejected.
pub fn validate_label_selector(sel: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = validate_labels(at(sel, &["matchLabels"]), &format!("{path}.matchLabels"));
    for (i, req) in list_at(sel, &["matchExpressions"]).iter().enumerate() {
        let rp = format!("{path}.matchExpressions[{i}]");
        let values = list_at(req, &["values"]);
        let op = str_at(req, &["operator"]);
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        format!("{rp}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        format!("{rp}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(
                format!("{rp}.operator"),
                op,
                "not a valid selector operator",
            )),
        }
        errs.extend(validate_label_name(
            str_at(req, &["key"]),
            &format!("{rp}.key"),
        ));
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            for msg in names::label_value(v) {
                errs.push(FieldError::invalid(format!("{rp}.values[{j}]"), v, msg));
            }
        }
    }
    errs
}

/// Whether a label selector (`matchLabels` and `matchExpressions`) selects
/// the given labels. An empty selector selects everything.
pub fn selector_matches(sel: &Value, labels: &std::collections::BTreeMap<String, String>) -> bool {
    if let Some(m) = map_at(sel, &["matchLabels"]) {
        for (k, v) in m {
            if labels.get(k).map(String::as_str) != v.as_str() {
                return false;
            }
        }
    }
    list_at(sel, &["matchExpressions"]).iter().all(|req| {
        let key = str_at(req, &["key"]);
        let values: Vec<&str> = list_at(req, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let have = labels.get(key).map(String::as_str);
        match str_at(req, &["operator"]) {
            "In" => have.is_some_and(|h| values.contains(&h)),
            "NotIn" => have.is_none_or(|h| !values.contains(&h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(FieldError::message).collect()
    }

    #[test]
    fn name_required_unless_generated() {
        let errs = validate_object_meta(
            &json!({"metadata": {"namespace": "default"}}),
            true,
            NameRule::Subdomain,
        );
        assert_eq!(
            messages(&errs),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
        let gen = json!({"metadata": {"generateName": "web-", "name": "web-x1z9q", "namespace": "default"}});
        assert!(validate_object_meta(&gen, true, NameRule::Subdomain).is_empty());
    }

    #[test]
    fn service_names_are_dns1035() {
        let errs = validate_object_meta(
            &json!({"metadata": {"name": "Web", "namespace": "default"}}),
            true,
            NameRule::Dns1035,
        );
        assert_eq!(
            messages(&errs),
            vec!["metadata.name: Invalid value: \"Web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]
        );
    }

    #[test]
    fn namespace_and_labels() {
        let errs = validate_object_meta(
            &json!({"metadata": {"name": "web", "namespace": "Bad_NS", "labels": {"app": "web!"}}}),
            true,
            NameRule::Subdomain,
        );
        let m = messages(&errs);
        assert!(m[0].starts_with(
            "metadata.namespace: Invalid value: \"Bad_NS\": a lowercase RFC 1123 label"
        ));
        assert!(m[1].starts_with(
            "metadata.labels: Invalid value: \"web!\": a valid label must be an empty string"
        ));
        let errs = validate_object_meta(
            &json!({"metadata": {"name": "web"}}),
            true,
            NameRule::Subdomain,
        );
        assert_eq!(messages(&errs), vec!["metadata.namespace: Required value"]);
    }

    #[test]
    fn owner_references_need_uid() {
        let obj = json!({"metadata": {"name": "web-1", "namespace": "d",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web"}]}});
        assert_eq!(
            messages(&validate_object_meta(&obj, true, NameRule::Subdomain)),
            vec!["metadata.ownerReferences.uid: Invalid value: \"\": must not be empty"]
        );
    }

    #[test]
    fn update_keeps_name() {
        let old = json!({"metadata": {"name": "web", "namespace": "default", "uid": "u1"}});
        let new = json!({"metadata": {"name": "web2", "namespace": "default"}});
        assert_eq!(
            messages(&validate_object_meta_update(&new, &old)),
            vec!["metadata.name: Invalid value: \"web2\": field is immutable"]
        );
    }

    #[test]
    fn selectors() {
        let sel = json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]});
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(selector_matches(
            &sel,
            &labels(&[("app", "web"), ("tier", "b")])
        ));
        assert!(!selector_matches(&sel, &labels(&[("app", "web")])));
        assert!(!selector_matches(
            &sel,
            &labels(&[("app", "x"), ("tier", "a")])
        ));
        let bad = json!({"matchExpressions": [{"key": "tier", "operator": "In"}]});
        assert_eq!(
            messages(&validate_label_selector(&bad, "spec.selector")),
            vec!["spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"]
        );
    }
}
