//! List-then-watch with recovery, the way kube-runtime's watcher does it:
//! a consumer sees the full set (`Restarted`) and then every change, and
//! never has to handle expired revisions or dropped connections itself.

use crate::{Client, ClientError, ListParams};
use api::registry::ResourceInfo;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::mpsc;

/// What a watcher tells its consumer.
#[derive(Clone, Debug, PartialEq)]
pub enum WatcherEvent {
    /// The complete current set, after the first list and after every
    /// re-list: anything not in it is gone.
    Restarted(Vec<Value>),
    /// Created or changed.
    Applied(Value),
    Deleted(Value),
}

/// Watch `res` (in `namespace`, or all namespaces with `None`) forever. The
/// stream ends only when it is dropped. Boxed, so it is `Unpin` and fits in
/// `select!` loops.
pub fn watcher(
    client: Client,
    res: &'static ResourceInfo,
    namespace: Option<String>,
    params: ListParams,
) -> BoxStream<'static, WatcherEvent> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(50);
        loop {
            match run_once(&client, res, namespace.as_deref(), &params, &tx).await {
                Ok(()) => return, // receiver dropped
                Err(e) => {
                    if tx.is_closed() {
                        return;
                    }
                    tracing::debug!(resource = res.plural, error = %e, "watch restarts");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) }).boxed()
}

/// One list followed by watches until an error that needs a re-list.
/// `Ok(())` means the consumer went away.
async fn run_once(
    client: &Client,
    res: &'static ResourceInfo,
    namespace: Option<&str>,
    params: &ListParams,
    tx: &mpsc::Sender<WatcherEvent>,
) -> Result<(), ClientError> {
    let list = client.list(res, namespace, params).await?;
    let mut rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let items = match list.get("items") {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    if tx.send(WatcherEvent::Restarted(items)).await.is_err() {
        return Ok(());
    }
    loop {
        let stream = client.watch(res, namespace, params, &rv).await?;
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            let event = event?;
            if let Some(v) = event.object["metadata"]["resourceVersion"].as_str() {
                rv = v.to_string();
            }
            let out = match event.kind.as_str() {
                "ADDED" | "MODIFIED" => WatcherEvent::Applied(event.object),
                "DELETED" => WatcherEvent::Deleted(event.object),
                "BOOKMARK" => continue,
                _ => {
                    // ERROR: usually 410 Expired. Start over with a list.
                    let message = event.object["message"].as_str().unwrap_or("watch error");
                    return Err(ClientError::Status {
                        code: event.object["code"].as_u64().unwrap_or(500) as u16,
                        reason: event.object["reason"].as_str().unwrap_or("").to_string(),
                        message: message.to_string(),
                        body: event.object,
                    });
                }
            };
            if tx.send(out).await.is_err() {
                return Ok(());
            }
        }
        // The server ended the watch (timeout or shutdown): resume from the
        // last revision seen; a 410 on resume leads to a re-list.
    }
}
