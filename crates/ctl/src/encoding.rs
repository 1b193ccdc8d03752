//! Objects as kubectl writes them: Go's `encoding/json` (map keys sorted,
//! `<`, `>`, `&` escaped) for `-o json` and the last-applied annotation, and
//! YAML with sorted keys for `-o yaml`.

use serde_json::{Map, Value};

/// A copy of `v` with every object's keys in sorted order (what Go's maps
/// give when marshalled).
pub fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Go's HTML-safe escaping. These characters only occur inside JSON
/// strings, so replacing them in the encoded text is exact.
fn go_escape(json: String) -> String {
    if !json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return json;
    }
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Compact JSON as Go's `json.Marshal` writes it.
pub fn to_go_json(v: &Value) -> String {
    go_escape(serde_json::to_string(&sorted(v)).expect("a Value always serializes"))
}

/// `kubectl -o json`: four-space indentation, trailing newline.
pub fn to_json_output(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(&sorted(v), &mut ser).expect("a Value always serializes");
    let mut s = go_escape(String::from_utf8(buf).expect("serde_json writes UTF-8"));
    s.push('\n');
    s
}

/// `kubectl -o yaml`: go-yaml's layout and quoting.
pub fn to_yaml_output(v: &Value) -> String {
    crate::go_yaml::to_go_yaml(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_json_sorts_keys_and_escapes_html() {
        let v = json!({"spec": {"b": 1, "a": "<x&y>"}, "kind": "Service"});
        assert_eq!(
            to_go_json(&v),
            r#"{"kind":"Service","spec":{"a":"\u003cx\u0026y\u003e","b":1}}"#
        );
    }

    #[test]
    fn json_output_uses_four_spaces() {
        assert_eq!(
            to_json_output(&json!({"b": [1], "a": {}})),
            "{\n    \"a\": {},\n    \"b\": [\n        1\n    ]\n}\n"
        );
    }

    #[test]
    fn yaml_output_sorts_keys() {
        assert_eq!(
            to_yaml_output(&json!({"kind": "List", "apiVersion": "v1"})),
            "apiVersion: v1\nkind: List\n"
        );
    }
}
