//! `?watch=true`: a newline-delimited stream of WatchEvents, one chunk per
//! event, from the store's watch fan-out, filtered by the request's
//! selectors.

use crate::error::ApiError;
use crate::negotiate::{table_requested, TableVersion};
use crate::resources::RequestContext;
use crate::selection::Filter;
use crate::server::ApiServer;
use crate::table;
use api::printers::IncludeObject;
use api::registry::ResourceInfo;
use api::status::StatusError;
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use store::{StoreError, StoreEventType};
use tokio::sync::mpsc;

/// How often a quiet watch with `allowWatchBookmarks` gets a BOOKMARK
/// (Kubernetes sends one about every minute).
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// `resourceVersion` empty or "0": ADDED for every existing match
    /// first; with `bookmark`, then the initial-events-end BOOKMARK
    /// (watch-list, `sendInitialEvents=true`).
    ListFirst { bookmark: bool },
    /// Events after this revision.
    After(u64),
    /// Only changes from now on (`sendInitialEvents=false` without a
    /// resourceVersion).
    Now,
}

fn start_of(ctx: &RequestContext) -> Result<Start, ApiError> {
    let rv = ctx.query.get("resourceVersion").unwrap_or("");
    let initial = ctx.query.get("sendInitialEvents");
    if initial == Some("true") {
        return Ok(Start::ListFirst { bookmark: true });
    }
    match rv {
        "" if initial == Some("false") => Ok(Start::Now),
        "" | "0" => Ok(Start::ListFirst { bookmark: false }),
        n => n.parse::<u64>().map(Start::After).map_err(|_| {
            StatusError::bad_request(format!("invalid resource version {n:?}")).into()
        }),
    }
}

/// What one watch stream needs, owned by its task.
struct WatchStream {
    server: Arc<ApiServer>,
    res: &'static ResourceInfo,
    prefix: String,
    filter: Filter,
    table: Option<TableVersion>,
    include: IncludeObject,
    start: Start,
    timeout: Option<Duration>,
    tx: mpsc::Sender<Bytes>,
    columns_sent: bool,
    /// `allowWatchBookmarks=true`.
    bookmarks: bool,
}

pub async fn watch(ctx: RequestContext) -> Result<Response, ApiError> {
    let filter = Filter::from_query(ctx.resource(), &ctx.query, ctx.path.name.as_deref())?;
    let start = start_of(&ctx)?;
    let timeout = ctx
        .query
        .number("timeoutSeconds")?
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s as u64));
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let stream = WatchStream {
        server: ctx.server.clone(),
        res: ctx.resource(),
        prefix: ctx.prefix(),
        filter,
        table: table_requested(&ctx.headers),
        include: table::include_object(&ctx.query),
        start,
        timeout,
        tx,
        columns_sent: false,
        bookmarks: ctx.query.flag("allowWatchBookmarks"),
    };
    tokio::spawn(stream.run());
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    }));
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

impl WatchStream {
    async fn run(mut self) {
        let deadline = self.timeout.map(|t| tokio::time::Instant::now() + t);
        let sleep = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let done = self.server.streams_done.clone();
        tokio::select! {
            _ = self.stream() => {}
            _ = sleep => {}
            _ = done.cancelled() => {}
        }
    }

    /// Send the stream; returns when the client left or the store closed
    /// this watcher (a client that falls far behind is dropped and
    /// re-watches, as with Kubernetes' watch cache).
    async fn stream(&mut self) {
        let from = match self.initial_events().await {
            Ok(Some(from)) => from,
            Ok(None) => return,
            Err(e) => {
                self.send_error(&e.to_status()).await;
                return;
            }
        };
        let mut events = match self.server.storage.watch(&self.prefix, from) {
            Ok(rx) => rx,
            Err(StoreError::Expired { oldest }) => {
                let status = StatusError::too_old_resource_version(from, oldest);
                self.send_error(&status).await;
                return;
            }
            Err(e) => {
                self.send_error(&ApiError::Storage(e).to_status()).await;
                return;
            }
        };
        let tx = self.tx.clone();
        // With `allowWatchBookmarks`, a quiet watch still tells the client
        // how far it has seen, so a re-watch resumes there instead of from
        // a revision that may have left the history.
        let mut bookmarks = tokio::time::interval_at(
            tokio::time::Instant::now() + BOOKMARK_INTERVAL,
            BOOKMARK_INTERVAL,
        );
        let mut seen = from;
        loop {
            let event = tokio::select! {
                _ = tx.closed() => return,
                _ = bookmarks.tick(), if self.bookmarks => {
                    if !self.send("BOOKMARK", self.bookmark(seen, false)).await {
                        return;
                    }
                    continue;
                }
                event = events.recv() => event,
            };
            let Some(event) = event else { return };
            seen = seen.max(event.revision);
            // An object entering the selection is ADDED for this client,
            // one leaving it DELETED, as Kubernetes does; whether it
            // matched before comes from the event itself (the store keeps
            // what selectors see of the previous version).
            let now = self.filter.matches(&event.object);
            let was = match event.kind {
                StoreEventType::Added => false,
                StoreEventType::Deleted => now,
                StoreEventType::Modified => match &event.prev {
                    Some(prev) => self.filter.matches(prev),
                    None => now,
                },
            };
            let kind = match (event.kind, was, now) {
                _ if self.filter.is_everything() => event.kind.as_str(),
                (StoreEventType::Deleted, true, _) => "DELETED",
                (StoreEventType::Deleted, false, _) => continue,
                (_, true, true) => "MODIFIED",
                (_, false, true) => "ADDED",
                (_, true, false) => "DELETED",
                (_, false, false) => continue,
            };
            if !self.send_object(kind, event.object).await {
                return;
            }
        }
    }

    /// Send what precedes the live events; returns the revision to watch
    /// after, or `None` when the client left.
    async fn initial_events(&mut self) -> Result<Option<u64>, ApiError> {
        let (objects, revision) = if matches!(self.start, Start::ListFirst { .. }) {
            self.server
                .storage
                .list(&self.prefix)
                .await
                .map_err(ApiError::Storage)?
        } else {
            (Vec::new(), self.server.storage.current_revision())
        };
        let selected: Vec<Value> = objects
            .into_iter()
            .filter(|o| self.filter.matches(o))
            .collect();
        for obj in selected {
            if !self.send_object("ADDED", obj).await {
                return Ok(None);
            }
        }
        match self.start {
            Start::ListFirst { bookmark: true } => {
                let mark = self.bookmark(revision, true);
                if !self.send("BOOKMARK", mark).await {
                    return Ok(None);
                }
                Ok(Some(revision))
            }
            Start::ListFirst { bookmark: false } | Start::Now => Ok(Some(revision)),
            Start::After(n) => Ok(Some(n)),
        }
    }

    /// A BOOKMARK's object: the kind with only a resourceVersion, and the
    /// watch-list annotation after the initial events.
    fn bookmark(&self, revision: u64, initial_events_end: bool) -> Value {
        let mut mark = json!({
            "kind": self.res.kind,
            "apiVersion": self.res.api_version(),
            "metadata": {"resourceVersion": revision.to_string()},
        });
        if initial_events_end {
            mark["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        mark
    }

    /// Send an object event, as a one-row Table when the client asked.
    async fn send_object(&mut self, kind: &str, mut obj: Value) -> bool {
        obj["kind"] = json!(self.res.kind);
        obj["apiVersion"] = json!(self.res.api_version());
        let obj = match self.table {
            Some(version) => {
                let rv = obj["metadata"]["resourceVersion"].clone();
                let t = table::render(
                    self.res,
                    &[obj],
                    version,
                    rv,
                    !self.columns_sent,
                    self.include,
                );
                self.columns_sent = true;
                t
            }
            None => obj,
        };
        self.send(kind, obj).await
    }

    async fn send_error(&mut self, status: &StatusError) {
        let _ = self.send("ERROR", status.to_json()).await;
    }

    /// One event as one line; false when the client is gone.
    async fn send(&mut self, kind: &str, object: Value) -> bool {
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        self.tx.send(Bytes::from(line)).await.is_ok()
    }
}
