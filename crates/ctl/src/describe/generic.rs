//! `describe` of kinds without a dedicated describer: kubectl's generic
//! describer, which prints every field with a readable label
//! (`creationTimestamp` -> `Creation Timestamp`).

use super::{describe_events, print_annotations, print_labels, DescribeWriter};
use k8s_openapi::api::core::v1::Event;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub fn describe_generic(obj: &Value, events: Option<&[Event]>, now: jiff::Timestamp) -> String {
    let mut w = DescribeWriter::new();
    let meta = &obj["metadata"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let string_map = |v: &Value| -> Option<BTreeMap<String, String>> {
        v.as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
    };
    w.write(0, &format!("Name:\t{}\n", text(&meta["name"])));
    w.write(0, &format!("Namespace:\t{}\n", text(&meta["namespace"])));
    print_labels(&mut w, "Labels", string_map(&meta["labels"]).as_ref());
    print_annotations(
        &mut w,
        "Annotations",
        string_map(&meta["annotations"]).as_ref(),
    );
    if let Some(content) = obj.as_object() {
        print_content(
            &mut w,
            0,
            content,
            "",
            &[
                ".metadata.managedFields",
                ".metadata.name",
                ".metadata.namespace",
                ".metadata.labels",
                ".metadata.annotations",
            ],
        );
    }
    describe_events(&mut w, events, now);
    w.finish()
}

fn print_content(
    w: &mut DescribeWriter,
    level: usize,
    content: &Map<String, Value>,
    prefix: &str,
    skip: &[&str],
) {
    let mut fields: Vec<&String> = content.keys().collect();
    fields.sort();
    for field in fields {
        let path = format!("{prefix}.{field}");
        if skip.contains(&path.as_str()) {
            continue;
        }
        match &content[field] {
            Value::Object(m) => {
                w.write(level, &format!("{}:\n", smart_label(field)));
                print_content(w, level + 1, m, &path, skip);
            }
            Value::Array(items) => {
                w.write(level, &format!("{}:\n", smart_label(field)));
                for item in items {
                    match item {
                        Value::Object(m) => print_content(w, level + 1, m, &path, skip),
                        other => w.write(level + 1, &format!("{}\n", scalar(other))),
                    }
                }
            }
            other => w.write(
                level,
                &format!("{}:\t{}\n", smart_label(field), scalar(other)),
            ),
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

/// kubectl's `smartLabelFor`: split camelCase, title-case the words,
/// upper-case common acronyms.
fn smart_label(field: &str) -> String {
    if field.chars().any(|c| !c.is_alphabetic() && c != '-') {
        return field.to_string();
    }
    const ACRONYMS: &[&str] = &["API", "URL", "UID", "OSB", "GUID"];
    let chars: Vec<char> = field.chars().collect();
    let mut parts: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1).copied();
        let boundary = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase() || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            });
        if boundary && !cur.is_empty() {
            parts.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
        .into_iter()
        .map(|p| {
            if ACRONYMS.contains(&p.to_uppercase().as_str()) {
                p.to_uppercase()
            } else {
                let mut cs = p.chars();
                match cs.next() {
                    Some(f) => f.to_uppercase().chain(cs).collect(),
                    None => p,
                }
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_read_like_kubectl() {
        assert_eq!(smart_label("creationTimestamp"), "Creation Timestamp");
        assert_eq!(smart_label("apiVersion"), "API Version");
        assert_eq!(smart_label("podCIDR"), "Pod CIDR");
        assert_eq!(smart_label("addressType"), "Address Type");
        assert_eq!(smart_label("kubernetes.io/x"), "kubernetes.io/x");
    }

    #[test]
    fn prints_nested_fields() {
        let obj = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                         "metadata": {"name": "web-abc", "namespace": "default", "uid": "u1"},
                         "addressType": "IPv4", "ports": [{"port": 80}]});
        let out = describe_generic(&obj, None, jiff::Timestamp::now());
        assert!(out.contains("Address Type:  IPv4\n"), "{out}");
        assert!(out.contains("Metadata:\n  UID:  u1\n"), "{out}");
        assert!(out.contains("Ports:\n  Port:  80\n"), "{out}");
    }
}
