//! What the pod workers publish about their containers for `logs`, `exec`
//! and `attach`: which start of a container is current, its process and
//! streams. Workers write, the PodIo side reads.

use crate::container_io::ContainerIo;
use crate::logs::LogProgress;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// All Pods this node runs, by (namespace, name).
#[derive(Default)]
pub(crate) struct PodTable {
    pods: Mutex<HashMap<(String, String), Arc<PodEntry>>>,
}

impl PodTable {
    pub(crate) fn insert(&self, entry: Arc<PodEntry>) {
        let key = (entry.namespace.clone(), entry.name.clone());
        self.pods.lock().expect("pod table lock").insert(key, entry);
    }

    /// Remove the entry of `uid` (a newer Pod of the same name stays).
    pub(crate) fn remove(&self, namespace: &str, name: &str, uid: &str) {
        let mut pods = self.pods.lock().expect("pod table lock");
        let key = (namespace.to_string(), name.to_string());
        if pods.get(&key).is_some_and(|e| e.uid == uid) {
            pods.remove(&key);
        }
    }

    pub(crate) fn get(&self, namespace: &str, name: &str) -> Option<Arc<PodEntry>> {
        let pods = self.pods.lock().expect("pod table lock");
        pods.get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
}

pub(crate) struct PodEntry {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    /// App containers in spec order, then init containers.
    pub containers: Vec<Arc<ContainerEntry>>,
    pub phase: Mutex<String>,
    /// Processes started by exec, stopped with the Pod.
    pub exec_pids: Mutex<HashSet<i32>>,
}

impl PodEntry {
    /// The named container, or the first one (kubectl's default).
    pub(crate) fn container(&self, name: Option<&str>) -> Option<Arc<ContainerEntry>> {
        match name {
            None => self.containers.first().cloned(),
            Some(n) => self.containers.iter().find(|c| c.name == n).cloned(),
        }
    }
}

pub(crate) struct ContainerEntry {
    pub name: String,
    /// `<pod dir>/<container>`: holds `<n>.log` per start.
    pub dir: PathBuf,
    pub live: Mutex<ContainerLive>,
}

/// The container's state as the status reports it, with the number of the
/// start ("instance") each state refers to.
#[derive(Clone, Default)]
pub(crate) struct ContainerLive {
    pub state: LiveState,
    /// The start that `lastState.terminated` describes.
    pub last_terminated: Option<u32>,
    pub running: Option<RunningProcess>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LiveState {
    Waiting(String),
    Running(u32),
    Terminated(u32),
}

impl Default for LiveState {
    fn default() -> Self {
        LiveState::Waiting("ContainerCreating".into())
    }
}

/// The current process of a running container.
#[derive(Clone)]
pub(crate) struct RunningProcess {
    pub instance: u32,
    pub pid: i32,
    pub io: Arc<ContainerIo>,
    pub log: watch::Receiver<LogProgress>,
    pub env: Vec<(String, String)>,
    pub working_dir: String,
}

/// Which start's log `logs` shows (the kubelet's rules: current = the
/// running or last terminated start, previous = `lastState`), or why
/// there is none.
pub(crate) fn log_instance(
    live: &ContainerLive,
    previous: bool,
    container: &str,
    pod: &str,
) -> Result<u32, String> {
    if previous {
        return live.last_terminated.ok_or_else(|| {
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")
        });
    }
    match &live.state {
        LiveState::Running(n) | LiveState::Terminated(n) => Ok(*n),
        LiveState::Waiting(reason) => match live.last_terminated {
            Some(n) => Ok(n),
            None => Err(match reason.as_str() {
                "ErrImagePull" => format!("container \"{container}\" in pod \"{pod}\" is waiting to start: image can't be pulled"),
                "ImagePullBackOff" => {
                    format!("container \"{container}\" in pod \"{pod}\" is waiting to start: trying and failing to pull image")
                }
                r => format!("container \"{container}\" in pod \"{pod}\" is waiting to start: {r}"),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(state: LiveState, last: Option<u32>) -> ContainerLive {
        ContainerLive {
            state,
            last_terminated: last,
            running: None,
        }
    }

    #[test]
    fn current_and_previous_logs_follow_the_kubelet() {
        assert_eq!(
            log_instance(&live(LiveState::Running(2), Some(1)), false, "c", "p"),
            Ok(2)
        );
        assert_eq!(
            log_instance(&live(LiveState::Running(2), Some(1)), true, "c", "p"),
            Ok(1)
        );
        // Crash-looping: both show the last run.
        let looping = live(LiveState::Waiting("CrashLoopBackOff".into()), Some(3));
        assert_eq!(log_instance(&looping, false, "c", "p"), Ok(3));
        assert_eq!(log_instance(&looping, true, "c", "p"), Ok(3));
        assert_eq!(
            log_instance(&live(LiveState::Running(0), None), true, "web", "web-1"),
            Err("previous terminated container \"web\" in pod \"web-1\" not found".into())
        );
        assert_eq!(
            log_instance(
                &live(LiveState::Waiting("ContainerCreating".into()), None),
                false,
                "web",
                "tmp"
            ),
            Err("container \"web\" in pod \"tmp\" is waiting to start: ContainerCreating".into())
        );
        assert_eq!(
            log_instance(&live(LiveState::Waiting("ImagePullBackOff".into()), None), false, "x", "y"),
            Err("container \"x\" in pod \"y\" is waiting to start: trying and failing to pull image".into())
        );
    }
}
