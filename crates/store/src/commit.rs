//! Group commit: many writers, one flush.
//!
//! A write is applied to sled in memory (cheap), then its writer waits here
//! until its revision is durable. If no flush is running the writer becomes
//! the leader and flushes everything applied so far; writers that arrive
//! meanwhile wait, and the next leader's single flush covers all of them. A
//! lone client pays one flush per write; N concurrent clients pay about one
//! flush per N writes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::StoreError;

pub(crate) struct GroupCommit {
    /// Highest revision known durable; read without the lock on the fast path.
    durable: AtomicU64,
    /// Whether a leader is flushing right now.
    flushing: Mutex<bool>,
    /// Signalled when a flush ends (successfully or not).
    flush_done: Condvar,
}

impl GroupCommit {
    /// `durable`: the revision already on disk when the store opened.
    pub(crate) fn new(durable: u64) -> Self {
        GroupCommit {
            durable: AtomicU64::new(durable),
            flushing: Mutex::new(false),
            flush_done: Condvar::new(),
        }
    }

    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Blocks until `rev` is durable. `flush` runs only if this caller
    /// becomes the leader; it must make durable every write applied before
    /// it was called and return the highest such revision (which is >= `rev`
    /// because the caller applied `rev` before waiting).
    ///
    /// A flush error is returned to its leader; waiting writers wake and one
    /// of them retries with its own flush.
    pub(crate) fn wait_durable(
        &self,
        rev: u64,
        mut flush: impl FnMut() -> Result<u64, StoreError>,
    ) -> Result<(), StoreError> {
        if self.durable() >= rev {
            return Ok(());
        }
        let mut flushing = self.lock();
        loop {
            if self.durable() >= rev {
                return Ok(());
            }
            if *flushing {
                flushing = self
                    .flush_done
                    .wait(flushing)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            }
            *flushing = true;
            drop(flushing);
            let result = flush();
            flushing = self.lock();
            *flushing = false;
            if let Ok(through) = result {
                // fetch_max: durability only moves forward.
                self.durable.fetch_max(through, Ordering::AcqRel);
            }
            self.flush_done.notify_all();
            return match result {
                Ok(through) if through >= rev => Ok(()),
                Ok(through) => Err(StoreError::Io(format!(
                    "flush covered revision {through}, not {rev}"
                ))),
                Err(e) => Err(e),
            };
        }
    }

    fn lock(&self) -> MutexGuard<'_, bool> {
        // The guarded bool stays meaningful even if a holder panicked.
        self.flushing.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn durable_revision_skips_the_flush() {
        let commit = GroupCommit::new(5);
        commit
            .wait_durable(5, || panic!("nothing to flush"))
            .unwrap();
    }

    #[test]
    fn concurrent_writers_share_flushes() {
        let commit = Arc::new(GroupCommit::new(0));
        let applied = Arc::new(AtomicU64::new(0));
        let flushes = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (commit, applied, flushes) = (commit.clone(), applied.clone(), flushes.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let rev = applied.fetch_add(1, Ordering::SeqCst) + 1;
                        commit
                            .wait_durable(rev, || {
                                let through = applied.load(Ordering::SeqCst);
                                std::thread::sleep(Duration::from_millis(2));
                                flushes.fetch_add(1, Ordering::SeqCst);
                                Ok(through)
                            })
                            .unwrap();
                        assert!(commit.durable() >= rev);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(commit.durable(), 320);
        let n = flushes.load(Ordering::SeqCst);
        assert!(n < 320, "{n} flushes for 320 writes: no grouping");
    }

    #[test]
    fn failed_flush_reports_and_next_writer_retries() {
        let commit = GroupCommit::new(0);
        let err = commit
            .wait_durable(1, || Err(StoreError::Io("disk gone".into())))
            .unwrap_err();
        assert_eq!(err, StoreError::Io("disk gone".into()));
        assert_eq!(commit.durable(), 0);
        commit.wait_durable(1, || Ok(1)).unwrap();
        assert_eq!(commit.durable(), 1);
    }
}
