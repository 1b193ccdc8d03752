//! How the cluster DNS is set up: where it listens, which zone it serves,
//! where other names go.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use ipnet::Ipv4Net;

use crate::records::ZoneConfig;
use crate::DnsError;

/// Where names outside the cluster's zones are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// The `nameserver`s of the host's `/etc/resolv.conf` (read at bind).
    HostResolvConf,
    /// One resolver (`--dns-upstream ADDR`).
    Addr(SocketAddr),
    /// Answer REFUSED (`--dns-upstream none`): nothing leaves the cluster.
    Refuse,
}

impl FromStr for Upstream {
    type Err = DnsError;

    /// `none`, `IP` (port 53) or `IP:PORT` (`[IPv6]:PORT`).
    fn from_str(s: &str) -> Result<Upstream, DnsError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("none") {
            return Ok(Upstream::Refuse);
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Upstream::Addr(SocketAddr::new(ip, 53)));
        }
        s.parse::<SocketAddr>()
            .map(Upstream::Addr)
            .map_err(|_| DnsError::InvalidUpstream(s.to_string()))
    }
}

/// Everything `DnsServer::bind` needs.
#[derive(Clone, Debug)]
pub struct DnsConfig {
    /// The node's network namespace (`/run/netns/minik8s-node`), where the
    /// listening sockets are made; None = the current one (tests).
    pub netns_path: Option<PathBuf>,
    /// The node's bridge address, port 53; `127.0.0.1:0` in tests.
    pub listen: SocketAddr,
    /// The cluster domain (`cluster.local`).
    pub domain: String,
    pub upstream: Upstream,
    /// The kube-dns Service's ClusterIP (`10.96.0.10`).
    pub service_ip: Ipv4Addr,
    /// Service and Pod CIDRs: their reverse names are answered here.
    pub reverse_cidrs: Vec<Ipv4Net>,
    /// TTL of every answer (5 s, as CoreDNS in Kubernetes).
    pub ttl: u32,
    /// Write the kube-dns Endpoints and EndpointSlice once listening, so
    /// kube-proxy sends the Service's traffic here.
    pub publish_endpoints: bool,
}

impl Default for DnsConfig {
    /// The cluster defaults: listen on the node bridge `10.244.0.1:53`.
    fn default() -> Self {
        let zone = ZoneConfig::default();
        DnsConfig {
            netns_path: None,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 244, 0, 1)), 53),
            domain: zone.domain,
            upstream: Upstream::HostResolvConf,
            service_ip: zone.service_ip,
            reverse_cidrs: zone.reverse_cidrs,
            ttl: zone.ttl,
            publish_endpoints: true,
        }
    }
}

impl DnsConfig {
    /// The zone part of the configuration.
    pub fn zone(&self) -> ZoneConfig {
        ZoneConfig {
            domain: self.domain.trim_end_matches('.').to_ascii_lowercase(),
            ttl: self.ttl,
            service_ip: self.service_ip,
            reverse_cidrs: self.reverse_cidrs.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_flag_values() {
        assert_eq!("none".parse::<Upstream>().unwrap(), Upstream::Refuse);
        assert_eq!(
            "1.1.1.1".parse::<Upstream>().unwrap(),
            Upstream::Addr("1.1.1.1:53".parse().unwrap())
        );
        assert_eq!(
            "127.0.0.1:5353".parse::<Upstream>().unwrap(),
            Upstream::Addr("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(
            "[::1]:53".parse::<Upstream>().unwrap(),
            Upstream::Addr("[::1]:53".parse().unwrap())
        );
        assert!("dns.example".parse::<Upstream>().is_err());
    }
}
