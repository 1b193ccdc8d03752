//! Kubernetes `Status` errors: every failure the API reports travels as one
//! of these, with the code, reason and message a real API server would use,
//! because kubectl (and users' scripts) match on them.

use serde_json::{json, Map, Value};

use crate::field_error::FieldError;
use crate::registry::ResourceInfo;

/// What kubectl prints after "Error from server (<reason>): ".
pub const CONFLICT_MODIFIED: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// A failed API call as a `kind: Status` body describes it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct StatusError {
    /// HTTP status code, also the body's `code`.
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `Invalid`, ...).
    pub reason: String,
    pub message: String,
    pub details: Option<StatusDetails>,
}

/// `status.details`: which object failed and, for `Invalid`, why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusDetails {
    pub name: String,
    pub group: String,
    /// The resource (`services`) for most errors, the kind (`Service`) for
    /// `Invalid`, as Kubernetes does.
    pub kind: String,
    pub causes: Vec<StatusCause>,
}

/// One cause of a failure (a field error of an `Invalid` object).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusCause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

impl StatusError {
    fn new(code: u16, reason: &str, message: String, details: Option<StatusDetails>) -> Self {
        StatusError {
            code,
            reason: reason.to_string(),
            message,
            details,
        }
    }

    fn resource_details(res: &ResourceInfo, name: &str) -> Option<StatusDetails> {
        Some(StatusDetails {
            name: name.to_string(),
            group: res.group.to_string(),
            kind: res.plural.to_string(),
            causes: Vec::new(),
        })
    }

    /// 404 `services "web" not found` (`deployments.apps "web" not found`).
    pub fn not_found(res: &ResourceInfo, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} {} not found", res.group_resource(), quote(name)),
            Self::resource_details(res, name),
        )
    }

    /// 409 `services "web" already exists`.
    pub fn already_exists(res: &ResourceInfo, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} {} already exists", res.group_resource(), quote(name)),
            Self::resource_details(res, name),
        )
    }

    /// 409 for a write with a stale resourceVersion.
    pub fn conflict(res: &ResourceInfo, name: &str) -> Self {
        Self::conflict_because(res, name, CONFLICT_MODIFIED)
    }

    /// 409 `Operation cannot be fulfilled on services "web": <why>`, for
    /// conflicts other than a stale resourceVersion (e.g. a UID precondition).
    pub fn conflict_because(res: &ResourceInfo, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {}: {why}",
                res.group_resource(),
                quote(name)
            ),
            Self::resource_details(res, name),
        )
    }

    /// 422 `Service "web" is invalid: <field errors>`; each field error is
    /// also a cause, so kubectl can print them as bullets.
    pub fn invalid(res: &ResourceInfo, name: &str, errors: &[FieldError]) -> Self {
        let qualified_kind = if res.group.is_empty() {
            res.kind.to_string()
        } else {
            format!("{}.{}", res.kind, res.group)
        };
        let messages: Vec<String> = errors.iter().map(FieldError::message).collect();
        let message = if messages.is_empty() {
            format!("{qualified_kind} {} is invalid", quote(name))
        } else {
            format!(
                "{qualified_kind} {} is invalid: {}",
                quote(name),
                aggregate_messages(&messages)
            )
        };
        let causes = errors
            .iter()
            .map(|e| StatusCause {
                reason: e.reason().to_string(),
                message: e.cause_message(),
                field: e.field.clone(),
            })
            .collect();
        Self::new(
            422,
            "Invalid",
            message,
            Some(StatusDetails {
                name: name.to_string(),
                group: res.group.to_string(),
                kind: res.kind.to_string(),
                causes,
            }),
        )
    }

    /// 400 with the message as given (malformed body, bad selector, ...).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into(), None)
    }

    /// 410 Expired: a watch or list from a resourceVersion that is gone.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message.into(), None)
    }

    /// The 410 a watch from a compacted revision gets:
    /// `too old resource version: 5 (10)`.
    pub fn too_old_resource_version(requested: u64, oldest: u64) -> Self {
        Self::expired(format!("too old resource version: {requested} ({oldest})"))
    }

    /// 410 Gone.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Gone", message.into(), None)
    }

    /// 405 `<verb> is not supported on resources of kind "services"`.
    pub fn method_not_supported(res: &ResourceInfo, verb: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!(
                "{verb} is not supported on resources of kind {}",
                quote(&res.group_resource())
            ),
            Some(StatusDetails {
                group: res.group.to_string(),
                kind: res.plural.to_string(),
                ..Default::default()
            }),
        )
    }

    /// 415 for a request body type the API does not read.
    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
            None,
        )
    }

    /// 413 `Request entity too large: <message>`.
    pub fn request_entity_too_large(message: &str) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: {message}"),
            None,
        )
    }

    /// 406 when no acceptable response type can be produced.
    pub fn not_acceptable(accepted: &[&str]) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!(
                "only the following media types are accepted: {}",
                accepted.join(", ")
            ),
            None,
        )
    }

    /// 403 `services "web" is forbidden: <why>` (e.g. creating in a
    /// namespace that is being deleted).
    pub fn forbidden(res: &ResourceInfo, name: &str, why: &str) -> Self {
        let message = if name.is_empty() {
            format!("{} is forbidden: {why}", res.group_resource())
        } else {
            format!(
                "{} {} is forbidden: {why}",
                res.group_resource(),
                quote(name)
            )
        };
        Self::new(403, "Forbidden", message, Self::resource_details(res, name))
    }

    /// 504 `Timeout: <message>`.
    pub fn timeout(message: &str) -> Self {
        Self::new(504, "Timeout", format!("Timeout: {message}"), None)
    }

    /// 503 with the message as given.
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message.into(), None)
    }

    /// 500 `Internal error occurred: <message>`.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        let message = message.to_string();
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
            Some(StatusDetails {
                causes: vec![StatusCause {
                    message,
                    ..Default::default()
                }],
                ..Default::default()
            }),
        )
    }

    pub fn is_not_found(&self) -> bool {
        self.reason == "NotFound" || (self.code == 404 && !is_known_reason(&self.reason))
    }

    pub fn is_conflict(&self) -> bool {
        self.reason == "Conflict" || (self.code == 409 && !is_known_reason(&self.reason))
    }

    pub fn is_already_exists(&self) -> bool {
        self.reason == "AlreadyExists"
    }

    /// The `kind: Status` body, field order as Kubernetes writes it.
    pub fn to_json(&self) -> Value {
        let mut body = Map::new();
        body.insert("kind".into(), json!("Status"));
        body.insert("apiVersion".into(), json!("v1"));
        body.insert("metadata".into(), json!({}));
        body.insert("status".into(), json!("Failure"));
        if !self.message.is_empty() {
            body.insert("message".into(), json!(self.message));
        }
        if !self.reason.is_empty() {
            body.insert("reason".into(), json!(self.reason));
        }
        if let Some(d) = &self.details {
            body.insert("details".into(), d.to_json());
        }
        body.insert("code".into(), json!(self.code));
        Value::Object(body)
    }

    /// Read a `kind: Status` failure body; `None` for anything else.
    pub fn from_json(v: &Value) -> Option<StatusError> {
        if v.get("kind").and_then(Value::as_str) != Some("Status") {
            return None;
        }
        if v.get("status").and_then(Value::as_str) == Some("Success") {
            return None;
        }
        let text = |o: &Value, k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let code = v.get("code").and_then(Value::as_u64).unwrap_or(500) as u16;
        let details = v
            .get("details")
            .filter(|d| d.is_object())
            .map(|d| StatusDetails {
                name: text(d, "name"),
                group: text(d, "group"),
                kind: text(d, "kind"),
                causes: d
                    .get("causes")
                    .and_then(Value::as_array)
                    .map(|cs| {
                        cs.iter()
                            .map(|c| StatusCause {
                                reason: text(c, "reason"),
                                message: text(c, "message"),
                                field: text(c, "field"),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        Some(StatusError {
            code,
            reason: text(v, "reason"),
            message: text(v, "message"),
            details,
        })
    }
}

impl StatusDetails {
    /// Empty fields are left out, as Kubernetes' `omitempty` does.
    pub fn to_json(&self) -> Value {
        let mut d = Map::new();
        for (k, v) in [
            ("name", &self.name),
            ("group", &self.group),
            ("kind", &self.kind),
        ] {
            if !v.is_empty() {
                d.insert(k.into(), json!(v));
            }
        }
        if !self.causes.is_empty() {
            let causes = self
                .causes
                .iter()
                .map(|c| {
                    let mut m = Map::new();
                    for (k, v) in [
                        ("reason", &c.reason),
                        ("message", &c.message),
                        ("field", &c.field),
                    ] {
                        if !v.is_empty() {
                            m.insert(k.into(), json!(v));
                        }
                    }
                    Value::Object(m)
                })
                .collect();
            d.insert("causes".into(), Value::Array(causes));
        }
        Value::Object(d)
    }
}

/// `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success"}`,
/// e.g. the answer to a collection delete.
pub fn success_status() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
}

/// Joins several messages the way Kubernetes' error aggregate prints them:
/// duplicates dropped, one message as is, several as `[a, b]`.
pub fn aggregate_messages(messages: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for m in messages {
        if !seen.contains(&m.as_str()) {
            seen.push(m);
        }
    }
    match seen.len() {
        0 => String::new(),
        1 => seen[0].to_string(),
        _ => format!("[{}]", seen.join(", ")),
    }
}

/// Go's `%q` for the plain names and values that appear in messages.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Reasons Kubernetes' client helpers recognise; a 404/409 with another
/// reason still counts as NotFound/Conflict.
fn is_known_reason(reason: &str) -> bool {
    matches!(
        reason,
        "Unauthorized"
            | "Forbidden"
            | "NotFound"
            | "AlreadyExists"
            | "Conflict"
            | "Gone"
            | "Invalid"
            | "ServerTimeout"
            | "StoreReadError"
            | "Timeout"
            | "TooManyRequests"
            | "BadRequest"
            | "MethodNotAllowed"
            | "NotAcceptable"
            | "RequestEntityTooLarge"
            | "UnsupportedMediaType"
            | "InternalError"
            | "Expired"
            | "ServiceUnavailable"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_error::FieldErrorType;
    use crate::registry::{DEPLOYMENTS, SERVICES};

    fn node_port_error(field: &str, port: i64) -> FieldError {
        FieldError {
            field: field.into(),
            error_type: FieldErrorType::Invalid,
            value: Some(json!(port)),
            detail:
                "provided port is not in the valid range. The range of valid ports is 30000-32767"
                    .into(),
        }
    }

    #[test]
    fn not_found_is_group_qualified() {
        let e = StatusError::not_found(&SERVICES, "web");
        assert_eq!(e.to_string(), "services \"web\" not found");
        assert_eq!(
            e.to_json(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                   "message":"services \"web\" not found","reason":"NotFound",
                   "details":{"name":"web","kind":"services"},"code":404})
        );
        let d = StatusError::not_found(&DEPLOYMENTS, "web");
        assert_eq!(d.message, "deployments.apps \"web\" not found");
        assert_eq!(d.details.unwrap().group, "apps");
    }

    #[test]
    fn conflict_and_already_exists_messages() {
        let c = StatusError::conflict(&SERVICES, "web");
        assert_eq!(c.code, 409);
        assert_eq!(
            c.message,
            "Operation cannot be fulfilled on services \"web\": the object has been modified; please apply your changes to the latest version and try again"
        );
        assert!(c.is_conflict());
        let a = StatusError::already_exists(&SERVICES, "web");
        assert_eq!(a.message, "services \"web\" already exists");
        assert!(a.is_already_exists() && !a.is_conflict());
    }

    #[test]
    fn invalid_with_one_and_several_errors() {
        let one = StatusError::invalid(
            &SERVICES,
            "web",
            &[node_port_error("spec.ports[0].nodePort", 80)],
        );
        assert_eq!(one.code, 422);
        assert_eq!(
            one.message,
            "Service \"web\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
        );
        let body = one.to_json();
        assert_eq!(body["details"]["kind"], "Service");
        assert_eq!(body["details"]["causes"][0]["reason"], "FieldValueInvalid");
        assert_eq!(
            body["details"]["causes"][0]["field"],
            "spec.ports[0].nodePort"
        );
        assert_eq!(
            body["details"]["causes"][0]["message"],
            "Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
        );

        let e0 = node_port_error("spec.ports[0].nodePort", 80);
        let e1 = node_port_error("spec.ports[1].nodePort", 81);
        let several =
            StatusError::invalid(&DEPLOYMENTS, "web", &[e0.clone(), e1.clone(), e0.clone()]);
        assert_eq!(
            several.message,
            format!(
                "Deployment.apps \"web\" is invalid: [{}, {}]",
                e0.message(),
                e1.message()
            )
        );
        // Causes keep every error, even the duplicate, like Kubernetes.
        assert_eq!(several.details.unwrap().causes.len(), 3);
    }

    #[test]
    fn json_round_trip() {
        let e = StatusError::invalid(
            &SERVICES,
            "web",
            &[node_port_error("spec.ports[0].nodePort", 80)],
        );
        assert_eq!(StatusError::from_json(&e.to_json()), Some(e));
        let i = StatusError::internal("disk on fire");
        assert_eq!(i.message, "Internal error occurred: disk on fire");
        assert_eq!(StatusError::from_json(&i.to_json()), Some(i));
        assert_eq!(StatusError::from_json(&success_status()), None);
        assert_eq!(StatusError::from_json(&json!({"kind": "Service"})), None);
    }

    #[test]
    fn other_constructors() {
        assert_eq!(
            StatusError::bad_request("x").to_json()["reason"],
            "BadRequest"
        );
        let e = StatusError::too_old_resource_version(5, 10);
        assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
        assert_eq!(e.message, "too old resource version: 5 (10)");
        let m = StatusError::method_not_supported(&SERVICES, "deletecollection");
        assert_eq!(m.code, 405);
        assert_eq!(
            m.message,
            "deletecollection is not supported on resources of kind \"services\""
        );
        let u = StatusError::unsupported_media_type(&["application/json", "application/yaml"]);
        assert_eq!(u.code, 415);
        assert_eq!(
            u.message,
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml"
        );
        assert_eq!(
            StatusError::request_entity_too_large("limit is 3145728").code,
            413
        );
        assert_eq!(StatusError::not_acceptable(&["application/json"]).code, 406);
        assert_eq!(StatusError::gone("x").reason, "Gone");
    }

    #[test]
    fn aggregate_dedupes() {
        let m = |s: &str| s.to_string();
        assert_eq!(aggregate_messages(&[m("a")]), "a");
        assert_eq!(aggregate_messages(&[m("a"), m("a")]), "a");
        assert_eq!(aggregate_messages(&[m("a"), m("b"), m("a")]), "[a, b]");
    }
}
