//! `minik8s logs`: a container's output as plain text, streamed (and
//! followed with `-f`). Also home of the pod and container choice that
//! `exec` shares.

use crate::error::CtlError;
use crate::Context;
use api::registry;
use client::ListParams;
use futures::StreamExt;
use serde_json::Value;
use std::io::Write;

/// Print the logs for a container in a pod.
#[derive(clap::Args, Debug, Clone)]
pub struct LogsArgs {
    /// POD, or TYPE/NAME (pod/web-1, deploy/web, svc/web: one of its pods).
    pub pod: String,
    /// Container name (same as -c).
    pub container_arg: Option<String>,
    /// Container name.
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Keep streaming new lines.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Lines from the end to show (-1: all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Logs of the previous, terminated instance of the container.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Prefix each line with its RFC3339 timestamp.
    #[arg(long)]
    pub timestamps: bool,
    /// Only logs newer than this many seconds.
    #[arg(long)]
    pub since_seconds: Option<i64>,
    /// Stop after this many bytes.
    #[arg(long)]
    pub limit_bytes: Option<i64>,
}

pub async fn run(ctx: &Context, args: LogsArgs) -> Vec<CtlError> {
    match stream_logs(ctx, &args).await {
        Ok(()) => Vec::new(),
        Err(e) => vec![e],
    }
}

async fn stream_logs(ctx: &Context, args: &LogsArgs) -> Result<(), CtlError> {
    let pod = resolve_pod(ctx, &args.pod).await?;
    let requested = args.container.clone().or(args.container_arg.clone());
    let container = choose_container(&pod, requested.as_deref())?;
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let mut query: Vec<(&str, String)> = vec![("container", container)];
    if args.follow {
        query.push(("follow", "true".into()));
    }
    if args.tail >= 0 {
        query.push(("tailLines", args.tail.to_string()));
    }
    if args.previous {
        query.push(("previous", "true".into()));
    }
    if args.timestamps {
        query.push(("timestamps", "true".into()));
    }
    if let Some(s) = args.since_seconds {
        query.push(("sinceSeconds", s.to_string()));
    }
    if let Some(b) = args.limit_bytes {
        query.push(("limitBytes", b.to_string()));
    }
    let path = format!(
        "{}/log",
        registry::PODS.path(Some(&ctx.namespace), Some(name))
    );
    print_stream(ctx, &path, &query).await
}

/// GET a streamed plain-text body and copy it to stdout as it arrives.
pub(crate) async fn print_stream(
    ctx: &Context,
    path: &str,
    query: &[(&str, String)],
) -> Result<(), CtlError> {
    let resp = ctx
        .client
        .http()
        .get(ctx.client.url(path))
        .query(query)
        .send()
        .await
        .map_err(|e| super::transport_error(ctx, e))?;
    let resp = super::check_status(resp).await?;
    let mut body = resp.bytes_stream();
    let mut out = std::io::stdout();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| CtlError::msg(format!("error reading the log stream: {e}")))?;
        if out.write_all(&chunk).and_then(|_| out.flush()).is_err() {
            break; // stdout closed (e.g. `| head`)
        }
    }
    Ok(())
}

/// The pod a `logs`/`exec` argument names: `NAME`, `pod/NAME`, or a
/// Deployment, ReplicaSet or Service whose pods are picked from.
pub(crate) async fn resolve_pod(ctx: &Context, arg: &str) -> Result<Value, CtlError> {
    let ns = Some(ctx.namespace.as_str());
    let Some((kind, name)) = arg.split_once('/') else {
        return Ok(ctx.client.get(&registry::PODS, ns, arg).await?);
    };
    let res = registry::resolve(kind).ok_or_else(|| CtlError::UnknownResourceType(kind.into()))?;
    if res.kind == "Pod" {
        return Ok(ctx.client.get(&registry::PODS, ns, name).await?);
    }
    let owner = ctx.client.get(res, ns, name).await?;
    let selector = match res.kind {
        "Service" => owner["spec"]["selector"].clone(),
        "Deployment" | "ReplicaSet" => owner["spec"]["selector"]["matchLabels"].clone(),
        other => {
            return Err(CtlError::msg(format!("cannot select pods of a {other}")));
        }
    };
    let selector = selector
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let list = ctx
        .client
        .list(&registry::PODS, ns, &ListParams::labels(selector))
        .await?;
    let mut pods = list["items"].as_array().cloned().unwrap_or_default();
    if pods.is_empty() {
        return Err(CtlError::msg(format!("no pods found for {arg}")));
    }
    // Running pods first, then by name: a stable, useful choice.
    pods.sort_by_key(|p| {
        (
            p["status"]["phase"] != "Running",
            p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    });
    if pods.len() > 1 {
        eprintln!(
            "Found {} pods, using pod/{}",
            pods.len(),
            pods[0]["metadata"]["name"].as_str().unwrap_or_default()
        );
    }
    Ok(pods.remove(0))
}

/// The requested container, or the pod's default one (announced when the
/// pod has several, as kubectl does).
pub(crate) fn choose_container(pod: &Value, requested: Option<&str>) -> Result<String, CtlError> {
    if let Some(c) = requested {
        return Ok(c.to_string());
    }
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let annotated =
        pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"].as_str();
    if let Some(a) = annotated.filter(|a| names.contains(a)) {
        return Ok(a.to_string());
    }
    let first = names
        .first()
        .ok_or_else(|| CtlError::msg("the pod has no containers"))?;
    if names.len() > 1 {
        eprintln!(
            "Defaulted container \"{first}\" out of: {}",
            names.join(", ")
        );
    }
    Ok(first.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_defaults_to_the_first_or_annotated() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(choose_container(&pod, None).unwrap(), "a");
        assert_eq!(choose_container(&pod, Some("b")).unwrap(), "b");
        let pod = json!({"metadata": {"annotations": {"kubectl.kubernetes.io/default-container": "b"}},
                         "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(choose_container(&pod, None).unwrap(), "b");
    }
}
