//! The proxy's view of the cluster: Services and their endpoints reduced to
//! what the rules need. Built from k8s-openapi objects; pure.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// One port of one Service: the unit kube-proxy writes a chain for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    pub namespace: String,
    pub name: String,
    /// The port's name ("" when unnamed).
    pub port_name: String,
    /// `tcp` or `udp` (iptables spelling).
    pub protocol: String,
    pub cluster_ip: Option<Ipv4Addr>,
    pub port: u16,
    pub node_port: Option<u16>,
    pub external_ips: Vec<Ipv4Addr>,
    pub load_balancer_ips: Vec<Ipv4Addr>,
    /// ClientIP session affinity timeout in seconds.
    pub affinity_timeout: Option<i32>,
    /// Endpoints that get traffic, sorted.
    pub endpoints: Vec<Endpoint>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
}

impl ServicePort {
    /// An unnamed ClusterIP port of `namespace/name` with the given
    /// endpoints (`"10.244.0.5"`, port) and nothing else: for tests and
    /// benchmarks, which then set the fields they need.
    pub fn cluster_ip(
        namespace: &str,
        name: &str,
        protocol: &str,
        cluster_ip: &str,
        port: u16,
        endpoints: &[(&str, u16)],
    ) -> ServicePort {
        ServicePort {
            namespace: namespace.into(),
            name: name.into(),
            port_name: String::new(),
            protocol: protocol.into(),
            cluster_ip: Some(cluster_ip.parse().expect("an IPv4 address")),
            port,
            node_port: None,
            external_ips: vec![],
            load_balancer_ips: vec![],
            affinity_timeout: None,
            endpoints: endpoints
                .iter()
                .map(|(ip, port)| Endpoint {
                    ip: ip.parse().expect("an IPv4 address"),
                    port: *port,
                })
                .collect(),
        }
    }

    /// `default/web:http` (or `default/web` when the port is unnamed), the
    /// name kube-proxy uses in comments and chain hashes.
    pub fn display_name(&self) -> String {
        if self.port_name.is_empty() {
            format!("{}/{}", self.namespace, self.name)
        } else {
            format!("{}/{}:{}", self.namespace, self.name, self.port_name)
        }
    }
}

/// Reduce Services and EndpointSlices to service ports. Headless and
/// ExternalName Services get none (they have no virtual IP).
pub fn service_ports<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> Vec<ServicePort> {
    // Borrowed keys: this runs at every sync, over every slice.
    let mut by_service: BTreeMap<(&str, &str), Vec<&EndpointSlice>> = BTreeMap::new();
    for s in slices {
        let ns = s.metadata.namespace.as_deref().unwrap_or_default();
        let Some(svc) = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"))
        else {
            continue;
        };
        if s.address_type != "IPv4" {
            continue;
        }
        by_service.entry((ns, svc.as_str())).or_default().push(s);
    }

    let mut out = Vec::new();
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
        if ty == "ExternalName" {
            continue;
        }
        let cluster_ip = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok());
        if cluster_ip.is_none() {
            continue; // headless: DNS answers with Pod IPs, no rules
        }
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
        let affinity_timeout = if spec.session_affinity.as_deref() == Some("ClientIP") {
            Some(
                spec.session_affinity_config
                    .as_ref()
                    .and_then(|c| c.client_ip.as_ref())
                    .and_then(|c| c.timeout_seconds)
                    .unwrap_or(10800),
            )
        } else {
            None
        };
        let external_ips: Vec<Ipv4Addr> = spec
            .external_ips
            .iter()
            .flatten()
            .filter_map(|ip| ip.parse().ok())
            .collect();
        let load_balancer_ips: Vec<Ipv4Addr> = if ty == "LoadBalancer" {
            svc.status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|i| i.ip.as_deref().and_then(|ip| ip.parse().ok()))
                .collect()
        } else {
            Vec::new()
        };
        let slices: &[&EndpointSlice] = by_service
            .get(&(ns.as_str(), name.as_str()))
            .map_or(&[], Vec::as_slice);
        for p in spec.ports.iter().flatten() {
            let port_name = p.name.clone().unwrap_or_default();
            let protocol = p.protocol.as_deref().unwrap_or("TCP");
            if protocol != "TCP" && protocol != "UDP" {
                continue; // SCTP is not supported by minik8s
            }
            let node_port = match ty {
                "NodePort" | "LoadBalancer" => p.node_port.and_then(|n| u16::try_from(n).ok()),
                _ => None,
            };
            let mut endpoints = Vec::new();
            for slice in slices {
                let Some(slice_port) = slice.ports.iter().flatten().find(|sp| {
                    sp.name.clone().unwrap_or_default() == port_name
                        && sp.protocol.as_deref().unwrap_or("TCP") == protocol
                }) else {
                    continue;
                };
                let Some(target) = slice_port.port.and_then(|n| u16::try_from(n).ok()) else {
                    continue;
                };
                for ep in &slice.endpoints {
                    let cond = ep.conditions.as_ref();
                    let ready = cond.and_then(|c| c.ready).unwrap_or(true);
                    let serving = cond.and_then(|c| c.serving).unwrap_or(ready);
                    let terminating = cond.and_then(|c| c.terminating).unwrap_or(false);
                    let usable = ready
                        || (publish_not_ready && !terminating)
                        || (publish_not_ready && serving);
                    if !usable {
                        continue;
                    }
                    for a in &ep.addresses {
                        if let Ok(ip) = a.parse::<Ipv4Addr>() {
                            out_push_unique(&mut endpoints, Endpoint { ip, port: target });
                        }
                    }
                }
            }
            endpoints.sort();
            out.push(ServicePort {
                namespace: ns.clone(),
                name: name.clone(),
                port_name,
                protocol: protocol.to_ascii_lowercase(),
                cluster_ip,
                port: u16::try_from(p.port).unwrap_or(0),
                node_port,
                external_ips: external_ips.clone(),
                load_balancer_ips: load_balancer_ips.clone(),
                affinity_timeout,
                endpoints,
            });
        }
    }
    out.sort_by(|a, b| {
        (&a.namespace, &a.name, &a.port_name, &a.protocol).cmp(&(
            &b.namespace,
            &b.name,
            &b.port_name,
            &b.protocol,
        ))
    });
    out
}

fn out_push_unique(v: &mut Vec<Endpoint>, e: Endpoint) {
    if !v.contains(&e) {
        v.push(e);
    }
}
