//! The node network's configuration and the checks that it can work.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;

use crate::error::NodeNetError;
use crate::names;

/// Everything a node network is made from. Every host-visible name and
/// address comes from here, so servers with different configurations run
/// side by side (tests rely on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeNetConfig {
    /// The node's netns name (`minik8s-node`).
    pub name: String,
    /// Prefix of links created on the host (`mk` -> host veth `mk-node-h`).
    /// At most 10 bytes: interface names have 15.
    pub prefix: String,
    /// Prefix of Pod sandbox netns names (`minik8s` ->
    /// `minik8s-default-web-7d4b9-x2x4z-1a2b3c4d`). Netns names of this
    /// prefix that look like sandboxes and are not in the state of this
    /// node may be removed by `setup`, so it must differ between servers
    /// (and nodes) that run at the same time.
    pub netns_prefix: String,
    /// Host side of the host<->node veth with the subnet they share
    /// (`192.168.49.1/24`).
    pub host_ip: Ipv4Net,
    /// The node's address (NodeIP) on that subnet (`192.168.49.2`).
    pub node_ip: Ipv4Addr,
    /// This node's Pod CIDR (`10.244.0.0/24`); the bridge gets its first
    /// address.
    pub pod_cidr: Ipv4Net,
    /// All Pods of the cluster (`10.244.0.0/16`), routed from the host.
    pub cluster_pod_cidr: Ipv4Net,
    /// ClusterIPs (`10.96.0.0/12`), routed from the host.
    pub service_cidr: Ipv4Net,
    /// LoadBalancer addresses (`172.18.255.0/24`), routed from the host.
    pub lb_pool: Option<Ipv4Net>,
    /// Where the node's address allocations are persisted (inside the
    /// server's data dir).
    pub state_dir: PathBuf,
}

impl Default for NodeNetConfig {
    /// The cluster defaults a reader of the chapter gets; `state_dir` is
    /// meant to be replaced by a directory inside `--data-dir`.
    fn default() -> Self {
        NodeNetConfig {
            name: "minik8s-node".to_string(),
            prefix: "mk".to_string(),
            netns_prefix: "minik8s".to_string(),
            host_ip: Ipv4Net::new(Ipv4Addr::new(192, 168, 49, 1), 24).expect("valid"),
            node_ip: Ipv4Addr::new(192, 168, 49, 2),
            pod_cidr: Ipv4Net::new(Ipv4Addr::new(10, 244, 0, 0), 24).expect("valid"),
            cluster_pod_cidr: Ipv4Net::new(Ipv4Addr::new(10, 244, 0, 0), 16).expect("valid"),
            service_cidr: Ipv4Net::new(Ipv4Addr::new(10, 96, 0, 0), 12).expect("valid"),
            lb_pool: Some(Ipv4Net::new(Ipv4Addr::new(172, 18, 255, 0), 24).expect("valid")),
            state_dir: PathBuf::from("/var/lib/minik8s/network"),
        }
    }
}

/// Refuses configurations that cannot work or would route cluster CIDRs
/// over each other or over the node subnet.
pub(crate) fn validate(cfg: &NodeNetConfig) -> Result<(), NodeNetError> {
    let bad = |msg: String| Err(NodeNetError::InvalidConfig(msg));
    let name_ok =
        |n: &str| !n.is_empty() && n != "." && n != ".." && !n.contains('/') && n.len() < 200;
    if !name_ok(&cfg.name) {
        return bad(format!(
            "node netns name {:?} is not a valid file name",
            cfg.name
        ));
    }
    if !name_ok(&cfg.netns_prefix) {
        return bad(format!(
            "netns prefix {:?} is not a valid file name",
            cfg.netns_prefix
        ));
    }
    if cfg.prefix.is_empty() || cfg.prefix.len() > 10 {
        return bad(format!(
            "link prefix {:?} must be 1 to 10 bytes",
            cfg.prefix
        ));
    }
    let host_veth = names::node_host_veth_name(&cfg.prefix, &cfg.name);
    if !names::is_valid_ifname(&host_veth) {
        return bad(format!(
            "host veth name {host_veth:?} is not a valid interface name"
        ));
    }
    let subnet = cfg.host_ip.trunc();
    if !subnet.contains(&cfg.node_ip)
        || cfg.node_ip == cfg.host_ip.addr()
        || cfg.node_ip == subnet.network()
        || cfg.node_ip == subnet.broadcast()
    {
        return bad(format!(
            "node IP {} must be a host address of {subnet} other than {}",
            cfg.node_ip,
            cfg.host_ip.addr()
        ));
    }
    if !cfg.cluster_pod_cidr.contains(&cfg.pod_cidr) {
        return bad(format!(
            "node Pod CIDR {} is not inside the cluster Pod CIDR {}",
            cfg.pod_cidr, cfg.cluster_pod_cidr
        ));
    }
    if cfg.pod_cidr.prefix_len() > 30 {
        return bad(format!(
            "node Pod CIDR {} has no room for Pods",
            cfg.pod_cidr
        ));
    }
    let routed = host_route_dsts(cfg);
    for (i, a) in routed.iter().enumerate() {
        for b in &routed[i + 1..] {
            if a.contains(b) || b.contains(a) {
                return bad(format!("routed CIDRs {a} and {b} overlap"));
            }
        }
        if a.contains(&cfg.host_ip.addr()) || subnet.contains(a) {
            return bad(format!("routed CIDR {a} overlaps the node subnet {subnet}"));
        }
    }
    Ok(())
}

/// The cluster CIDRs the host routes to the node.
pub(crate) fn host_route_dsts(cfg: &NodeNetConfig) -> Vec<Ipv4Net> {
    let mut dsts = vec![cfg.cluster_pod_cidr.trunc(), cfg.service_cidr.trunc()];
    dsts.extend(cfg.lb_pool.map(|p| p.trunc()));
    dsts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        validate(&NodeNetConfig::default()).unwrap();
    }

    #[test]
    fn node_ip_must_be_on_the_host_subnet() {
        let cfg = NodeNetConfig {
            node_ip: "192.168.50.2".parse().unwrap(),
            ..NodeNetConfig::default()
        };
        assert!(validate(&cfg).unwrap_err().to_string().contains("node IP"));
        let cfg = NodeNetConfig {
            node_ip: "192.168.49.1".parse().unwrap(),
            ..NodeNetConfig::default()
        };
        assert!(validate(&cfg).is_err());
    }

    #[test]
    fn pod_cidr_must_be_inside_cluster_cidr() {
        let cfg = NodeNetConfig {
            pod_cidr: "10.245.0.0/24".parse().unwrap(),
            ..NodeNetConfig::default()
        };
        assert!(validate(&cfg)
            .unwrap_err()
            .to_string()
            .contains("cluster Pod CIDR"));
    }

    #[test]
    fn overlapping_routed_cidrs_are_rejected() {
        let cfg = NodeNetConfig {
            service_cidr: "10.244.128.0/20".parse().unwrap(),
            ..NodeNetConfig::default()
        };
        assert!(validate(&cfg).unwrap_err().to_string().contains("overlap"));
    }

    #[test]
    fn long_link_prefix_is_rejected() {
        let cfg = NodeNetConfig {
            prefix: "averylongprefix".into(),
            ..NodeNetConfig::default()
        };
        assert!(validate(&cfg).is_err());
    }

    #[test]
    fn host_routes_cover_cluster_cidrs() {
        let dsts: Vec<String> = host_route_dsts(&NodeNetConfig::default())
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(dsts, ["10.244.0.0/16", "10.96.0.0/12", "172.18.255.0/24"]);
    }
}
