//! Small readers for objects that travel as JSON: the validation, defaulting
//! and printing code reads fields by path and treats a missing field, a
//! `null` and a field of the wrong type alike (as Go's zero value).

use serde_json::{Map, Value};

/// The value at `path` (object keys), if every step exists.
pub(crate) fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    if cur.is_null() {
        None
    } else {
        Some(cur)
    }
}

/// The string at `path`, `""` when absent (Go's zero value).
pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

/// The integer at `path`, if present.
pub(crate) fn int_at(v: &Value, path: &[&str]) -> Option<i64> {
    at(v, path).and_then(Value::as_i64)
}

/// The list at `path`, empty when absent.
pub(crate) fn list_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The map at `path`, if present.
pub(crate) fn map_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    at(v, path).and_then(Value::as_object)
}

/// The boolean at `path`, `false` when absent.
pub(crate) fn bool_at(v: &Value, path: &[&str]) -> bool {
    at(v, path).and_then(Value::as_bool).unwrap_or(false)
}

/// A string-to-string map (labels, selectors) with keys sorted, as Go
/// prints maps. Non-string values are skipped.
pub(crate) fn string_map(v: Option<&Value>) -> std::collections::BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The same map as a JSON object with sorted keys, for error values.
pub(crate) fn sorted_map_value(m: &std::collections::BTreeMap<String, String>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// The object at `path`, created (and any non-object replaced) on the way.
pub(crate) fn obj_mut<'a>(v: &'a mut Value, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut cur = v;
    for key in path {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let m = cur.as_object_mut().expect("just made an object");
        let entry = m.entry(key.to_string()).or_insert(Value::Null);
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        cur = entry;
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    cur.as_object_mut().expect("just made an object")
}

/// Whether `key` holds nothing a Go decoder would see as set: absent,
/// `null`, `""`, `0`, `false`, `[]` or `{}`.
pub(crate) fn is_unset(m: &Map<String, Value>, key: &str) -> bool {
    match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::Bool(b)) => !b,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
    }
}

/// Go defaulting of a value field (`if x == "" { x = d }`): set `key`
/// when it holds the zero value.
pub(crate) fn default_zero(m: &mut Map<String, Value>, key: &str, value: Value) {
    if is_unset(m, key) {
        m.insert(key.to_string(), value);
    }
}

/// Go defaulting of a pointer field (`if x == nil { x = &d }`): set `key`
/// only when absent or `null`, so an explicit `0` or `false` stays.
pub(crate) fn default_absent(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}
