//! The contract between the API server and the pod runner for the streaming
//! subresources of a Pod: `log`, `exec` and `attach`.
//!
//! The API server owns the HTTP and WebSocket framing (Kubernetes'
//! `v5.channel.k8s.io`); the pod runner owns the processes. Neither knows how
//! the other works: the server is handed an `Arc<dyn PodIo>` at start.

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::{mpsc, oneshot};

/// Which Pod and container a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    pub namespace: String,
    pub pod: String,
    /// `None`: the Pod's only (or first) container, as kubectl defaults it.
    pub container: Option<String>,
}

/// Query of `GET .../pods/NAME/log`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    pub tail_lines: Option<u64>,
    pub timestamps: bool,
    pub previous: bool,
    pub since_seconds: Option<u64>,
    pub limit_bytes: Option<u64>,
}

/// What `exec` runs (`attach` has no command: it joins the container's
/// main process).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// A chunk of output from a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout(Bytes),
    /// Never sent when the session has a TTY (the TTY merges the streams).
    Stderr(Bytes),
}

/// A running exec or attach session. Dropping `stdin` closes the process'
/// standard input. `output` ends when the process has closed its outputs;
/// then `exit` carries the exit code (for attach: the container's exit code,
/// or 0 when the client detached).
pub struct Session {
    pub stdin: Option<mpsc::Sender<Bytes>>,
    pub output: mpsc::Receiver<Output>,
    /// Terminal size changes (columns, rows); `None` without a TTY.
    pub resize: Option<mpsc::Sender<(u16, u16)>>,
    pub exit: oneshot::Receiver<i32>,
}

/// Why a streaming request failed. The API server maps these onto Status
/// codes: `NotFound` -> 404, `BadRequest` -> 400, `Internal` -> 500.
#[derive(Debug, thiserror::Error)]
pub enum PodIoError {
    /// e.g. `pods "web" not found`, `container "x" not found in pod "web"`
    #[error("{0}")]
    NotFound(String),
    /// e.g. `container "web" in pod "tmp" is waiting to start: ContainerCreating`
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Internal(String),
}

/// Implemented by the pod runner; called by the API server.
pub trait PodIo: Send + Sync + 'static {
    /// The container's log: whole lines, each ending in `\n`; with
    /// `follow` the stream stays open until the container stops or the
    /// receiver is dropped.
    fn logs(
        &self,
        target: ContainerRef,
        options: LogOptions,
    ) -> BoxFuture<'static, Result<BoxStream<'static, Bytes>, PodIoError>>;

    /// Start `options.command` inside the container's sandbox.
    fn exec(
        &self,
        target: ContainerRef,
        options: StreamOptions,
    ) -> BoxFuture<'static, Result<Session, PodIoError>>;

    /// Join the container's main process (its stdin and output), as
    /// `kubectl attach` and `kubectl run -it` do.
    fn attach(
        &self,
        target: ContainerRef,
        options: StreamOptions,
    ) -> BoxFuture<'static, Result<Session, PodIoError>>;
}

/// The answer of a server that runs no pods (`minik8s server --no-node`).
pub struct NoNode;

impl PodIo for NoNode {
    fn logs(
        &self,
        target: ContainerRef,
        _: LogOptions,
    ) -> BoxFuture<'static, Result<BoxStream<'static, Bytes>, PodIoError>> {
        Box::pin(async move { Err(no_node(&target)) })
    }
    fn exec(
        &self,
        target: ContainerRef,
        _: StreamOptions,
    ) -> BoxFuture<'static, Result<Session, PodIoError>> {
        Box::pin(async move { Err(no_node(&target)) })
    }
    fn attach(
        &self,
        target: ContainerRef,
        _: StreamOptions,
    ) -> BoxFuture<'static, Result<Session, PodIoError>> {
        Box::pin(async move { Err(no_node(&target)) })
    }
}

fn no_node(target: &ContainerRef) -> PodIoError {
    PodIoError::BadRequest(format!(
        "pod \"{}\" has no node to run on: this server was started with --no-node",
        target.pod
    ))
}
