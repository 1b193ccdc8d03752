//! What Kubernetes' decoding does to a written object: fields the kind does
//! not have are reported (`fieldValidation`) and dropped, and values of the
//! wrong type are refused, so every stored object reads back as its
//! k8s-openapi type in the components that use typed objects.

use crate::error::ApiError;
use crate::query::Query;
use api::registry::ResourceInfo;
use api::status::StatusError;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Event, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// `fieldValidation` of a write: what to do with fields the kind does not
/// have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    /// Kubernetes' default: a `Warning` header per unknown field.
    Warn,
    /// 400 `strict decoding error: unknown field "spec.foo"`.
    Strict,
}

impl FieldValidation {
    pub fn from_query(query: &Query) -> Result<Self, ApiError> {
        match query.non_empty("fieldValidation") {
            None | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(StatusError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}; use one of Ignore, Warn, Strict"
            ))
            .into()),
        }
    }
}

/// Decode `obj` as Kubernetes would: unknown fields fail (Strict) or become
/// warnings (Warn) and are dropped either way; a value of the wrong type
/// is a 400. Returns the warnings.
pub fn decode(
    res: &ResourceInfo,
    obj: &mut Value,
    mode: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let unknown = api::strict::unknown_fields(res.kind, obj);
    if !unknown.is_empty() && mode == FieldValidation::Strict {
        return Err(StatusError::bad_request(api::strict::strict_error_message(&unknown)).into());
    }
    for path in &unknown {
        prune(obj, path);
    }
    check_types(res, obj)?;
    Ok(match mode {
        FieldValidation::Warn => unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect(),
        _ => Vec::new(),
    })
}

/// The strict check of a POST or PUT body. Kubernetes decodes those bodies
/// with its codec and wraps the codec's error
/// (`Service in version "v1" cannot be handled as a Service: strict
/// decoding error: ...`), while a patched object is reported bare by
/// `decode`; kubectl shows the message as it comes.
pub fn check_request_body(
    res: &ResourceInfo,
    obj: &Value,
    mode: FieldValidation,
) -> Result<(), ApiError> {
    if mode != FieldValidation::Strict {
        return Ok(());
    }
    let unknown = api::strict::unknown_fields(res.kind, obj);
    if unknown.is_empty() {
        return Ok(());
    }
    Err(StatusError::bad_request(format!(
        "{kind} in version {version:?} cannot be handled as a {kind}: {}",
        api::strict::strict_error_message(&unknown),
        kind = res.kind,
        version = res.version,
    ))
    .into())
}

/// One step of a field path: a key, or an index into a list.
#[derive(Debug, PartialEq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `spec.ports[0].bar` -> Key(spec), Key(ports), Index(0), Key(bar).
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some(end) = rest.find(']') {
            if let Ok(i) = rest[1..end].parse() {
                out.push(Step::Index(i));
            }
            rest = &rest[end + 1..];
        }
    }
    out
}

/// Remove the field at `path` (as `api::strict` writes paths).
fn prune(obj: &mut Value, path: &str) {
    let steps = steps(path);
    let Some((last, parents)) = steps.split_last() else {
        return;
    };
    let mut cur = obj;
    for step in parents {
        let next = match step {
            Step::Key(k) => cur.get_mut(*k),
            Step::Index(i) => cur.get_mut(*i),
        };
        match next {
            Some(v) => cur = v,
            None => return,
        }
    }
    if let (Step::Key(k), Some(map)) = (last, cur.as_object_mut()) {
        map.remove(*k);
    }
}

/// 400 when a field has a value of the wrong type (`port: "eighty"`).
/// Missing required fields are validation's to report, with field paths.
fn check_types(res: &ResourceInfo, obj: &Value) -> Result<(), ApiError> {
    let mut typed = obj.clone();
    typed["apiVersion"] = json!(res.api_version());
    typed["kind"] = json!(res.kind);
    let result = match (res.group, res.kind) {
        ("", "Service") => decodes::<Service>(typed),
        ("", "Pod") => decodes::<Pod>(typed),
        ("", "Endpoints") => decodes::<Endpoints>(typed),
        ("", "Namespace") => decodes::<Namespace>(typed),
        ("", "Node") => decodes::<Node>(typed),
        ("", "Event") => decodes::<Event>(typed),
        ("apps", "Deployment") => decodes::<Deployment>(typed),
        ("apps", "ReplicaSet") => decodes::<ReplicaSet>(typed),
        ("discovery.k8s.io", "EndpointSlice") => decodes::<EndpointSlice>(typed),
        _ => Ok(()),
    };
    result.map_err(|e| {
        StatusError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}",
            kind = res.kind,
            version = res.version
        ))
        .into()
    })
}

/// Only a value of the wrong type is an error here: a missing required
/// field is left to validation, and `null` reads as empty, as Go's
/// decoding reads it.
fn decodes<T: DeserializeOwned>(v: Value) -> Result<(), String> {
    match serde_json::from_value::<T>(v) {
        Ok(_) => Ok(()),
        Err(e) => {
            let text = e.to_string();
            if text.starts_with("missing field") || text.starts_with("invalid type: null") {
                Ok(())
            } else {
                Err(text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::registry::{PODS, SERVICES};

    #[test]
    fn paths_to_steps() {
        assert_eq!(
            steps("spec.ports[0].bar"),
            vec![
                Step::Key("spec"),
                Step::Key("ports"),
                Step::Index(0),
                Step::Key("bar")
            ]
        );
    }

    #[test]
    fn unknown_fields_are_dropped_and_warned() {
        let mut svc = json!({"metadata": {"name": "web"}, "spec": {"foo": 1, "ports": [{"port": 80, "bar": 2}]}});
        let warnings = decode(&SERVICES, &mut svc, FieldValidation::Warn).unwrap();
        assert_eq!(
            warnings,
            vec![
                "unknown field \"spec.foo\"",
                "unknown field \"spec.ports[0].bar\""
            ]
        );
        assert_eq!(
            svc,
            json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
        );
        let mut svc = json!({"spec": {"foo": 1}});
        let e = decode(&SERVICES, &mut svc, FieldValidation::Strict).unwrap_err();
        assert_eq!(
            e.to_status().message,
            "strict decoding error: unknown field \"spec.foo\""
        );
    }

    #[test]
    fn wrong_types_are_bad_requests() {
        let mut svc = json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": "eighty"}]}});
        let e = decode(&SERVICES, &mut svc, FieldValidation::Ignore).unwrap_err();
        let s = e.to_status();
        assert_eq!(s.code, 400);
        assert!(
            s.message
                .starts_with("Service in version \"v1\" cannot be handled as a Service: "),
            "{}",
            s.message
        );
        // Quantities may be numbers; nulls and missing fields are fine.
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "image": "nginx", "resources": {"limits": {"cpu": 1}}}
        ]}});
        assert!(decode(&PODS, &mut pod, FieldValidation::Strict).is_ok());
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": null}});
        assert!(decode(&PODS, &mut pod, FieldValidation::Strict).is_ok());
    }
}
