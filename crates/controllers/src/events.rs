//! Events about what the controllers did (`ScalingReplicaSet`,
//! `SuccessfulCreate`, `Scheduled`, ...), as `describe` shows them. Best
//! effort: posted in the background, never slowing or failing a reconcile.

use api::registry::EVENTS;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{Metadata, Resource};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Posts Events in the name of one component (`source.component`).
#[derive(Clone)]
pub struct EventRecorder {
    client: client::Client,
    component: &'static str,
}

impl EventRecorder {
    pub fn new(client: &client::Client, component: &'static str) -> EventRecorder {
        EventRecorder {
            client: client.clone(),
            component,
        }
    }

    /// Record an Event about `obj` (in the background).
    pub fn record<K>(&self, obj: &K, type_: EventType, reason: &str, message: String)
    where
        K: Resource + Metadata<Ty = ObjectMeta>,
    {
        let event = event_about(
            obj,
            self.component,
            type_,
            reason,
            &message,
            jiff::Timestamp::now(),
        );
        let client = self.client.clone();
        let ns = event["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        tokio::spawn(async move {
            if let Err(e) = client.create(&EVENTS, Some(&ns), &event).await {
                tracing::debug!(error = %e, "event not recorded");
            }
        });
    }
}

/// The core/v1 Event Kubernetes' event recorder writes: named
/// `<object>.<hex nanoseconds>`, in the object's namespace (`default` for
/// cluster-scoped objects), counted once.
pub fn event_about<K>(
    obj: &K,
    component: &str,
    type_: EventType,
    reason: &str,
    message: &str,
    now: jiff::Timestamp,
) -> Value
where
    K: Resource + Metadata<Ty = ObjectMeta>,
{
    let meta = obj.metadata();
    let name = meta.name.clone().unwrap_or_default();
    let namespace = meta.namespace.clone();
    let time = jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string();
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{name}.{:x}", now.as_nanosecond()),
            "namespace": namespace.clone().unwrap_or_else(|| "default".into()),
        },
        "involvedObject": {
            "apiVersion": K::API_VERSION,
            "kind": K::KIND,
            "name": name,
            "namespace": namespace,
            "uid": meta.uid,
            "resourceVersion": meta.resource_version,
        },
        "reason": reason,
        "message": message,
        "type": type_.as_str(),
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": "",
        "firstTimestamp": time,
        "lastTimestamp": time,
        "count": 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Node, Pod};

    #[test]
    fn events_name_their_object() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("web-abc".into()),
                namespace: Some("shop".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let now = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let e = event_about(
            &pod,
            "default-scheduler",
            EventType::Normal,
            "Scheduled",
            "ok",
            now,
        );
        assert_eq!(e["metadata"]["namespace"], "shop");
        assert!(e["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("web-abc."));
        assert_eq!(e["involvedObject"]["kind"], "Pod");
        assert_eq!(e["involvedObject"]["uid"], "u1");
        assert_eq!(e["source"]["component"], "default-scheduler");
        assert_eq!(e["lastTimestamp"], "2023-11-14T22:13:20Z");
        let node = Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let e = event_about(&node, "c", EventType::Warning, "R", "m", now);
        assert_eq!(e["metadata"]["namespace"], "default");
        assert_eq!(e["type"], "Warning");
    }
}
