//! What the CLI prints when something fails, in kubectl's words: the
//! formatting of `kubectl/pkg/cmd/util/helpers.go` (`checkErr`,
//! `StandardErrorMessage`, `MultipleErrors`) applied to minik8s' errors.

use client::ClientError;
use serde_json::Value;

/// Why a CLI command failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The API answered with a `Status`; `context` is kubectl's
    /// `error when creating "f.yaml": ` prefix of the message.
    #[error("{}", .status.message_with(.context))]
    Server {
        status: Box<ApiStatus>,
        context: Option<String>,
    },
    /// The API server is not running or not reachable.
    #[error(
        "cannot reach the minik8s API at {url} ({detail}). Start it with: sudo minik8s server"
    )]
    Unreachable { url: String, detail: String },
    /// A type name no registry entry matches.
    #[error("the server doesn't have a resource type \"{0}\"")]
    UnknownResourceType(String),
    /// A remote command ended with a non-zero exit code.
    #[error("command terminated with exit code {0}")]
    ExitCode(i32),
    /// The process should end with this code and print nothing more (the
    /// remote side already said why).
    #[error("")]
    QuietExit(i32),
    /// Anything else, already worded as kubectl words it.
    #[error("{0}")]
    Message(String),
}

impl CtlError {
    pub fn msg(text: impl Into<String>) -> CtlError {
        CtlError::Message(text.into())
    }

    /// The client error, optionally with kubectl's `error when <verb>
    /// "<source>": ` prefix (`AddSourceToErr`).
    pub fn from_client(err: ClientError, verb_and_source: Option<(&str, &str)>) -> CtlError {
        let context =
            verb_and_source.map(|(verb, source)| format!("error when {verb} \"{source}\": "));
        CtlError::with_context(err, context)
    }

    /// The client error with `context` in front of its message.
    pub fn with_context(err: ClientError, context: Option<String>) -> CtlError {
        match err {
            ClientError::Status {
                code,
                reason,
                message,
                body,
            } => CtlError::Server {
                status: Box::new(ApiStatus::from_body(code, reason, message, &body)),
                context,
            },
            ClientError::Unreachable { url, detail } => {
                let detail = if detail.contains("refused") {
                    detail
                } else {
                    connect_failure(&url).unwrap_or(detail)
                };
                CtlError::Unreachable { url, detail }
            }
            other => match context {
                Some(c) => CtlError::Message(format!("{c}{other}")),
                None => CtlError::Message(other.to_string()),
            },
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, CtlError::Server { status, .. } if status.code == 404)
    }

    /// The process exit code kubectl uses for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CtlError::ExitCode(code) | CtlError::QuietExit(code) => *code,
            _ => 1,
        }
    }

    /// kubectl's `StandardErrorMessage`, else the bare message
    /// (`messageForError`): how one error of several is printed.
    fn message_for_error(&self) -> String {
        match self {
            CtlError::Server { status, context } => {
                let msg = status.message_with(context);
                if status.reason.is_empty() {
                    format!("Error from server: {msg}")
                } else {
                    format!("Error from server ({}): {msg}", status.reason)
                }
            }
            other => other.to_string(),
        }
    }

    /// kubectl's `checkErr`: how a command's only error is printed.
    pub fn render(&self) -> String {
        match self {
            CtlError::Server { status, context } if status.reason == "Invalid" => {
                status.render_invalid(context)
            }
            CtlError::Server { .. } => self.message_for_error(),
            CtlError::ExitCode(_) | CtlError::QuietExit(_) => self.to_string(),
            other => {
                let msg = other.to_string();
                if msg.starts_with("error: ") {
                    msg
                } else {
                    format!("error: {msg}")
                }
            }
        }
    }
}

impl From<ClientError> for CtlError {
    fn from(err: ClientError) -> CtlError {
        CtlError::from_client(err, None)
    }
}

/// Why the API at `url` cannot be reached, in the words of the OS
/// ("connection refused"): the HTTP client's own error only says that the
/// connect failed. `None` if a connection now succeeds or `url` has no
/// address.
fn connect_failure(url: &str) -> Option<String> {
    use std::net::{TcpStream, ToSocketAddrs};
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let hostport = rest.split('/').next()?;
    let addr = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let addr = addr.to_socket_addrs().ok()?.next()?;
    match TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1)) {
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Some("connection refused".into())
        }
        Err(e) => Some(e.to_string()),
    }
}

/// How a command's errors are printed: one error as `checkErr` prints it,
/// several one per line as kubectl's aggregate printing does.
pub fn render_errors(errors: &[CtlError]) -> String {
    match errors {
        [] => String::new(),
        [one] => one.render(),
        many => many
            .iter()
            .map(CtlError::message_for_error)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Print errors to stderr and return the exit code (0 without errors).
pub fn report(errors: &[CtlError]) -> i32 {
    if errors.is_empty() {
        return 0;
    }
    let text = render_errors(errors);
    if text.is_empty() {
        // A quiet exit: nothing to say.
    } else if text.ends_with('\n') {
        eprint!("{text}");
    } else {
        eprintln!("{text}");
    }
    errors.last().map(CtlError::exit_code).unwrap_or(1)
}

/// The fields of a `kind: Status` body that kubectl's messages use.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiStatus {
    pub code: u16,
    pub reason: String,
    pub message: String,
    /// `details.kind` (e.g. `Service` for Invalid, `services` for NotFound).
    pub details_kind: Option<String>,
    pub details_name: Option<String>,
    /// Whether the body had a `details` object at all.
    pub has_details: bool,
    /// `(field, message)` of `details.causes`.
    pub causes: Vec<(String, String)>,
}

impl ApiStatus {
    pub fn from_body(code: u16, reason: String, message: String, body: &Value) -> ApiStatus {
        let details = body.get("details").filter(|d| d.is_object());
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let causes = details
            .and_then(|d| d.get("causes"))
            .and_then(Value::as_array)
            .map(|causes| {
                causes
                    .iter()
                    .map(|c| {
                        (
                            text(c.get("field")).unwrap_or_default(),
                            text(c.get("message")).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        ApiStatus {
            code,
            reason,
            message,
            details_kind: text(details.and_then(|d| d.get("kind"))).filter(|s| !s.is_empty()),
            details_name: text(details.and_then(|d| d.get("name"))).filter(|s| !s.is_empty()),
            has_details: details.is_some(),
            causes,
        }
    }

    fn message_with(&self, context: &Option<String>) -> String {
        match context {
            Some(c) => format!("{c}{}", self.message),
            None => self.message.clone(),
        }
    }

    /// The `isInvalidReasonStatusError` branch of `checkErr`: built from
    /// details, so the `error when creating` context is not shown.
    fn render_invalid(&self, context: &Option<String>) -> String {
        let mut s = String::from("The request is invalid");
        if !self.has_details {
            let msg = self.message_with(context);
            if !msg.is_empty() {
                s.push_str(": ");
                s.push_str(&msg);
            }
            return s;
        }
        if self.details_kind.is_some() || self.details_name.is_some() {
            s = format!(
                "The {} \"{}\" is invalid",
                self.details_kind.as_deref().unwrap_or(""),
                self.details_name.as_deref().unwrap_or("")
            );
        } else if !self.message.is_empty() && self.causes.is_empty() {
            s.push_str(": ");
            s.push_str(&self.message_with(context));
        }
        // Duplicate causes are printed once, as statusCausesToAggrError does.
        let mut lines: Vec<String> = Vec::new();
        for (field, message) in &self.causes {
            let line = format!("{field}: {message}");
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
        match lines.len() {
            0 => s,
            1 => format!("{s}: {}", lines[0]),
            _ => {
                let mut out = format!("{s}: \n");
                for l in lines {
                    out.push_str(&format!("* {l}\n"));
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status_err(code: u16, reason: &str, message: &str, body: Value) -> ClientError {
        ClientError::Status {
            code,
            reason: reason.into(),
            message: message.into(),
            body,
        }
    }

    #[test]
    fn not_found_prints_like_kubectl() {
        let e = CtlError::from(status_err(
            404,
            "NotFound",
            "services \"web\" not found",
            json!({"kind":"Status","details":{"name":"web","kind":"services"}}),
        ));
        assert_eq!(
            e.render(),
            "Error from server (NotFound): services \"web\" not found"
        );
        assert!(e.is_not_found());
    }

    #[test]
    fn create_context_prefixes_the_message() {
        let e = CtlError::from_client(
            status_err(
                409,
                "AlreadyExists",
                "services \"web\" already exists",
                json!({}),
            ),
            Some(("creating", "web-svc.yaml")),
        );
        assert_eq!(
            e.render(),
            "Error from server (AlreadyExists): error when creating \"web-svc.yaml\": services \"web\" already exists"
        );
    }

    fn invalid(causes: Value) -> ClientError {
        status_err(
            422,
            "Invalid",
            "Service \"web\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
            json!({"kind":"Status","reason":"Invalid","details":{"name":"web","kind":"Service","causes":causes}}),
        )
    }

    #[test]
    fn a_single_invalid_error_prints_its_causes() {
        let e = CtlError::from_client(
            invalid(
                json!([{"reason":"FieldValueInvalid","field":"spec.ports[0].nodePort","message":"Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"}]),
            ),
            Some(("creating", "web-svc.yaml")),
        );
        assert_eq!(
            e.render(),
            "The Service \"web\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
        );
        // One of several errors: the server's message with its context.
        let many = [e, CtlError::UnknownResourceType("foo".into())];
        assert_eq!(
            render_errors(&many),
            "Error from server (Invalid): error when creating \"web-svc.yaml\": Service \"web\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767\n\
             the server doesn't have a resource type \"foo\""
        );
    }

    #[test]
    fn several_causes_become_bullets() {
        let e = CtlError::from(invalid(json!([
            {"field":"spec.ports[0].port","message":"Required value"},
            {"field":"spec.selector","message":"Invalid value: \"x\": bad"},
            {"field":"spec.ports[0].port","message":"Required value"}
        ])));
        assert_eq!(
            e.render(),
            "The Service \"web\" is invalid: \n* spec.ports[0].port: Required value\n* spec.selector: Invalid value: \"x\": bad\n"
        );
    }

    #[test]
    fn unreachable_and_plain_errors_get_the_error_prefix() {
        let e = CtlError::from(ClientError::Unreachable {
            url: "http://127.0.0.1:6443".into(),
            detail: "connection refused".into(),
        });
        assert_eq!(
            e.render(),
            "error: cannot reach the minik8s API at http://127.0.0.1:6443 (connection refused). Start it with: sudo minik8s server"
        );
        assert_eq!(
            CtlError::UnknownResourceType("foo".into()).render(),
            "error: the server doesn't have a resource type \"foo\""
        );
        assert_eq!(
            CtlError::ExitCode(3).render(),
            "command terminated with exit code 3"
        );
        assert_eq!(CtlError::ExitCode(3).exit_code(), 3);
    }
}
