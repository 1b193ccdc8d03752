//! JSON merge patch (RFC 7386, `application/merge-patch+json`): objects
//! merge key by key, `null` deletes, anything else replaces.

use serde_json::{Map, Value};

/// Apply a merge patch. The patch must be a JSON object, as Kubernetes
/// requires for an object's patch.
pub fn merge_patch(original: &Value, patch: &Value) -> Result<Value, String> {
    if !patch.is_object() {
        return Err("Invalid JSON Patch".to_string());
    }
    Ok(merge_value(original, patch))
}

fn merge_value(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch) = patch else {
        return patch.clone();
    };
    let mut out = match target {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    for (k, v) in patch {
        if v.is_null() {
            out.remove(k);
        } else {
            let merged = merge_value(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7386_examples() {
        // The test cases of RFC 7386, appendix A.
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (orig, patch, want) in cases {
            assert_eq!(
                merge_patch(&orig, &patch).unwrap(),
                want,
                "{orig} + {patch}"
            );
        }
    }

    #[test]
    fn non_object_patch_is_rejected() {
        assert_eq!(
            merge_patch(&json!({}), &json!([1])).unwrap_err(),
            "Invalid JSON Patch"
        );
    }
}
