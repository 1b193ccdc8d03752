//! One file per verb; this module lists them and holds the few HTTP helpers
//! for requests the client has no method for (streams with special
//! headers).

pub mod apply;
pub mod create;
pub mod delete;
pub mod describe;
pub mod exec;
pub mod get;
pub mod kubeconfig;
pub mod logs;
pub mod run;
pub mod scale;
pub mod service;

use crate::error::CtlError;
use crate::{Context, GlobalOptions};
use client::ClientError;
use futures::{Stream, StreamExt};
use serde_json::Value;

/// The verbs of the CLI.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Create or update objects from manifests (client-side apply).
    Apply(apply::ApplyArgs),
    /// Display one or many resources.
    Get(get::GetArgs),
    /// Delete resources by file names, type and names, or label selector.
    Delete(delete::DeleteArgs),
    /// Show details of a resource.
    Describe(describe::DescribeArgs),
    /// Create a resource from a file or a namespace by name.
    Create(create::CreateArgs),
    /// Set a new size for a Deployment or ReplicaSet.
    Scale(scale::ScaleArgs),
    /// Print the logs of a container in a pod.
    Logs(logs::LogsArgs),
    /// Execute a command in a container.
    Exec(exec::ExecArgs),
    /// Run a pod with a particular image (and attach to it with -i/-t).
    Run(run::RunArgs),
    /// Print the URLs to reach a NodePort or LoadBalancer Service from this host.
    Service(service::ServiceArgs),
    /// Print (or write) a kubeconfig so the real kubectl can use this API.
    Kubeconfig(kubeconfig::KubeconfigArgs),
}

pub(crate) async fn dispatch(ctx: &Context, cmd: Command, global: &GlobalOptions) -> Vec<CtlError> {
    match cmd {
        Command::Apply(a) => apply::run(ctx, a).await,
        Command::Get(a) => get::run(ctx, a).await,
        Command::Delete(a) => delete::run(ctx, a).await,
        Command::Describe(a) => describe::run(ctx, a).await,
        Command::Create(a) => create::run(ctx, a).await,
        Command::Scale(a) => scale::run(ctx, a).await,
        Command::Logs(a) => logs::run(ctx, a).await,
        Command::Exec(a) => exec::run(ctx, a).await,
        Command::Run(a) => run::run(ctx, a).await,
        Command::Service(a) => service::run(ctx, a).await,
        Command::Kubeconfig(a) => kubeconfig::run(global, a).await,
    }
}

/// A failed request that never got an answer.
pub(crate) fn transport_error(ctx: &Context, e: reqwest::Error) -> CtlError {
    if e.is_connect() {
        let chain = format!("{e:?}");
        let detail = if chain.contains("refused") || chain.contains("Refused") {
            "connection refused".to_string()
        } else {
            let mut innermost = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                innermost = s.to_string();
                src = s.source();
            }
            innermost
        };
        CtlError::Unreachable {
            url: ctx.client.base_url().to_string(),
            detail,
        }
    } else {
        CtlError::msg(e.to_string())
    }
}

/// A non-2xx answer as the server's `Status`.
pub(crate) async fn check_status(resp: reqwest::Response) -> Result<reqwest::Response, CtlError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let code = status.as_u16();
    let bytes = resp.bytes().await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).trim().to_string()));
    let reason = body["reason"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("").replace(' ', ""));
    let message = body["message"]
        .as_str()
        .map(str::to_string)
        .or_else(|| body.as_str().filter(|s| !s.is_empty()).map(str::to_string))
        .unwrap_or_else(|| format!("the server responded with the status code {code}"));
    Err(CtlError::from(ClientError::Status {
        code,
        reason,
        message,
        body,
    }))
}

/// Newline-delimited JSON values from a streamed body.
pub(crate) fn json_lines<S, E>(body: S) -> impl Stream<Item = Result<Value, CtlError>>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    futures::stream::unfold(
        (body, Vec::<u8>::new(), false),
        |(mut body, mut buf, mut done)| async move {
            loop {
                if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let v = serde_json::from_slice(&line)
                        .map_err(|e| CtlError::msg(format!("unable to decode a watch event: {e}")));
                    return Some((v, (body, buf, done)));
                }
                if done {
                    if buf.iter().all(u8::is_ascii_whitespace) {
                        return None;
                    }
                    let line = std::mem::take(&mut buf);
                    let v = serde_json::from_slice(&line)
                        .map_err(|e| CtlError::msg(format!("unable to decode a watch event: {e}")));
                    return Some((v, (body, buf, done)));
                }
                match body.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                    Some(Err(e)) => {
                        done = true;
                        buf.clear();
                        let err = CtlError::msg(format!("the watch stream broke off: {e}"));
                        return Some((Err(err), (body, buf, done)));
                    }
                    None => done = true,
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        global: GlobalOptions,
        #[command(subcommand)]
        command: Command,
    }

    fn parse(line: &str) -> Cli {
        Cli::try_parse_from(std::iter::once("minik8s").chain(line.split_whitespace()))
            .unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_every_command_of_the_walkthrough() {
        for line in [
            "apply -f examples/web-deploy.yaml",
            "get pods --show-labels",
            "get endpoints web",
            "get endpointslices -l kubernetes.io/service-name=web",
            "get svc",
            "get svc web",
            "run tmp --rm -it --image=curlimages/curl -- sh",
            "logs web-abc-123",
            "delete -f web-svc.yaml",
            "delete deploy web",
            "get svc,deploy,pods",
            "service web --url",
            "-n kube-system get svc -o wide",
            "exec -it web-1 -c nginx -- sh -c ls",
            "scale deploy web --replicas 5",
            "create namespace dev",
            "describe svc web",
            "kubeconfig --write",
        ] {
            parse(line);
        }
        let cli = parse("get svc -n kube-system --server http://127.0.0.1:7443");
        assert_eq!(cli.global.namespace(), "kube-system");
        assert_eq!(cli.global.server, "http://127.0.0.1:7443");
        let Command::Exec(e) = parse("exec web-1 -- sh -c 'echo hi'").command else {
            panic!()
        };
        assert_eq!(e.pod, "web-1");
        assert_eq!(e.command[0], "sh");
        assert_eq!(e.command[1], "-c");
    }
}
