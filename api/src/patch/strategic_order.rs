//! Element order after a strategic merge: the patch's elements in the
//! order the patch (or its `$setElementOrder`) gives, the server's own in
//! their old order, interleaved the way Kubernetes does it.

use serde_json::Value;

use super::strategic::{
    bad_arg_type, find_by_key, no_merge_key, Kind, DIRECTIVE, SET_ELEMENT_ORDER,
};

/// The patch's elements must appear in `$setElementOrder` in the same
/// relative order (deletions and directive elements aside).
pub(super) fn validate_against_order(
    patch: &[Value],
    order: &[Value],
    merge_key: &str,
) -> Result<(), String> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = if merge_key.is_empty() {
        patch.iter().collect()
    } else {
        let mut kept = Vec::new();
        for v in patch {
            if !v.is_object() {
                return Err(bad_arg_type("map[string]interface {}", v));
            }
            if v.get(DIRECTIVE).and_then(Value::as_str) != Some("delete") {
                kept.push(v);
            }
        }
        kept
    };
    let (mut pi, mut oi) = (0, 0);
    while pi < non_delete.len() && oi < order.len() {
        if non_delete[pi].get(DIRECTIVE).is_some() {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(non_delete[pi], &order[oi], merge_key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < non_delete.len() && oi >= order.len() {
        return Err(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            Value::Array(patch.to_vec()),
            Value::Array(order.to_vec())
        ));
    }
    Ok(())
}

fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool, String> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    for side in [left, right] {
        if !side.is_object() {
            return Err(bad_arg_type("map[string]interface {}", side));
        }
        if side.get(merge_key).is_none() {
            return Err(no_merge_key(side, merge_key));
        }
    }
    Ok(left.get(merge_key) == right.get(merge_key))
}

/// Split `merged` into the elements found in `by` and the others.
pub(super) fn partition_scalars(merged: Vec<Value>, by: &[Value]) -> (Vec<Value>, Vec<Value>) {
    merged.into_iter().partition(|v| by.contains(v))
}

pub(super) fn partition_maps(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), String> {
    let (mut found, mut others) = (Vec::new(), Vec::new());
    for v in merged {
        if !v.is_object() {
            return Err(bad_arg_type("map[string]interface {}", &v));
        }
        let Some(key_value) = v.get(merge_key) else {
            return Err(no_merge_key(&v, merge_key));
        };
        if find_by_key(by, merge_key, key_value)?.is_some() {
            found.push(v);
        } else {
            others.push(v);
        }
    }
    Ok((found, others))
}

/// Sort the patch's elements by `patch_order` and the server's own by
/// `server_order`, then interleave them, keeping the relative order of
/// both; where they compete, the server's order decides.
pub(super) fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: Kind,
) -> Result<Vec<Value>, String> {
    let patch_items = sort_by_order(patch_items, patch_order, merge_key, kind)?;
    let server_only = sort_by_order(server_only, server_order, merge_key, kind)?;
    let position = |v: &Value| index_of(server_order, v, merge_key, kind);
    let (mut left, mut right) = (
        server_only.into_iter().peekable(),
        patch_items.into_iter().peekable(),
    );
    let mut out = Vec::new();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => match (position(l), position(r)) {
                (Some(li), Some(ri)) => li < ri,
                _ => false,
            },
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    Ok(out)
}

fn sort_by_order(
    items: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: Kind,
) -> Result<Vec<Value>, String> {
    let (mut keep, mut delete) = (Vec::new(), Vec::new());
    if kind == Kind::Object {
        for v in items.iter().chain(order.iter()) {
            if !v.is_object() {
                return Err(bad_arg_type("map[string]interface {}", v));
            }
            if v.get(merge_key).is_none() {
                return Err(no_merge_key(v, merge_key));
            }
        }
        for v in items {
            if v.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                delete.push(v);
            } else {
                keep.push(v);
            }
        }
    } else {
        keep = items;
    }
    keep.sort_by_key(|v| index_of(order, v, merge_key, kind).unwrap_or(usize::MAX));
    keep.extend(delete);
    Ok(keep)
}

/// Where `item` is in `list`: by merge key for objects, by value otherwise.
fn index_of(list: &[Value], item: &Value, merge_key: &str, kind: Kind) -> Option<usize> {
    let key = |v: &Value| -> Value {
        if kind == Kind::Object {
            v.get(merge_key).cloned().unwrap_or(Value::Null)
        } else {
            v.clone()
        }
    };
    let wanted = key(item);
    list.iter().position(|v| key(v) == wanted)
}
