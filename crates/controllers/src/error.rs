//! The one error type of the controllers.

/// Why a reconcile failed; the worker logs it and retries the key.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The API refused a request or could not be reached (boxed: a
    /// `Status` body is large and errors travel on every reconcile's path).
    #[error(transparent)]
    Api(Box<client::ClientError>),
    /// An object did not convert between JSON and its typed form.
    #[error("cannot convert a {kind}: {detail}")]
    Convert { kind: &'static str, detail: String },
}

impl From<client::ClientError> for ControllerError {
    fn from(e: client::ClientError) -> Self {
        ControllerError::Api(Box::new(e))
    }
}

impl ControllerError {
    /// 409: someone wrote first; the newer version is on its way.
    pub fn is_conflict(&self) -> bool {
        matches!(self, ControllerError::Api(e) if e.code() == Some(409))
    }
    pub fn is_not_found(&self) -> bool {
        matches!(self, ControllerError::Api(e) if e.is_not_found())
    }
    pub fn is_already_exists(&self) -> bool {
        matches!(self, ControllerError::Api(e) if e.is_already_exists())
    }
}
