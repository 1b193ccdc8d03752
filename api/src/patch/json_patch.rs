//! JSON patch (RFC 6902, `application/json-patch+json`): a list of
//! operations (add, remove, replace, move, copy, test) addressed by JSON
//! pointers (RFC 6901).

use serde_json::Value;

/// Apply the operations in order; the first failing one fails the patch
/// and nothing is applied.
pub fn json_patch(original: &Value, patch: &Value) -> Result<Value, String> {
    let Value::Array(ops) = patch else {
        return Err(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch".to_string(),
        );
    };
    let mut doc = original.clone();
    for op in ops {
        apply_op(&mut doc, op)?;
    }
    Ok(doc)
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), String> {
    let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
    let path = || -> Result<&str, String> {
        op.get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("operation missing path: {op}"))
    };
    let value = || -> Result<Value, String> {
        op.get("value")
            .cloned()
            .ok_or_else(|| format!("operation missing value: {op}"))
    };
    let from = || -> Result<&str, String> {
        op.get("from")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("operation missing from: {op}"))
    };
    match kind {
        "add" => add(doc, path()?, value()?),
        "remove" => remove(doc, path()?).map(drop),
        "replace" => {
            let path = path()?;
            let target = get_mut(doc, path).ok_or_else(|| {
                format!("replace operation does not apply: doc is missing key: {path}")
            })?;
            *target = value()?;
            Ok(())
        }
        "move" => {
            let (from, path) = (from()?, path()?);
            if path.starts_with(&format!("{from}/")) {
                return Err(format!("cannot move {from} into its own child {path}"));
            }
            let v = remove(doc, from)?;
            add(doc, path, v)
        }
        "copy" => {
            let from = from()?;
            let v = get(doc, from).cloned().ok_or_else(|| {
                format!("copy operation does not apply: doc is missing from path: {from}")
            })?;
            add(doc, path()?, v)
        }
        "test" => {
            let path = path()?;
            let want = value()?;
            match get(doc, path) {
                Some(have) if *have == want => Ok(()),
                _ => Err(format!("testing value {path} failed: test failed")),
            }
        }
        other => Err(format!("Unexpected kind: {other}")),
    }
}

/// Decode one pointer token (`~1` is `/`, `~0` is `~`).
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Split `/a/b/c` into the parent pointer's tokens and the last token.
fn split(path: &str) -> Result<(Vec<String>, String), String> {
    if path.is_empty() {
        return Err("the root of the document cannot be added to or removed".to_string());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("invalid JSON pointer: {path}"));
    };
    let mut tokens: Vec<String> = rest.split('/').map(unescape).collect();
    let last = tokens.pop().unwrap_or_default();
    Ok((tokens, last))
}

/// An array index token: digits without leading zeros.
fn array_index(token: &str) -> Option<usize> {
    if token.is_empty() || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    if !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

fn walk<'a>(mut v: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    for t in tokens {
        v = match v {
            Value::Object(m) => m.get(t)?,
            Value::Array(a) => a.get(array_index(t)?)?,
            _ => return None,
        };
    }
    Some(v)
}

fn walk_mut<'a>(mut v: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    for t in tokens {
        v = match v {
            Value::Object(m) => m.get_mut(t)?,
            Value::Array(a) => {
                let i = array_index(t)?;
                a.get_mut(i)?
            }
            _ => return None,
        };
    }
    Some(v)
}

fn get<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(doc);
    }
    let tokens: Vec<String> = path.strip_prefix('/')?.split('/').map(unescape).collect();
    walk(doc, &tokens)
}

fn get_mut<'a>(doc: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    if path.is_empty() {
        return Some(doc);
    }
    let tokens: Vec<String> = path.strip_prefix('/')?.split('/').map(unescape).collect();
    walk_mut(doc, &tokens)
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split(path)?;
    let missing =
        || format!("add operation does not apply: doc is missing path: \"{path}\": missing value");
    match walk_mut(doc, &parent).ok_or_else(missing)? {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            let i = if last == "-" {
                a.len()
            } else {
                array_index(&last)
                    .filter(|i| *i <= a.len())
                    .ok_or_else(|| {
                        format!("Unable to access invalid index: {last}: invalid index referenced")
                    })?
            };
            a.insert(i, value);
            Ok(())
        }
        _ => Err(missing()),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split(path)?;
    let missing = || format!("Unable to remove nonexistent key: {last}: missing value");
    match walk_mut(doc, &parent) {
        Some(Value::Object(m)) => m.remove(&last).ok_or_else(missing),
        Some(Value::Array(a)) => match array_index(&last).filter(|i| *i < a.len()) {
            Some(i) => Ok(a.remove(i)),
            None => Err(format!(
                "Unable to access invalid index: {last}: invalid index referenced"
            )),
        },
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn all_operations() {
        let doc = json!({"metadata": {"labels": {"a/b": "1"}}, "spec": {"ports": [{"port": 80}]}});
        let patch = json!([
            {"op": "add", "path": "/spec/ports/-", "value": {"port": 443}},
            {"op": "add", "path": "/spec/ports/0", "value": {"port": 8080}},
            {"op": "replace", "path": "/metadata/labels/a~1b", "value": "2"},
            {"op": "test", "path": "/spec/ports/1/port", "value": 80},
            {"op": "copy", "from": "/spec/ports/2", "path": "/spec/tls"},
            {"op": "move", "from": "/spec/tls", "path": "/metadata/tls"},
            {"op": "remove", "path": "/spec/ports/1"}
        ]);
        assert_eq!(
            json_patch(&doc, &patch).unwrap(),
            json!({"metadata": {"labels": {"a/b": "2"}, "tls": {"port": 443}},
                   "spec": {"ports": [{"port": 8080}, {"port": 443}]}})
        );
    }

    #[test]
    fn failures() {
        let doc = json!({"spec": {"replicas": 1}});
        let test = json!([{"op": "test", "path": "/spec/replicas", "value": 2}]);
        assert_eq!(
            json_patch(&doc, &test).unwrap_err(),
            "testing value /spec/replicas failed: test failed"
        );
        let rm = json!([{"op": "remove", "path": "/spec/foo"}]);
        assert!(json_patch(&doc, &rm).is_err());
        let replace = json!([{"op": "replace", "path": "/spec/foo", "value": 1}]);
        assert!(json_patch(&doc, &replace).is_err());
        let add = json!([{"op": "add", "path": "/status/x", "value": 1}]);
        assert!(json_patch(&doc, &add).is_err());
        let bad = json!([{"op": "frob", "path": "/spec"}]);
        assert_eq!(json_patch(&doc, &bad).unwrap_err(), "Unexpected kind: frob");
        assert!(json_patch(&doc, &json!({"op": "add"})).is_err());
    }
}
