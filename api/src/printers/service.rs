//! Service, Endpoints and EndpointSlice rows (kubectl's `printService`,
//! `printEndpoints`, `printEndpointSlice`).

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::duration::age;
use super::table::{Column, Row, AGE, NAME};
use crate::validation::access::{at, int_at, list_at, str_at, string_map};

/// Server-side tables are generated "wide", so EXTERNAL-IP is never cut.
const WIDE: bool = true;
/// Longer load-balancer addresses are cut to this width without `wide`.
const LOAD_BALANCER_WIDTH: usize = 16;

const TYPE_DESCRIPTION: &str = "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
const CLUSTER_IP_DESCRIPTION: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
const EXTERNAL_IPS_DESCRIPTION: &str = "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.";
const PORTS_DESCRIPTION: &str = "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
const SELECTOR_DESCRIPTION: &str = "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/";
const SUBSETS_DESCRIPTION: &str = "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.";
const ADDRESS_TYPE_DESCRIPTION: &str = "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.";
const SLICE_PORTS_DESCRIPTION: &str = "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports.";
const SLICE_ENDPOINTS_DESCRIPTION: &str = "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.";

pub fn service_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("Type", TYPE_DESCRIPTION),
        Column::string("Cluster-IP", CLUSTER_IP_DESCRIPTION),
        Column::string("External-IP", EXTERNAL_IPS_DESCRIPTION),
        Column::string("Port(s)", PORTS_DESCRIPTION),
        AGE,
        Column::string("Selector", SELECTOR_DESCRIPTION).wide(),
    ]
}

pub fn service_row(svc: &Value, now: Timestamp) -> Row {
    let cluster_ip = list_at(svc, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let ports = port_string(list_at(svc, &["spec", "ports"]));
    Row::new(vec![
        json!(str_at(svc, &["metadata", "name"])),
        json!(str_at(svc, &["spec", "type"])),
        json!(cluster_ip),
        json!(external_ip(svc, WIDE)),
        json!(if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports
        }),
        json!(age(
            at(svc, &["metadata", "creationTimestamp"]).and_then(Value::as_str),
            now
        )),
        json!(format_labels(at(svc, &["spec", "selector"]))),
    ])
}

/// `80/TCP`, or `80:30080/TCP` with a node port, joined by `,`.
fn port_string(ports: &[Value]) -> String {
    ports
        .iter()
        .map(|p| {
            let port = int_at(p, &["port"]).unwrap_or(0);
            let proto = match str_at(p, &["protocol"]) {
                "" => "TCP",
                other => other,
            };
            match int_at(p, &["nodePort"]).unwrap_or(0) {
                np if np > 0 => format!("{port}:{np}/{proto}"),
                _ => format!("{port}/{proto}"),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// kubectl's `getServiceExternalIP`.
fn external_ip(svc: &Value, wide: bool) -> String {
    let external: Vec<&str> = list_at(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match str_at(svc, &["spec", "type"]) {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_string()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_addresses(svc, wide);
            if !external.is_empty() {
                let mut all: Vec<&str> = if lb.is_empty() {
                    Vec::new()
                } else {
                    lb.split(',').collect()
                };
                all.extend(external);
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => str_at(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// Ingress IPs (or hostnames), sorted and unique, cut to 16 characters
/// unless `wide`.
fn load_balancer_addresses(svc: &Value, wide: bool) -> String {
    let addrs: BTreeSet<&str> = list_at(svc, &["status", "loadBalancer", "ingress"])
        .iter()
        .filter_map(|i| {
            let ip = str_at(i, &["ip"]);
            let host = str_at(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    let joined = addrs.into_iter().collect::<Vec<_>>().join(",");
    if !wide && joined.len() > LOAD_BALANCER_WIDTH {
        format!("{}...", &joined[..LOAD_BALANCER_WIDTH - 3])
    } else {
        joined
    }
}

/// `labels.FormatLabels`: sorted `k=v` joined by `,`, `<none>` if empty.
pub(crate) fn format_labels(labels: Option<&Value>) -> String {
    let m = string_map(labels);
    if m.is_empty() {
        return "<none>".to_string();
    }
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub fn endpoints_columns() -> Vec<Column> {
    vec![NAME, Column::string("Endpoints", SUBSETS_DESCRIPTION), AGE]
}

pub fn endpoints_row(ep: &Value, now: Timestamp) -> Row {
    Row::new(vec![
        json!(str_at(ep, &["metadata", "name"])),
        json!(format_endpoints(list_at(ep, &["subsets"]))),
        json!(age(
            at(ep, &["metadata", "creationTimestamp"]).and_then(Value::as_str),
            now
        )),
    ])
}

/// kubectl's `formatEndpoints`: `ip:port` for each ready address and port
/// (a bare IP when a subset has no ports), at most three, then
/// ` + N more...`.
fn format_endpoints(subsets: &[Value]) -> String {
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addrs = list_at(ss, &["addresses"]);
        let ports = list_at(ss, &["ports"]);
        if ports.is_empty() {
            count += addrs.len();
            for a in addrs {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(a, &["ip"]).to_string());
            }
            continue;
        }
        for p in ports {
            count += addrs.len();
            for a in addrs {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                let ip = str_at(a, &["ip"]);
                let port = int_at(p, &["port"]).unwrap_or(0);
                // net.JoinHostPort brackets IPv6 addresses.
                if ip.contains(':') {
                    list.push(format!("[{ip}]:{port}"));
                } else {
                    list.push(format!("{ip}:{port}"));
                }
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

pub fn endpoint_slice_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::string("AddressType", ADDRESS_TYPE_DESCRIPTION),
        Column::string("Ports", SLICE_PORTS_DESCRIPTION),
        Column::string("Endpoints", SLICE_ENDPOINTS_DESCRIPTION),
        AGE,
    ]
}

pub fn endpoint_slice_row(slice: &Value, now: Timestamp) -> Row {
    let ports = list_at(slice, &["ports"]).iter().map(|p| {
        if let Some(n) = int_at(p, &["port"]) {
            n.to_string()
        } else if let Some(name) = at(p, &["name"]).and_then(Value::as_str) {
            name.to_string()
        } else {
            "*".to_string()
        }
    });
    let addresses = list_at(slice, &["endpoints"]).iter().flat_map(|e| {
        list_at(e, &["addresses"])
            .iter()
            .map(|a| a.as_str().unwrap_or("").to_string())
    });
    Row::new(vec![
        json!(str_at(slice, &["metadata", "name"])),
        json!(str_at(slice, &["addressType"])),
        json!(list_with_more(ports)),
        json!(list_with_more(addresses)),
        json!(age(
            at(slice, &["metadata", "creationTimestamp"]).and_then(Value::as_str),
            now
        )),
    ])
}

/// kubectl's `listWithMoreString`: at most three, then ` + N more...`;
/// `<unset>` when empty.
fn list_with_more(items: impl Iterator<Item = String>) -> String {
    const MAX: usize = 3;
    let all: Vec<String> = items.collect();
    if all.len() > MAX {
        return format!("{} + {} more...", all[..MAX].join(","), all.len() - MAX);
    }
    if all.is_empty() {
        return "<unset>".to_string();
    }
    all.join(",")
}
