//! The Service allocator: which ClusterIPs and NodePorts each Service
//! holds, kept in memory so that admitting a Service asks a map instead of
//! listing and decoding every Service in the store.
//!
//! It is built from the store's Services on first use and then kept in
//! step by every Service write of the API server. A write *reserves* what
//! admission picked under a short lock; the store write runs without the
//! lock (so concurrent creates share the store's group commit); the
//! reservation is then *settled* by the write's outcome: kept when the
//! write committed, given back when it failed. Two writes are never handed
//! the same address: the second one's admission sees the first one's
//! reservation, whether or not that one has reached the store yet.

use crate::storage::{Storage, Write};
use api::registry::SERVICES;
use api::service_admission::{InUse, ServiceHoldings, ServiceNetwork};
use serde_json::Value;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use store::StoreError;

/// The API server's allocator; see the module doc.
pub struct ServiceAllocator {
    network: ServiceNetwork,
    claims: tokio::sync::OnceCell<Allocations>,
}

impl ServiceAllocator {
    pub fn new(network: ServiceNetwork) -> Self {
        ServiceAllocator {
            network,
            claims: tokio::sync::OnceCell::new(),
        }
    }

    /// The address space admission allocates from.
    pub fn network(&self) -> &ServiceNetwork {
        &self.network
    }

    /// The allocations, read from the store's Services the first time.
    /// Every Service write awaits this before it reserves or writes, so no
    /// Service write runs while they are being read.
    pub async fn allocations(&self, storage: &Storage) -> Result<&Allocations, StoreError> {
        self.claims
            .get_or_try_init(|| async {
                let (services, _) = storage.list(&SERVICES.key_prefix(None)).await?;
                Ok(Allocations::from_services(&services))
            })
            .await
    }
}

/// The store key of a Service: who holds an address.
pub fn service_key(svc: &Value) -> String {
    let meta = &svc["metadata"];
    SERVICES.key(
        meta["namespace"].as_str(),
        meta["name"].as_str().unwrap_or(""),
    )
}

/// A shared handle on who holds each address and port.
#[derive(Clone, Default)]
pub struct Allocations {
    claims: Arc<Mutex<Claims>>,
}

impl Allocations {
    /// What the stored `services` hold, as after a restart.
    pub fn from_services(services: &[Value]) -> Self {
        let allocations = Allocations::default();
        {
            let mut claims = allocations.lock();
            for svc in services {
                claims.claim(&service_key(svc), &ServiceHoldings::of(svc));
            }
        }
        allocations
    }

    /// Run `admit` on the Service stored at `key` (`old` on update) against
    /// what the other Services hold, and reserve what the admitted Service
    /// holds. The lock is held only for this pure, in-memory step.
    pub fn admit<E>(
        &self,
        key: &str,
        svc: &mut Value,
        old: Option<&Value>,
        admit: impl FnOnce(&mut Value, &dyn InUse) -> Result<(), E>,
    ) -> Result<Reservation, E> {
        let mut claims = self.lock();
        // On update the Service's own addresses are its to keep (or give
        // up); on create even a Service of the same name holds its own.
        let others = Others {
            claims: &claims,
            except: old.map(|_| key),
        };
        admit(svc, &others)?;
        let reserved = ServiceHoldings::of(svc);
        claims.claim(key, &reserved);
        Ok(self.reservation(key, reserved, old.map(ServiceHoldings::of)))
    }

    /// Reserve what `svc` holds without admission (the built-in Services
    /// the server writes itself); `old` is the version it replaces.
    pub fn reserve_as_is(&self, key: &str, svc: &Value, old: Option<&Value>) -> Reservation {
        let reserved = ServiceHoldings::of(svc);
        self.lock().claim(key, &reserved);
        self.reservation(key, reserved, old.map(ServiceHoldings::of))
    }

    /// For the deletion of `old` from the store at `key`: nothing is
    /// reserved, and what `old` holds is given back once the delete commits.
    pub fn release_on_delete(&self, key: &str, old: &Value) -> Reservation {
        self.reservation(
            key,
            ServiceHoldings::default(),
            Some(ServiceHoldings::of(old)),
        )
    }

    /// Whether `ip` is held by any Service (or reserved by a write).
    pub fn cluster_ip_held(&self, ip: Ipv4Addr) -> bool {
        self.lock().cluster_ips.contains_key(&ip)
    }

    /// Whether `port` is held by any Service (or reserved by a write).
    pub fn node_port_held(&self, port: u16) -> bool {
        self.lock().node_ports.contains_key(&port)
    }

    fn reservation(
        &self,
        key: &str,
        reserved: ServiceHoldings,
        replaced: Option<ServiceHoldings>,
    ) -> Reservation {
        Reservation {
            claims: self.claims.clone(),
            owner: key.to_string(),
            reserved,
            replaced: replaced.unwrap_or_default(),
            settled: false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Claims> {
        // Every mutation completes between statements that cannot panic,
        // so a poisoned lock still guards consistent claims.
        self.claims.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Who holds each address and port.
#[derive(Default)]
struct Claims {
    cluster_ips: HashMap<Ipv4Addr, Claim>,
    node_ports: HashMap<u16, Claim>,
}

/// One address's holder. `count` is above 1 while writes of the same
/// Service are in flight: each reserves what it will hold, on top of what
/// the stored version holds, until it is settled.
struct Claim {
    owner: String,
    count: u32,
}

impl Claims {
    fn claim(&mut self, owner: &str, held: &ServiceHoldings) {
        for ip in &held.cluster_ips {
            take(&mut self.cluster_ips, *ip, owner);
        }
        for port in &held.node_ports {
            take(&mut self.node_ports, *port, owner);
        }
    }

    fn release(&mut self, owner: &str, held: &ServiceHoldings) {
        for ip in &held.cluster_ips {
            give_back(&mut self.cluster_ips, ip, owner);
        }
        for port in &held.node_ports {
            give_back(&mut self.node_ports, port, owner);
        }
    }
}

fn take<K: Hash + Eq + Copy + std::fmt::Display>(
    map: &mut HashMap<K, Claim>,
    item: K,
    owner: &str,
) {
    let claim = map.entry(item).or_insert_with(|| Claim {
        owner: owner.to_string(),
        count: 0,
    });
    if claim.owner == owner {
        claim.count += 1;
    } else {
        // Admission never hands out a held address; this is data written
        // before that was enforced (two stored Services sharing one). The
        // first holder keeps it, so the second's delete gives nothing back.
        tracing::warn!(
            address = %item,
            held_by = %claim.owner,
            also_claimed_by = owner,
            "two Services hold the same address or port"
        );
    }
}

fn give_back<K: Hash + Eq>(map: &mut HashMap<K, Claim>, item: &K, owner: &str) {
    if let Some(claim) = map.get_mut(item) {
        if claim.owner == owner {
            claim.count -= 1;
            if claim.count == 0 {
                map.remove(item);
            }
        }
    }
}

/// Admission's view: everything held, except by `except` (the Service
/// being updated).
struct Others<'a> {
    claims: &'a Claims,
    except: Option<&'a str>,
}

impl Others<'_> {
    fn held<K: Hash + Eq>(&self, map: &HashMap<K, Claim>, item: &K) -> bool {
        map.get(item)
            .is_some_and(|c| Some(c.owner.as_str()) != self.except)
    }
}

impl InUse for Others<'_> {
    fn cluster_ip_in_use(&self, ip: Ipv4Addr) -> bool {
        self.held(&self.claims.cluster_ips, &ip)
    }

    fn node_port_in_use(&self, port: u16) -> bool {
        self.held(&self.claims.node_ports, &port)
    }
}

/// What one Service write holds until its outcome is known. Dropping it
/// unsettled gives the reservation back (the write failed or never ran).
#[must_use = "a reservation is settled by the write's outcome"]
pub struct Reservation {
    claims: Arc<Mutex<Claims>>,
    owner: String,
    /// Given back if the write fails.
    reserved: ServiceHoldings,
    /// Given back once the write commits: what the replaced version held.
    replaced: ServiceHoldings,
    settled: bool,
}

impl Reservation {
    /// The write committed. `removed`: it took the Service out of the
    /// store (a delete), so nothing stays held.
    pub fn commit(mut self, removed: bool) {
        let mut claims = lock(&self.claims);
        claims.release(&self.owner, &self.replaced);
        if removed {
            claims.release(&self.owner, &self.reserved);
        }
        drop(claims);
        self.settled = true;
    }

    /// The Service is to be stored under another key (a generated name
    /// was drawn again after a collision).
    pub fn rename(&mut self, key: &str) {
        let mut claims = lock(&self.claims);
        claims.release(&self.owner, &self.reserved);
        claims.claim(key, &self.reserved);
        drop(claims);
        self.owner = key.to_string();
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("owner", &self.owner)
            .field("reserved", &self.reserved)
            .field("replaced", &self.replaced)
            .finish()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            lock(&self.claims).release(&self.owner, &self.reserved);
        }
    }
}

fn lock(claims: &Mutex<Claims>) -> MutexGuard<'_, Claims> {
    claims.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run `write` at `key` and settle `reservation` with its outcome, in one
/// blocking task: that task runs to the end even when the request is
/// abandoned (client gone), so the allocator never disagrees with the
/// store. The reservation comes back unsettled when the write failed, for
/// the caller to retry with or drop.
pub async fn settled_write(
    storage: &Storage,
    key: String,
    write: Write,
    reservation: Option<Reservation>,
) -> (Result<Value, StoreError>, Option<Reservation>) {
    let removes = matches!(write, Write::Delete(_));
    let outcome = storage
        .blocking(move |store| {
            let result = write.apply(store, &key);
            let unsettled = match (&result, reservation) {
                (Ok(_), Some(r)) => {
                    r.commit(removes);
                    None
                }
                (_, r) => r,
            };
            Ok((result, unsettled))
        })
        .await;
    match outcome {
        Ok(done) => done,
        // The task died; its reservation was dropped (given back) with it.
        Err(e) => (Err(e), None),
    }
}

#[cfg(test)]
mod tests;
