//! Planning incrementally (KEP-3453's idea): the planner keeps the last
//! plan and, for a new set of service ports, replans only the ports whose
//! inputs changed and reports which chains changed, so one endpoint change
//! among thousands of Services costs one port's planning and a write of its
//! chains, not a pass over every rule. Pure.

use crate::model::ServicePort;
use crate::plan::{
    fixed_chains, is_large_cluster, plan_port, shared_chains, Chains, NodeContext, PortRules,
    RuleSet, Rules,
};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Names of the chains one plan changed, per table: written anew when the
/// plan has them, gone (to delete) when it has not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangedChains {
    pub nat: BTreeSet<String>,
    pub filter: BTreeSet<String>,
}

impl ChangedChains {
    pub fn is_empty(&self) -> bool {
        self.nat.is_empty() && self.filter.is_empty()
    }
}

/// The order of ports, as the model sorts them; a port is known by it.
fn port_key(p: &ServicePort) -> (&str, &str, &str, &str) {
    (&p.namespace, &p.name, &p.port_name, &p.protocol)
}

/// Whether two plans of a port add the same lines to the shared chains.
fn same_shared_lines(a: &PortRules, b: &PortRules) -> bool {
    a.services == b.services
        && a.nodeports == b.nodeports
        && a.filter_services == b.filter_services
        && a.filter_external == b.filter_external
}

#[derive(Default)]
pub struct RulePlanner {
    /// Each port's inputs and rules as last planned, in `port_key` order.
    ports: Vec<(ServicePort, PortRules)>,
    /// The mode the rules were planned in (see `is_large_cluster`).
    large_cluster: bool,
    /// The whole plan, kept up to date.
    rules: RuleSet,
}

impl RulePlanner {
    /// Plan `ports` and say which chains differ from the previous plan.
    /// The previous and the new ports are walked side by side in
    /// `port_key` order, so an unchanged port costs one comparison and no
    /// copy.
    pub fn plan(&mut self, ports: &[ServicePort], node: &NodeContext) -> ChangedChains {
        let mut changed = ChangedChains::default();
        let first = self.rules.nat.is_empty();
        if first {
            let (nat, filter) = fixed_chains();
            for (name, rules) in nat {
                set_chain(&mut self.rules.nat, &mut changed.nat, name, rules);
            }
            for (name, rules) in filter {
                set_chain(&mut self.rules.filter, &mut changed.filter, name, rules);
            }
        }
        // The model returns ports sorted; anything else is sorted here.
        let sorted: Cow<[ServicePort]> = if ports.is_sorted_by_key(port_key) {
            Cow::Borrowed(ports)
        } else {
            let mut v = ports.to_vec();
            v.sort_by(|a, b| port_key(a).cmp(&port_key(b)));
            Cow::Owned(v)
        };
        let large = is_large_cluster(&sorted);
        // Crossing the threshold adds or drops every endpoint comment.
        let replan_all = large != self.large_cluster;
        self.large_cluster = large;

        let mut shared_dirty = first;
        let mut next = Vec::with_capacity(sorted.len());
        let mut previous = std::mem::take(&mut self.ports).into_iter().peekable();
        for sp in sorted.iter() {
            // Previous ports ordered before this one are gone.
            while let Some((_, rules)) = previous.next_if(|(old, _)| port_key(old) < port_key(sp)) {
                self.replace_port_chains(&rules.chains, &[], &mut changed);
                shared_dirty = true;
            }
            match previous.next_if(|(old, _)| port_key(old) == port_key(sp)) {
                Some((old, rules)) if old == *sp && !replan_all => next.push((old, rules)),
                old => {
                    let rules = plan_port(sp, node, large);
                    let old_rules = old.map(|(_, r)| r).unwrap_or_default();
                    shared_dirty |= !same_shared_lines(&old_rules, &rules);
                    self.replace_port_chains(&old_rules.chains, &rules.chains, &mut changed);
                    next.push((sp.clone(), rules));
                }
            }
        }
        for (_, rules) in previous {
            self.replace_port_chains(&rules.chains, &[], &mut changed);
            shared_dirty = true;
        }
        self.ports = next;

        if shared_dirty {
            let (nat, filter) = shared_chains(self.ports.iter().map(|(_, r)| r));
            for (name, rules) in nat {
                set_chain(&mut self.rules.nat, &mut changed.nat, name, rules);
            }
            for (name, rules) in filter {
                set_chain(&mut self.rules.filter, &mut changed.filter, name, rules);
            }
        }
        changed
    }

    /// The whole current plan.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    pub fn into_rules(self) -> RuleSet {
        self.rules
    }

    /// A port's own nat chains go from `old` to `new`.
    fn replace_port_chains(
        &mut self,
        old: &[(String, Rules)],
        new: &[(String, Rules)],
        changed: &mut ChangedChains,
    ) {
        for (name, _) in old {
            if !new.iter().any(|(n, _)| n == name) && self.rules.nat.remove(name).is_some() {
                changed.nat.insert(name.clone());
            }
        }
        for (name, rules) in new {
            set_chain(
                &mut self.rules.nat,
                &mut changed.nat,
                name.clone(),
                rules.clone(),
            );
        }
    }
}

/// Put `rules` in `chains` under `name`, noting the name when the chain is
/// new or its rules differ.
fn set_chain(chains: &mut Chains, changed: &mut BTreeSet<String>, name: String, rules: Rules) {
    match chains.get(&name) {
        Some(old) if Arc::ptr_eq(old, &rules) || *old == rules => {}
        _ => {
            changed.insert(name.clone());
            chains.insert(name, rules);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain_name::{endpoint_chain, service_chain};
    use crate::plan::plan_rules;
    use crate::plan::tests::{cluster, node, web};

    #[test]
    fn incremental_planner_matches_a_full_plan() {
        let a = web(&[("10.244.0.5", 80), ("10.244.0.6", 80)], None);
        let mut b = web(&[("10.244.0.7", 80)], Some(30080));
        b.name = "api".into();
        let mut planner = RulePlanner::default();
        planner.plan(&[b.clone(), a.clone()], &node());
        assert_eq!(
            *planner.rules(),
            plan_rules(&[b.clone(), a.clone()], &node())
        );
        let a2 = web(&[("10.244.0.5", 80)], None);
        planner.plan(&[b.clone(), a2.clone()], &node());
        assert_eq!(*planner.rules(), plan_rules(&[b.clone(), a2], &node()));
        // A port removed entirely takes its chains along.
        planner.plan(&[b.clone()], &node());
        assert_eq!(*planner.rules(), plan_rules(&[b], &node()));
    }

    #[test]
    fn one_endpoint_change_changes_only_its_chains() {
        let mut planner = RulePlanner::default();
        let mut ports = cluster(3);
        let first = planner.plan(&ports, &node());
        assert!(first.nat.contains("KUBE-SERVICES") && first.filter.contains("KUBE-FORWARD"));
        assert!(planner.plan(&ports, &node()).is_empty());

        // web-1's endpoint 10.244.1.11 is replaced by 10.244.1.99.
        ports[1].endpoints.pop();
        ports[1].endpoints.push(crate::model::Endpoint {
            ip: "10.244.1.99".parse().unwrap(),
            port: 80,
        });
        let changed = planner.plan(&ports, &node());
        let sep = |ip: &str| endpoint_chain("default/web-1", "tcp", &format!("{ip}:80"));
        let want: BTreeSet<String> = [
            service_chain("default/web-1", "tcp"),
            sep("10.244.1.11"),
            sep("10.244.1.99"),
        ]
        .into();
        assert_eq!(changed.nat, want);
        assert!(changed.filter.is_empty());
        assert!(!planner.rules().nat.contains_key(&sep("10.244.1.11")));
        assert!(planner.rules().nat.contains_key(&sep("10.244.1.99")));
        assert_eq!(*planner.rules(), plan_rules(&ports, &node()));
    }

    #[test]
    fn ports_in_any_order_plan_the_same_rules() {
        let ports = cluster(4);
        let mut shuffled = ports.clone();
        shuffled.swap(0, 3);
        shuffled.swap(1, 2);
        let mut planner = RulePlanner::default();
        planner.plan(&shuffled, &node());
        assert_eq!(*planner.rules(), plan_rules(&ports, &node()));
        assert!(planner.plan(&ports, &node()).is_empty());
    }

    #[test]
    fn a_service_losing_its_last_endpoint_changes_the_shared_chains() {
        let mut planner = RulePlanner::default();
        let mut ports = cluster(2);
        planner.plan(&ports, &node());
        ports[0].endpoints.clear();
        let changed = planner.plan(&ports, &node());
        assert!(changed.nat.contains("KUBE-SERVICES"));
        assert!(changed.nat.contains(&service_chain("default/web-0", "tcp")));
        assert!(changed.filter.contains("KUBE-SERVICES"), "the REJECT rule");
        assert_eq!(*planner.rules(), plan_rules(&ports, &node()));
    }

    #[test]
    fn incremental_planner_follows_the_large_cluster_threshold() {
        let mut planner = RulePlanner::default();
        let mut ports = cluster(100);
        planner.plan(&ports, &node());
        assert_eq!(*planner.rules(), plan_rules(&ports, &node()));
        ports.extend(cluster(101).pop());
        let changed = planner.plan(&ports, &node());
        assert_eq!(*planner.rules(), plan_rules(&ports, &node()));
        // Every endpoint chain lost its comments.
        assert!(changed.nat.len() > 100 * 11);
        ports.pop();
        planner.plan(&ports, &node());
        assert_eq!(*planner.rules(), plan_rules(&ports, &node()));
    }

    #[test]
    fn unchanged_chains_are_shared_between_plans() {
        let mut planner = RulePlanner::default();
        let mut ports = cluster(3);
        planner.plan(&ports, &node());
        let before = planner.rules().clone();
        ports[1].endpoints.pop();
        planner.plan(&ports, &node());
        let after = planner.rules();
        let same = |name: &str| Arc::ptr_eq(&before.nat[name], &after.nat[name]);
        assert!(same(&service_chain("default/web-0", "tcp")));
        assert!(same(&service_chain("default/web-2", "tcp")));
        assert!(!same(&service_chain("default/web-1", "tcp")));
    }
}
