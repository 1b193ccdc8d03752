//! One sync of the kernel to a set of service ports: plan, render, write,
//! each phase timed. The proxy's watch loop and the sync benchmark both
//! drive this, so the benchmark measures the code the proxy runs.

use crate::kernel::RuleWriter;
use crate::model::ServicePort;
use crate::plan::NodeContext;
use crate::planner::RulePlanner;
use crate::restore::{render_cleanup, render_full, render_partial, rule_count};
use crate::ProxyError;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one sync did and what each phase cost.
#[derive(Clone, Debug, Default)]
pub struct SyncStats {
    /// Every chain was written (the tables were replaced).
    pub full: bool,
    /// Rules of the nat table after the sync.
    pub nat_rules: usize,
    /// Bytes of iptables-restore input written (0: nothing changed,
    /// nothing written).
    pub payload_bytes: usize,
    /// Planning the rules (incremental: unchanged ports are reused).
    pub plan: Duration,
    /// Rendering the iptables-restore input.
    pub render: Duration,
    /// Writing the rules into the kernel (over netlink, or by running
    /// iptables-restore) until it committed.
    pub write: Duration,
}

impl SyncStats {
    pub fn total(&self) -> Duration {
        self.plan + self.render + self.write
    }
}

/// The proxy's knowledge of the kernel: what the last sync wrote.
pub struct RuleSync {
    writer: Arc<dyn RuleWriter>,
    node: NodeContext,
    /// Keeps the last plan; the kernel holds it when `in_sync`.
    planner: RulePlanner,
    /// False when the kernel's state is unknown (start, a failed write,
    /// the periodic resync): the next sync replaces every rule.
    in_sync: bool,
    /// The service ports of the last successful write, to find UDP flows
    /// to endpoints that are gone.
    ports: Vec<ServicePort>,
}

impl RuleSync {
    pub fn new(writer: Arc<dyn RuleWriter>, node: NodeContext) -> RuleSync {
        RuleSync {
            writer,
            node,
            planner: RulePlanner::default(),
            in_sync: false,
            ports: Vec::new(),
        }
    }

    /// Forget what the kernel holds: the next sync replaces every rule,
    /// repairing whatever someone else changed.
    pub fn invalidate(&mut self) {
        self.in_sync = false;
    }

    /// Bring the kernel to the rules of `ports`: only the chains that
    /// changed since the last sync, or everything when the kernel's state
    /// is unknown. On failure the next sync is full.
    pub fn sync(&mut self, ports: Vec<ServicePort>) -> Result<SyncStats, ProxyError> {
        let mut stats = SyncStats::default();
        let started = Instant::now();
        let changed = self.planner.plan(&ports, &self.node);
        stats.plan = started.elapsed();
        let desired = self.planner.rules();
        stats.nat_rules = rule_count(&desired.nat);

        let started = Instant::now();
        let replace = !self.in_sync;
        let payload = if replace {
            Some(render_full(desired))
        } else {
            render_partial(desired, &changed)
        };
        stats.render = started.elapsed();
        stats.full = replace;

        if let Some(payload) = payload {
            stats.payload_bytes = payload.len();
            // Unknown until the write succeeds.
            self.in_sync = false;
            let started = Instant::now();
            self.writer.restore(&payload, replace)?;
            stats.write = started.elapsed();
        }
        // After the rules, so that a new UDP datagram to a removed
        // endpoint's flow is balanced by the new rules.
        for (cluster_ip, port, endpoint) in stale_udp_flows(&self.ports, &ports) {
            self.writer.clear_udp_flows(cluster_ip, port, endpoint);
        }
        self.in_sync = true;
        self.ports = ports;
        Ok(stats)
    }

    /// Whether the kernel still holds exactly what the last sync wrote
    /// (`None`: the writer cannot tell).
    pub fn kernel_untouched(&self) -> Option<bool> {
        if !self.in_sync {
            return Some(false);
        }
        self.writer.untouched_since_last_write()
    }

    /// Remove every rule and chain (on shutdown).
    pub fn cleanup(&mut self) -> Result<(), ProxyError> {
        self.in_sync = false;
        self.writer.restore(&render_cleanup(), true)
    }
}

/// UDP flows (ClusterIP, port, endpoint IP) whose endpoint is in `old` but
/// no longer in `new`: conntrack would keep sending their datagrams to an
/// endpoint that is gone.
pub fn stale_udp_flows(old: &[ServicePort], new: &[ServicePort]) -> Vec<(Ipv4Addr, u16, Ipv4Addr)> {
    let mut stale = Vec::new();
    for o in old.iter().filter(|p| p.protocol == "udp") {
        let Some(ip) = o.cluster_ip else { continue };
        let now: BTreeSet<Ipv4Addr> = new
            .iter()
            .find(|n| {
                n.namespace == o.namespace
                    && n.name == o.name
                    && n.port_name == o.port_name
                    && n.protocol == "udp"
            })
            .map(|n| n.endpoints.iter().map(|e| e.ip).collect())
            .unwrap_or_default();
        for e in &o.endpoints {
            if !now.contains(&e.ip) {
                stale.push((ip, o.port, e.ip));
            }
        }
    }
    stale
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records what would have gone to the kernel.
    #[derive(Default)]
    struct Recorder {
        restores: Mutex<Vec<(String, bool)>>,
        cleared: Mutex<Vec<(Ipv4Addr, u16, Ipv4Addr)>>,
        fail: Mutex<bool>,
    }

    impl RuleWriter for Recorder {
        fn restore(&self, payload: &str, replace: bool) -> Result<(), ProxyError> {
            if *self.fail.lock().unwrap() {
                return Err(ProxyError::Restore("refused".into()));
            }
            self.restores
                .lock()
                .unwrap()
                .push((payload.to_string(), replace));
            Ok(())
        }
        fn clear_udp_flows(&self, cluster_ip: Ipv4Addr, port: u16, endpoint: Ipv4Addr) {
            self.cleared
                .lock()
                .unwrap()
                .push((cluster_ip, port, endpoint));
        }
    }

    fn dns(endpoints: &[&str]) -> ServicePort {
        let endpoints: Vec<(&str, u16)> = endpoints.iter().map(|ip| (*ip, 53)).collect();
        let mut sp = ServicePort::cluster_ip(
            "kube-system",
            "kube-dns",
            "udp",
            "10.96.0.10",
            53,
            &endpoints,
        );
        sp.port_name = "dns".into();
        sp
    }

    fn syncer(rec: &Arc<Recorder>) -> RuleSync {
        let node = NodeContext {
            cluster_cidr: "10.244.0.0/16".into(),
        };
        RuleSync::new(rec.clone(), node)
    }

    #[test]
    fn first_sync_is_full_then_only_changes_are_written() {
        let rec = Arc::new(Recorder::default());
        let mut s = syncer(&rec);
        let first = s.sync(vec![dns(&["10.244.0.5", "10.244.0.6"])]).unwrap();
        assert!(first.full);
        let second = s.sync(vec![dns(&["10.244.0.5", "10.244.0.6"])]).unwrap();
        assert!(!second.full);
        assert_eq!(second.payload_bytes, 0, "nothing changed, nothing written");
        let third = s.sync(vec![dns(&["10.244.0.5"])]).unwrap();
        assert!(!third.full && third.payload_bytes > 0);

        let restores = rec.restores.lock().unwrap();
        assert_eq!(restores.len(), 2);
        assert!(restores[0].1, "the first sync replaces the tables");
        assert!(!restores[1].1, "a change is written with --noflush");
        assert!(restores[1].0.contains("-X KUBE-SEP-"));
        assert!(!restores[1].0.contains("KUBE-POSTROUTING"));
        // The UDP flows to the removed endpoint are forgotten.
        assert_eq!(
            *rec.cleared.lock().unwrap(),
            [(
                "10.96.0.10".parse().unwrap(),
                53,
                "10.244.0.6".parse().unwrap()
            )]
        );
    }

    #[test]
    fn a_failed_write_makes_the_next_sync_full() {
        let rec = Arc::new(Recorder::default());
        let mut s = syncer(&rec);
        s.sync(vec![dns(&["10.244.0.5"])]).unwrap();
        *rec.fail.lock().unwrap() = true;
        assert!(s.sync(vec![dns(&["10.244.0.6"])]).is_err());
        *rec.fail.lock().unwrap() = false;
        let again = s.sync(vec![dns(&["10.244.0.6"])]).unwrap();
        assert!(again.full);
        s.invalidate();
        assert!(s.sync(vec![dns(&["10.244.0.6"])]).unwrap().full);
    }
}
