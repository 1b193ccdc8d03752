//! Reading `-f FILE|DIR|-` the way kubectl's resource builder does:
//! documents split on `---` lines, YAML or JSON, `kind: List` flattened, and
//! kubectl's messages for what cannot be read.

use crate::error::CtlError;
use serde_json::{Map, Value};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One object read from a manifest, with the name kubectl uses for its
/// source in messages (`web-svc.yaml`, `STDIN`).
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub source: String,
    pub object: Value,
}

/// Extensions kubectl reads from a directory.
const MANIFEST_EXTENSIONS: &[&str] = &["json", "yaml", "yml"];

/// Read every `-f` argument. Objects that could be read are returned even
/// when others failed, as kubectl applies what it can and reports the rest.
pub fn read_all(paths: &[String], recursive: bool) -> (Vec<Manifest>, Vec<CtlError>) {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        let sources = if p == "-" {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => vec![("STDIN".to_string(), text)],
                Err(e) => {
                    errors.push(CtlError::msg(format!("reading STDIN: {e}")));
                    continue;
                }
            }
        } else {
            match read_path(Path::new(p), recursive) {
                Ok(files) => files,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            }
        };
        for (source, text) in sources {
            match parse_stream(&source, &text) {
                Ok(mut objs) => objects.append(&mut objs),
                Err(e) => errors.push(e),
            }
        }
    }
    (objects, errors)
}

/// The files of a path: the file itself, or a directory's manifest files in
/// name order (descending into subdirectories with `recursive`).
fn read_path(path: &Path, recursive: bool) -> Result<Vec<(String, String)>, CtlError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path)
        .map_err(|_| CtlError::msg(format!("the path \"{shown}\" does not exist")))?;
    if meta.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CtlError::msg(format!("error reading \"{shown}\": {e}")))?;
        return Ok(vec![(shown, text)]);
    }
    let mut files = Vec::new();
    collect_dir(path, recursive, &mut files)
        .map_err(|e| CtlError::msg(format!("error reading \"{shown}\": {e}")))?;
    let mut out = Vec::new();
    for f in files {
        let shown = f.display().to_string();
        let text = std::fs::read_to_string(&f)
            .map_err(|e| CtlError::msg(format!("error reading \"{shown}\": {e}")))?;
        out.push((shown, text));
    }
    Ok(out)
}

fn collect_dir(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            if recursive {
                collect_dir(&e, recursive, out)?;
            }
        } else if e
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| MANIFEST_EXTENSIONS.contains(&x))
        {
            out.push(e);
        }
    }
    Ok(())
}

/// Parse one file or stdin: a JSON stream when it starts with `{`, else
/// YAML documents separated by `---` lines.
pub fn parse_stream(source: &str, text: &str) -> Result<Vec<Manifest>, CtlError> {
    let mut values = Vec::new();
    if text.trim_start().starts_with('{') {
        let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        for v in stream {
            let v = v.map_err(|e| CtlError::msg(format!("error parsing {source}: {e}")))?;
            values.push(v);
        }
    } else {
        for doc in split_yaml_documents(text) {
            let v = yaml_to_json(&doc)
                .map_err(|e| CtlError::msg(format!("error parsing {source}: {e}")))?;
            values.push(v);
        }
    }
    let mut out = Vec::new();
    for v in values {
        if v.is_null() {
            continue; // empty document
        }
        flatten(source, v, &mut out)?;
    }
    Ok(out)
}

/// Split on lines that are `---`, optionally followed by spaces or a
/// comment (kubectl's YAMLReader). Documents with only blank lines and
/// comments are dropped.
pub fn split_yaml_documents(text: &str) -> Vec<String> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    for line in text.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            if rest.is_empty() || rest.starts_with('#') {
                docs.push(std::mem::take(&mut cur));
                continue;
            }
        }
        cur.push_str(line);
    }
    docs.push(cur);
    docs.into_iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

/// A YAML document as JSON, with go-yaml's wording of syntax errors
/// (`error converting YAML to JSON: yaml: line 4: did not find expected key`).
pub fn yaml_to_json(doc: &str) -> Result<Value, String> {
    let mut v: serde_yaml::Value = serde_yaml::from_str(doc)
        .map_err(|e| format!("error converting YAML to JSON: {}", go_yaml_message(&e)))?;
    v.apply_merge()
        .map_err(|e| format!("error converting YAML to JSON: yaml: {e}"))?;
    Ok(yaml_value_to_json(v))
}

/// Problems libyaml's parser (not its scanner) reports; go-yaml prints
/// their line numbers zero-based.
const PARSER_PROBLEMS: &[&str] = &[
    "did not find expected key",
    "did not find expected '-' indicator",
    "did not find expected ',' or ']'",
    "did not find expected ',' or '}'",
    "did not find expected node content",
    "did not find expected <document start>",
    "found duplicate %YAML directive",
    "found incompatible YAML document",
    "found duplicate %TAG directive",
    "found undefined tag handle",
];

/// Reword a serde_yaml error as go-yaml's `yaml: line N: problem`.
fn go_yaml_message(e: &serde_yaml::Error) -> String {
    let full = e.to_string();
    // serde_yaml: "<problem> at line L column C[, while <context> at line L2 column C2]"
    let problem = full.split(" at line ").next().unwrap_or(&full).to_string();
    let problem = problem
        .split(", while ")
        .next()
        .unwrap_or(&problem)
        .to_string();
    let is_parser = PARSER_PROBLEMS.contains(&problem.as_str());
    let problem_line0 = e
        .location()
        .map(|l| l.line().saturating_sub(1))
        .unwrap_or(0);
    let context_line0 = full
        .split_once(", while ")
        .and_then(|(_, ctx)| ctx.split_once(" at line "))
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .map(|n| n.saturating_sub(1))
        .unwrap_or(0);
    // go-yaml's parser.fail(): scanner errors count lines from one, parser
    // errors from zero, and line 0 is not printed at all.
    let line = if problem_line0 != 0 {
        if is_parser {
            problem_line0
        } else {
            problem_line0 + 1
        }
    } else {
        context_line0
    };
    if line != 0 {
        format!("yaml: line {line}: {problem}")
    } else {
        format!("yaml: {problem}")
    }
}

fn yaml_value_to_json(v: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_value_to_json).collect()),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                // JSON keys are strings; go-yaml's conversion prints others.
                let key = match k {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    Y::Null => "null".to_string(),
                    other => serde_yaml::to_string(&other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                out.insert(key, yaml_value_to_json(v));
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_value_to_json(t.value),
    }
}

/// Check an object's type fields as kubectl's validation does, and expand
/// `kind: List` (and `*List` with items) into its items.
fn flatten(source: &str, v: Value, out: &mut Vec<Manifest>) -> Result<(), CtlError> {
    let Value::Object(map) = &v else {
        return Err(CtlError::msg(format!(
            "unable to decode \"{source}\": json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            go_type_name(&v)
        )));
    };
    let mut problems = Vec::new();
    match map.get("apiVersion") {
        None | Some(Value::Null) => problems.push("apiVersion not set"),
        Some(Value::String(_)) => {}
        Some(_) => problems.push("apiVersion isn't string type"),
    }
    match map.get("kind") {
        None | Some(Value::Null) => problems.push("kind not set"),
        Some(Value::String(_)) => {}
        Some(_) => problems.push("kind isn't string type"),
    }
    if !problems.is_empty() {
        let what = if problems.len() == 1 {
            problems[0].to_string()
        } else {
            format!("[{}]", problems.join(", "))
        };
        return Err(CtlError::msg(format!(
            "error validating \"{source}\": error validating data: {what}; if you choose to ignore these errors, turn validation off with --validate=false"
        )));
    }
    let kind = map["kind"].as_str().unwrap_or_default();
    if kind.ends_with("List") {
        if let Some(Value::Array(items)) = map.get("items") {
            for item in items.clone() {
                flatten(source, item, out)?;
            }
            return Ok(());
        }
    }
    out.push(Manifest {
        source: source.to_string(),
        object: v,
    });
    Ok(())
}

fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Array(_) => "array",
        _ => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_on_separator_lines() {
        let text = "a: 1\n---\nb: 2\n--- # comment\n\n# only a comment\n---\nc: 3\n---x: 4\n";
        let docs = split_yaml_documents(text);
        assert_eq!(docs, vec!["a: 1\n", "b: 2\n", "c: 3\n---x: 4\n"]);
    }

    #[test]
    fn reads_yaml_documents_and_lists() {
        let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n---\n\
                    apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: web}\n";
        let objs = parse_stream("f.yaml", text).unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0].object["kind"], "Service");
        assert_eq!(objs[1].object["metadata"]["name"], "web");
        assert_eq!(objs[1].source, "f.yaml");
    }

    #[test]
    fn reads_a_json_stream() {
        let text = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"}}
                      {"apiVersion":"v1","kind":"Service","metadata":{"name":"b"}}"#;
        let objs = parse_stream("f.json", text).unwrap();
        assert_eq!(objs[1].object["metadata"]["name"], "b");
    }

    #[test]
    fn yaml_errors_read_like_go_yaml() {
        let bad = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n spec: x\n";
        let err = parse_stream("bad.yaml", bad).unwrap_err();
        assert_eq!(
            err.render(),
            "error: error parsing bad.yaml: error converting YAML to JSON: yaml: line 4: did not find expected key"
        );
        let err = parse_stream("bad3.yaml", "a: b: c\n").unwrap_err();
        assert_eq!(
            err.render(),
            "error: error parsing bad3.yaml: error converting YAML to JSON: yaml: mapping values are not allowed in this context"
        );
        let err = parse_stream("t.yaml", "a:\n\tb: 1\n").unwrap_err();
        assert_eq!(
            err.render(),
            "error: error parsing t.yaml: error converting YAML to JSON: yaml: line 2: found character that cannot start any token"
        );
    }

    #[test]
    fn missing_type_fields_fail_validation() {
        let err = parse_stream("STDIN", "kind: Service\n").unwrap_err();
        assert_eq!(
            err.render(),
            "error: error validating \"STDIN\": error validating data: apiVersion not set; if you choose to ignore these errors, turn validation off with --validate=false"
        );
        let err = parse_stream("STDIN", "metadata: {}\n").unwrap_err();
        assert!(err.render().contains("[apiVersion not set, kind not set]"));
    }

    #[test]
    fn yaml_numbers_and_keys_become_json() {
        let v = yaml_to_json("port: 80\nratio: 0.5\n1: one\nname: '80'\n").unwrap();
        assert_eq!(v["port"], 80);
        assert_eq!(v["ratio"], 0.5);
        assert_eq!(v["1"], "one");
        assert_eq!(v["name"], "80");
    }
}
