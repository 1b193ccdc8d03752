//! One container of a Pod as its worker tracks it across starts: current
//! state, last termination, restart count, back-off, readiness. The
//! decisions about restarts are pure functions here.

use crate::backoff::CrashBackoff;
use crate::container_io::ContainerIo;
use crate::images::{parse_image, ImageRef};
use crate::logs::LogProgress;
use crate::pod_table::{ContainerEntry, ContainerLive, LiveState, RunningProcess};
use crate::status::{ContainerView, RunState, Termination};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, ContainerStatus};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A container process the worker started.
pub(crate) struct Run {
    /// Which start this is (0 for the first); also `<n>.log`.
    pub instance: u32,
    pub pid: i32,
    /// The process' start time (/proc), so a signal never reaches a later
    /// process that got the same pid.
    pub start_time: u64,
    pub started_at: Timestamp,
    pub container_id: String,
    pub io: Arc<ContainerIo>,
    pub tty: bool,
    /// Cancels the probe loop of this start.
    pub probes: CancellationToken,
    /// After SIGTERM: when SIGKILL follows.
    pub kill_at: Option<Instant>,
    /// Why the worker stopped it (for the termination message).
    pub stop_reason: Option<String>,
    pub log: watch::Receiver<LogProgress>,
    /// What exec inherits.
    pub env: Vec<(String, String)>,
    pub working_dir: String,
}

pub(crate) struct Slot {
    pub spec: Container,
    pub is_init: bool,
    pub image: ImageRef,
    pub entry: Arc<ContainerEntry>,
    pub state: RunState,
    pub last_termination: Option<Termination>,
    /// Instance number of `last_termination`.
    pub last_instance: Option<u32>,
    pub restart_count: u32,
    /// The number the next start gets.
    pub next_instance: u32,
    /// The image was "pulled" (imageID is reported from then on).
    pub pulled: bool,
    pub ready: bool,
    pub started: bool,
    pub backoff: CrashBackoff,
    pub image_backoff: CrashBackoff,
    /// When the last run ended (for the back-off).
    pub finished: Option<Instant>,
    /// When the next start (or pull) may happen; `None`: not scheduled.
    pub start_at: Option<Instant>,
    /// When `ErrImagePull` turns into `ImagePullBackOff`.
    pub pull_backoff_at: Option<Instant>,
    pub run: Option<Run>,
    /// Restart without back-off after the current run (spec changed).
    pub restart_now: bool,
}

/// How long `ErrImagePull` shows before `ImagePullBackOff`.
pub(crate) const ERR_IMAGE_PULL_SHOWN: Duration = Duration::from_secs(1);

impl Slot {
    /// A container that has not run on this node yet. With `previous` (the
    /// Pod's status from before a server restart) the counts continue.
    pub(crate) fn new(
        spec: Container,
        is_init: bool,
        waiting_reason: &str,
        entry: Arc<ContainerEntry>,
        previous: Option<&ContainerStatus>,
        now: Timestamp,
    ) -> Slot {
        let image = parse_image(spec.image.as_deref().unwrap_or(""));
        let mut slot = Slot {
            spec,
            is_init,
            image,
            entry,
            state: RunState::Waiting {
                reason: waiting_reason.to_string(),
                message: None,
            },
            last_termination: None,
            last_instance: None,
            restart_count: 0,
            next_instance: 0,
            pulled: false,
            ready: false,
            started: false,
            backoff: CrashBackoff::default(),
            image_backoff: CrashBackoff::default(),
            finished: None,
            start_at: Some(Instant::now()),
            pull_backoff_at: None,
            run: None,
            restart_now: false,
        };
        if let Some(prev) = previous {
            slot.adopt_previous(prev, now);
        }
        slot.publish_live();
        slot
    }

    /// Continue from the status a previous server wrote: its processes were
    /// stopped with the server, so a container that was running counts as
    /// terminated and starts again with the next restart count.
    fn adopt_previous(&mut self, prev: &ContainerStatus, now: Timestamp) {
        let state = prev.state.clone().unwrap_or_default();
        let ran = state.running.is_some()
            || state.terminated.is_some()
            || prev
                .last_state
                .as_ref()
                .is_some_and(|s| s.terminated.is_some());
        if !ran {
            return;
        }
        let count = prev.restart_count.max(0) as u32;
        self.restart_count = count;
        self.next_instance = count + 1;
        self.pulled = true;
        let from_api = |t: &k8s_openapi::api::core::v1::ContainerStateTerminated| Termination {
            exit_code: t.exit_code,
            signal: t.signal,
            reason: t
                .reason
                .clone()
                .unwrap_or_else(|| Termination::reason_for(t.exit_code).into()),
            message: t.message.clone(),
            started_at: t.started_at.as_ref().map(|s| s.0),
            finished_at: t.finished_at.as_ref().map(|s| s.0).unwrap_or(now),
            container_id: t.container_id.clone(),
        };
        if let Some(r) = &state.running {
            self.last_termination = Some(Termination {
                exit_code: 137,
                signal: None,
                reason: "Error".into(),
                message: Some("the container's process stopped when minik8s restarted".into()),
                started_at: r.started_at.as_ref().map(|s| s.0),
                finished_at: now,
                container_id: prev.container_id.clone(),
            });
            self.last_instance = Some(count);
        } else if let Some(t) = &state.terminated {
            let term = from_api(t);
            if self.is_init && t.exit_code == 0 {
                // A finished init container stays finished.
                self.state = RunState::Terminated(term);
                self.start_at = None;
                self.next_instance = count;
                self.last_instance = prev
                    .last_state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map(|_| count.saturating_sub(1));
                self.last_termination = prev
                    .last_state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map(from_api);
                return;
            }
            self.last_termination = Some(term);
            self.last_instance = Some(count);
        } else if let Some(t) = prev.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
            self.last_termination = Some(from_api(t));
            self.last_instance = Some(count);
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.spec.name
    }

    pub(crate) fn view(&self) -> ContainerView {
        ContainerView {
            name: self.spec.name.clone(),
            image: self.image.canonical(),
            image_id: if self.pulled {
                self.image.image_id()
            } else {
                String::new()
            },
            state: self.state.clone(),
            last_termination: self.last_termination.clone(),
            restart_count: self.restart_count,
            ready: self.ready,
            started: self.started,
        }
    }

    /// Mirror the state into the table `logs`/`exec`/`attach` read.
    pub(crate) fn publish_live(&self) {
        let state = match &self.state {
            RunState::Waiting { reason, .. } => LiveState::Waiting(reason.clone()),
            RunState::Running { .. } => LiveState::Running(
                self.run
                    .as_ref()
                    .map(|r| r.instance)
                    .unwrap_or(self.restart_count),
            ),
            RunState::Terminated(_) => LiveState::Terminated(self.restart_count),
        };
        let running = self.run.as_ref().map(|r| RunningProcess {
            instance: r.instance,
            pid: r.pid,
            io: r.io.clone(),
            log: r.log.clone(),
            env: r.env.clone(),
            working_dir: r.working_dir.clone(),
        });
        *self.entry.live.lock().expect("live lock") = ContainerLive {
            state,
            last_terminated: self.last_instance,
            running,
        };
    }

    /// Whether this container has completed for good (init containers:
    /// exited 0).
    pub(crate) fn succeeded(&self) -> bool {
        matches!(&self.state, RunState::Terminated(t) if t.exit_code == 0)
    }
}

impl Run {
    /// Signal the run's process group if the process is still the one
    /// started.
    pub(crate) fn signal(&self, signal: libc::c_int) {
        if crate::process::process_start_time(self.pid) == Some(self.start_time) {
            crate::process::signal_tree(self.pid, signal);
        }
    }
}

/// Whether a container that exited with `exit_code` starts again.
/// Init containers of an `Always` Pod restart only on failure.
pub(crate) fn should_restart(restart_policy: &str, is_init: bool, exit_code: i32) -> bool {
    match restart_policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ if is_init => exit_code != 0,
        _ => true,
    }
}

/// The waiting message of a container in back-off.
pub(crate) fn crash_loop_message(
    window: Duration,
    container: &str,
    pod: &str,
    namespace: &str,
    uid: &str,
) -> String {
    format!(
        "back-off {} restarting failed container={container} pod={pod}_{namespace}({uid})",
        go_duration(window)
    )
}

/// Go's duration text for whole seconds: `10s`, `1m20s`, `5m0s`.
pub(crate) fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}

/// `minik8s://<64 hex>`: stable for one start of one container.
pub(crate) fn container_id(pod_uid: &str, container: &str, instance: u32, pid: i32) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{pod_uid}/{container}/{instance}/{pid}"));
    format!("minik8s://{}", crate::images::hex(&digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateRunning};
    use std::path::PathBuf;

    fn entry() -> Arc<ContainerEntry> {
        Arc::new(ContainerEntry {
            name: "web".into(),
            dir: PathBuf::from("/nonexistent"),
            live: Default::default(),
        })
    }

    #[test]
    fn restart_policy_decides() {
        assert!(should_restart("Always", false, 0));
        assert!(!should_restart("Always", true, 0));
        assert!(should_restart("Always", true, 1));
        assert!(!should_restart("OnFailure", false, 0));
        assert!(should_restart("OnFailure", false, 2));
        assert!(!should_restart("Never", false, 2));
    }

    #[test]
    fn messages_read_like_kubernetes() {
        assert_eq!(
            crash_loop_message(Duration::from_secs(40), "web", "web-1", "default", "u-1"),
            "back-off 40s restarting failed container=web pod=web-1_default(u-1)"
        );
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        let id = container_id("u", "web", 0, 42);
        assert!(id.starts_with("minik8s://") && id.len() == "minik8s://".len() + 64);
    }

    #[test]
    fn a_running_container_from_before_a_restart_continues_its_count() {
        let prev = ContainerStatus {
            name: "web".into(),
            restart_count: 2,
            container_id: Some("minik8s://x".into()),
            state: Some(ContainerState {
                running: Some(ContainerStateRunning { started_at: None }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let spec = Container {
            name: "web".into(),
            image: Some("nginx".into()),
            ..Default::default()
        };
        let s = Slot::new(
            spec,
            false,
            "ContainerCreating",
            entry(),
            Some(&prev),
            Timestamp::now(),
        );
        assert_eq!(
            (s.restart_count, s.next_instance, s.last_instance),
            (2, 3, Some(2))
        );
        assert_eq!(s.last_termination.as_ref().map(|t| t.exit_code), Some(137));
        let live = s.entry.live.lock().unwrap().clone();
        assert_eq!(live.last_terminated, Some(2));
    }

    #[test]
    fn a_new_container_waits_with_the_given_reason() {
        let spec = Container {
            name: "web".into(),
            image: Some("nginx".into()),
            ..Default::default()
        };
        let s = Slot::new(
            spec,
            false,
            "PodInitializing",
            entry(),
            None,
            Timestamp::now(),
        );
        assert_eq!(
            s.entry.live.lock().unwrap().state,
            LiveState::Waiting("PodInitializing".into())
        );
        assert_eq!(s.view().image, "docker.io/library/nginx:latest");
        assert_eq!(s.view().image_id, "");
    }
}
