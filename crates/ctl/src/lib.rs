//! The `minik8s` CLI: kubectl's verbs (apply, get, delete, describe, logs,
//! exec, run, ...) against the minik8s API, printing what kubectl prints.
//! Each verb is one file under `commands/`; the pieces they share (the
//! table printer, manifests, client-side apply, the exec stream protocol)
//! are plain modules with unit tests.

pub mod client_side_apply;
pub mod commands;
pub mod describe;
pub mod encoding;
pub mod error;
pub mod go_yaml;
pub mod manifest;
pub mod remote_session;
pub mod resource_args;
pub mod stream_protocol;
pub mod table;
pub mod tabwriter;
pub mod terminal;

pub use commands::Command;
pub use error::CtlError;

/// Options every verb understands.
#[derive(clap::Args, Clone, Debug)]
pub struct GlobalOptions {
    /// URL of the minik8s API server.
    #[arg(
        long,
        global = true,
        env = "MINIK8S_SERVER",
        default_value = "http://127.0.0.1:6443"
    )]
    pub server: String,
    /// Namespace of the request (default: default).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
}

impl GlobalOptions {
    /// The namespace requests go to.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }
}

/// What every command gets: a client and the namespace to work in.
pub struct Context {
    pub client: client::Client,
    pub namespace: String,
    /// `-n` was given: a manifest's namespace must match it.
    pub namespace_explicit: bool,
}

impl Context {
    pub fn new(global: &GlobalOptions) -> Context {
        Context {
            client: client::Client::new(global.server.clone()),
            namespace: global.namespace().to_string(),
            namespace_explicit: global.namespace.is_some(),
        }
    }
}

/// Run one CLI command; prints its output and errors, returns the exit code.
pub async fn run(cmd: Command, global: GlobalOptions) -> i32 {
    let ctx = Context::new(&global);
    let errors = commands::dispatch(&ctx, cmd, &global).await;
    error::report(&errors)
}
