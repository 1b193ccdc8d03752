//! The table the server answers from, shared between the feed (one
//! writer) and the answering threads and tasks (readers).
//!
//! The feed changes the table in place, a few names per API event, so a
//! write holds the lock for microseconds; readers hold it only while they
//! look a batch of questions up, never across an await or a send.

use std::sync::{RwLock, RwLockReadGuard};

use crate::records::Table;

#[derive(Debug)]
pub struct SharedTable {
    current: RwLock<Table>,
}

impl SharedTable {
    pub fn new(table: Table) -> SharedTable {
        SharedTable {
            current: RwLock::new(table),
        }
    }

    /// The table in force now; keep the guard short.
    pub fn load(&self) -> RwLockReadGuard<'_, Table> {
        // A panic in a writer leaves counts that were being changed, but
        // never freed memory: answering on beats answering nothing.
        self.current.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Put a whole new `table` in force (the first list, a relist).
    pub fn store(&self, table: Table) {
        let old = std::mem::replace(
            &mut *self.current.write().unwrap_or_else(|e| e.into_inner()),
            table,
        );
        // Freed after the lock is released: 10,000 Services take a while.
        drop(old);
    }

    /// Change the table in place.
    pub fn update<R>(&self, change: impl FnOnce(&mut Table) -> R) -> R {
        change(&mut self.current.write().unwrap_or_else(|e| e.into_inner()))
    }
}
