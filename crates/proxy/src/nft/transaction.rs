//! iptables-restore input turned into one nf_tables batch, with the
//! meaning iptables-restore gives it: without `--noflush` each table named
//! is replaced whole; with it, a declared chain is created or emptied and
//! `-X` deletes one. Every table of the input goes into the same batch, so
//! the kernel applies all of them at once. Pure.

use super::batch::{builtin_chains, Batch, Finished, What};
use super::expr::write_rule;
use super::rule::parse_rule;

/// The batch for `text`, or why it cannot be written this way (a table,
/// line or option this writer does not know).
pub fn batch_for(text: &str, replace: bool) -> Result<Finished<'_>, String> {
    let mut batch = Batch::new();
    // A message is about 3 to 5 times the bytes of its line.
    batch.reserve(text.len() * 4);
    let mut table: Option<TableLines> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |e: String| format!("line {}: {e}", n + 1);
        if let Some(name) = line.strip_prefix('*') {
            if table.is_some() {
                return Err(at("table without COMMIT".into()));
            }
            builtin_chains(name).ok_or_else(|| at(format!("table {name} is not supported")))?;
            table = Some(TableLines {
                name,
                lines: Vec::new(),
            });
        } else if line == "COMMIT" {
            let t = table
                .take()
                .ok_or_else(|| at("COMMIT outside a table".into()))?;
            write_table(&mut batch, &t, replace)?;
        } else {
            let t = table
                .as_mut()
                .ok_or_else(|| at("line outside a table".into()))?;
            t.lines.push((n + 1, line));
        }
    }
    if table.is_some() {
        return Err("the last table has no COMMIT".into());
    }
    Ok(batch.end())
}

struct TableLines<'a> {
    name: &'a str,
    lines: Vec<(usize, &'a str)>,
}

fn write_table<'a>(batch: &mut Batch<'a>, t: &TableLines<'a>, replace: bool) -> Result<(), String> {
    let table = t.name;
    let builtins = builtin_chains(table).expect("checked at `*table`");
    let policy_accept = |chain: &str| -> Result<bool, String> {
        // The declared policy of a built-in chain; ACCEPT when undeclared.
        for (n, line) in &t.lines {
            if let Some(decl) = line.strip_prefix(':') {
                let mut parts = decl.split_whitespace();
                if parts.next() == Some(chain) {
                    return match parts.next() {
                        Some("ACCEPT") => Ok(true),
                        Some("DROP") => Ok(false),
                        other => Err(format!("line {n}: policy {other:?} is not supported")),
                    };
                }
            }
        }
        Ok(true)
    };
    batch.new_table(table);
    if replace {
        // Create-then-delete: the table goes whether or not it existed, in
        // the same transaction. Like iptables-restore, an empty table
        // stays gone (the shutdown cleanup).
        batch.delete_table(table);
        if t.lines.is_empty() {
            return Ok(());
        }
        batch.new_table(table);
    }
    // Built-in chains are made when declared, or before their first rule
    // when not, as iptables-nft makes them.
    let mut made: Vec<&str> = Vec::new();
    for (n, line) in &t.lines {
        let at = |e: String| format!("line {n}: {e}");
        if let Some(decl) = line.strip_prefix(':') {
            let name = decl.split_whitespace().next().unwrap_or_default();
            match builtins.iter().find(|b| b.name == name) {
                Some(b) => {
                    batch.new_base_chain(table, name, b, policy_accept(name)?);
                    made.push(b.name);
                }
                None => batch.new_chain(table, name, replace),
            }
            if !replace {
                batch.flush_chain(table, name);
            }
        } else if let Some(rest) = line.strip_prefix("-A ") {
            let (chain, args) = rest
                .split_once(' ')
                .ok_or_else(|| at(format!("rule without a target: {line}")))?;
            let rule = parse_rule(args).map_err(at)?;
            if let Some(b) = builtins.iter().find(|b| b.name == chain) {
                if !made.contains(&b.name) {
                    batch.new_base_chain(table, b.name, b, true);
                    made.push(b.name);
                }
            }
            batch.append_rule(table, chain, rule.proto, What::Rule(line, table), |a| {
                write_rule(a, &rule)
            });
        } else if let Some(chain) = line.strip_prefix("-X ") {
            batch.delete_chain(table, chain.trim());
        } else {
            return Err(at(format!("{line:?} is not supported")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_planners_payloads_are_understood() {
        use crate::plan::{plan_rules, tests::node, tests::web};
        use crate::restore::{render_full, render_partial};
        let mut sp = web(&[("10.244.0.5", 80), ("10.244.0.6", 8080)], Some(30080));
        sp.affinity_timeout = Some(10800);
        sp.external_ips = vec!["192.168.49.10".parse().unwrap()];
        let mut empty = web(&[], Some(30081));
        empty.name = "empty".into();
        empty.cluster_ip = Some("10.96.0.20".parse().unwrap());
        let rules = plan_rules(&[sp, empty], &node());
        let full = render_full(&rules);
        let done = batch_for(&full, true).expect("full payload");
        assert!(done.bytes.len() > full.len());
        let changed = crate::planner::ChangedChains {
            nat: rules
                .nat
                .keys()
                .cloned()
                .chain(["KUBE-SEP-GONE".into()])
                .collect(),
            filter: rules.filter.keys().cloned().collect(),
        };
        let partial = render_partial(&rules, &changed).unwrap();
        batch_for(&partial, false).expect("partial payload");
    }

    #[test]
    fn both_tables_go_into_one_transaction() {
        // filter's REJECTs and nat's DNATs change together: no moment
        // where a Service has neither (a dropped SYN) when it gets its
        // first endpoint, or loses its last.
        let text =
            "*filter\n:KUBE-SERVICES - [0:0]\nCOMMIT\n*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n";
        let done = batch_for(text, false).unwrap();
        let kinds: Vec<String> = done.described.iter().map(|(_, w)| w.to_string()).collect();
        assert_eq!(
            kinds.first().map(String::as_str),
            Some("the begin of the transaction")
        );
        assert_eq!(
            kinds.last().map(String::as_str),
            Some("the end of the transaction")
        );
        let begins = kinds.iter().filter(|k| k.contains("begin")).count();
        assert_eq!(begins, 1, "{kinds:?}");
        assert!(
            kinds.contains(&"create table filter".to_string()),
            "{kinds:?}"
        );
        assert!(kinds.contains(&"create table nat".to_string()), "{kinds:?}");
    }

    #[test]
    fn unknown_input_is_refused_with_its_line() {
        let e = batch_for("*mangle\nCOMMIT\n", true).err().unwrap();
        assert!(e.contains("line 1") && e.contains("mangle"), "{e}");
        let e = batch_for("*nat\n-A X -j LOG\nCOMMIT\n", true)
            .err()
            .unwrap();
        assert!(e.starts_with("line 2"), "{e}");
        assert!(batch_for("*nat\n", true).is_err());
        assert!(batch_for("-A X -j ACCEPT\n", true).is_err());
    }
}
