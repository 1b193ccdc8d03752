//! The few fields of Services, EndpointSlices and Pods that DNS answers
//! depend on, kept in compact form. The watch feed holds one of these per
//! object instead of the whole JSON, so 10,000 Services cost a few MB.

use std::collections::HashMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Transport protocol of a port, as it appears in SRV names (`_tcp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortProtocol {
    Tcp,
    Udp,
    Sctp,
}

impl PortProtocol {
    /// Kubernetes' default is TCP; an unknown value also falls back to it.
    fn parse(s: Option<&str>) -> PortProtocol {
        match s {
            Some("UDP") => PortProtocol::Udp,
            Some("SCTP") => PortProtocol::Sctp,
            _ => PortProtocol::Tcp,
        }
    }

    /// The SRV label, without the underscore.
    pub fn label(self) -> &'static str {
        match self {
            PortProtocol::Tcp => "tcp",
            PortProtocol::Udp => "udp",
            PortProtocol::Sctp => "sctp",
        }
    }
}

/// A named port; unnamed ports have no SRV record and are not kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedPort {
    pub name: Box<str>,
    pub protocol: PortProtocol,
    pub port: u16,
}

/// How a Service is published in DNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceAddress {
    /// A virtual IP per family (`clusterIPs`).
    ClusterIps(Box<[IpAddr]>),
    /// `clusterIP: None`: the ready endpoints are published directly.
    Headless,
    /// `type: ExternalName`: a CNAME to this name (no trailing dot).
    ExternalName(Box<str>),
    /// No address allocated yet: nothing to publish.
    Pending,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceInfo {
    pub namespace: Box<str>,
    pub name: Box<str>,
    pub address: ServiceAddress,
    pub ports: Box<[NamedPort]>,
    /// Headless Services with this flag publish not-ready endpoints too.
    pub publish_not_ready: bool,
}

impl ServiceInfo {
    /// A Service that publishes ready endpoints only, with `ports`: for
    /// tests and benchmarks (the watch feed builds its own from objects).
    pub fn new(
        namespace: &str,
        name: &str,
        address: ServiceAddress,
        ports: Vec<NamedPort>,
    ) -> ServiceInfo {
        ServiceInfo {
            namespace: namespace.into(),
            name: name.into(),
            address,
            ports: ports.into(),
            publish_not_ready: false,
        }
    }

    /// One TCP port `http`/80, the shape of the chapter's `web`.
    pub fn http(namespace: &str, name: &str, address: ServiceAddress) -> ServiceInfo {
        let http = NamedPort {
            name: "http".into(),
            protocol: PortProtocol::Tcp,
            port: 80,
        };
        ServiceInfo::new(namespace, name, address, vec![http])
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointInfo {
    pub addresses: Box<[IpAddr]>,
    pub hostname: Option<Box<str>>,
    pub ready: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceInfo {
    pub namespace: Box<str>,
    /// The Service this slice belongs to (its service-name label).
    pub service: Box<str>,
    pub ports: Box<[NamedPort]>,
    pub endpoints: Box<[EndpointInfo]>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodInfo {
    pub namespace: Box<str>,
    pub ips: Box<[IpAddr]>,
}

/// Every object DNS knows about, keyed by `<namespace>/<name>`.
#[derive(Clone, Debug, Default)]
pub struct ClusterState {
    pub services: HashMap<String, ServiceInfo>,
    pub slices: HashMap<String, SliceInfo>,
    pub pods: HashMap<String, PodInfo>,
}

/// `<namespace>/<name>` of any object, or None when it has no name.
pub fn object_key(obj: &Value) -> Option<String> {
    let meta = obj.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let ns = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
    Some(format!("{ns}/{name}"))
}

fn parse_ips<'a>(ips: impl Iterator<Item = &'a str>) -> Box<[IpAddr]> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in ips.filter_map(|s| s.parse().ok()) {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out.into_boxed_slice()
}

fn named_port(name: Option<&str>, protocol: Option<&str>, port: i32) -> Option<NamedPort> {
    let name = name.filter(|n| !n.is_empty())?;
    Some(NamedPort {
        name: name.to_ascii_lowercase().into(),
        protocol: PortProtocol::parse(protocol),
        port: u16::try_from(port).ok()?,
    })
}

/// The DNS view of a Service; None for objects that are not Services.
pub fn service_info(obj: &Value) -> Option<ServiceInfo> {
    let svc: Service = serde_json::from_value(obj.clone()).ok()?;
    let namespace = svc.metadata.namespace?;
    let name = svc.metadata.name?;
    let spec = svc.spec.unwrap_or_default();
    let address = if spec.type_.as_deref() == Some("ExternalName") {
        match spec
            .external_name
            .as_deref()
            .map(|n| n.trim_end_matches('.'))
        {
            Some(target) if !target.is_empty() => {
                ServiceAddress::ExternalName(target.to_ascii_lowercase().into())
            }
            _ => ServiceAddress::Pending,
        }
    } else if spec.cluster_ip.as_deref() == Some("None") {
        ServiceAddress::Headless
    } else {
        let ips = match &spec.cluster_ips {
            Some(ips) if !ips.is_empty() => parse_ips(ips.iter().map(String::as_str)),
            _ => parse_ips(spec.cluster_ip.iter().map(String::as_str)),
        };
        if ips.is_empty() {
            ServiceAddress::Pending
        } else {
            ServiceAddress::ClusterIps(ips)
        }
    };
    let ports = spec
        .ports
        .unwrap_or_default()
        .iter()
        .filter_map(|p| named_port(p.name.as_deref(), p.protocol.as_deref(), p.port))
        .collect();
    Some(ServiceInfo {
        namespace: namespace.into(),
        name: name.into(),
        address,
        ports,
        publish_not_ready: spec.publish_not_ready_addresses.unwrap_or(false),
    })
}

/// The DNS view of an EndpointSlice; None when it belongs to no Service or
/// carries FQDN addresses (which DNS does not publish).
pub fn slice_info(obj: &Value) -> Option<SliceInfo> {
    let slice: EndpointSlice = serde_json::from_value(obj.clone()).ok()?;
    if slice.address_type != "IPv4" && slice.address_type != "IPv6" {
        return None;
    }
    let namespace = slice.metadata.namespace?;
    let service = slice.metadata.labels?.remove(SERVICE_NAME_LABEL)?;
    let ports = slice
        .ports
        .unwrap_or_default()
        .iter()
        .filter_map(|p| named_port(p.name.as_deref(), p.protocol.as_deref(), p.port?))
        .collect();
    let endpoints = slice
        .endpoints
        .iter()
        .map(|e| EndpointInfo {
            addresses: parse_ips(e.addresses.iter().map(String::as_str)),
            hostname: e
                .hostname
                .as_deref()
                .filter(|h| !h.is_empty())
                .map(|h| h.to_ascii_lowercase().into()),
            // The API says a missing `ready` means ready.
            ready: e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true),
        })
        .collect();
    Some(SliceInfo {
        namespace: namespace.into(),
        service: service.into(),
        ports,
        endpoints,
    })
}

/// The DNS view of a Pod; None until it has an IP, and for finished Pods
/// (their IPs go back to the pool and may already belong to another Pod).
pub fn pod_info(obj: &Value) -> Option<PodInfo> {
    let pod: Pod = serde_json::from_value(obj.clone()).ok()?;
    let namespace = pod.metadata.namespace?;
    let status = pod.status?;
    if matches!(status.phase.as_deref(), Some("Succeeded") | Some("Failed")) {
        return None;
    }
    let ips = match &status.pod_ips {
        Some(ips) if !ips.is_empty() => parse_ips(ips.iter().map(|p| p.ip.as_str())),
        _ => parse_ips(status.pod_ip.iter().map(String::as_str)),
    };
    if ips.is_empty() {
        return None;
    }
    Some(PodInfo {
        namespace: namespace.into(),
        ips,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cluster_ip_service_keeps_ips_and_named_ports() {
        let svc = json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
                     "ports": [{"name": "HTTP", "port": 80}, {"port": 81}, {"name": "dns", "port": 53, "protocol": "UDP"}]}
        });
        let info = service_info(&svc).unwrap();
        assert_eq!(
            info.address,
            ServiceAddress::ClusterIps(vec!["10.96.0.20".parse().unwrap()].into())
        );
        assert_eq!(info.ports.len(), 2);
        assert_eq!(&*info.ports[0].name, "http");
        assert_eq!(info.ports[1].protocol, PortProtocol::Udp);
    }

    #[test]
    fn headless_external_and_pending_services() {
        let headless =
            json!({"metadata": {"name": "h", "namespace": "a"}, "spec": {"clusterIP": "None"}});
        assert_eq!(
            service_info(&headless).unwrap().address,
            ServiceAddress::Headless
        );
        let ext = json!({"metadata": {"name": "e", "namespace": "a"},
                         "spec": {"type": "ExternalName", "externalName": "DB.Example.com."}});
        assert_eq!(
            service_info(&ext).unwrap().address,
            ServiceAddress::ExternalName("db.example.com".into())
        );
        let pending = json!({"metadata": {"name": "p", "namespace": "a"}, "spec": {}});
        assert_eq!(
            service_info(&pending).unwrap().address,
            ServiceAddress::Pending
        );
    }

    #[test]
    fn slice_readiness_defaults_to_ready_and_needs_service_label() {
        let slice = json!({
            "metadata": {"name": "web-abc", "namespace": "default", "labels": {SERVICE_NAME_LABEL: "web"}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.244.0.5"]},
                {"addresses": ["10.244.0.6"], "conditions": {"ready": false}, "hostname": "db-0"}
            ],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
        });
        let info = slice_info(&slice).unwrap();
        assert_eq!(&*info.service, "web");
        assert!(info.endpoints[0].ready);
        assert!(!info.endpoints[1].ready);
        assert_eq!(info.endpoints[1].hostname.as_deref(), Some("db-0"));
        assert_eq!(info.ports[0].port, 8080);
        let mut orphan = slice.clone();
        orphan["metadata"]["labels"] = json!({});
        assert!(slice_info(&orphan).is_none());
    }

    #[test]
    fn finished_pods_and_pods_without_ip_are_skipped() {
        let running = json!({"metadata": {"name": "p", "namespace": "default"},
                             "status": {"phase": "Running", "podIP": "10.244.0.7"}});
        assert_eq!(
            pod_info(&running).unwrap().ips[0],
            "10.244.0.7".parse::<IpAddr>().unwrap()
        );
        let done = json!({"metadata": {"name": "p", "namespace": "default"},
                          "status": {"phase": "Succeeded", "podIP": "10.244.0.7"}});
        assert!(pod_info(&done).is_none());
        let pending = json!({"metadata": {"name": "p", "namespace": "default"}, "status": {"phase": "Pending"}});
        assert!(pod_info(&pending).is_none());
    }

    #[test]
    fn object_key_is_namespace_slash_name() {
        let obj = json!({"metadata": {"name": "web", "namespace": "default"}});
        assert_eq!(object_key(&obj).as_deref(), Some("default/web"));
    }
}
