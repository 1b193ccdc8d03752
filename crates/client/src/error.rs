use serde_json::Value;

/// Why a request to the API failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a Kubernetes `Status` (or another error
    /// body): its message, as kubectl prints it.
    #[error("{message}")]
    Status {
        code: u16,
        reason: String,
        message: String,
        body: Value,
    },
    /// The API could not be reached at all (server not running).
    #[error("cannot reach the minik8s API at {url} ({detail})")]
    Unreachable { url: String, detail: String },
    /// The server's answer was not what the API promises.
    #[error("cannot decode the server's answer: {0}")]
    Decode(String),
    /// A streaming body broke off.
    #[error("stream from the server broke off: {0}")]
    Stream(String),
}

impl ClientError {
    pub fn code(&self) -> Option<u16> {
        match self {
            ClientError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
    pub fn reason(&self) -> Option<&str> {
        match self {
            ClientError::Status { reason, .. } => Some(reason),
            _ => None,
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }
    pub fn is_conflict(&self) -> bool {
        self.reason() == Some("Conflict")
    }
    pub fn is_already_exists(&self) -> bool {
        self.reason() == Some("AlreadyExists")
    }
    /// 410: the requested resourceVersion is older than the server keeps.
    pub fn is_gone(&self) -> bool {
        self.code() == Some(410)
    }
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. })
    }

    pub(crate) fn from_transport(base: &str, e: reqwest::Error) -> ClientError {
        if e.is_connect() {
            let detail = std::error::Error::source(&e)
                .and_then(|s| s.source())
                .map(|s| s.to_string())
                .unwrap_or_else(|| "connection refused".into());
            let detail = if detail.contains("refused") {
                "connection refused".to_string()
            } else {
                detail
            };
            ClientError::Unreachable {
                url: base.to_string(),
                detail,
            }
        } else if e.is_body() || e.is_decode() {
            ClientError::Stream(e.to_string())
        } else {
            ClientError::Unreachable {
                url: base.to_string(),
                detail: e.to_string(),
            }
        }
    }
}

/// Turn a non-2xx answer into `ClientError::Status`.
pub(crate) async fn check(resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let code = status.as_u16();
    let bytes = resp.bytes().await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    let reason = body
        .get("reason")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("Unknown")
                .replace(' ', "")
        });
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| match &body {
            Value::String(s) if !s.is_empty() => s.clone(),
            _ => format!("the server responded with the status code {code}"),
        });
    Err(ClientError::Status {
        code,
        reason,
        message,
        body,
    })
}
