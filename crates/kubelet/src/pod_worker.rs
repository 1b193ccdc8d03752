//! One task per Pod. It owns everything about the Pod on this node: the
//! sandbox, the container processes and their restarts, the stop on
//! deletion, and the status it publishes. Its loop: act on what is due
//! (`reconcile`), publish the status, then wait for the next message,
//! process exit, probe result or timer. Nothing in it sleeps or polls:
//! every wait is on an event or a deadline.
//!
//! Starting and ending container runs is in `container_runs.rs`, stopping
//! in `pod_stop.rs`.

use crate::checkpoint::Checkpoint;
use crate::config::KubeletConfig;
use crate::container_slot::Slot;
use crate::events::EventRecorder;
use crate::network::{PodSandbox, SandboxNetwork};
use crate::pod_files::{render_pod_files, write_pod_files, DnsSettings};
use crate::pod_table::{ContainerEntry, PodEntry, PodTable};
use crate::probes::ProbeUpdate;
use crate::status::{pod_status, PodView};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// What every Pod worker of this node shares.
pub(crate) struct NodeContext {
    pub config: KubeletConfig,
    pub client: client::Client,
    pub network: Arc<dyn SandboxNetwork>,
    pub table: Arc<PodTable>,
    pub events: EventRecorder,
    pub node_ip: Ipv4Addr,
    pub cpus: u64,
    pub memory_bytes: u64,
    /// See `images::prepare_shell_bin`.
    pub shell_bin: Option<PathBuf>,
    pub host_resolv_conf: String,
    pub services: Arc<crate::service_env::ServiceCache>,
}

/// What the node's Pod watch tells a worker.
pub(crate) enum PodMessage {
    /// The Pod as the API has it now.
    Update(Box<Pod>),
    /// The Pod is gone from the API.
    Gone,
    /// The server is shutting down: stop the processes, keep the Pod.
    Shutdown,
}

/// A container of the Pod: init containers and app containers by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotId {
    Init(usize),
    App(usize),
}

/// What container runs report to their worker.
pub(crate) enum SlotEvent {
    Exited {
        slot: SlotId,
        instance: u32,
        code: i32,
    },
    Probe {
        slot: SlotId,
        instance: u32,
        update: ProbeUpdate,
    },
}

/// Why the worker is stopping the Pod; decides what happens after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum StopMode {
    /// Deleted gracefully: remove the Pod object when done.
    Delete,
    /// Server shutdown: keep the Pod object and its files.
    Shutdown,
    /// The object is already gone: remove the files.
    Gone,
}

pub(crate) struct Stopping {
    pub mode: StopMode,
}

pub(crate) struct PodWorker {
    pub ctx: Arc<NodeContext>,
    pub pod: Pod,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    /// `<data_dir>/pods/<uid>`.
    pub dir: PathBuf,
    pub entry: Arc<PodEntry>,
    pub init: Vec<Slot>,
    pub app: Vec<Slot>,
    pub sandbox: Option<PodSandbox>,
    pub pod_ip: Option<Ipv4Addr>,
    pub sandbox_failures: u32,
    pub sandbox_retry_at: Option<Instant>,
    pub start_time: Timestamp,
    pub terminal_phase: Option<&'static str>,
    /// A Pod that had finished before this server started: its status
    /// stays as the previous server wrote it.
    pub frozen: bool,
    pub stopping: Option<Stopping>,
    pub checkpoint: Checkpoint,
    pub slot_events: mpsc::UnboundedSender<SlotEvent>,
    slot_events_rx: Option<mpsc::UnboundedReceiver<SlotEvent>>,
    status_tx: watch::Sender<Option<Value>>,
    /// Our conditions as last published (their transition times).
    published_conditions: Vec<PodCondition>,
}

const DEFAULT_GRACE: Duration = Duration::from_secs(30);

impl PodWorker {
    pub(crate) fn new(ctx: Arc<NodeContext>, pod: Pod) -> PodWorker {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let dir = ctx.config.pod_dir(&uid);
        let spec = pod.spec.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let now = Timestamp::now();
        let previous =
            |list: &Option<Vec<ContainerStatus>>, name: &str| -> Option<ContainerStatus> {
                list.iter().flatten().find(|s| s.name == name).cloned()
            };
        let has_init = spec.init_containers.as_ref().is_some_and(|c| !c.is_empty());
        let entry_for = |name: &str| {
            Arc::new(ContainerEntry {
                name: name.to_string(),
                dir: dir.join(name),
                live: Default::default(),
            })
        };
        let init: Vec<Slot> = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| {
                let prev = previous(&status.init_container_statuses, &c.name);
                Slot::new(
                    c.clone(),
                    true,
                    "PodInitializing",
                    entry_for(&c.name),
                    prev.as_ref(),
                    now,
                )
            })
            .collect();
        let waiting = if has_init {
            "PodInitializing"
        } else {
            "ContainerCreating"
        };
        let app: Vec<Slot> = spec
            .containers
            .iter()
            .map(|c| {
                let prev = previous(&status.container_statuses, &c.name);
                Slot::new(
                    c.clone(),
                    false,
                    waiting,
                    entry_for(&c.name),
                    prev.as_ref(),
                    now,
                )
            })
            .collect();
        let terminal_phase = match status.phase.as_deref() {
            Some("Succeeded") => Some("Succeeded"),
            Some("Failed") => Some("Failed"),
            _ => None,
        };
        let entry = Arc::new(PodEntry {
            uid: uid.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
            containers: app
                .iter()
                .chain(init.iter())
                .map(|s| s.entry.clone())
                .collect(),
            phase: Mutex::new(status.phase.clone().unwrap_or_else(|| "Pending".into())),
            exec_pids: Mutex::new(Default::default()),
        });
        ctx.table.insert(entry.clone());
        let (status_tx, status_rx) = watch::channel(None);
        tokio::spawn(crate::status_writer::run_status_writer(
            ctx.client.clone(),
            namespace.clone(),
            name.clone(),
            uid.clone(),
            status_rx,
        ));
        let (tx, rx) = mpsc::unbounded_channel();
        PodWorker {
            start_time: status.start_time.as_ref().map(|t| t.0).unwrap_or(now),
            published_conditions: Vec::new(),
            checkpoint: Checkpoint::new(&dir),
            ctx,
            pod,
            uid,
            namespace,
            name,
            dir,
            entry,
            init,
            app,
            sandbox: None,
            pod_ip: None,
            sandbox_failures: 0,
            sandbox_retry_at: None,
            frozen: terminal_phase.is_some(),
            terminal_phase,
            stopping: None,
            slot_events: tx,
            slot_events_rx: Some(rx),
            status_tx,
        }
    }

    /// Run the Pod until it is deleted or the server stops.
    pub(crate) async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<PodMessage>) {
        let mut slot_events = self.slot_events_rx.take().expect("run once");
        if self.pod.metadata.deletion_timestamp.is_some() {
            let grace = self.deletion_grace();
            self.begin_stop(StopMode::Delete, grace);
        }
        loop {
            self.reconcile().await;
            if self.stopping.is_some() && self.all_stopped() {
                self.finish().await;
                return;
            }
            self.publish_status();
            let deadline = self.next_deadline();
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(PodMessage::Update(pod)) => self.on_update(*pod),
                    Some(PodMessage::Gone) => {
                        let grace = self.deletion_grace();
                        self.begin_stop(StopMode::Gone, grace);
                    }
                    Some(PodMessage::Shutdown) | None => {
                        let grace = self.ctx.config.shutdown_grace;
                        self.begin_stop(StopMode::Shutdown, grace);
                    }
                },
                Some(event) = slot_events.recv() => self.on_slot_event(event),
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    pub(crate) fn slot_mut(&mut self, id: SlotId) -> &mut Slot {
        match id {
            SlotId::Init(i) => &mut self.init[i],
            SlotId::App(i) => &mut self.app[i],
        }
    }

    fn all_slots(&self) -> impl Iterator<Item = &Slot> {
        self.init.iter().chain(self.app.iter())
    }

    fn all_stopped(&self) -> bool {
        self.all_slots().all(|s| s.run.is_none())
    }

    pub(crate) fn restart_policy(&self) -> String {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".into())
    }

    /// The grace period of a deletion: what the API recorded, else the
    /// Pod's terminationGracePeriodSeconds, else 30s.
    fn deletion_grace(&self) -> Duration {
        let secs = self.pod.metadata.deletion_grace_period_seconds.or_else(|| {
            self.pod
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        });
        secs.map(|s| Duration::from_secs(s.max(0) as u64))
            .unwrap_or(DEFAULT_GRACE)
    }

    pub(crate) fn pod_grace(&self) -> Duration {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .map(|s| Duration::from_secs(s.max(0) as u64))
            .unwrap_or(DEFAULT_GRACE)
    }

    pub(crate) fn event(
        &self,
        container: Option<&str>,
        warning: bool,
        reason: &str,
        message: &str,
    ) {
        self.ctx
            .events
            .record(&self.pod, container, warning, reason, message);
    }

    /// Do whatever is due now: SIGKILL after grace, the sandbox, container
    /// starts in order, the end of a finished Pod.
    async fn reconcile(&mut self) {
        let now = Instant::now();
        for slot in self.init.iter_mut().chain(self.app.iter_mut()) {
            if let Some(run) = &mut slot.run {
                if run.kill_at.is_some_and(|t| t <= now) {
                    run.signal(libc::SIGKILL);
                    run.kill_at = None;
                }
            }
        }
        if self.stopping.is_some() || self.terminal_phase.is_some() {
            return;
        }
        self.show_image_pull_backoff(now);
        if self.sandbox.is_none() {
            if self.sandbox_retry_at.is_some_and(|t| t > now) {
                return;
            }
            let t0 = std::time::Instant::now();
            if !self.create_sandbox().await {
                return;
            }
            tracing::debug!(pod = %self.name, elapsed_us = t0.elapsed().as_micros() as u64, "sandbox ready");
        }
        for i in 0..self.init.len() {
            let slot = &self.init[i];
            if slot.succeeded() {
                continue;
            }
            if slot.run.is_none() && slot.start_at.is_some_and(|t| t <= now) {
                self.start_container(SlotId::Init(i)).await;
            }
            let slot = &self.init[i];
            if slot.run.is_none() && slot.start_at.is_none() && !slot.succeeded() {
                // Failed for good (restartPolicy Never): the Pod has failed.
                self.check_finished().await;
            }
            // One init container at a time, in order.
            return;
        }
        for i in 0..self.app.len() {
            let slot = &self.app[i];
            if slot.run.is_none() && slot.start_at.is_some_and(|t| t <= now) {
                let t0 = std::time::Instant::now();
                self.start_container(SlotId::App(i)).await;
                tracing::debug!(pod = %self.name, elapsed_us = t0.elapsed().as_micros() as u64, "container started");
            }
        }
        self.check_finished().await;
    }

    /// Make the sandbox and the Pod's /etc files. `false`: try later.
    async fn create_sandbox(&mut self) -> bool {
        let result = self
            .ctx
            .network
            .create_sandbox(&self.uid, &self.namespace, &self.name)
            .await;
        let written = result.and_then(|sb| {
            let dns = DnsSettings {
                cluster_dns: self.ctx.config.cluster_dns,
                cluster_domain: &self.ctx.config.cluster_domain,
                host_resolv_conf: &self.ctx.host_resolv_conf,
            };
            let files = render_pod_files(&self.pod, sb.ip, &dns);
            write_pod_files(&self.files_dir(), &files)
                .map(|_| sb)
                .map_err(|e| format!("write the Pod's /etc files: {e}"))
        });
        match written {
            Ok(sb) => {
                self.pod_ip = Some(sb.ip);
                self.sandbox = Some(sb);
                self.sandbox_failures = 0;
                self.sandbox_retry_at = None;
                true
            }
            Err(e) => {
                self.sandbox_failures += 1;
                let wait = Duration::from_millis(500 * (1 << self.sandbox_failures.min(6)));
                self.sandbox_retry_at = Some(Instant::now() + wait);
                tracing::warn!(pod = %self.name, namespace = %self.namespace, error = %e, "pod sandbox");
                self.event(
                    None,
                    true,
                    "FailedCreatePodSandBox",
                    &format!("Failed to create pod sandbox: {e}"),
                );
                false
            }
        }
    }

    /// `<pod dir>/_sandbox`: the Pod's /etc files and process list.
    pub(crate) fn files_dir(&self) -> PathBuf {
        self.dir.join("_sandbox")
    }

    /// When nothing runs and nothing will start again, the Pod is
    /// Succeeded or Failed for good: its sandbox goes (its IP is free).
    async fn check_finished(&mut self) {
        if self.all_slots().any(|s| s.run.is_some()) {
            return;
        }
        let policy = self.restart_policy();
        let init: Vec<_> = self.init.iter().map(Slot::view).collect();
        let app: Vec<_> = self.app.iter().map(Slot::view).collect();
        let phase = crate::status::pod_phase(&policy, &init, &app);
        if phase == "Succeeded" || phase == "Failed" {
            self.terminal_phase = Some(if phase == "Succeeded" {
                "Succeeded"
            } else {
                "Failed"
            });
            for slot in self.init.iter_mut().chain(self.app.iter_mut()) {
                slot.start_at = None;
            }
            if let Err(e) = self.ctx.network.remove_sandbox(&self.uid).await {
                tracing::warn!(pod = %self.name, error = %e, "remove sandbox of a finished pod");
            }
            self.sandbox = None;
        }
    }

    fn on_update(&mut self, pod: Pod) {
        let deleting = pod.metadata.deletion_timestamp.is_some();
        let new_images: Vec<(SlotId, String)> = {
            let spec = pod.spec.clone().unwrap_or_default();
            let mut v = Vec::new();
            for (i, c) in spec.init_containers.iter().flatten().enumerate() {
                v.push((SlotId::Init(i), c.image.clone().unwrap_or_default()));
            }
            for (i, c) in spec.containers.iter().enumerate() {
                v.push((SlotId::App(i), c.image.clone().unwrap_or_default()));
            }
            v
        };
        self.pod = pod;
        if deleting {
            let grace = self.deletion_grace();
            self.begin_stop(StopMode::Delete, grace);
            return;
        }
        if self.terminal_phase.is_some() {
            return;
        }
        // A Pod's container images may change (`set image`): the container
        // restarts with the new one.
        let grace = self.pod_grace();
        for (id, image) in new_images {
            let exists = match id {
                SlotId::Init(i) => i < self.init.len(),
                SlotId::App(i) => i < self.app.len(),
            };
            if !exists || self.slot_mut(id).spec.image.as_deref() == Some(image.as_str()) {
                continue;
            }
            let slot = self.slot_mut(id);
            slot.spec.image = Some(image.clone());
            slot.image = crate::images::parse_image(&image);
            slot.pulled = false;
            if slot.run.is_some() {
                slot.restart_now = true;
                let name = slot.name().to_string();
                self.stop_run(
                    id,
                    grace,
                    Some(format!(
                        "Container {name} definition changed, will be restarted"
                    )),
                );
                self.event(
                    Some(&name),
                    false,
                    "Killing",
                    &format!("Container {name} definition changed, will be restarted"),
                );
            } else if slot.start_at.is_some() {
                slot.start_at = Some(Instant::now());
            }
        }
    }

    /// The earliest moment something is due.
    fn next_deadline(&self) -> Instant {
        let mut next = Instant::now() + Duration::from_secs(3600);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = next.min(t);
            }
        };
        for slot in self.all_slots() {
            if let Some(run) = &slot.run {
                consider(run.kill_at);
            } else if self.stopping.is_none() && self.terminal_phase.is_none() {
                consider(slot.start_at);
            }
            consider(slot.pull_backoff_at);
        }
        if self.stopping.is_none() {
            consider(self.sandbox_retry_at);
        }
        next
    }

    /// Publish the status for the writer (never waits on the API).
    fn publish_status(&mut self) {
        let stopping_quietly = self
            .stopping
            .as_ref()
            .is_some_and(|s| s.mode != StopMode::Delete);
        if self.frozen || stopping_quietly {
            return;
        }
        let init: Vec<_> = self.init.iter().map(Slot::view).collect();
        let app: Vec<_> = self.app.iter().map(Slot::view).collect();
        let api_conditions = self
            .pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let mut previous = self.published_conditions.clone();
        previous.extend(
            api_conditions
                .into_iter()
                .filter(|c| !self.published_conditions.iter().any(|p| p.type_ == c.type_)),
        );
        let status = pod_status(&PodView {
            pod: &self.pod,
            previous: &previous,
            init: &init,
            app: &app,
            pod_ip: self.pod_ip,
            host_ip: self.ctx.node_ip,
            start_time: self.start_time,
            sandbox_ready: self.sandbox.is_some(),
            terminal_phase: self.terminal_phase,
            now: Timestamp::now(),
        });
        const OURS: [&str; 4] = [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
        ];
        self.published_conditions = status
            .conditions
            .iter()
            .flatten()
            .filter(|c| OURS.contains(&c.type_.as_str()))
            .cloned()
            .collect();
        if let Some(phase) = &status.phase {
            *self.entry.phase.lock().expect("phase lock") = phase.clone();
        }
        let Ok(value) = serde_json::to_value(&status) else {
            return;
        };
        self.status_tx.send_if_modified(|current| {
            if current.as_ref() == Some(&value) {
                false
            } else {
                *current = Some(value);
                true
            }
        });
    }
}

/// Run a worker for `pod`; returns when the Pod is finished on this node.
pub(crate) async fn run_pod_worker(
    ctx: Arc<NodeContext>,
    pod: Pod,
    inbox: mpsc::UnboundedReceiver<PodMessage>,
) {
    PodWorker::new(ctx, pod).run(inbox).await;
}
