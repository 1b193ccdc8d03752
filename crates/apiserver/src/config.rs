//! What a server is configured with; defaults are what the chapter's reader
//! gets (`minik8s server` flags override them).

use api::service_admission::ServiceNetwork;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

/// The API server's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiServerConfig {
    /// Where ClusterIPs come from; its first address is the `kubernetes`
    /// Service's, its tenth `kube-dns`'.
    pub service_cidr: Ipv4Net,
    /// NodePorts a Service may ask for or be given.
    pub node_port_range: RangeInclusive<u16>,
    /// The address clients inside the cluster reach the API at: the one
    /// endpoint of the `kubernetes` Service.
    pub kubernetes_endpoint: (Ipv4Addr, u16),
    /// Larger request bodies are refused with 413, as Kubernetes does.
    pub max_body_bytes: usize,
}

/// Kubernetes' limit on a request body (3 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

impl Default for ApiServerConfig {
    fn default() -> Self {
        ApiServerConfig {
            service_cidr: "10.96.0.0/12".parse().expect("valid default CIDR"),
            node_port_range: 30000..=32767,
            kubernetes_endpoint: (Ipv4Addr::new(192, 168, 49, 1), 6443),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

impl ApiServerConfig {
    /// The Service address space, as Service admission reads it.
    pub fn service_network(&self) -> ServiceNetwork {
        ServiceNetwork {
            service_cidr: (self.service_cidr.network(), self.service_cidr.prefix_len()),
            node_port_range: self.node_port_range.clone(),
        }
    }

    /// The `kubernetes` Service's ClusterIP: the first address of the CIDR.
    pub fn kubernetes_service_ip(&self) -> Ipv4Addr {
        self.service_network().kubernetes_service_ip()
    }

    /// The `kube-dns` Service's ClusterIP: the CIDR's base + 10.
    pub fn dns_service_ip(&self) -> Ipv4Addr {
        self.service_network().dns_service_ip()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_service_addresses() {
        let c = ApiServerConfig::default();
        assert_eq!(c.kubernetes_service_ip(), Ipv4Addr::new(10, 96, 0, 1));
        assert_eq!(c.dns_service_ip(), Ipv4Addr::new(10, 96, 0, 10));
    }
}
