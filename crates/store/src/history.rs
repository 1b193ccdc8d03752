//! Watch history and fan-out: the last N durable events in revision order,
//! and the live watchers they are sent to.
//!
//! Events arrive here only after they are durable, in revision order, from
//! one group-commit leader at a time; so a watcher never sees a revision
//! that a crash could take back, and never sees gaps or reordering.
//! Registering a watcher (replay + subscribe) and publishing happen under
//! one lock, so no event falls between the replay and the live stream.
//!
//! Events are kept as the JSON the store wrote to disk, several times
//! smaller than a decoded object, and decoded only when a watcher wants
//! them: once per event for all live watchers, and on replay.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::{StoreError, StoreEvent, StoreEventType};

/// A durable event as the history keeps it; `object` is the object's JSON
/// (for a delete: the deleted object stamped with the delete's revision);
/// `prev`, for a change, what selectors see of the version before.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EncodedEvent {
    pub kind: StoreEventType,
    pub key: String,
    pub object: Arc<[u8]>,
    pub prev: Option<Arc<Value>>,
    pub revision: u64,
}

impl EncodedEvent {
    /// The event as watchers receive it; `None` (logged) if the bytes are
    /// not JSON, which the store never writes.
    fn decode(&self) -> Option<StoreEvent> {
        match serde_json::from_slice::<Value>(&self.object) {
            Ok(object) => Some(StoreEvent {
                kind: self.kind,
                key: self.key.clone(),
                object,
                prev: self.prev.clone(),
                revision: self.revision,
            }),
            Err(e) => {
                tracing::error!(key = %self.key, revision = self.revision, error = %e, "undecodable watch event");
                None
            }
        }
    }
}

pub(crate) struct WatchHistory {
    state: Mutex<HistoryState>,
    /// Events kept for resuming watches.
    limit: usize,
    /// Live events a watcher may fall behind by before it is dropped.
    channel_capacity: usize,
}

struct HistoryState {
    events: VecDeque<EncodedEvent>,
    /// The revision just before the oldest retained event: a watch from
    /// here or later can be served completely.
    start: u64,
    watchers: Vec<Watcher>,
}

struct Watcher {
    prefix: String,
    /// Only events after this revision; it may be ahead of the history when
    /// a client lists between a write's apply and its publication.
    from_rv: u64,
    tx: mpsc::Sender<StoreEvent>,
}

impl WatchHistory {
    /// An empty history whose events continue after `current`.
    pub(crate) fn new(current: u64, limit: usize, channel_capacity: usize) -> Self {
        WatchHistory {
            state: Mutex::new(HistoryState {
                events: VecDeque::new(),
                start: current,
                watchers: Vec::new(),
            }),
            limit,
            channel_capacity: channel_capacity.max(1),
        }
    }

    /// Replays retained events after `from_rv` under `prefix`, then streams
    /// live ones. Expired when events after `from_rv` were already evicted.
    pub(crate) fn watch(
        &self,
        prefix: &str,
        from_rv: u64,
    ) -> Result<mpsc::Receiver<StoreEvent>, StoreError> {
        let mut state = self.lock();
        if from_rv < state.start {
            return Err(StoreError::Expired {
                oldest: state.start,
            });
        }
        let replay: Vec<StoreEvent> = state
            .events
            .iter()
            .filter(|e| e.revision > from_rv && e.key.starts_with(prefix))
            .filter_map(EncodedEvent::decode)
            .collect();
        // Room for the whole replay on top of the live allowance, so a
        // resume from far back is not mistaken for a slow reader.
        let (tx, rx) = mpsc::channel(replay.len() + self.channel_capacity);
        for event in replay {
            tx.try_send(event).expect("channel sized for the replay");
        }
        state.watchers.push(Watcher {
            prefix: prefix.to_string(),
            from_rv,
            tx,
        });
        Ok(rx)
    }

    /// Appends durable events (in revision order) and sends them to matching
    /// watchers. A watcher whose channel is full is dropped, which closes its
    /// stream: the client re-lists instead of stalling every writer.
    pub(crate) fn publish(&self, events: Vec<EncodedEvent>) {
        if events.is_empty() {
            return;
        }
        let mut state = self.lock();
        let state = &mut *state;
        state.watchers.retain(|w| !w.tx.is_closed());
        for event in events {
            let wants =
                |w: &Watcher| event.revision > w.from_rv && event.key.starts_with(&w.prefix);
            // Decoded once for every watcher, and not at all when none
            // watches this key.
            let decoded = if state.watchers.iter().any(wants) {
                event.decode()
            } else {
                None
            };
            if let Some(decoded) = decoded {
                state.watchers.retain(|w| {
                    if !wants(w) {
                        return true;
                    }
                    match w.tx.try_send(decoded.clone()) {
                        Ok(()) => true,
                        Err(TrySendError::Full(_)) => {
                            tracing::warn!(
                                prefix = %w.prefix,
                                revision = decoded.revision,
                                "watcher fell behind; closing its stream"
                            );
                            false
                        }
                        Err(TrySendError::Closed(_)) => false,
                    }
                });
            }
            state.events.push_back(event);
            while state.events.len() > self.limit {
                if let Some(old) = state.events.pop_front() {
                    state.start = old.revision;
                }
            }
        }
    }

    /// Number of live watchers (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn watcher_count(&self) -> usize {
        self.lock().watchers.len()
    }

    fn lock(&self) -> MutexGuard<'_, HistoryState> {
        // Every mutation leaves the state consistent between statements that
        // can panic, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(revision: u64, key: &str) -> EncodedEvent {
        let object = json!({"metadata": {"resourceVersion": revision.to_string()}});
        EncodedEvent {
            kind: StoreEventType::Added,
            key: key.to_string(),
            object: serde_json::to_vec(&object).unwrap().into(),
            prev: None,
            revision,
        }
    }

    fn drain(rx: &mut mpsc::Receiver<StoreEvent>) -> Vec<u64> {
        let mut revs = Vec::new();
        while let Ok(e) = rx.try_recv() {
            revs.push(e.revision);
        }
        revs
    }

    #[test]
    fn replay_then_live_in_order() {
        let h = WatchHistory::new(10, 100, 16);
        h.publish(vec![
            event(11, "/a/1"),
            event(12, "/b/1"),
            event(13, "/a/2"),
        ]);
        let mut rx = h.watch("/a/", 11).unwrap();
        h.publish(vec![event(14, "/a/3"), event(15, "/b/2")]);
        assert_eq!(drain(&mut rx), vec![13, 14]);
    }

    #[test]
    fn replayed_and_live_events_arrive_decoded() {
        let h = WatchHistory::new(0, 100, 16);
        h.publish(vec![event(1, "/a/x")]);
        let mut rx = h.watch("/a/", 0).unwrap();
        h.publish(vec![event(2, "/a/y")]);
        for (rev, key) in [(1, "/a/x"), (2, "/a/y")] {
            let e = rx.try_recv().unwrap();
            assert_eq!(
                (e.kind, e.key.as_str(), e.revision),
                (StoreEventType::Added, key, rev)
            );
            assert_eq!(e.object["metadata"]["resourceVersion"], rev.to_string());
        }
    }

    #[test]
    fn eviction_moves_the_expiry_point() {
        let h = WatchHistory::new(0, 3, 16);
        h.publish((1..=5).map(|r| event(r, "/a/x")).collect());
        // Events 3, 4, 5 remain: a watch from 2 is complete, from 1 is not.
        assert_eq!(drain(&mut h.watch("/a/", 2).unwrap()), vec![3, 4, 5]);
        assert_eq!(
            h.watch("/a/", 1).unwrap_err(),
            StoreError::Expired { oldest: 2 }
        );
    }

    #[test]
    fn watch_ahead_of_history_skips_older_events() {
        let h = WatchHistory::new(0, 100, 16);
        let mut rx = h.watch("/", 2).unwrap();
        h.publish(vec![event(1, "/x"), event(2, "/x"), event(3, "/x")]);
        assert_eq!(drain(&mut rx), vec![3]);
    }

    #[test]
    fn slow_watcher_is_closed_and_others_continue() {
        let h = WatchHistory::new(0, 100, 2);
        let mut slow = h.watch("/", 0).unwrap();
        let mut fast = h.watch("/", 0).unwrap();
        for r in 1..=4 {
            h.publish(vec![event(r, "/x")]);
            assert_eq!(drain(&mut fast), vec![r]);
        }
        // The slow one got what fit, then its stream ended.
        assert_eq!(drain(&mut slow), vec![1, 2]);
        assert!(slow.blocking_recv().is_none());
        assert_eq!(h.watcher_count(), 1);
    }

    #[test]
    fn dropped_receivers_are_forgotten() {
        let h = WatchHistory::new(0, 100, 2);
        drop(h.watch("/quiet/", 0).unwrap());
        h.publish(vec![event(1, "/other")]);
        assert_eq!(h.watcher_count(), 0);
    }
}
