//! Stopping a Pod's containers: SIGTERM, SIGKILL after the grace period,
//! then (by why it stops) the sandbox, the Pod object and its files.

use crate::pod_worker::{PodWorker, SlotId, StopMode, Stopping};
use crate::process::signal_tree;
use api::registry::PODS;
use serde_json::json;
use std::time::Duration;
use tokio::time::Instant;

impl PodWorker {
    /// SIGTERM the run of `id` (SIGHUP too on a terminal: its shell hangs
    /// up like a closed terminal), SIGKILL after `grace`.
    pub(crate) fn stop_run(&mut self, id: SlotId, grace: Duration, reason: Option<String>) {
        let slot = self.slot_mut(id);
        let Some(run) = &mut slot.run else { return };
        run.probes.cancel();
        let deadline = Instant::now() + grace;
        if run.kill_at.is_none() {
            run.signal(libc::SIGTERM);
            if run.tty {
                run.signal(libc::SIGHUP);
            }
            if grace.is_zero() {
                run.signal(libc::SIGKILL);
            }
        }
        run.kill_at = Some(run.kill_at.map_or(deadline, |k| k.min(deadline)));
        if reason.is_some() {
            run.stop_reason = reason;
        }
    }

    /// Stop every container; what follows depends on `mode`.
    pub(crate) fn begin_stop(&mut self, mode: StopMode, grace: Duration) {
        let first = self.stopping.is_none();
        match &mut self.stopping {
            Some(s) => {
                s.mode = s.mode.max(mode);
            }
            None => self.stopping = Some(Stopping { mode }),
        }
        let ids: Vec<SlotId> = (0..self.init.len())
            .map(SlotId::Init)
            .chain((0..self.app.len()).map(SlotId::App))
            .collect();
        for id in ids {
            let slot = self.slot_mut(id);
            slot.start_at = None;
            slot.pull_backoff_at = None;
            if slot.run.is_some() {
                let name = slot.name().to_string();
                self.stop_run(id, grace, None);
                if first && mode == StopMode::Delete {
                    self.event(
                        Some(&name),
                        false,
                        "Killing",
                        &format!("Stopping container {name}"),
                    );
                }
            }
        }
    }

    /// The Pod's processes are gone: remove the sandbox, then (on deletion)
    /// the Pod object and its files.
    pub(crate) async fn finish(&mut self) {
        let mode = self
            .stopping
            .as_ref()
            .map(|s| s.mode)
            .unwrap_or(StopMode::Gone);
        for pid in self.entry.exec_pids.lock().expect("exec lock").drain() {
            signal_tree(pid, libc::SIGKILL);
        }
        if let Err(e) = self.ctx.network.remove_sandbox(&self.uid).await {
            tracing::warn!(pod = %self.name, error = %e, "remove pod sandbox");
        }
        self.sandbox = None;
        if mode == StopMode::Delete {
            self.delete_from_api().await;
        }
        if mode != StopMode::Shutdown {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        self.ctx
            .table
            .remove(&self.namespace, &self.name, &self.uid);
    }

    /// The last step of a graceful deletion, as the kubelet does it:
    /// DELETE with gracePeriodSeconds=0, only for this uid (a new Pod of
    /// the same name is not touched).
    async fn delete_from_api(&self) {
        let options = json!({
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": self.uid},
        });
        for attempt in 0..5u32 {
            match self
                .ctx
                .client
                .delete_with(&PODS, Some(&self.namespace), &self.name, &options)
                .await
            {
                Ok(_) => return,
                Err(e) if e.is_not_found() || e.is_conflict() => return,
                Err(e) => {
                    tracing::warn!(pod = %self.name, error = %e, "final delete of pod retries");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        }
    }
}
