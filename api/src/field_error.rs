//! One field-level validation error, formatted the way Kubernetes formats
//! it (`spec.ports[0].nodePort: Invalid value: 80: provided port ...`), so
//! `Invalid` Status bodies read exactly like a real API server's.
//!
//! The rendering follows apimachinery's `field.Error.ErrorBody` of
//! Kubernetes 1.35: strings as Go's `%q`, numbers and booleans plainly, and
//! every other value (lists, maps, structs) as Go's `json.Marshal` prints it
//! (`["10.96.0.5"]`, `{"app":"web"}`).

use serde_json::Value;

/// What is wrong with a field; each maps to a Kubernetes `CauseType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorType {
    Invalid,
    Required,
    Duplicate,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    /// A reference to something that does not exist (a volume mount
    /// naming no volume).
    NotFound,
    /// Not the user's fault (e.g. the Service IP range is full).
    Internal,
}

/// A field-level error: the field's path, what is wrong, the offending
/// value (`None` when Kubernetes omits it) and a free-form detail.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub error_type: FieldErrorType,
    pub value: Option<Value>,
    pub detail: String,
}

impl FieldErrorType {
    /// The words Kubernetes prints for this type (`Invalid value`).
    pub fn text(&self) -> &'static str {
        match self {
            FieldErrorType::Invalid => "Invalid value",
            FieldErrorType::Required => "Required value",
            FieldErrorType::Duplicate => "Duplicate value",
            FieldErrorType::NotSupported => "Unsupported value",
            FieldErrorType::Forbidden => "Forbidden",
            FieldErrorType::TooLong => "Too long",
            FieldErrorType::TooMany => "Too many",
            FieldErrorType::NotFound => "Not found",
            FieldErrorType::Internal => "Internal error",
        }
    }
}

impl FieldError {
    fn new(
        field: impl Into<String>,
        error_type: FieldErrorType,
        value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            error_type,
            value,
            detail: detail.into(),
        }
    }

    /// `field.Invalid`: a malformed value.
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(field, FieldErrorType::Invalid, Some(value.into()), detail)
    }

    /// `field.Required`: a value that must be given (detail often empty).
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, FieldErrorType::Required, None, detail)
    }

    /// `field.Duplicate`: a value that must be unique.
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(field, FieldErrorType::Duplicate, Some(value.into()), "")
    }

    /// `field.NotSupported`: a value outside an enumeration; the detail
    /// lists the supported values, each quoted.
    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<Value>,
        valid: &[&str],
    ) -> Self {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(
            field,
            FieldErrorType::NotSupported,
            Some(value.into()),
            detail,
        )
    }

    /// `field.Forbidden`: a valid value that is not allowed here.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, FieldErrorType::Forbidden, None, detail)
    }

    /// `field.TooLong`: the value is never shown.
    pub fn too_long(field: impl Into<String>, max_bytes: usize) -> Self {
        let unit = if max_bytes == 1 { "byte" } else { "bytes" };
        Self::new(
            field,
            FieldErrorType::TooLong,
            None,
            format!("may not be more than {max_bytes} {unit}"),
        )
    }

    /// `field.TooMany`: a list with more than `max` items.
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        Self::new(
            field,
            FieldErrorType::TooMany,
            Some(Value::from(actual)),
            format!("must have at most {max} {unit}"),
        )
    }

    /// `field.NotFound`: the value refers to something missing.
    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(field, FieldErrorType::NotFound, Some(value.into()), "")
    }

    /// `field.InternalError`: something failed that the user did not cause.
    pub fn internal(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, FieldErrorType::Internal, None, detail)
    }

    /// `spec.ports[0].nodePort: Invalid value: 80: provided port is ...`
    pub fn message(&self) -> String {
        format!("{}: {}", self.field, self.cause_message())
    }

    /// The `reason` of a Status cause (`FieldValueInvalid`).
    pub fn reason(&self) -> &'static str {
        match self.error_type {
            FieldErrorType::Invalid => "FieldValueInvalid",
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Duplicate => "FieldValueDuplicate",
            FieldErrorType::NotSupported => "FieldValueNotSupported",
            FieldErrorType::Forbidden => "FieldValueForbidden",
            FieldErrorType::TooLong => "FieldValueTooLong",
            FieldErrorType::TooMany => "FieldValueTooMany",
            FieldErrorType::NotFound => "FieldValueNotFound",
            FieldErrorType::Internal => "InternalError",
        }
    }

    /// The message without the field prefix (`Invalid value: 80: ...`),
    /// what a Status cause carries (Kubernetes' `ErrorBody`).
    pub fn cause_message(&self) -> String {
        let mut s = self.error_type.text().to_string();
        // Only the types that name a value show it; Required, Forbidden,
        // TooLong and Internal never do, as in Kubernetes.
        let shows_value = matches!(
            self.error_type,
            FieldErrorType::Invalid
                | FieldErrorType::Duplicate
                | FieldErrorType::NotSupported
                | FieldErrorType::TooMany
                | FieldErrorType::NotFound
        );
        if shows_value {
            if let Some(v) = &self.value {
                s.push_str(": ");
                s.push_str(&format_value(v));
            }
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

/// A bad value as `ErrorBody` prints it: strings quoted (`%q`), numbers and
/// booleans plainly, anything else as Go's `json.Marshal`.
fn format_value(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => go_json(other),
    }
}

/// Go's `strconv.Quote`: printable characters stay, the rest are escaped.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x80 && (c.is_ascii_control()) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || c == '\u{feff}' => {
                if (c as u32) <= 0xffff {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32))
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `json.Marshal` of a value: compact, keys in the order given, and
/// `<`, `>`, `&`, U+2028, U+2029 escaped as Go's encoder does.
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(v, &mut out);
    out
}

fn write_go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_go_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json_string(k, out);
                out.push(':');
                write_go_json(item, out);
            }
            out.push('}');
        }
    }
}

fn write_go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_like_kubernetes() {
        let e = FieldError::invalid(
            "spec.ports[0].nodePort",
            80,
            "provided port is not in the valid range. The range of valid ports is 30000-32767",
        );
        assert_eq!(
            e.message(),
            "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
        );
        assert_eq!(e.reason(), "FieldValueInvalid");
        let r = FieldError::required("metadata.name", "name or generateName is required");
        assert_eq!(
            r.cause_message(),
            "Required value: name or generateName is required"
        );
        assert_eq!(
            FieldError::required("spec.ports", "").message(),
            "spec.ports: Required value"
        );
        let s = FieldError::not_supported("spec.type", "Foo", &["ClusterIP", "ExternalName"]);
        assert_eq!(
            s.message(),
            "spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\""
        );
        assert_eq!(s.reason(), "FieldValueNotSupported");
    }

    #[test]
    fn complex_values_print_as_go_json() {
        let e = FieldError::invalid(
            "spec.clusterIPs[0]",
            json!(["10.96.0.6"]),
            "may not change once set",
        );
        assert_eq!(
            e.message(),
            "spec.clusterIPs[0]: Invalid value: [\"10.96.0.6\"]: may not change once set"
        );
        let m = FieldError::invalid(
            "spec.template.metadata.labels",
            json!({"app": "x"}),
            "`selector` does not match template `labels`",
        );
        assert_eq!(
            m.message(),
            "spec.template.metadata.labels: Invalid value: {\"app\":\"x\"}: `selector` does not match template `labels`"
        );
        assert_eq!(
            go_json(&json!({"a": "<b>&"})),
            "{\"a\":\"\\u003cb\\u003e\\u0026\"}"
        );
        assert_eq!(
            FieldError::invalid("x", Value::Null, "d").cause_message(),
            "Invalid value: null: d"
        );
    }

    #[test]
    fn value_less_types() {
        let f = FieldError::forbidden(
            "spec.ports[0].nodePort",
            "may not be used when `type` is 'ClusterIP'",
        );
        assert_eq!(
            f.message(),
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
        );
        assert_eq!(f.reason(), "FieldValueForbidden");
        let t = FieldError::too_long("metadata.annotations", 262144);
        assert_eq!(
            t.message(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
        let m = FieldError::too_many("endpoints", 1001, 1000);
        assert_eq!(
            m.message(),
            "endpoints: Too many: 1001: must have at most 1000 items"
        );
        let d = FieldError::duplicate("spec.ports[1].name", "http");
        assert_eq!(d.message(), "spec.ports[1].name: Duplicate value: \"http\"");
        let i = FieldError::internal(
            "spec.clusterIPs",
            "failed to allocate a serviceIP: range is full",
        );
        assert_eq!(i.reason(), "InternalError");
        assert_eq!(
            i.message(),
            "spec.clusterIPs: Internal error: failed to allocate a serviceIP: range is full"
        );
    }

    #[test]
    fn go_quote_escapes() {
        assert_eq!(go_quote("Web"), "\"Web\"");
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(go_quote("\u{1}é"), "\"\\x01é\"");
    }
}
