//! Writes a Pod's status through `pods/<name>/status`. The worker only
//! publishes the latest status into a watch channel and never waits on the
//! API: changes made while a write is in flight collapse into the next
//! write, so a burst of changes costs one or two requests.
//!
//! Each write is a JSON patch that first tests `metadata.uid`: a late
//! write about a deleted Pod can never land on a new Pod of the same name.

use api::registry::PODS;
use client::{Client, PatchType};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::watch;

/// Runs until the worker drops its sender or the Pod is gone.
pub(crate) async fn run_status_writer(
    client: Client,
    namespace: String,
    name: String,
    uid: String,
    mut latest: watch::Receiver<Option<Value>>,
) {
    let mut written: Option<Value> = None;
    loop {
        let next = latest.borrow_and_update().clone();
        if let Some(status) = next {
            if written.as_ref() != Some(&status) {
                let patch = json!([
                    {"op": "test", "path": "/metadata/uid", "value": uid},
                    {"op": "add", "path": "/status", "value": status},
                ]);
                let t0 = std::time::Instant::now();
                let r = client
                    .patch_status(&PODS, Some(&namespace), &name, PatchType::Json, &patch)
                    .await;
                tracing::debug!(pod = %name, elapsed_us = t0.elapsed().as_micros() as u64, "status written");
                match r {
                    Ok(_) => written = Some(status),
                    Err(e) if e.is_not_found() => return,
                    Err(e) if matches!(e.code(), Some(400 | 422)) => {
                        if e.to_string().contains("test failed") {
                            return; // another Pod of the same name now
                        }
                        // Retrying the same status cannot help; the next
                        // change gets its own try.
                        tracing::warn!(pod = %name, error = %e, "pod status rejected");
                        written = Some(status);
                    }
                    Err(e) => {
                        if latest.has_changed().is_err() {
                            return; // the worker is gone
                        }
                        tracing::debug!(pod = %name, error = %e, "pod status write retries");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                }
            }
        }
        if latest.changed().await.is_err() {
            return;
        }
    }
}
