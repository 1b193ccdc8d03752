//! Starting a container run and what happens when it ends: the image
//! decision, the environment, the process in the Pod's namespaces, its log
//! and streams, its probes; on exit the restart decision with back-off.

use crate::container_env::{container_env, expand_all, EnvContext};
use crate::container_io::ContainerIo;
use crate::container_slot::{
    container_id, crash_loop_message, should_restart, Run, ERR_IMAGE_PULL_SHOWN,
};
use crate::images::{image_env, is_command_on_path, plan_launch, LaunchHost};
use crate::logs::LogWriter;
use crate::pod_files::{bind_mounts, pod_hostname};
use crate::pod_worker::{PodWorker, SlotEvent, SlotId};
use crate::probe_checks::ProbeTarget;
use crate::probes::{run_probes, ProbeKind, ProbeUpdate};
use crate::process::{self, exit_code, Namespaces, ProcessSpec, StdioMode};
use crate::status::{RunState, Termination};
use jiff::Timestamp;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a container waits after `CreateContainerConfigError` before
/// the next try (the kubelet retries on its periodic sync).
const CONFIG_RETRY: Duration = Duration::from_secs(10);

impl PodWorker {
    /// Start the container `id` now (the sandbox exists).
    pub(crate) async fn start_container(&mut self, id: SlotId) {
        let now = Instant::now();
        let now_t = Timestamp::now();
        let Some(sandbox) = self.sandbox.clone() else {
            return;
        };
        let hostname = pod_hostname(&self.pod);
        let binds = bind_mounts(&self.files_dir());
        let ctx = self.ctx.clone();
        let pod = self.pod.clone();
        let uid = self.uid.clone();
        let slot = self.slot_mut(id);
        slot.start_at = None;
        let spec = slot.spec.clone();
        let name = spec.name.clone();
        let image_name = spec.image.clone().unwrap_or_default();

        let is_command = |n: &str, path: &str| is_command_on_path(n, path);
        let host = LaunchHost {
            self_exe: &ctx.config.self_exe,
            shell_bin: ctx.shell_bin.as_deref(),
            is_command: &is_command,
        };
        let env_ctx = EnvContext {
            pod: &pod,
            pod_ip: Some(sandbox.ip),
            host_ip: ctx.node_ip,
            hostname: &hostname,
            node_cpus: ctx.cpus,
            node_memory_bytes: ctx.memory_bytes,
        };
        let links = pod
            .spec
            .as_ref()
            .and_then(|s| s.enable_service_links)
            .unwrap_or(true);
        let service_env = ctx.services.env_for(
            pod.metadata.namespace.as_deref().unwrap_or("default"),
            links,
        );
        let env = match container_env(
            &spec,
            &image_env(&slot.image, &host),
            &service_env,
            &env_ctx,
        ) {
            Ok(env) => env,
            Err(message) => {
                slot.state = RunState::Waiting {
                    reason: "CreateContainerConfigError".into(),
                    message: Some(message.clone()),
                };
                slot.start_at = Some(now + CONFIG_RETRY);
                slot.publish_live();
                self.event(Some(&name), true, "Failed", &format!("Error: {message}"));
                return;
            }
        };
        let command = expand_all(spec.command.as_deref().unwrap_or(&[]), &env);
        let args = expand_all(spec.args.as_deref().unwrap_or(&[]), &env);
        let ports: Vec<u16> = spec
            .ports
            .iter()
            .flatten()
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .filter_map(|p| u16::try_from(p.container_port).ok())
            .collect();
        let launch = match plan_launch(&slot.image, &command, &args, &ports, &host) {
            Ok(l) => l,
            Err(message) => {
                slot.pulled = false;
                slot.state = RunState::Waiting {
                    reason: "ErrImagePull".into(),
                    message: Some(message.clone()),
                };
                slot.image_backoff
                    .record_restart(now.into_std(), now.into_std());
                slot.start_at = Some(now + slot.image_backoff.window());
                slot.pull_backoff_at = Some(now + ERR_IMAGE_PULL_SHOWN);
                slot.publish_live();
                self.event(
                    Some(&name),
                    false,
                    "Pulling",
                    &format!("Pulling image \"{image_name}\""),
                );
                self.event(
                    Some(&name),
                    true,
                    "Failed",
                    &format!("Failed to pull image \"{image_name}\": {message}"),
                );
                self.event(Some(&name), true, "Failed", "Error: ErrImagePull");
                return;
            }
        };
        let first_pull = !slot.pulled;
        slot.pulled = true;
        slot.pull_backoff_at = None;
        // A crash restart advances the back-off; a restart for a new
        // definition starts it over.
        if slot.restart_now {
            slot.backoff = Default::default();
            slot.restart_now = false;
        } else if let Some(finished) = slot.finished {
            slot.backoff
                .record_restart(finished.into_std(), now.into_std());
        }
        let working_dir = spec
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        let tty = spec.tty == Some(true);
        let process_spec = ProcessSpec {
            program: launch.program.clone(),
            args: launch.args.clone(),
            env: env.clone(),
            working_dir: working_dir.clone(),
            namespaces: Namespaces::Container {
                netns: sandbox.netns_path.clone(),
                hostname,
                binds,
            },
            stdio: if tty {
                StdioMode::Tty { cols: 80, rows: 24 }
            } else {
                StdioMode::Pipes {
                    stdin: spec.stdin == Some(true),
                }
            },
        };
        let instance = slot.next_instance;
        slot.next_instance += 1;
        slot.restart_count = instance;
        let log_path = slot.entry.dir.join(format!("{instance}.log"));
        remove_old_logs(&slot.entry.dir, instance);
        let spawned = process::spawn(&process_spec)
            .await
            .map_err(|e| e.to_string())
            .and_then(|sp| match LogWriter::create(&log_path) {
                Ok(log) => Ok((sp, log)),
                Err(e) => {
                    process::signal_tree(sp.pid, libc::SIGKILL);
                    Err(format!("create log file {}: {e}", log_path.display()))
                }
            });
        let (sp, (log, progress)) = match spawned {
            Ok(x) => x,
            Err(message) => {
                // Like a runtime's StartError: the run ends before it began.
                let t = Termination {
                    exit_code: 128,
                    signal: None,
                    reason: "StartError".into(),
                    message: Some(format!("failed to start container process: {message}")),
                    started_at: None,
                    finished_at: now_t,
                    container_id: Some(container_id(&uid, &name, instance, 0)),
                };
                self.event(
                    Some(&name),
                    true,
                    "Failed",
                    &format!("Error: failed to start container process: {message}"),
                );
                self.after_exit(id, t, instance);
                return;
            }
        };
        let io = match ContainerIo::start(sp.io, log, spec.stdin_once == Some(true)) {
            Ok(io) => io,
            Err(e) => {
                tracing::warn!(pod = %self.name, container = %name, error = %e, "container streams");
                process::signal_tree(sp.pid, libc::SIGKILL);
                return;
            }
        };
        let pid = sp.pid;
        let cid = container_id(&uid, &name, instance, pid);
        let events = self.slot_events.clone();
        let mut child = sp.child;
        tokio::spawn(async move {
            let code = match child.wait().await {
                Ok(status) => exit_code(status),
                Err(_) => 255,
            };
            let _ = events.send(SlotEvent::Exited {
                slot: id,
                instance,
                code,
            });
        });
        self.checkpoint.add(&name, pid, sp.start_time);

        let probes = CancellationToken::new();
        if spec.startup_probe.is_some()
            || spec.liveness_probe.is_some()
            || spec.readiness_probe.is_some()
        {
            let target = ProbeTarget {
                netns: Some(sandbox.netns_path.clone()),
                pod_ip: sandbox.ip,
                pid,
                env: env.clone(),
                working_dir: working_dir.clone(),
                ports: spec.ports.clone().unwrap_or_default(),
            };
            let events = self.slot_events.clone();
            let report = move |update| {
                let _ = events.send(SlotEvent::Probe {
                    slot: id,
                    instance,
                    update,
                });
            };
            tokio::spawn(run_probes(
                spec.clone(),
                target,
                Instant::now(),
                report,
                probes.clone(),
            ));
        }
        let slot = self.slot_mut(id);
        slot.started = spec.startup_probe.is_none();
        slot.ready = slot.started && spec.readiness_probe.is_none();
        slot.state = RunState::Running {
            started_at: now_t,
            container_id: cid.clone(),
        };
        slot.run = Some(Run {
            instance,
            pid,
            start_time: sp.start_time,
            started_at: now_t,
            container_id: cid,
            io,
            tty,
            probes,
            kill_at: None,
            stop_reason: None,
            log: progress,
            env,
            working_dir,
        });
        slot.publish_live();
        if first_pull {
            self.event(
                Some(&name),
                false,
                "Pulled",
                &format!("Container image \"{image_name}\" already present on machine"),
            );
        }
        self.event(
            Some(&name),
            false,
            "Created",
            &format!("Created container: {name}"),
        );
        self.event(
            Some(&name),
            false,
            "Started",
            &format!("Started container {name}"),
        );
    }

    pub(crate) fn on_slot_event(&mut self, event: SlotEvent) {
        match event {
            SlotEvent::Exited {
                slot: id,
                instance,
                code,
            } => {
                let slot = self.slot_mut(id);
                let Some(run) = slot.run.take_if(|r| r.instance == instance) else {
                    return;
                };
                run.probes.cancel();
                run.io.set_exit(code);
                let name = slot.name().to_string();
                self.checkpoint.remove(&name);
                let t = Termination {
                    exit_code: code,
                    signal: None,
                    reason: Termination::reason_for(code).into(),
                    message: run.stop_reason.clone(),
                    started_at: Some(run.started_at),
                    finished_at: Timestamp::now(),
                    container_id: Some(run.container_id.clone()),
                };
                self.after_exit(id, t, instance);
            }
            SlotEvent::Probe {
                slot: id,
                instance,
                update,
            } => self.on_probe(id, instance, update),
        }
    }

    fn on_probe(&mut self, id: SlotId, instance: u32, update: ProbeUpdate) {
        if self.stopping.is_some() {
            return;
        }
        let slot = self.slot_mut(id);
        if slot.run.as_ref().map(|r| r.instance) != Some(instance) {
            return;
        }
        let name = slot.name().to_string();
        match update {
            ProbeUpdate::Started => {
                slot.started = true;
                slot.ready = slot.spec.readiness_probe.is_none();
            }
            ProbeUpdate::Ready(ready) => slot.ready = ready && slot.started,
            ProbeUpdate::Unhealthy { kind, message } => {
                self.event(
                    Some(&name),
                    true,
                    "Unhealthy",
                    &format!("{} probe failed: {message}", kind.title()),
                );
            }
            ProbeUpdate::Failed { kind, message } => {
                let probe = match kind {
                    ProbeKind::Liveness => slot.spec.liveness_probe.clone(),
                    ProbeKind::Startup => slot.spec.startup_probe.clone(),
                    ProbeKind::Readiness => None,
                };
                let Some(probe) = probe else { return };
                let grace = probe
                    .termination_grace_period_seconds
                    .map(|s| Duration::from_secs(s.max(0) as u64))
                    .unwrap_or_else(|| self.pod_grace());
                let what = kind.title().to_lowercase();
                let why = format!("Container {name} failed {what} probe, will be restarted");
                self.slot_mut(id).ready = false;
                self.stop_run(
                    id,
                    grace,
                    Some(format!("{} probe failed: {message}", kind.title())),
                );
                self.event(Some(&name), false, "Killing", &why);
            }
        }
    }

    /// A run of `id` ended with `t`: restart it (now or after back-off) or
    /// leave it terminated, as the restart policy says.
    pub(crate) fn after_exit(&mut self, id: SlotId, t: Termination, instance: u32) {
        let now = Instant::now();
        let policy = self.restart_policy();
        let stopping = self.stopping.is_some();
        let (pod, ns, uid) = (self.name.clone(), self.namespace.clone(), self.uid.clone());
        let slot = self.slot_mut(id);
        slot.ready = false;
        slot.started = false;
        slot.finished = Some(now);
        let restart =
            !stopping && (slot.restart_now || should_restart(&policy, slot.is_init, t.exit_code));
        let mut backoff_event = None;
        if restart {
            slot.last_termination = Some(t);
            slot.last_instance = Some(instance);
            let delay = if slot.restart_now {
                Duration::ZERO
            } else {
                slot.backoff.delay(now.into_std(), now.into_std())
            };
            if delay.is_zero() {
                slot.state = RunState::Waiting {
                    reason: "ContainerCreating".into(),
                    message: None,
                };
            } else {
                let name = slot.name().to_string();
                slot.state = RunState::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: Some(crash_loop_message(
                        slot.backoff.window(),
                        &name,
                        &pod,
                        &ns,
                        &uid,
                    )),
                };
                backoff_event = Some(format!(
                    "Back-off restarting failed container {name} in pod {pod}_{ns}({uid})"
                ));
            }
            slot.start_at = Some(now + delay);
        } else {
            slot.state = RunState::Terminated(t);
            slot.start_at = None;
        }
        slot.publish_live();
        let name = slot.name().to_string();
        if let Some(message) = backoff_event {
            self.event(Some(&name), true, "BackOff", &message);
        }
    }

    /// `ErrImagePull` shows for a moment, then `ImagePullBackOff` until the
    /// next attempt.
    pub(crate) fn show_image_pull_backoff(&mut self, now: Instant) {
        let mut events = Vec::new();
        for slot in self.init.iter_mut().chain(self.app.iter_mut()) {
            if slot.pull_backoff_at.is_some_and(|t| t <= now) {
                slot.pull_backoff_at = None;
                let image = slot.spec.image.clone().unwrap_or_default();
                slot.state = RunState::Waiting {
                    reason: "ImagePullBackOff".into(),
                    message: Some(format!("Back-off pulling image \"{image}\"")),
                };
                slot.publish_live();
                events.push((slot.name().to_string(), image));
            }
        }
        for (name, image) in events {
            self.event(
                Some(&name),
                false,
                "BackOff",
                &format!("Back-off pulling image \"{image}\""),
            );
            self.event(Some(&name), true, "Failed", "Error: ImagePullBackOff");
        }
    }
}

/// Keep the logs of the current and the previous start only (what
/// `logs` and `logs --previous` can show), as the kubelet's garbage
/// collection of dead containers does.
fn remove_old_logs(dir: &std::path::Path, current: u32) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let number = name.split('.').next().and_then(|n| n.parse::<u32>().ok());
        if number.is_some_and(|n| n + 1 < current) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_current_and_previous_logs_stay() {
        let dir = std::env::temp_dir().join(format!("kubelet-oldlogs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["0.log", "1.log", "1.log.1", "2.log", "3.log"] {
            std::fs::write(dir.join(f), "x").unwrap();
        }
        remove_old_logs(&dir, 3);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["2.log", "3.log"]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
