//! Which iptables rules should exist: a pure function of the service ports,
//! written the way kube-proxy's iptables mode writes them.

use crate::chain_name::{endpoint_chain, external_chain, service_chain};
use crate::model::ServicePort;
use std::collections::{BTreeMap, HashMap};

/// The packet mark that asks KUBE-POSTROUTING to masquerade.
pub const MASQ_MARK: &str = "0x4000";

/// Chains of one table, each with its rules (`-A` lines without the
/// `-A CHAIN` prefix).
pub type Chains = BTreeMap<String, Vec<String>>;

/// Every minik8s chain of the `nat` and `filter` tables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSet {
    pub nat: Chains,
    pub filter: Chains,
}

/// What the rules need to know about the node.
#[derive(Clone, Debug)]
pub struct NodeContext {
    /// Traffic from outside this CIDR to a ClusterIP is masqueraded, so
    /// replies come back through the node (kube-proxy's `--cluster-cidr`).
    pub cluster_cidr: String,
}

/// The jumps from the built-in chains into minik8s' chains. They are only
/// written by a full sync.
pub fn builtin_jumps() -> (Chains, Chains) {
    let mut nat = Chains::new();
    let portals = "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES";
    nat.insert("PREROUTING".into(), vec![portals.into()]);
    nat.insert("OUTPUT".into(), vec![portals.into()]);
    nat.insert(
        "POSTROUTING".into(),
        vec!["-m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING".into()],
    );
    let mut filter = Chains::new();
    let new_portals = "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES";
    let new_external = "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES";
    filter.insert(
        "INPUT".into(),
        vec![new_portals.into(), new_external.into()],
    );
    filter.insert(
        "FORWARD".into(),
        vec![
            "-m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD".into(),
            new_portals.into(),
            new_external.into(),
        ],
    );
    filter.insert("OUTPUT".into(), vec![new_portals.into()]);
    (nat, filter)
}

/// The rules of one service port: its lines in the shared chains and its
/// own chains.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortRules {
    /// Lines of nat KUBE-SERVICES.
    pub services: Vec<String>,
    /// Lines of nat KUBE-NODEPORTS.
    pub nodeports: Vec<String>,
    /// Lines of filter KUBE-SERVICES (REJECT without endpoints).
    pub filter_services: Vec<String>,
    /// Lines of filter KUBE-EXTERNAL-SERVICES.
    pub filter_external: Vec<String>,
    /// The port's own nat chains (KUBE-SVC-, KUBE-EXT-, KUBE-SEP-).
    pub chains: Vec<(String, Vec<String>)>,
}

/// Plan every minik8s chain for the given service ports.
pub fn plan_rules(ports: &[ServicePort], node: &NodeContext) -> RuleSet {
    let planned: Vec<PortRules> = ports.iter().map(|sp| plan_port(sp, node)).collect();
    assemble(planned.iter())
}

/// Plans ports incrementally: a port whose inputs did not change since the
/// last call reuses its rules, so one endpoint change among thousands of
/// Services costs one port's planning (KEP-3453's idea), not all of them.
#[derive(Default)]
pub struct RulePlanner {
    cache: HashMap<(String, String), (ServicePort, PortRules)>,
}

impl RulePlanner {
    pub fn plan(&mut self, ports: &[ServicePort], node: &NodeContext) -> RuleSet {
        let mut next = HashMap::with_capacity(ports.len());
        for sp in ports {
            let key = (sp.display_name(), sp.protocol.clone());
            let rules = match self.cache.remove(&key) {
                Some((old, rules)) if old == *sp => rules,
                _ => plan_port(sp, node),
            };
            next.insert(key, (sp.clone(), rules));
        }
        self.cache = next;
        // Assemble in the order of `ports` (sorted by the model), so the
        // output is the same as `plan_rules`'.
        assemble(
            ports
                .iter()
                .map(|sp| &self.cache[&(sp.display_name(), sp.protocol.clone())].1),
        )
    }
}

/// The fixed chains plus every port's rules.
fn assemble<'a>(ports: impl Iterator<Item = &'a PortRules>) -> RuleSet {
    let mut nat = Chains::new();
    let mut filter = Chains::new();

    nat.insert(
        "KUBE-MARK-MASQ".into(),
        vec![format!("-j MARK --or-mark {MASQ_MARK}")],
    );
    nat.insert(
        "KUBE-POSTROUTING".into(),
        vec![
            format!("-m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN"),
            format!("-j MARK --xor-mark {MASQ_MARK}"),
            "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully".into(),
        ],
    );
    filter.insert(
        "KUBE-FORWARD".into(),
        vec![
            "-m conntrack --ctstate INVALID -j DROP".into(),
            format!("-m comment --comment \"kubernetes forwarding rules\" -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT"),
            "-m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".into(),
        ],
    );

    let mut services = Vec::new();
    let mut nodeports = Vec::new();
    let mut filter_services = Vec::new();
    let mut filter_external = Vec::new();
    for p in ports {
        services.extend(p.services.iter().cloned());
        nodeports.extend(p.nodeports.iter().cloned());
        filter_services.extend(p.filter_services.iter().cloned());
        filter_external.extend(p.filter_external.iter().cloned());
        for (chain, rules) in &p.chains {
            nat.insert(chain.clone(), rules.clone());
        }
    }
    services.push(
        "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS".into(),
    );
    nat.insert("KUBE-SERVICES".into(), services);
    nat.insert("KUBE-NODEPORTS".into(), nodeports);
    filter.insert("KUBE-SERVICES".into(), filter_services);
    filter.insert("KUBE-EXTERNAL-SERVICES".into(), filter_external);
    RuleSet { nat, filter }
}

/// The rules of one service port, as kube-proxy's iptables mode writes
/// them.
pub fn plan_port(sp: &ServicePort, node: &NodeContext) -> PortRules {
    let mut out = PortRules::default();
    let name = sp.display_name();
    let proto = &sp.protocol;
    let svc_chain = service_chain(&name, proto);
    let ext_chain = external_chain(&name, proto);
    let has_external =
        sp.node_port.is_some() || !sp.external_ips.is_empty() || !sp.load_balancer_ips.is_empty();
    let Some(cluster_ip) = sp.cluster_ip else {
        return out;
    };
    let port = sp.port;

    if sp.endpoints.is_empty() {
        // No endpoints: refuse at once instead of letting clients time
        // out (the chapter's exercise 2: "connection refused").
        out.filter_services.push(format!(
            "-d {cluster_ip}/32 -p {proto} -m comment --comment \"{name} has no endpoints\" -m {proto} --dport {port} -j REJECT --reject-with icmp-port-unreachable"
        ));
        for ip in sp.external_ips.iter().chain(&sp.load_balancer_ips) {
            out.filter_external.push(format!(
                "-d {ip}/32 -p {proto} -m comment --comment \"{name} has no endpoints\" -m {proto} --dport {port} -j REJECT --reject-with icmp-port-unreachable"
            ));
        }
        if let Some(np) = sp.node_port {
            out.filter_external.push(format!(
                "-m addrtype --dst-type LOCAL -p {proto} -m comment --comment \"{name} has no endpoints\" -m {proto} --dport {np} -j REJECT --reject-with icmp-port-unreachable"
            ));
        }
        return out;
    }

    out.services.push(format!(
        "-d {cluster_ip}/32 -p {proto} -m comment --comment \"{name} cluster IP\" -m {proto} --dport {port} -j {svc_chain}"
    ));
    for ip in &sp.external_ips {
        out.services.push(format!(
            "-d {ip}/32 -p {proto} -m comment --comment \"{name} external IP\" -m {proto} --dport {port} -j {ext_chain}"
        ));
    }
    for ip in &sp.load_balancer_ips {
        out.services.push(format!(
            "-d {ip}/32 -p {proto} -m comment --comment \"{name} loadbalancer IP\" -m {proto} --dport {port} -j {ext_chain}"
        ));
    }
    if let Some(np) = sp.node_port {
        out.nodeports.push(format!(
            "-p {proto} -m comment --comment \"{name}\" -m {proto} --dport {np} -j {ext_chain}"
        ));
    }
    if has_external {
        out.chains.push((
            ext_chain.clone(),
            vec![
                format!("-m comment --comment \"masquerade traffic for {name} external destinations\" -j KUBE-MARK-MASQ"),
                format!("-j {svc_chain}"),
            ],
        ));
    }

    let mut svc_rules = vec![format!(
        "! -s {} -d {cluster_ip}/32 -p {proto} -m comment --comment \"{name} cluster IP\" -m {proto} --dport {port} -j KUBE-MARK-MASQ",
        node.cluster_cidr
    )];
    let seps: Vec<(String, String)> = sp
        .endpoints
        .iter()
        .map(|e| {
            let ep = format!("{}:{}", e.ip, e.port);
            (endpoint_chain(&name, proto, &ep), ep)
        })
        .collect();
    if let Some(timeout) = sp.affinity_timeout {
        for (sep, ep) in &seps {
            svc_rules.push(format!(
                "-m comment --comment \"{name} -> {ep}\" -m recent --name {sep} --rcheck --seconds {timeout} --reap -j {sep}"
            ));
        }
    }
    let n = seps.len();
    for (i, (sep, ep)) in seps.iter().enumerate() {
        if i + 1 < n {
            let probability = 1.0 / (n - i) as f64;
            svc_rules.push(format!(
                "-m comment --comment \"{name} -> {ep}\" -m statistic --mode random --probability {probability:.10} -j {sep}"
            ));
        } else {
            svc_rules.push(format!("-m comment --comment \"{name} -> {ep}\" -j {sep}"));
        }
    }
    out.chains.push((svc_chain.clone(), svc_rules));

    for (e, (sep, ep)) in sp.endpoints.iter().zip(&seps) {
        let recent = if sp.affinity_timeout.is_some() {
            format!(" -m recent --name {sep} --set")
        } else {
            String::new()
        };
        out.chains.push((
            sep.clone(),
            vec![
                format!("-s {}/32 -m comment --comment \"{name}\" -j KUBE-MARK-MASQ", e.ip),
                format!("-p {proto} -m comment --comment \"{name}\"{recent} -m {proto} -j DNAT --to-destination {ep}"),
            ],
        ));
    }

    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Endpoint;

    fn web(endpoints: &[(&str, u16)], node_port: Option<u16>) -> ServicePort {
        ServicePort {
            namespace: "default".into(),
            name: "web".into(),
            port_name: String::new(),
            protocol: "tcp".into(),
            cluster_ip: Some("10.96.142.31".parse().unwrap()),
            port: 80,
            node_port,
            external_ips: vec![],
            load_balancer_ips: vec![],
            affinity_timeout: None,
            endpoints: endpoints
                .iter()
                .map(|(ip, port)| Endpoint {
                    ip: ip.parse().unwrap(),
                    port: *port,
                })
                .collect(),
        }
    }

    fn node() -> NodeContext {
        NodeContext {
            cluster_cidr: "10.244.0.0/16".into(),
        }
    }

    #[test]
    fn cluster_ip_balances_over_every_endpoint() {
        let sp = web(
            &[("10.244.0.5", 80), ("10.244.0.6", 80), ("10.244.0.7", 80)],
            None,
        );
        let rules = plan_rules(&[sp], &node());
        let svc = service_chain("default/web", "tcp");
        assert!(rules.nat["KUBE-SERVICES"][0]
            .contains("-d 10.96.142.31/32 -p tcp -m comment --comment \"default/web cluster IP\""));
        assert!(rules.nat["KUBE-SERVICES"][0].ends_with(&format!("-j {svc}")));
        let chain = &rules.nat[&svc];
        // masquerade rule, then 3 endpoint rules: 1/3, 1/2, unconditional
        assert_eq!(chain.len(), 4);
        assert!(chain[1].contains("--probability 0.3333333333"));
        assert!(chain[2].contains("--probability 0.5000000000"));
        assert!(!chain[3].contains("statistic"));
        let seps: Vec<_> = rules
            .nat
            .keys()
            .filter(|k| k.starts_with("KUBE-SEP-"))
            .collect();
        assert_eq!(seps.len(), 3);
        assert!(rules.nat[seps[0]][1].contains("-j DNAT --to-destination 10.244.0."));
        assert!(rules.filter["KUBE-SERVICES"].is_empty());
        // the NodePort jump stays the last rule
        assert!(rules.nat["KUBE-SERVICES"]
            .last()
            .unwrap()
            .contains("KUBE-NODEPORTS"));
    }

    #[test]
    fn service_without_endpoints_is_rejected() {
        let rules = plan_rules(&[web(&[], Some(30080))], &node());
        assert!(rules.filter["KUBE-SERVICES"][0].contains("\"default/web has no endpoints\""));
        assert!(rules.filter["KUBE-SERVICES"][0].contains("REJECT"));
        assert!(rules.filter["KUBE-EXTERNAL-SERVICES"][0].contains("--dport 30080"));
        assert!(!rules.nat.keys().any(|k| k.starts_with("KUBE-SVC-")));
    }

    #[test]
    fn node_port_and_load_balancer_go_through_the_external_chain() {
        let mut sp = web(&[("10.244.0.5", 80)], Some(30080));
        sp.load_balancer_ips = vec!["172.18.255.1".parse().unwrap()];
        let rules = plan_rules(&[sp], &node());
        let ext = external_chain("default/web", "tcp");
        assert!(rules.nat["KUBE-NODEPORTS"][0].contains("--dport 30080"));
        assert!(rules.nat["KUBE-NODEPORTS"][0].ends_with(&ext));
        assert!(rules.nat["KUBE-SERVICES"]
            .iter()
            .any(|r| r.contains("172.18.255.1/32") && r.contains("loadbalancer IP")));
        assert_eq!(rules.nat[&ext][0], "-m comment --comment \"masquerade traffic for default/web external destinations\" -j KUBE-MARK-MASQ");
    }

    #[test]
    fn incremental_planner_matches_a_full_plan() {
        let a = web(&[("10.244.0.5", 80), ("10.244.0.6", 80)], None);
        let mut b = web(&[("10.244.0.7", 80)], Some(30080));
        b.name = "api".into();
        let mut planner = RulePlanner::default();
        assert_eq!(
            planner.plan(&[b.clone(), a.clone()], &node()),
            plan_rules(&[b.clone(), a.clone()], &node())
        );
        let a2 = web(&[("10.244.0.5", 80)], None);
        assert_eq!(
            planner.plan(&[b.clone(), a2.clone()], &node()),
            plan_rules(&[b, a2], &node())
        );
    }

    #[test]
    fn client_ip_affinity_uses_recent() {
        let mut sp = web(&[("10.244.0.5", 80), ("10.244.0.6", 80)], None);
        sp.affinity_timeout = Some(60);
        let rules = plan_rules(&[sp], &node());
        let svc = &rules.nat[&service_chain("default/web", "tcp")];
        assert!(svc[1].contains("--rcheck --seconds 60 --reap"));
        let sep = rules
            .nat
            .iter()
            .find(|(k, _)| k.starts_with("KUBE-SEP-"))
            .unwrap()
            .1;
        assert!(sep[1].contains("-m recent --name KUBE-SEP-"));
        assert!(sep[1].contains("--set"));
    }
}
