//! Strategic merge patch (`application/strategic-merge-patch+json`), the
//! patch `kubectl apply` sends: a JSON merge patch where some lists merge
//! element by element on a key (Service ports by `port`, containers by
//! `name`), plus directives (`$patch`, `$setElementOrder/<list>`,
//! `$retainKeys`, `$deleteFromPrimitiveList/<list>`). The steps and their
//! error messages follow Kubernetes' own implementation, so a patch has the
//! same effect here as against a real API server.

use serde_json::{Map, Value};

use super::strategic_order::{
    normalize_element_order, partition_maps, partition_scalars, validate_against_order,
};
use super::strategic_schema::{schema_for_kind, FieldMeta, Schema};

pub(super) const DIRECTIVE: &str = "$patch";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const RETAIN_KEYS: &str = "$retainKeys";
pub(super) const SET_ELEMENT_ORDER: &str = "$setElementOrder";

const BAD_JSON_DOC: &str = "invalid JSON document";
const BAD_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const BAD_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const BAD_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";

/// Apply a strategic merge patch to an object of `kind` (e.g. "Service").
/// Both documents must be JSON objects. Errors carry Kubernetes' messages;
/// the API answers them with 400/422.
pub fn strategic_merge(kind: &str, original: &Value, patch: &Value) -> Result<Value, String> {
    let original = match original {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return Err(BAD_JSON_DOC.to_string()),
    };
    let patch = match patch {
        Value::Object(m) => m.clone(),
        _ => return Err(BAD_JSON_DOC.to_string()),
    };
    merge_map(original, patch, schema_for_kind(kind)).map(Value::Object)
}

/// The JSON types Kubernetes tells apart when deciding whether to merge
/// two values or let the patch replace the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

fn kind_of(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(_) => Kind::Number,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::Array,
        Value::Object(_) => Kind::Object,
    }
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: &'static Schema,
) -> Result<Map<String, Value>, String> {
    if let Some(directive) = patch.get(DIRECTIVE).cloned() {
        return match directive.as_str() {
            // Use the patch as the new value, without merging.
            Some("replace") => {
                patch.remove(DIRECTIVE);
                Ok(patch)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(bad_patch_type(&directive, &patch)),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_set_element_order(&mut original, &mut patch, schema)?;

    for (key, patch_value) in patch {
        let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            (extract_key(&key, DELETE_FROM_PRIMITIVE_LIST)?, true)
        } else {
            (key, false)
        };
        // null deletes the key (and a null for a missing key is dropped).
        if patch_value.is_null() {
            original.remove(&key);
            continue;
        }
        let replaces = match original.get(&key) {
            None => true,
            Some(o) => kind_of(o) != kind_of(&patch_value),
        };
        if replaces {
            if !is_delete_list {
                let mut v = patch_value;
                discard_nulls(&mut v);
                match remove_directives(v) {
                    Some(v) => {
                        original.insert(key, v);
                    }
                    None => {
                        original.remove(&key);
                    }
                }
            }
            continue;
        }
        let current = original.remove(&key).unwrap_or(Value::Null);
        let merged = match (current, patch_value) {
            (Value::Object(o), Value::Object(p)) => {
                let (sub, _) = schema.lookup(&key);
                Value::Object(merge_map(o, p, sub)?)
            }
            (Value::Array(o), Value::Array(p)) => {
                let (sub, meta) = schema.lookup(&key);
                Value::Array(merge_list_field(o, p, sub, meta, is_delete_list)?)
            }
            (_, p) => match remove_directives(p) {
                Some(v) => v,
                None => continue,
            },
        };
        original.insert(key, merged);
    }
    Ok(original)
}

/// A list field: merged when its strategy says so (and always for a
/// deletion list), otherwise replaced by the patch's list as given.
fn merge_list_field(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: &'static Schema,
    meta: FieldMeta,
    is_delete_list: bool,
) -> Result<Vec<Value>, String> {
    if meta.merge || is_delete_list {
        merge_list(original, patch, schema, meta.merge_key, is_delete_list)
    } else {
        Ok(patch)
    }
}

fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: &'static Schema,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>, String> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = element_kind(&[&original, &patch])?;
    let (original, patch, merged) = if kind != Kind::Object {
        if is_delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.contains(v))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::new();
        for v in original.iter().chain(patch.iter()) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        (original, patch, merged)
    } else {
        if merge_key.is_empty() {
            return Err(format!(
                "cannot merge lists without merge key for {}",
                schema.name
            ));
        }
        let (original, patch) = apply_list_directives(original, patch, merge_key)?;
        let merged = merge_elements(original.clone(), &patch, merge_key, schema)?;
        (original, patch, merged)
    };
    // Patch items keep the patch's order; the others the original order.
    let (patch_items, server_only) = if merge_key.is_empty() {
        partition_scalars(merged, &patch)
    } else {
        partition_maps(merged, &patch, merge_key)?
    };
    normalize_element_order(patch_items, server_only, &patch, &original, merge_key, kind)
}

/// Handle `{"$patch": "delete", <key>: v}` (remove that element) and
/// `{"$patch": "replace"}` (the patch's list replaces the original's).
/// Returns the original to merge into and the patch without directives.
fn apply_list_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), String> {
    let mut plain = Vec::new();
    let mut replace = false;
    for v in patch {
        let Some(directive) = v.get(DIRECTIVE) else {
            plain.push(v);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let Some(key_value) = v.get(merge_key) else {
                    return Err(no_merge_key(&v, merge_key));
                };
                let mut kept = Vec::with_capacity(original.len());
                for item in original {
                    if !item.is_object() {
                        return Err(format!("value for key {} is not a map", kept.len()));
                    }
                    if item.get(merge_key) != Some(key_value) {
                        kept.push(item);
                    }
                }
                original = kept;
            }
            // Keep going to drop any other directive elements.
            Some("replace") => replace = true,
            Some("merge") => {
                return Err("merging lists cannot yet be specified in the patch".to_string())
            }
            _ => {
                return Err(bad_patch_type(
                    directive,
                    v.as_object().unwrap_or(&Map::new()),
                ))
            }
        }
    }
    if replace {
        Ok((plain, Vec::new()))
    } else {
        Ok((original, plain))
    }
}

/// Merge each patch element into the original element with the same key,
/// or append it.
fn merge_elements(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    schema: &'static Schema,
) -> Result<Vec<Value>, String> {
    for v in patch {
        let Some(key_value) = v.get(merge_key) else {
            return Err(no_merge_key(v, merge_key));
        };
        match find_by_key(&original, merge_key, key_value)? {
            Some(i) => {
                let (Value::Object(o), Value::Object(p)) = (original[i].take(), v.clone()) else {
                    unreachable!("find_by_key only returns objects");
                };
                original[i] = Value::Object(merge_map(o, p, schema)?);
            }
            None => original.push(v.clone()),
        }
    }
    Ok(original)
}

pub(super) fn find_by_key(
    list: &[Value],
    merge_key: &str,
    value: &Value,
) -> Result<Option<usize>, String> {
    for (i, v) in list.iter().enumerate() {
        let Some(m) = v.as_object() else {
            return Err(format!("value for key {i} is not a map"));
        };
        if m.get(merge_key) == Some(value) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// `$retainKeys`: keys of the original not listed are cleared; every key
/// the patch sets must be listed.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), String> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(BAD_RETAIN_KEYS.to_string());
    };
    let listed = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !listed(k) {
            return Err(BAD_RETAIN_KEYS.to_string());
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// `$setElementOrder/<list>`: merge the list now and order the result by
/// the directive, then by the original order for elements it does not name.
fn merge_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: &'static Schema,
) -> Result<(), String> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in keys {
        let order = patch.remove(&key).unwrap_or(Value::Null);
        let Value::Array(order) = order else {
            return Err(bad_arg_type("[]interface {}", &order));
        };
        let list_key = extract_key(&key, SET_ELEMENT_ORDER)?;
        let original_list = match original.get(&list_key) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(bad_arg_type("[]interface {}", other)),
        };
        let patch_list = match patch.get(&list_key) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(bad_arg_type("[]interface {}", other)),
        };
        let (sub, meta) = schema.lookup(&list_key);
        validate_against_order(patch_list.as_deref().unwrap_or(&[]), &order, meta.merge_key)?;
        let merged = match (original_list.clone(), patch_list.clone()) {
            (Some(o), None) => o,
            (None, Some(p)) => match remove_directives(Value::Array(p)) {
                Some(Value::Array(v)) => v,
                _ => continue,
            },
            (Some(o), Some(p)) => merge_list_field(o, p, sub, meta, false)?,
            (None, None) => continue,
        };
        let (ordered, server_only) = if meta.merge_key.is_empty() {
            partition_scalars(merged, &order)
        } else {
            partition_maps(merged, &order, meta.merge_key)?
        };
        let original_list = original_list.unwrap_or_default();
        let kind = element_kind(&[&original_list, patch_list.as_deref().unwrap_or(&[])])?;
        let both = normalize_element_order(
            ordered,
            server_only,
            &order,
            &original_list,
            meta.merge_key,
            kind,
        )?;
        original.insert(list_key.clone(), Value::Array(both));
        patch.remove(&list_key);
    }
    Ok(())
}

/// The one element type of the given lists; lists of lists and mixed lists
/// cannot be merged.
fn element_kind(lists: &[&[Value]]) -> Result<Kind, String> {
    let mut kind = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let k = kind_of(v);
        match kind {
            None if k == Kind::Array => return Err("lists of lists are not supported".to_string()),
            None => kind = Some(k),
            Some(prev) if prev != k => {
                let shown: Vec<String> = lists
                    .iter()
                    .map(|l| Value::from(l.to_vec()).to_string())
                    .collect();
                return Err(format!(
                    "list element types are not identical: [{}]",
                    shown.join(" ")
                ));
            }
            Some(_) => {}
        }
    }
    kind.ok_or_else(|| "no elements in any of the given slices".to_string())
}

/// Drop directive-carrying maps (and list elements) from a value that is
/// taken as is; `None` when the value itself is a directive.
fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE) {
                return None;
            }
            let m = m
                .into_iter()
                .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                .collect();
            Some(Value::Object(m))
        }
        Value::Array(a) => Some(Value::Array(
            a.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// A null inside a value that is added whole means nothing to delete.
fn discard_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// `$setElementOrder/ports` -> `ports`.
fn extract_key(key: &str, prefix: &str) -> Result<String, String> {
    match key.split_once('/') {
        Some((p, rest)) if p == prefix => Ok(rest.to_string()),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST => Err(BAD_PRIMITIVE_LIST.to_string()),
        _ => Err(BAD_SET_ELEMENT_ORDER.to_string()),
    }
}

pub(super) fn no_merge_key(v: &Value, merge_key: &str) -> String {
    format!("map: {v} does not contain declared merge key: {merge_key}")
}

fn bad_patch_type(directive: &Value, m: &Map<String, Value>) -> String {
    let d = directive
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| directive.to_string());
    format!(
        "unknown patch type: {d} in map: {}",
        Value::Object(m.clone())
    )
}

pub(super) fn bad_arg_type(expected: &str, actual: &Value) -> String {
    let actual = match actual {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    };
    format!("expected a {expected}, but received a {actual}")
}
