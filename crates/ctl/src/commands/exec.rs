//! `minik8s exec POD -- CMD...` over the WebSocket stream protocol.

use super::logs::{choose_container, resolve_pod};
use crate::error::CtlError;
use crate::remote_session::{run_session, SessionRequest};
use crate::stream_protocol::{stream_query, RemoteExit};
use crate::terminal;
use crate::Context;
use api::registry;

/// Execute a command in a container.
#[derive(clap::Args, Debug, Clone)]
pub struct ExecArgs {
    /// POD or TYPE/NAME.
    pub pod: String,
    /// Container name (default: the pod's first container).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass stdin to the container.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Stdin is a TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The command and its arguments (after `--`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

pub async fn run(ctx: &Context, args: ExecArgs) -> Vec<CtlError> {
    match exec(ctx, &args).await {
        Ok(()) => Vec::new(),
        Err(e) => vec![e],
    }
}

async fn exec(ctx: &Context, args: &ExecArgs) -> Result<(), CtlError> {
    let pod = resolve_pod(ctx, &args.pod).await?;
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return Err(CtlError::msg(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        )));
    }
    let container = choose_container(&pod, args.container.as_deref())?;
    let tty = effective_tty(args.stdin, args.tty);
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let path = format!(
        "{}/exec",
        registry::PODS.path(Some(&ctx.namespace), Some(name))
    );
    let url = reqwest::Url::parse_with_params(
        &ctx.client.url(&path),
        stream_query(&args.command, &container, args.stdin, tty),
    )
    .map_err(|e| CtlError::msg(format!("invalid exec URL: {e}")))?;
    let exit = run_session(
        SessionRequest {
            url: url.to_string(),
            stdin: args.stdin,
            tty,
        },
        ctx.client.base_url(),
    )
    .await?;
    match exit {
        RemoteExit::Success => Ok(()),
        RemoteExit::Code(code) => Err(CtlError::ExitCode(code)),
        RemoteExit::Failure(msg) => Err(CtlError::msg(msg)),
    }
}

/// kubectl's `SetupTTY`: a TTY needs stdin, and a local terminal to be
/// worth having.
pub(crate) fn effective_tty(stdin: bool, tty: bool) -> bool {
    if !stdin || !tty {
        return false;
    }
    if !terminal::stdin_is_terminal() {
        eprintln!("Unable to use a TTY - input is not a terminal or the right kind of file");
        return false;
    }
    true
}
