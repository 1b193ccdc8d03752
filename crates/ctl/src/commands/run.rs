//! `minik8s run tmp --rm -it --image=curlimages/curl -- sh`: create a Pod
//! like kubectl's run generator, and with -i/-t wait for it, attach to it,
//! and with --rm delete it afterwards.

use crate::error::CtlError;
use crate::remote_session::{run_session, SessionRequest};
use crate::stream_protocol::{stream_query, RemoteExit};
use crate::Context;
use api::registry::PODS;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// Create and run a particular image in a pod.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Name of the pod (and of its container).
    pub name: String,
    /// The image for the container.
    #[arg(long, required = true)]
    pub image: String,
    /// Delete the pod after the attached session ends.
    #[arg(long)]
    pub rm: bool,
    /// Keep stdin open on the container and attach to it.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Allocate a TTY for the container.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Restart policy: Always, OnFailure or Never.
    #[arg(long, default_value = "Always")]
    pub restart: String,
    /// Labels as k=v,k2=v2 (default: run=NAME).
    #[arg(short = 'l', long)]
    pub labels: Option<String>,
    /// The port the container exposes.
    #[arg(long)]
    pub port: Option<i32>,
    /// Environment variables K=V (repeatable).
    #[arg(long)]
    pub env: Vec<String>,
    /// Use the words after `--` as the command instead of the arguments.
    #[arg(long)]
    pub command: bool,
    /// Seconds to wait for the pod to be running before attaching.
    #[arg(long, default_value_t = 60)]
    pub pod_running_timeout: u64,
    /// Arguments (or the command with --command) after `--`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub async fn run(ctx: &Context, args: RunArgs) -> Vec<CtlError> {
    match run_pod(ctx, &args).await {
        Ok(()) => Vec::new(),
        Err(e) => vec![e],
    }
}

/// The Pod kubectl's run generator makes.
pub fn build_pod(args: &RunArgs) -> Result<Value, CtlError> {
    if !matches!(args.restart.as_str(), "Always" | "OnFailure" | "Never") {
        return Err(CtlError::msg(format!(
            "invalid restart policy: {}",
            args.restart
        )));
    }
    let mut labels = Map::new();
    match &args.labels {
        Some(spec) => {
            for pair in spec.split(',').filter(|p| !p.is_empty()) {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| CtlError::msg(format!("invalid label spec: {pair}")))?;
                labels.insert(k.to_string(), json!(v));
            }
        }
        None => {
            labels.insert("run".into(), json!(args.name));
        }
    }
    let mut container = Map::new();
    container.insert("name".into(), json!(args.name));
    container.insert("image".into(), json!(args.image));
    if !args.args.is_empty() {
        let key = if args.command { "command" } else { "args" };
        container.insert(key.into(), json!(args.args));
    }
    if let Some(p) = args.port {
        container.insert("ports".into(), json!([{"containerPort": p}]));
    }
    if !args.env.is_empty() {
        let mut env = Vec::new();
        for e in &args.env {
            let (k, v) = e
                .split_once('=')
                .ok_or_else(|| CtlError::msg(format!("invalid env: {e}")))?;
            env.push(json!({"name": k, "value": v}));
        }
        container.insert("env".into(), Value::Array(env));
    }
    container.insert("resources".into(), json!({}));
    let attach = args.stdin || args.tty;
    if args.stdin {
        container.insert("stdin".into(), json!(true));
        if attach {
            container.insert("stdinOnce".into(), json!(true));
        }
    }
    if args.tty {
        container.insert("tty".into(), json!(true));
    }
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"labels": labels, "name": args.name},
        "spec": {
            "containers": [container],
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": args.restart,
        },
        "status": {}
    }))
}

async fn run_pod(ctx: &Context, args: &RunArgs) -> Result<(), CtlError> {
    if args.tty && !args.stdin {
        return Err(CtlError::msg(
            "-i/--stdin is required for containers with -t/--tty=true",
        ));
    }
    let attach = args.stdin;
    if args.rm && !attach {
        return Err(CtlError::msg(
            "--rm should only be used for attached containers",
        ));
    }
    let pod = build_pod(args)?;
    let ns = ctx.namespace.as_str();
    ctx.client.create(&PODS, Some(ns), &pod).await?;
    if !attach {
        println!("pod/{} created", args.name);
        return Ok(());
    }
    let result = attach_to(ctx, args).await;
    if args.rm {
        match ctx.client.delete(&PODS, Some(ns), &args.name).await {
            Ok(_) => {
                println!("pod \"{}\" deleted", args.name);
                wait_gone(ctx, &args.name).await;
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    result
}

async fn attach_to(ctx: &Context, args: &RunArgs) -> Result<(), CtlError> {
    let ns = ctx.namespace.as_str();
    let pod = wait_running(
        ctx,
        &args.name,
        Duration::from_secs(args.pod_running_timeout),
    )
    .await?;
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    let log_path = format!("{}/log", PODS.path(Some(ns), Some(&args.name)));
    let container_query = vec![("container", args.name.clone())];
    if phase == "Succeeded" || phase == "Failed" {
        // Nothing to attach to any more: show what it printed.
        return super::logs::print_stream(ctx, &log_path, &container_query).await;
    }
    let tty = super::exec::effective_tty(args.stdin, args.tty);
    if tty {
        eprintln!("If you don't see a command prompt, try pressing enter.");
    }
    let path = format!("{}/attach", PODS.path(Some(ns), Some(&args.name)));
    let url = reqwest::Url::parse_with_params(
        &ctx.client.url(&path),
        stream_query(&[], &args.name, args.stdin, tty),
    )
    .map_err(|e| CtlError::msg(format!("invalid attach URL: {e}")))?;
    let session = SessionRequest {
        url: url.to_string(),
        stdin: args.stdin,
        tty,
    };
    match run_session(session, ctx.client.base_url()).await {
        Ok(RemoteExit::Success) => Ok(()),
        Ok(RemoteExit::Code(code)) => Err(CtlError::QuietExit(code)),
        Err(e @ CtlError::Unreachable { .. }) => Err(e),
        // Like kubectl, any failure to attach (e.g. a short command that
        // finished between the wait and the attach) shows the logs instead.
        Ok(RemoteExit::Failure(msg)) => {
            eprintln!(
                "warning: couldn't attach to pod/{}, falling back to streaming logs: {msg}",
                args.name
            );
            super::logs::print_stream(ctx, &log_path, &container_query).await
        }
        Err(e) => {
            eprintln!(
                "warning: couldn't attach to pod/{}, falling back to streaming logs: {}",
                args.name,
                e.render().trim_start_matches("error: ")
            );
            super::logs::print_stream(ctx, &log_path, &container_query).await
        }
    }
}

/// Wait until the pod runs and is ready, or has already finished.
async fn wait_running(ctx: &Context, name: &str, timeout: Duration) -> Result<Value, CtlError> {
    let start = Instant::now();
    loop {
        let pod = ctx.client.get(&PODS, Some(&ctx.namespace), name).await?;
        let status = &pod["status"];
        let phase = status["phase"].as_str().unwrap_or_default();
        let ready = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        if (phase == "Running" && ready) || phase == "Succeeded" || phase == "Failed" {
            return Ok(pod);
        }
        // An image that cannot be pulled never starts: say so now.
        for cs in status["containerStatuses"].as_array().into_iter().flatten() {
            let reason = cs["state"]["waiting"]["reason"]
                .as_str()
                .unwrap_or_default();
            if matches!(
                reason,
                "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName"
            ) {
                let msg = cs["state"]["waiting"]["message"]
                    .as_str()
                    .unwrap_or_default();
                return Err(CtlError::msg(format!(
                    "pod {}/{name}: container {:?} cannot start: {reason}{}",
                    ctx.namespace,
                    cs["name"].as_str().unwrap_or_default(),
                    if msg.is_empty() {
                        String::new()
                    } else {
                        format!(" ({msg})")
                    }
                )));
            }
        }
        if start.elapsed() > timeout {
            return Err(CtlError::msg("timed out waiting for the condition"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_gone(ctx: &Context, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match ctx.client.get(&PODS, Some(&ctx.namespace), name).await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(words: &[&str]) -> RunArgs {
        Cli::parse_from(std::iter::once("run").chain(words.iter().copied())).run
    }

    #[test]
    fn builds_the_chapters_temp_pod() {
        let args = parse(&["tmp", "--rm", "-it", "--image=curlimages/curl", "--", "sh"]);
        assert!(args.rm && args.stdin && args.tty);
        let pod = build_pod(&args).unwrap();
        assert_eq!(
            pod,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"labels": {"run": "tmp"}, "name": "tmp"},
                "spec": {"containers": [{"name": "tmp", "image": "curlimages/curl", "args": ["sh"],
                                         "resources": {}, "stdin": true, "stdinOnce": true, "tty": true}],
                         "dnsPolicy": "ClusterFirst", "restartPolicy": "Always"},
                "status": {}
            })
        );
    }

    #[test]
    fn command_flag_labels_env_and_port() {
        let args = parse(&[
            "web",
            "--image=nginx",
            "-l",
            "app=web,tier=front",
            "--env",
            "A=1",
            "--port",
            "80",
            "--restart",
            "Never",
            "--command",
            "--",
            "nginx",
            "-g",
            "daemon off;",
        ]);
        let pod = build_pod(&args).unwrap();
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["command"], json!(["nginx", "-g", "daemon off;"]));
        assert_eq!(c["env"], json!([{"name": "A", "value": "1"}]));
        assert_eq!(c["ports"], json!([{"containerPort": 80}]));
        assert_eq!(
            pod["metadata"]["labels"],
            json!({"app": "web", "tier": "front"})
        );
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
        assert!(build_pod(&parse(&["x", "--image=i", "--restart=Sometimes"])).is_err());
    }
}
