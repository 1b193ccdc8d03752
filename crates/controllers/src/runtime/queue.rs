//! A work queue of keys, like client-go's: a key queued many times before a
//! worker takes it is reconciled once (bursts coalesce), and a key queued
//! while it is being reconciled is reconciled again afterwards.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub struct WorkQueue<T> {
    state: Mutex<State<T>>,
    ready: Notify,
}

struct State<T> {
    order: VecDeque<T>,
    queued: HashSet<T>,
}

impl<T> WorkQueue<T>
where
    T: Clone + Eq + Hash + Send + 'static,
{
    pub fn new() -> Arc<WorkQueue<T>> {
        Arc::new(WorkQueue {
            state: Mutex::new(State {
                order: VecDeque::new(),
                queued: HashSet::new(),
            }),
            ready: Notify::new(),
        })
    }

    pub fn add(&self, key: T) {
        let mut state = self.state.lock().unwrap();
        if state.queued.insert(key.clone()) {
            state.order.push_back(key);
            drop(state);
            self.ready.notify_one();
        }
    }

    /// Queue `key` after `delay` (a retry, or a time-based condition such as
    /// `minReadySeconds`), unless `shutdown` fires first.
    pub fn add_after(self: &Arc<Self>, key: T, delay: Duration, shutdown: &CancellationToken) {
        let queue = self.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(delay) => queue.add(key),
            }
        });
    }

    /// The next key, or None once `shutdown` fires.
    pub async fn next(&self, shutdown: &CancellationToken) -> Option<T> {
        loop {
            let notified = self.ready.notified();
            if let Some(key) = self.pop() {
                return Some(key);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = notified => {}
            }
        }
    }

    fn pop(&self) -> Option<T> {
        let mut state = self.state.lock().unwrap();
        let key = state.order.pop_front()?;
        state.queued.remove(&key);
        Some(key)
    }

    pub fn len(&self) -> usize {
        self.state.lock().unwrap().order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bursts_coalesce_in_order() {
        let q = WorkQueue::new();
        let stop = CancellationToken::new();
        for k in ["a", "b", "a", "a", "c", "b"] {
            q.add(k);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.next(&stop).await, Some("a"));
        q.add("a"); // changed again while being reconciled
        assert_eq!(q.next(&stop).await, Some("b"));
        assert_eq!(q.next(&stop).await, Some("c"));
        assert_eq!(q.next(&stop).await, Some("a"));
        stop.cancel();
        assert_eq!(q.next(&stop).await, None);
    }

    #[tokio::test]
    async fn wakes_a_waiting_worker_and_delays() {
        let q = WorkQueue::new();
        let stop = CancellationToken::new();
        let q2 = q.clone();
        let worker = tokio::spawn(async move { q2.next(&CancellationToken::new()).await });
        tokio::task::yield_now().await;
        q.add_after(7, Duration::from_millis(5), &stop);
        assert_eq!(worker.await.unwrap(), Some(7));
    }
}
