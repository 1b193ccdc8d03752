//! Field selectors (`?fieldSelector=metadata.name=web`): equality tests on
//! the few fields Kubernetes lets each kind be selected by.

use serde_json::Value;

use crate::status::StatusError;

/// `field=value` (or `field==value`) when `equal`, `field!=value` otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    pub field: String,
    pub value: String,
    pub equal: bool,
}

/// All terms must hold. Built for one kind, which decides the fields that
/// may be named and how their values are read from an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSelector {
    kind: String,
    terms: Vec<FieldTerm>,
}

/// The fields each kind can be selected by (besides the object's name and
/// namespace, which every kind offers unless listed otherwise).
fn kind_fields(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        "Event" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "metadata.namespace",
            "metadata.name",
        ],
        "Service" => &[
            "metadata.namespace",
            "metadata.name",
            "spec.clusterIP",
            "spec.type",
        ],
        "Node" => &["metadata.name", "spec.unschedulable"],
        "Namespace" => &["metadata.name", "status.phase"],
        "ReplicaSet" => &["metadata.name", "metadata.namespace", "status.replicas"],
        _ => return None,
    })
}

/// The fields `kind` can be selected by.
pub fn selectable_fields(kind: &str) -> &'static [&'static str] {
    kind_fields(kind).unwrap_or(&["metadata.name", "metadata.namespace"])
}

/// The value of a selectable field of `obj`, as Kubernetes renders it for
/// matching (booleans and numbers as text, a missing field as "").
pub fn field_value(kind: &str, obj: &Value, field: &str) -> String {
    let text = |p: &str| match obj.pointer(p) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    match (kind, field) {
        ("Pod", "spec.hostNetwork") => {
            let on = obj.pointer("/spec/hostNetwork").and_then(Value::as_bool);
            on.unwrap_or(false).to_string()
        }
        // The first of status.podIPs, which is what status.podIP mirrors.
        ("Pod", "status.podIP") => match obj.pointer("/status/podIPs/0/ip") {
            Some(Value::String(s)) => s.clone(),
            _ => text("/status/podIP"),
        },
        ("Node", "spec.unschedulable") => {
            let on = obj.pointer("/spec/unschedulable").and_then(Value::as_bool);
            on.unwrap_or(false).to_string()
        }
        ("ReplicaSet", "status.replicas") => obj
            .pointer("/status/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .to_string(),
        ("Event", "source") => text("/source/component"),
        ("Event", "reportingComponent") => text("/reportingComponent"),
        _ => {
            let pointer = format!("/{}", field.replace('.', "/"));
            text(&pointer)
        }
    }
}

impl FieldSelector {
    /// Parse `?fieldSelector=` for objects of `kind` (e.g. "Pod"). Syntax
    /// errors and fields the kind cannot be selected by are 400 BadRequest
    /// with Kubernetes' messages (`field label not supported: foo` for the
    /// kinds with their own fields, `"foo" is not a known field selector:
    /// only "metadata.name", "metadata.namespace"` for the others).
    pub fn parse(kind: &str, selector: &str) -> Result<Self, StatusError> {
        let mut terms = parse_terms(selector).map_err(StatusError::bad_request)?;
        let allowed = selectable_fields(kind);
        for t in &mut terms {
            // Old clients still send spec.host for a Pod's node.
            if kind == "Pod" && t.field == "spec.host" {
                t.field = "spec.nodeName".to_string();
            }
            if !allowed.contains(&t.field.as_str()) {
                let message = if kind_fields(kind).is_some() {
                    format!("field label not supported: {}", t.field)
                } else {
                    // Kinds without their own fields get the generic
                    // conversion's wording.
                    format!(
                        "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                        crate::status::quote(&t.field)
                    )
                };
                return Err(StatusError::bad_request(message));
            }
        }
        Ok(FieldSelector {
            kind: kind.to_string(),
            terms,
        })
    }

    /// A selector with no terms matches everything.
    pub fn everything(kind: &str) -> Self {
        FieldSelector {
            kind: kind.to_string(),
            terms: Vec::new(),
        }
    }

    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The value `field` must equal, when a term pins it
    /// (`metadata.name=web` lets a server look up one object).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.equal && t.field == field)
            .map(|t| t.value.as_str())
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|t| {
            let have = field_value(&self.kind, obj, &t.field);
            (have == t.value) == t.equal
        })
    }
}

/// Split on unescaped commas, then each term at its first operator; values
/// are unescaped (`\,`, `\=`, `\\`). Terms are sorted, as Kubernetes does.
fn parse_terms(selector: &str) -> Result<Vec<FieldTerm>, String> {
    let mut parts = split_terms(selector);
    parts.sort();
    let mut terms = Vec::new();
    for part in parts.iter().filter(|p| !p.is_empty()) {
        let Some((lhs, op, rhs)) = split_term(part) else {
            return Err(format!(
                "invalid selector: '{selector}'; can't understand '{part}'"
            ));
        };
        terms.push(FieldTerm {
            field: lhs.to_string(),
            value: unescape_value(rhs)?,
            equal: op != "!=",
        });
    }
    Ok(terms)
}

fn split_terms(selector: &str) -> Vec<String> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut current = String::new();
    let mut in_slash = false;
    for c in selector.chars() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(std::mem::take(&mut current));
            continue;
        }
        current.push(c);
    }
    terms.push(current);
    terms
}

/// The first `!=`, `==` or `=` splits a term (no escaping on the left).
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], op, value));
            }
        }
    }
    None
}

fn unescape_value(s: &str) -> Result<String, String> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::new();
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{c}"
                    ))
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            // Go prints the rune as its number here.
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ))
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}
