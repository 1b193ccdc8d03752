//! Turning planned rules into one `iptables-restore --noflush` transaction:
//! everything on a full sync, only the chains that changed otherwise
//! (KEP-3453's partial sync). Pure.

use crate::plan::{builtin_jumps, Chains, RuleSet};
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
    let mut out = String::new();
    for (table, chains, jumps) in [
        ("filter", &desired.filter, &filter_jumps),
        ("nat", &desired.nat, &nat_jumps),
    ] {
        let all: Vec<(&String, &Vec<String>)> = jumps.iter().chain(chains.iter()).collect();
        write_table(&mut out, table, &all, &[]);
    }
    out
}

/// Only what changed between `previous` (what the last sync wrote) and
/// `desired`; `None` when nothing did.
pub fn render_partial(previous: &RuleSet, desired: &RuleSet) -> Option<String> {
    let mut out = String::new();
    let mut changed = false;
    for (table, old, new) in [
        ("filter", &previous.filter, &desired.filter),
        ("nat", &previous.nat, &desired.nat),
    ] {
        let updated: Vec<(&String, &Vec<String>)> = new
            .iter()
            .filter(|(c, r)| old.get(*c) != Some(*r))
            .collect();
        let stale: Vec<&String> = old.keys().filter(|c| !new.contains_key(*c)).collect();
        if updated.is_empty() && stale.is_empty() {
            continue;
        }
        changed = true;
        write_table(&mut out, table, &updated, &stale);
    }
    changed.then_some(out)
}

/// Empty tables: applied without `--noflush`, it removes every rule and
/// chain (on shutdown).
pub fn render_cleanup() -> String {
    "*filter\nCOMMIT\n*nat\nCOMMIT\n".to_string()
}

fn write_table(
    out: &mut String,
    table: &str,
    chains: &[(&String, &Vec<String>)],
    stale: &[&String],
) {
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
    chains.values().map(Vec::len).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(chains: &[(&str, &[&str])]) -> RuleSet {
        let mut r = RuleSet::default();
        for (c, rules) in chains {
            r.nat
                .insert(c.to_string(), rules.iter().map(|s| s.to_string()).collect());
        }
        r
    }

    #[test]
    fn partial_sync_writes_only_changed_chains_and_deletes_stale_ones() {
        let old = set(&[
            ("KUBE-SERVICES", &["-j KUBE-SVC-A"]),
            ("KUBE-SVC-A", &["-j KUBE-SEP-1"]),
            ("KUBE-SEP-1", &["-j DNAT"]),
            ("KUBE-SVC-B", &["-j X"]),
        ]);
        let new = set(&[
            ("KUBE-SERVICES", &["-j KUBE-SVC-A"]),
            ("KUBE-SVC-A", &["-j KUBE-SEP-2"]),
            ("KUBE-SEP-2", &["-j DNAT"]),
            ("KUBE-SVC-B", &["-j X"]),
        ]);
        let p = render_partial(&old, &new).unwrap();
        assert!(p.contains(":KUBE-SVC-A - [0:0]"));
        assert!(p.contains(":KUBE-SEP-2 - [0:0]"));
        assert!(p.contains("-X KUBE-SEP-1"));
        assert!(!p.contains("KUBE-SVC-B"), "unchanged chain rewritten:\n{p}");
        assert!(!p.contains("KUBE-SERVICES"));
        assert!(!p.contains("*filter"));
        assert_eq!(render_partial(&new, &new), None);
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
