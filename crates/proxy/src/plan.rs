//! Which iptables rules should exist: a pure function of the service ports,
//! written the way kube-proxy's iptables mode writes them.

use crate::chain_name::{endpoint_chain, external_chain, service_chain};
use crate::model::ServicePort;
use crate::planner::RulePlanner;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The packet mark that asks KUBE-POSTROUTING to masquerade.
pub const MASQ_MARK: &str = "0x4000";

/// Above this many endpoints in all, endpoint rules carry no comment, as in
/// kube-proxy's large-cluster mode (`largeClusterEndpointsThreshold`):
/// comments are a match of their own in every rule, and dropping them from
/// the endpoint rules makes a full sync of 1,000 Services with 10 endpoints
/// each about a fifth cheaper. Service-level rules keep theirs, so
/// `iptables-save` still names every Service.
pub const LARGE_CLUSTER_ENDPOINTS: usize = 1000;

/// The rules of one chain (`-A` lines without the `-A CHAIN` prefix).
/// Shared, not copied, between successive plans: a chain that did not
/// change is the same allocation in both, so keeping the last plan and
/// comparing it with the next costs no copy of tens of thousands of rules.
pub type Rules = Arc<Vec<String>>;

/// Chains of one table, each with its rules.
pub type Chains = BTreeMap<String, Rules>;

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
    nat.insert("PREROUTING".into(), rules([portals]));
    nat.insert("OUTPUT".into(), rules([portals]));
    nat.insert(
        "POSTROUTING".into(),
        rules(["-m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING"]),
    );
    let mut filter = Chains::new();
    let new_portals = "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES";
    let new_external = "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES";
    filter.insert("INPUT".into(), rules([new_portals, new_external]));
    filter.insert(
        "FORWARD".into(),
        rules([
            "-m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD",
            new_portals,
            new_external,
        ]),
    );
    filter.insert("OUTPUT".into(), rules([new_portals]));
    (nat, filter)
}

pub(crate) fn rules<S: Into<String>>(lines: impl IntoIterator<Item = S>) -> Rules {
    Arc::new(lines.into_iter().map(Into::into).collect())
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
    pub chains: Vec<(String, Rules)>,
}

/// Whether the cluster is large enough for kube-proxy's large-cluster mode
/// (see [`LARGE_CLUSTER_ENDPOINTS`]).
pub fn is_large_cluster(ports: &[ServicePort]) -> bool {
    ports.iter().map(|p| p.endpoints.len()).sum::<usize>() > LARGE_CLUSTER_ENDPOINTS
}

/// Plan every minik8s chain for the given service ports.
pub fn plan_rules(ports: &[ServicePort], node: &NodeContext) -> RuleSet {
    let mut planner = RulePlanner::default();
    planner.plan(ports, node);
    planner.into_rules()
}

/// The chains whose rules depend on no Service: (nat, filter).
pub fn fixed_chains() -> (Chains, Chains) {
    let mut nat = Chains::new();
    let mut filter = Chains::new();
    nat.insert(
        "KUBE-MARK-MASQ".into(),
        rules([format!("-j MARK --or-mark {MASQ_MARK}")]),
    );
    nat.insert(
        "KUBE-POSTROUTING".into(),
        rules([
            format!("-m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN"),
            format!("-j MARK --xor-mark {MASQ_MARK}"),
            "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully".into(),
        ]),
    );
    filter.insert(
        "KUBE-FORWARD".into(),
        rules([
            "-m conntrack --ctstate INVALID -j DROP".into(),
            format!("-m comment --comment \"kubernetes forwarding rules\" -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT"),
            "-m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".into(),
        ]),
    );
    (nat, filter)
}

/// The chains every port adds lines to, in the order of `ports`: (nat,
/// filter).
pub fn shared_chains<'a>(ports: impl Iterator<Item = &'a PortRules>) -> (Chains, Chains) {
    let mut services = Vec::new();
    let mut nodeports = Vec::new();
    let mut filter_services = Vec::new();
    let mut filter_external = Vec::new();
    for p in ports {
        services.extend(p.services.iter().cloned());
        nodeports.extend(p.nodeports.iter().cloned());
        filter_services.extend(p.filter_services.iter().cloned());
        filter_external.extend(p.filter_external.iter().cloned());
    }
    services.push(
        "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS".into(),
    );
    let mut nat = Chains::new();
    let mut filter = Chains::new();
    nat.insert("KUBE-SERVICES".into(), Arc::new(services));
    nat.insert("KUBE-NODEPORTS".into(), Arc::new(nodeports));
    filter.insert("KUBE-SERVICES".into(), Arc::new(filter_services));
    filter.insert("KUBE-EXTERNAL-SERVICES".into(), Arc::new(filter_external));
    (nat, filter)
}

/// The rules of one service port, as kube-proxy's iptables mode writes
/// them. `large_cluster`: endpoint rules go without comments (see
/// [`LARGE_CLUSTER_ENDPOINTS`]).
pub fn plan_port(sp: &ServicePort, node: &NodeContext, large_cluster: bool) -> PortRules {
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
            rules([
                format!("-m comment --comment \"masquerade traffic for {name} external destinations\" -j KUBE-MARK-MASQ"),
                format!("-j {svc_chain}"),
            ]),
        ));
    }

    let mut svc_rules = vec![format!(
        "! -s {} -d {cluster_ip}/32 -p {proto} -m comment --comment \"{name} cluster IP\" -m {proto} --dport {port} -j KUBE-MARK-MASQ",
        node.cluster_cidr
    )];
    // `-m comment --comment "..." ` before an endpoint rule's matches, or
    // nothing in large-cluster mode.
    let comment = |text: &str| {
        if large_cluster {
            String::new()
        } else {
            format!("-m comment --comment \"{text}\" ")
        }
    };
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
                "{}-m recent --name {sep} --rcheck --seconds {timeout} --reap -j {sep}",
                comment(&format!("{name} -> {ep}"))
            ));
        }
    }
    let n = seps.len();
    for (i, (sep, ep)) in seps.iter().enumerate() {
        if i + 1 < n {
            let probability = 1.0 / (n - i) as f64;
            svc_rules.push(format!(
                "{}-m statistic --mode random --probability {probability:.10} -j {sep}",
                comment(&format!("{name} -> {ep}"))
            ));
        } else {
            svc_rules.push(format!("{}-j {sep}", comment(&format!("{name} -> {ep}"))));
        }
    }
    out.chains.push((svc_chain.clone(), Arc::new(svc_rules)));

    for (e, (sep, ep)) in sp.endpoints.iter().zip(&seps) {
        let recent = if sp.affinity_timeout.is_some() {
            format!("-m recent --name {sep} --set ")
        } else {
            String::new()
        };
        let comment = comment(&name);
        out.chains.push((
            sep.clone(),
            rules([
                format!("-s {}/32 {comment}-j KUBE-MARK-MASQ", e.ip),
                format!("-p {proto} {comment}{recent}-m {proto} -j DNAT --to-destination {ep}"),
            ]),
        ));
    }

    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn web(endpoints: &[(&str, u16)], node_port: Option<u16>) -> ServicePort {
        let mut sp =
            ServicePort::cluster_ip("default", "web", "tcp", "10.96.142.31", 80, endpoints);
        sp.node_port = node_port;
        sp
    }

    pub(crate) fn node() -> NodeContext {
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

    /// `services` Services named web-N with 10 endpoints each.
    pub(crate) fn cluster(services: usize) -> Vec<ServicePort> {
        (0..services)
            .map(|s| {
                let ips: Vec<String> = (0..10).map(|e| format!("10.244.{s}.{}", e + 2)).collect();
                let eps: Vec<(&str, u16)> = ips.iter().map(|ip| (ip.as_str(), 80)).collect();
                let mut sp = web(&eps, None);
                sp.name = format!("web-{s}");
                sp
            })
            .collect()
    }

    #[test]
    fn large_clusters_drop_endpoint_comments_but_keep_service_ones() {
        let svc = service_chain("default/web-0", "tcp");
        // 100 x 10 endpoints: at the threshold, every rule has its comment.
        let small = plan_rules(&cluster(100), &node());
        assert!(small.nat[&svc][1].starts_with("-m comment --comment \"default/web-0 -> 10.244.0."));
        // 101 x 10: above it, kube-proxy's large-cluster mode.
        let large = plan_rules(&cluster(101), &node());
        let chain = &large.nat[&svc];
        assert!(chain[0].contains("--comment \"default/web-0 cluster IP\""));
        assert_eq!(chain.len(), 11);
        for r in &chain[1..] {
            assert!(!r.contains("comment"), "{r}");
            assert!(r.contains("-j KUBE-SEP-"), "{r}");
        }
        assert!(chain[1]
            .starts_with("-m statistic --mode random --probability 0.1000000000 -j KUBE-SEP-"));
        let sep = large
            .nat
            .iter()
            .find(|(k, _)| k.starts_with("KUBE-SEP-"))
            .unwrap()
            .1;
        assert!(sep[0].starts_with("-s 10.244.") && sep[0].ends_with("/32 -j KUBE-MARK-MASQ"));
        assert!(sep[1].starts_with("-p tcp -m tcp -j DNAT --to-destination 10.244."));
        assert!(large.nat["KUBE-SERVICES"]
            .iter()
            .all(|r| r.contains("-m comment --comment")));
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
