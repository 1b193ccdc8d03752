//! Events about Pods (`Pulled`, `Created`, `Started`, `Killing`,
//! `BackOff`, `Unhealthy`, ...) as the kubelet reports them, for
//! `describe pod`. Sent by a background task: recording never waits on the
//! API, and a full queue drops events rather than slowing a Pod down.

use api::registry::EVENTS;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Clone)]
pub(crate) struct EventRecorder {
    tx: mpsc::Sender<Value>,
    node: String,
}

impl EventRecorder {
    /// Start the sender task; it ends when every recorder is dropped.
    pub(crate) fn start(client: client::Client, node: String) -> EventRecorder {
        let (tx, mut rx) = mpsc::channel::<Value>(1024);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                // Let the Pod's status write go first: a Pod's start is
                // timed by when it reads Ready, events are for humans.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                for event in batch {
                    let ns = event["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("default")
                        .to_string();
                    if let Err(e) = client.create(&EVENTS, Some(&ns), &event).await {
                        tracing::debug!(error = %e, "event not recorded");
                    }
                }
            }
        });
        EventRecorder { tx, node }
    }

    /// `container`: the event is about one container (its fieldPath).
    pub(crate) fn record(
        &self,
        pod: &Pod,
        container: Option<&str>,
        warning: bool,
        reason: &str,
        message: &str,
    ) {
        let event = event_object(
            pod,
            container,
            warning,
            reason,
            message,
            &self.node,
            jiff::Timestamp::now(),
        );
        let _ = self.tx.try_send(event);
    }
}

pub(crate) fn event_object(
    pod: &Pod,
    container: Option<&str>,
    warning: bool,
    reason: &str,
    message: &str,
    node: &str,
    now: jiff::Timestamp,
) -> Value {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let ns = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let field_path = container.map(|c| {
        let is_init = pod
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.as_ref())
            .is_some_and(|ic| ic.iter().any(|x| x.name == c));
        if is_init {
            format!("spec.initContainers{{{c}}}")
        } else {
            format!("spec.containers{{{c}}}")
        }
    });
    let stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut involved = json!({
        "kind": "Pod",
        "namespace": ns,
        "name": name,
        "uid": pod.metadata.uid.clone().unwrap_or_default(),
        "apiVersion": "v1",
        "resourceVersion": pod.metadata.resource_version.clone().unwrap_or_default(),
    });
    if let Some(fp) = field_path {
        involved["fieldPath"] = json!(fp);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{name}.{:016x}", rand::random::<u64>()),
            "namespace": ns,
        },
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": {"component": "kubelet", "host": node},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "type": if warning { "Warning" } else { "Normal" },
        "reportingComponent": "kubelet",
        "reportingInstance": node,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_point_at_the_container() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "default", "uid": "u1"},
            "spec": {"containers": [{"name": "web"}], "initContainers": [{"name": "setup"}]}
        }))
        .unwrap();
        let now: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let e = event_object(
            &pod,
            Some("web"),
            false,
            "Started",
            "Started container web",
            "minik8s-node",
            now,
        );
        assert_eq!(e["involvedObject"]["fieldPath"], "spec.containers{web}");
        assert_eq!(e["type"], "Normal");
        assert_eq!(e["source"]["host"], "minik8s-node");
        assert_eq!(e["lastTimestamp"], "2026-11-26T10:00:00Z");
        assert!(e["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("web-1."));
        let e = event_object(&pod, Some("setup"), true, "BackOff", "m", "n", now);
        assert_eq!(
            e["involvedObject"]["fieldPath"],
            "spec.initContainers{setup}"
        );
        assert_eq!(e["type"], "Warning");
    }
}
