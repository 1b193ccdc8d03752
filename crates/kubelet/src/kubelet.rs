//! The pod runner of one node: registers the Node, watches the Pods bound
//! to it and runs one worker per Pod; on shutdown stops every Pod's
//! processes and sandbox but leaves the API objects, so the next start of
//! the server brings them back.

use crate::checkpoint::kill_stale_processes;
use crate::config::KubeletConfig;
use crate::events::EventRecorder;
use crate::network::SandboxNetwork;
use crate::node_status::{run_node_status, NodeFacts};
use crate::pod_io::KubeletPodIo;
use crate::pod_table::PodTable;
use crate::pod_worker::{run_pod_worker, NodeContext, PodMessage};
use crate::service_env::ServiceCache;
use api::registry::PODS;
use client::{Client, ListParams, WatcherEvent};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// One node's pod runner.
pub struct Kubelet {
    config: KubeletConfig,
    client: Client,
    network: Arc<dyn SandboxNetwork>,
    table: Arc<PodTable>,
}

impl Kubelet {
    /// Cheap: nothing runs until `run`.
    pub fn new(config: KubeletConfig, client: Client, network: Arc<dyn SandboxNetwork>) -> Kubelet {
        Kubelet {
            config,
            client,
            network,
            table: Arc::new(PodTable::default()),
        }
    }

    /// Logs, exec and attach of this node's Pods, for the API server.
    /// Usable before `run` (it answers that Pods are not running yet).
    pub fn pod_io(&self) -> Arc<dyn podio::PodIo> {
        Arc::new(KubeletPodIo {
            table: self.table.clone(),
            client: self.client.clone(),
        })
    }

    /// Run until `shutdown`; then stop every Pod's processes (SIGTERM, then
    /// SIGKILL after the configured shutdown grace) and remove the
    /// sandboxes.
    pub async fn run(self, shutdown: CancellationToken) {
        let pods_dir = self.config.pods_dir();
        let _ = std::fs::create_dir_all(&pods_dir);
        let stale = tokio::task::spawn_blocking({
            let dir = pods_dir.clone();
            move || kill_stale_processes(&dir)
        })
        .await
        .unwrap_or(0);
        if stale > 0 {
            tracing::info!(
                processes = stale,
                "stopped containers left by a previous server"
            );
        }
        let facts = NodeFacts::gather(
            &self.config.node_name,
            self.network.node_ip(),
            self.network.pod_cidr(),
            &self.config.data_dir,
        );
        let services = Arc::new(ServiceCache::default());
        tokio::spawn(services.clone().run(self.client.clone(), shutdown.clone()));
        let ctx = Arc::new(NodeContext {
            services,
            shell_bin: crate::images::prepare_shell_bin(&self.config.data_dir),
            host_resolv_conf: std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            node_ip: facts.node_ip,
            cpus: facts.cpus,
            memory_bytes: facts.memory_kib * 1024,
            events: EventRecorder::start(self.client.clone(), self.config.node_name.clone()),
            config: self.config.clone(),
            client: self.client.clone(),
            network: self.network.clone(),
            table: self.table.clone(),
        });
        let node_task = tokio::spawn(run_node_status(
            self.client.clone(),
            facts,
            self.config.heartbeat_interval,
            shutdown.clone(),
        ));
        let mut dispatcher = Dispatcher {
            ctx: ctx.clone(),
            workers: HashMap::new(),
            tasks: JoinSet::new(),
            finished: HashSet::new(),
            first_list: true,
        };
        let params = ListParams::fields(format!("spec.nodeName={}", self.config.node_name));
        let pods = client::watcher(self.client.clone(), &PODS, None, params);
        futures::pin_mut!(pods);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                event = pods.next() => match event {
                    Some(e) => dispatcher.on_event(e).await,
                    None => break,
                },
                Some(done) = dispatcher.tasks.join_next(), if !dispatcher.tasks.is_empty() => {
                    if let Ok(uid) = done {
                        dispatcher.workers.remove(&uid);
                        dispatcher.finished.insert(uid);
                    }
                }
            }
        }
        dispatcher.shutdown(self.config.shutdown_grace).await;
        let _ = node_task.await;
    }
}

struct WorkerHandle {
    inbox: mpsc::UnboundedSender<PodMessage>,
}

/// Routes the Pod watch to per-Pod workers.
struct Dispatcher {
    ctx: Arc<NodeContext>,
    workers: HashMap<String, WorkerHandle>,
    tasks: JoinSet<String>,
    /// Pods whose worker finished (deleted): late events about them must
    /// not start them again.
    finished: HashSet<String>,
    first_list: bool,
}

fn uid_of(pod: &Value) -> String {
    pod["metadata"]["uid"].as_str().unwrap_or("").to_string()
}

impl Dispatcher {
    fn is_ours(&self, pod: &Value) -> bool {
        pod["spec"]["nodeName"].as_str() == Some(self.ctx.config.node_name.as_str())
    }

    async fn on_event(&mut self, event: WatcherEvent) {
        match event {
            WatcherEvent::Restarted(items) => {
                let ours: Vec<&Value> = items.iter().filter(|p| self.is_ours(p)).collect();
                let present: HashSet<String> = ours.iter().map(|p| uid_of(p)).collect();
                if self.first_list {
                    self.first_list = false;
                    self.remove_orphans(&present).await;
                }
                let gone: Vec<String> = self
                    .workers
                    .keys()
                    .filter(|u| !present.contains(*u))
                    .cloned()
                    .collect();
                for uid in gone {
                    self.send(&uid, PodMessage::Gone);
                }
                self.finished.retain(|u| present.contains(u));
                for pod in ours {
                    self.apply(pod.clone());
                }
            }
            WatcherEvent::Applied(pod) => {
                if self.is_ours(&pod) {
                    self.apply(pod);
                } else {
                    let uid = uid_of(&pod);
                    self.send(&uid, PodMessage::Gone);
                }
            }
            WatcherEvent::Deleted(pod) => {
                let uid = uid_of(&pod);
                self.send(&uid, PodMessage::Gone);
            }
        }
    }

    fn send(&self, uid: &str, msg: PodMessage) {
        if let Some(w) = self.workers.get(uid) {
            let _ = w.inbox.send(msg);
        }
    }

    fn apply(&mut self, obj: Value) {
        let uid = uid_of(&obj);
        if uid.is_empty() || self.finished.contains(&uid) {
            return;
        }
        let pod: Pod = match client::typed(obj) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "pod not understood");
                return;
            }
        };
        if let Some(w) = self.workers.get(&uid) {
            let _ = w.inbox.send(PodMessage::Update(Box::new(pod)));
            return;
        }
        tracing::debug!(
            pod = pod.metadata.name.as_deref().unwrap_or(""),
            "pod worker starts"
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let ctx = self.ctx.clone();
        let worker_uid = uid.clone();
        self.tasks.spawn(async move {
            run_pod_worker(ctx, pod, rx).await;
            worker_uid
        });
        self.workers.insert(uid, WorkerHandle { inbox: tx });
    }

    /// Sandboxes and files of Pods that no longer exist (deleted while the
    /// server was down, or left by a crash during a deletion).
    async fn remove_orphans(&self, present: &HashSet<String>) {
        for sb in self.ctx.network.sandboxes() {
            if !present.contains(&sb.pod_uid) {
                if let Err(e) = self.ctx.network.remove_sandbox(&sb.pod_uid).await {
                    tracing::warn!(uid = %sb.pod_uid, error = %e, "remove orphaned sandbox");
                }
            }
        }
        if let Ok(dirs) = std::fs::read_dir(self.ctx.config.pods_dir()) {
            for d in dirs.flatten() {
                let name = d.file_name().to_string_lossy().into_owned();
                if !present.contains(&name) {
                    let _ = std::fs::remove_dir_all(d.path());
                }
            }
        }
    }

    /// Stop every Pod for the server's shutdown and wait for the workers.
    async fn shutdown(mut self, grace: Duration) {
        for w in self.workers.values() {
            let _ = w.inbox.send(PodMessage::Shutdown);
        }
        let all = async { while self.tasks.join_next().await.is_some() {} };
        // SIGKILL follows `grace`; the rest is sandbox removal.
        if tokio::time::timeout(grace + Duration::from_secs(10), all)
            .await
            .is_err()
        {
            tracing::warn!("some pods did not stop in time");
        }
    }
}
