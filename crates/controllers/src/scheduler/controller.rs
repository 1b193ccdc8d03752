//! The scheduler's loop: unbound Pods are queued (again whenever a node
//! changes); a reconcile picks a node and binds through `pods/binding`,
//! as kube-scheduler does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::plan::{needs_scheduling, node_load, plan_placement, scheduled_condition, Placement};
use crate::caches::{all_synced, Caches};
use crate::events::{EventRecorder, EventType};
use crate::runtime::{run_worker, Action, Cache, Change, ObjectRef, TypedApi, WorkQueue};
use crate::ControllerError;

pub struct Scheduler {
    pods: TypedApi<Pod>,
    nodes: Arc<Cache<Node>>,
    queue: Arc<WorkQueue<ObjectRef>>,
    /// Pods bound by us that the cache does not show bound yet (uid ->
    /// node): counted in the nodes' load so a burst of Pods spreads.
    assumed: Mutex<HashMap<String, String>>,
    events: EventRecorder,
}

impl Scheduler {
    pub fn new(client: &client::Client, caches: &Caches) -> Scheduler {
        let queue = WorkQueue::new();
        let q = queue.clone();
        caches.pods.on_change(move |c| {
            if let Change::Applied { new, .. } = c {
                if needs_scheduling(new) {
                    q.add(ObjectRef::of(&new.metadata));
                }
            }
        });
        // A node that appears or becomes Ready may take waiting Pods.
        let q = queue.clone();
        let pods = caches.pods.clone();
        caches.nodes.on_change(move |c| {
            if let Change::Applied { .. } = c {
                for pod in pods.list(None).iter().filter(|p| needs_scheduling(p)) {
                    q.add(ObjectRef::of(&pod.metadata));
                }
            }
        });
        Scheduler {
            pods: caches.pods_api(client),
            nodes: caches.nodes.clone(),
            queue,
            assumed: Mutex::new(HashMap::new()),
            events: EventRecorder::new(client, super::plan::DEFAULT_SCHEDULER),
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let ready = async {
            all_synced(&[&*self.pods.cache, &*self.nodes]).await;
        };
        let this = &self;
        run_worker("scheduler", self.queue.clone(), ready, shutdown, |key| {
            this.reconcile(key)
        })
        .await;
    }

    async fn reconcile(&self, key: ObjectRef) -> Result<Action, ControllerError> {
        let Some(pod) = self.pods.cache.get_ref(&key) else {
            return Ok(Action::done());
        };
        if !needs_scheduling(&pod) {
            return Ok(Action::done());
        }
        // Bound by us a moment ago; the cache has not caught up yet.
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if self.assumed.lock().unwrap().contains_key(&uid) {
            return Ok(Action::done());
        }
        let nodes = self.nodes.list(None);
        let nodes: Vec<&Node> = nodes.iter().map(|n| n.as_ref()).collect();
        let all = self.pods.cache.list(None);
        let placement = {
            let mut assumed = self.assumed.lock().unwrap();
            let by_uid: HashMap<&str, &Pod> = all
                .iter()
                .filter_map(|p| Some((p.metadata.uid.as_deref()?, p.as_ref())))
                .collect();
            // Forget assumptions the cache has caught up with.
            assumed.retain(|uid, _| {
                by_uid
                    .get(uid.as_str())
                    .is_some_and(|p| needs_scheduling(p))
            });
            let load = node_load(all.iter().map(|p| p.as_ref()), assumed.values());
            plan_placement(&pod, &nodes, &load)
        };

        if let Some(conditions) = scheduled_condition(&pod, &placement, jiff::Timestamp::now()) {
            if let Placement::Unschedulable(message) = &placement {
                self.events.record(
                    &*pod,
                    EventType::Warning,
                    "FailedScheduling",
                    message.clone(),
                );
            }
            // Written before the binding, so the kubelet finds the Pod
            // already marked scheduled when it first sees it.
            self.pods
                .write_status(&pod, |p| {
                    p.status.get_or_insert_with(Default::default).conditions =
                        Some(conditions.clone());
                })
                .await?;
        }
        let Placement::Node(node) = placement else {
            tracing::debug!(pod = %key, "unschedulable");
            return Ok(Action::done());
        };
        match self.bind(&key, &node).await {
            Ok(()) => {
                self.events.record(
                    &*pod,
                    EventType::Normal,
                    "Scheduled",
                    format!("Successfully assigned {key} to {node}"),
                );
                self.assumed.lock().unwrap().insert(uid, node);
                Ok(Action::done())
            }
            // Bound meanwhile (409 "already assigned") or deleted: done.
            Err(e) if e.is_conflict() || e.is_not_found() => Ok(Action::done()),
            Err(e) => Err(e),
        }
    }

    async fn bind(&self, pod: &ObjectRef, node: &str) -> Result<(), ControllerError> {
        let client = &self.pods.client;
        let path = format!(
            "{}/binding",
            api::registry::PODS.path(pod.ns(), Some(&pod.name))
        );
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": pod.name, "namespace": pod.namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        let resp = client
            .http()
            .post(client.url(&path))
            .json(&binding)
            .send()
            .await
            .map_err(|e| client::ClientError::Unreachable {
                url: client.base_url().to_string(),
                detail: e.to_string(),
            })?;
        if resp.status().is_success() {
            return Ok(());
        }
        let code = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        Err(ControllerError::from(client::ClientError::Status {
            code,
            reason: body["reason"].as_str().unwrap_or_default().to_string(),
            message: body["message"]
                .as_str()
                .unwrap_or("binding failed")
                .to_string(),
            body,
        }))
    }
}
