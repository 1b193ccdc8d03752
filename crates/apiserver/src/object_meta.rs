//! Reading and stamping the `metadata` the server owns: uid, timestamps,
//! generation, generated names.

use rand::Rng;
use serde_json::{json, Map, Value};

/// The object's `metadata`, created when missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

pub fn namespace(obj: &Value) -> Option<&str> {
    meta_str(obj, "namespace").filter(|s| !s.is_empty())
}

/// `metadata.resourceVersion` as a number; `None` when absent or empty.
/// A malformed one is reported as `Err(text)`.
pub fn resource_version(obj: &Value) -> Result<Option<u64>, String> {
    match meta_str(obj, "resourceVersion") {
        None | Some("") => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| v.to_string()),
    }
}

/// The current time as Kubernetes writes it (RFC 3339, whole seconds, UTC).
pub fn now_rfc3339() -> String {
    format_time(jiff::Timestamp::now())
}

pub fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Characters of generated name suffixes: Kubernetes' alphabet without
/// vowels and look-alike digits, so no words or ambiguous names appear.
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `generateName` + five random characters, as Kubernetes names
/// `web-7d4b9c8f5-` Pods.
pub fn generate_name(prefix: &str) -> String {
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| SUFFIX_ALPHABET[rng.random_range(0..SUFFIX_ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// Stamp what the server sets on a new object: identity, creation time,
/// first generation; fields a client may not set on create are dropped.
pub fn stamp_created(obj: &mut Value, api_version: &str, kind: &str) {
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    let meta = meta_mut(obj);
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    meta.insert("generation".into(), json!(1));
    meta.remove("resourceVersion");
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    meta.remove("selfLink");
}

/// Everything but `metadata` and `status`: what `generation` counts.
fn desired_state(obj: &Value) -> Map<String, Value> {
    obj.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "metadata" | "status" | "kind" | "apiVersion")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Carry the server-owned metadata of `old` over to an update, bumping
/// `generation` when the desired state changed.
pub fn carry_over(old: &Value, new: &mut Value) {
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let changed = desired_state(old) != desired_state(new);
    let old_generation = old_meta
        .get("generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let meta = meta_mut(new);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
        "name",
    ] {
        match old_meta.get(field) {
            Some(v) => meta.insert(field.into(), v.clone()),
            None => meta.remove(field),
        };
    }
    let generation = if changed {
        old_generation + 1
    } else {
        old_generation
    };
    meta.insert("generation".into(), json!(generation));
    if let Some(k) = old.get("kind") {
        new["kind"] = k.clone();
    }
    if let Some(a) = old.get("apiVersion") {
        new["apiVersion"] = a.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_use_the_alphabet() {
        let n = generate_name("web-");
        assert_eq!(n.len(), 9);
        assert!(n[4..].bytes().all(|b| SUFFIX_ALPHABET.contains(&b)));
    }

    #[test]
    fn time_has_whole_seconds() {
        let t: jiff::Timestamp = "2026-11-26T10:00:00.123Z".parse().unwrap();
        assert_eq!(format_time(t), "2026-11-26T10:00:00Z");
    }

    #[test]
    fn generation_counts_spec_changes_only() {
        let old = json!({"metadata": {"name": "a", "uid": "u", "generation": 2}, "spec": {"x": 1}, "status": {"s": 1}});
        let mut same = json!({"metadata": {"name": "a", "labels": {"l": "v"}}, "spec": {"x": 1}, "status": {"s": 2}});
        carry_over(&old, &mut same);
        assert_eq!(same["metadata"]["generation"], 2);
        assert_eq!(same["metadata"]["uid"], "u");
        let mut changed = json!({"metadata": {"name": "a", "uid": "other"}, "spec": {"x": 2}});
        carry_over(&old, &mut changed);
        assert_eq!(changed["metadata"]["generation"], 3);
        assert_eq!(changed["metadata"]["uid"], "u");
    }

    #[test]
    fn resource_versions() {
        assert_eq!(
            resource_version(&json!({"metadata": {"resourceVersion": "12"}})),
            Ok(Some(12))
        );
        assert_eq!(resource_version(&json!({"metadata": {}})), Ok(None));
        assert!(resource_version(&json!({"metadata": {"resourceVersion": "x"}})).is_err());
    }
}
