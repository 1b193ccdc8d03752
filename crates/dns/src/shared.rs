//! The table the server answers from, swapped whole when the cluster
//! changes. A query takes the read lock only long enough to clone an
//! `Arc`; a rebuild never blocks lookups while it runs.

use std::sync::{Arc, RwLock};

use crate::records::Table;

#[derive(Debug)]
pub struct SharedTable {
    current: RwLock<Arc<Table>>,
}

impl SharedTable {
    pub fn new(table: Table) -> SharedTable {
        SharedTable {
            current: RwLock::new(Arc::new(table)),
        }
    }

    /// The table in force now.
    pub fn load(&self) -> Arc<Table> {
        // A panic while holding the lock cannot leave a half-written
        // `Arc`, so a poisoned lock still holds a whole table.
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Put `table` in force; the old one is freed by its last reader.
    pub fn store(&self, table: Table) {
        let table = Arc::new(table);
        let old = std::mem::replace(
            &mut *self.current.write().unwrap_or_else(|e| e.into_inner()),
            table,
        );
        drop(old);
    }
}
