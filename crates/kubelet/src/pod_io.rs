//! `podio::PodIo` for the API server: logs, exec and attach of the Pods
//! this node runs.

use crate::log_reader::{stream_log, LogSelection};
use crate::logs::format_timestamp;
use crate::pod_table::{log_instance, ContainerEntry, LiveState, PodEntry, PodTable};
use crate::process::{Namespaces, ProcessSpec, SpawnError, StdioMode};
use crate::sessions::{attach_session, exec_session};
use api::registry::PODS;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use podio::{ContainerRef, LogOptions, PodIo, PodIoError, Session, StreamOptions};
use std::sync::Arc;

pub(crate) struct KubeletPodIo {
    pub table: Arc<PodTable>,
    pub client: client::Client,
}

impl KubeletPodIo {
    /// The Pod's entry and the container asked for, or the error the API
    /// answers with.
    async fn resolve(
        &self,
        target: &ContainerRef,
    ) -> Result<(Arc<PodEntry>, Arc<ContainerEntry>), PodIoError> {
        let Some(pod) = self.table.get(&target.namespace, &target.pod) else {
            return Err(self.not_running_here(target).await);
        };
        match pod.container(target.container.as_deref()) {
            Some(c) => Ok((pod, c)),
            None => Err(PodIoError::BadRequest(format!(
                "container {} is not valid for pod {}",
                target.container.as_deref().unwrap_or(""),
                target.pod
            ))),
        }
    }

    /// Why a Pod this node does not run has no logs or processes.
    async fn not_running_here(&self, target: &ContainerRef) -> PodIoError {
        match self
            .client
            .get(&PODS, Some(&target.namespace), &target.pod)
            .await
        {
            Err(e) if e.is_not_found() => {
                PodIoError::NotFound(format!("pods \"{}\" not found", target.pod))
            }
            Err(e) => PodIoError::Internal(e.to_string()),
            Ok(pod) => {
                if pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty() {
                    return PodIoError::BadRequest(format!(
                        "pod {} does not have a host assigned",
                        target.pod
                    ));
                }
                let container = target
                    .container
                    .clone()
                    .or_else(|| {
                        pod["spec"]["containers"][0]["name"]
                            .as_str()
                            .map(str::to_string)
                    })
                    .unwrap_or_default();
                PodIoError::BadRequest(format!(
                    "container \"{container}\" in pod \"{}\" is waiting to start: ContainerCreating",
                    target.pod
                ))
            }
        }
    }
}

/// `verb`: `exec into` or `attach to`.
fn not_running(pod: &PodEntry, container: &ContainerEntry, verb: &str) -> PodIoError {
    let phase = pod.phase.lock().expect("phase lock").clone();
    if phase == "Succeeded" || phase == "Failed" {
        return PodIoError::BadRequest(format!(
            "cannot {verb} a container in a completed pod; current phase is {phase}"
        ));
    }
    let live = container.live.lock().expect("live lock");
    match &live.state {
        LiveState::Waiting(reason) => PodIoError::BadRequest(format!(
            "container \"{}\" in pod \"{}\" is waiting to start: {reason}",
            container.name, pod.name
        )),
        _ => PodIoError::BadRequest(format!("container not found (\"{}\")", container.name)),
    }
}

impl PodIo for KubeletPodIo {
    fn logs(
        &self,
        target: ContainerRef,
        options: LogOptions,
    ) -> BoxFuture<'static, Result<BoxStream<'static, Bytes>, PodIoError>> {
        let this = KubeletPodIo {
            table: self.table.clone(),
            client: self.client.clone(),
        };
        Box::pin(async move {
            let (pod, container) = this.resolve(&target).await?;
            let live = container.live.lock().expect("live lock").clone();
            let instance = log_instance(&live, options.previous, &container.name, &pod.name)
                .map_err(PodIoError::BadRequest)?;
            let follow = match (&live.running, options.follow) {
                (Some(r), true) if r.instance == instance => Some(r.log.clone()),
                _ => None,
            };
            let since = options.since_seconds.map(|s| {
                let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(s as i64);
                format_timestamp(t)
            });
            let sel = LogSelection {
                tail_lines: options.tail_lines,
                since,
                timestamps: options.timestamps,
            };
            let path = container.dir.join(format!("{instance}.log"));
            Ok(stream_log(path, sel, follow, options.limit_bytes))
        })
    }

    fn exec(
        &self,
        target: ContainerRef,
        options: StreamOptions,
    ) -> BoxFuture<'static, Result<Session, PodIoError>> {
        let this = KubeletPodIo {
            table: self.table.clone(),
            client: self.client.clone(),
        };
        Box::pin(async move {
            let (pod, container) = this.resolve(&target).await?;
            let Some((program, args)) = options.command.split_first() else {
                return Err(PodIoError::BadRequest(
                    "you must specify at least one command for the container".into(),
                ));
            };
            let running = container.live.lock().expect("live lock").running.clone();
            let Some(running) = running else {
                return Err(not_running(&pod, &container, "exec into"));
            };
            let mut env = running.env.clone();
            if options.tty && !env.iter().any(|(k, _)| k == "TERM") {
                env.push(("TERM".into(), "xterm".into()));
            }
            let spec = ProcessSpec {
                program: program.clone(),
                args: args.to_vec(),
                env,
                working_dir: running.working_dir.clone(),
                namespaces: Namespaces::JoinProcess { pid: running.pid },
                stdio: if options.tty {
                    StdioMode::Tty { cols: 80, rows: 24 }
                } else {
                    StdioMode::Pipes {
                        stdin: options.stdin,
                    }
                },
            };
            let registry = pod.clone();
            let cleanup = pod.clone();
            let started = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(0));
            let started_w = started.clone();
            exec_session(
                &spec,
                &options,
                move |pid| {
                    started_w.store(pid, std::sync::atomic::Ordering::SeqCst);
                    registry.exec_pids.lock().expect("exec lock").insert(pid);
                },
                move || {
                    let pid = started.load(std::sync::atomic::Ordering::SeqCst);
                    cleanup.exec_pids.lock().expect("exec lock").remove(&pid);
                },
            )
            .await
            .map_err(|e| match e {
                SpawnError::NotFound(_) | SpawnError::PermissionDenied(_) => {
                    PodIoError::Internal(format!(
                        "error executing command in container: failed to exec in container: {e}"
                    ))
                }
                other => {
                    PodIoError::Internal(format!("error executing command in container: {other}"))
                }
            })
        })
    }

    fn attach(
        &self,
        target: ContainerRef,
        options: StreamOptions,
    ) -> BoxFuture<'static, Result<Session, PodIoError>> {
        let this = KubeletPodIo {
            table: self.table.clone(),
            client: self.client.clone(),
        };
        Box::pin(async move {
            let (pod, container) = this.resolve(&target).await?;
            let running = container.live.lock().expect("live lock").running.clone();
            match running {
                Some(r) => Ok(attach_session(r.io, &options)),
                None => Err(not_running(&pod, &container, "attach to")),
            }
        })
    }
}
