//! Turning planned rules into one `iptables-restore --noflush` transaction:
//! everything on a full sync, only the chains that changed otherwise
//! (KEP-3453's partial sync). Pure.

use crate::plan::{builtin_jumps, Chains, RuleSet, Rules};
use crate::planner::ChangedChains;
use std::fmt::Write;

const BUILTIN: &[&str] = &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

/// Every chain of `desired` and the jumps from the built-in chains: the
/// whole of the `nat` and `filter` tables of the node's namespace, which
/// belong to minik8s alone. Applied without `--noflush`, so the kernel
/// replaces the tables at once and anything left from an earlier run, or
/// added by someone else, is gone. (Replacing is also several times faster
/// than `--noflush` with nf_tables for tens of thousands of rules.)
pub fn render_full(desired: &RuleSet) -> String {
    let (nat_jumps, filter_jumps) = builtin_jumps();
    // Sized once: a full payload of 1,000 Services is several megabytes.
    let mut out =
        String::with_capacity(estimated_size(&desired.nat) + estimated_size(&desired.filter));
    // filter first: iptables-restore commits each table on its own (the
    // netlink writer puts both in one transaction). A Service losing its last endpoint must get its REJECT before its
    // DNAT goes, or a connection in between is silently dropped and waits
    // a second for its SYN to be resent (a REJECT on the ClusterIP is
    // harmless while the DNAT is still there: DNAT comes first).
    for (table, chains, jumps) in [
        ("filter", &desired.filter, &filter_jumps),
        ("nat", &desired.nat, &nat_jumps),
    ] {
        let all: Vec<(&String, &Rules)> = jumps.iter().chain(chains.iter()).collect();
        write_table(&mut out, table, &all, &[]);
    }
    out
}

/// Only the chains the last plan changed: those `desired` has are
/// declared (which flushes them) and written, those it has not are flushed
/// and deleted; `None` when nothing changed. Applied with `--noflush`, so
/// every other chain stays as it is in the kernel.
pub fn render_partial(desired: &RuleSet, changed: &ChangedChains) -> Option<String> {
    if changed.is_empty() {
        return None;
    }
    let mut out = String::new();
    // filter first, as in `render_full`.
    for (table, chains, names) in [
        ("filter", &desired.filter, &changed.filter),
        ("nat", &desired.nat, &changed.nat),
    ] {
        if names.is_empty() {
            continue;
        }
        let mut updated = Vec::new();
        let mut stale = Vec::new();
        for name in names {
            match chains.get_key_value(name) {
                Some(chain) => updated.push(chain),
                None => stale.push(name),
            }
        }
        write_table(&mut out, table, &updated, &stale);
    }
    Some(out)
}

/// Empty tables: applied without `--noflush`, it removes every rule and
/// chain (on shutdown).
pub fn render_cleanup() -> String {
    "*filter\nCOMMIT\n*nat\nCOMMIT\n".to_string()
}

/// Bytes of the `-A` lines of `chains`, near enough to size a buffer.
fn estimated_size(chains: &Chains) -> usize {
    chains
        .iter()
        .map(|(name, rules)| {
            rules
                .iter()
                .map(|r| r.len() + name.len() + 5)
                .sum::<usize>()
                + 2 * name.len()
                + 16
        })
        .sum()
}

fn write_table(out: &mut String, table: &str, chains: &[(&String, &Rules)], stale: &[&String]) {
    let _ = writeln!(out, "*{table}");
    for (name, _) in chains {
        if BUILTIN.contains(&name.as_str()) {
            let _ = writeln!(out, ":{name} ACCEPT [0:0]");
        } else {
            let _ = writeln!(out, ":{name} - [0:0]");
        }
    }
    // A chain is flushed by declaring it; then it can be deleted once
    // nothing refers to it (the referring chains were rewritten above).
    for name in stale {
        let _ = writeln!(out, ":{name} - [0:0]");
    }
    for (name, rules) in chains {
        for r in rules.iter() {
            let _ = writeln!(out, "-A {name} {r}");
        }
    }
    for name in stale {
        let _ = writeln!(out, "-X {name}");
    }
    let _ = writeln!(out, "COMMIT");
}

/// Count of rules in a rule set (for logs and benchmarks).
pub fn rule_count(chains: &Chains) -> usize {
    chains.values().map(|r| r.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(chains: &[(&str, &[&str])]) -> RuleSet {
        let mut r = RuleSet::default();
        for (c, rules) in chains {
            r.nat.insert(
                c.to_string(),
                std::sync::Arc::new(rules.iter().map(|s| s.to_string()).collect()),
            );
        }
        r
    }

    #[test]
    fn partial_sync_writes_only_changed_chains_and_deletes_stale_ones() {
        // KUBE-SVC-A's endpoint 1 was replaced by endpoint 2.
        let new = set(&[
            ("KUBE-SERVICES", &["-j KUBE-SVC-A"]),
            ("KUBE-SVC-A", &["-j KUBE-SEP-2"]),
            ("KUBE-SEP-2", &["-j DNAT"]),
            ("KUBE-SVC-B", &["-j X"]),
        ]);
        let changed = ChangedChains {
            nat: ["KUBE-SVC-A", "KUBE-SEP-2", "KUBE-SEP-1"]
                .map(String::from)
                .into(),
            filter: Default::default(),
        };
        let p = render_partial(&new, &changed).unwrap();
        assert!(p.contains(":KUBE-SVC-A - [0:0]"));
        assert!(p.contains(":KUBE-SEP-2 - [0:0]"));
        assert!(p.contains("-A KUBE-SVC-A -j KUBE-SEP-2"));
        // Flushed (declared) before it is deleted.
        assert!(p.contains(":KUBE-SEP-1 - [0:0]"));
        assert!(p.contains("-X KUBE-SEP-1"));
        assert!(!p.contains("KUBE-SVC-B"), "unchanged chain rewritten:\n{p}");
        assert!(!p.contains("KUBE-SERVICES"));
        assert!(!p.contains("*filter"));
        assert!(p.ends_with("COMMIT\n"));
        assert_eq!(render_partial(&new, &ChangedChains::default()), None);
    }

    #[test]
    fn full_sync_writes_jumps_and_every_chain() {
        let new = set(&[("KUBE-SERVICES", &["-j KUBE-SVC-A"]), ("KUBE-SVC-A", &[])]);
        let p = render_full(&new);
        assert!(p.contains(
            "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
        ));
        assert!(p.contains(":KUBE-SVC-A - [0:0]"));
        assert!(p.contains(
            "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD"
        ));
        assert!(!p.contains("-X "));
    }
}
