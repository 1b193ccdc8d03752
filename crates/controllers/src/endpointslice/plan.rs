//! The EndpointSlices of a Service: its selected Pods as endpoints with
//! ready/serving/terminating conditions, grouped by the ports they offer,
//! at most 100 per slice. Existing slices are updated in place (their
//! names stay) rather than replaced. Pure; the loop writes the result.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::endpoints::{is_headless, pod_reference, selected_pods, selector_of, HEADLESS};
use crate::owners::controller_reference;
use crate::pod_state;

pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// What one reconcile of a Service's slices writes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SlicePlan {
    pub create: Vec<EndpointSlice>,
    /// Existing slices with new content (name and resourceVersion kept).
    pub update: Vec<EndpointSlice>,
    /// Names of slices to delete.
    pub delete: Vec<String>,
}

/// Whether this controller manages `slice` for the Service `service_name`.
pub fn is_managed_for(slice: &EndpointSlice, service_name: &str) -> bool {
    let labels = slice.metadata.labels.as_ref();
    labels.and_then(|l| l.get(SERVICE_NAME)).map(String::as_str) == Some(service_name)
        && labels.and_then(|l| l.get(MANAGED_BY)).map(String::as_str) == Some(CONTROLLER_NAME)
}

/// Reconcile the slices of `svc` (None: gone). `existing` are the slices
/// this controller manages for it; `new_name(prefix)` names new slices.
pub fn plan_endpoint_slices(
    svc: Option<&Service>,
    pods: &[&Pod],
    existing: &[&EndpointSlice],
    new_name: &mut dyn FnMut(&str) -> String,
) -> SlicePlan {
    let mut plan = SlicePlan::default();
    let Some(svc) = svc.filter(|s| selector_of(s).is_some()) else {
        plan.delete = existing
            .iter()
            .filter_map(|s| s.metadata.name.clone())
            .collect();
        return plan;
    };

    // Desired content: port set -> endpoints by address.
    let mut groups: BTreeMap<Vec<PortKey>, BTreeMap<String, Endpoint>> = BTreeMap::new();
    for pod in selected_pods(svc, pods) {
        if let Some((ports, endpoint)) = endpoint_of(svc, pod) {
            groups
                .entry(ports)
                .or_default()
                .insert(endpoint.addresses[0].clone(), endpoint);
        }
    }
    if groups.is_empty() {
        // A Service with no endpoints keeps one empty "placeholder" slice.
        groups.insert(Vec::new(), BTreeMap::new());
    }

    // Slices that keep their port set and (some of) their endpoints.
    let mut wanted: Vec<Draft> = Vec::new();
    let mut recyclable: Vec<&EndpointSlice> = Vec::new();
    let mut placed: HashSet<(Vec<PortKey>, String)> = HashSet::new();
    for slice in existing {
        let ports = ports_of(slice);
        let Some(endpoints) = groups.get(&ports) else {
            recyclable.push(slice);
            continue;
        };
        let kept: Vec<Endpoint> = slice
            .endpoints
            .iter()
            .filter_map(|e| e.addresses.first())
            .filter(|a| placed.insert((ports.clone(), (*a).clone())))
            .filter_map(|a| endpoints.get(a).cloned())
            .collect();
        if kept.is_empty() && !(endpoints.is_empty() && wanted.iter().all(|d| d.ports != ports)) {
            recyclable.push(slice);
            continue;
        }
        wanted.push(Draft {
            from: Some(slice),
            ports,
            endpoints: kept,
        });
    }
    // New endpoints fill slices with room, then new (or recycled) slices.
    for (ports, endpoints) in &groups {
        let mut rest: Vec<&Endpoint> = endpoints
            .iter()
            .filter(|(a, _)| !placed.contains(&(ports.clone(), (*a).clone())))
            .map(|(_, e)| e)
            .collect();
        rest.sort_by_key(|e| address_key(&e.addresses[0]));
        let mut rest = rest.into_iter().peekable();
        for draft in wanted.iter_mut().filter(|d| &d.ports == ports) {
            while draft.endpoints.len() < MAX_ENDPOINTS_PER_SLICE {
                let Some(e) = rest.next() else { break };
                draft.endpoints.push(e.clone());
            }
        }
        let has_slice = wanted.iter().any(|d| &d.ports == ports);
        if rest.peek().is_none() && (has_slice || !endpoints.is_empty()) {
            continue;
        }
        let rest: Vec<&Endpoint> = rest.collect();
        let mut chunks: Vec<Vec<Endpoint>> = rest
            .chunks(MAX_ENDPOINTS_PER_SLICE)
            .map(|c| c.iter().map(|e| (*e).clone()).collect())
            .collect();
        if chunks.is_empty() {
            chunks.push(Vec::new()); // the placeholder
        }
        for endpoints in chunks {
            wanted.push(Draft {
                from: (!recyclable.is_empty()).then(|| recyclable.remove(0)),
                ports: ports.clone(),
                endpoints,
            });
        }
    }
    plan.delete = recyclable
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();

    for draft in wanted {
        let slice = draft.build(svc, new_name);
        match draft.from {
            None => plan.create.push(slice),
            Some(old) if !same_content(old, &slice) => plan.update.push(slice),
            Some(_) => {}
        }
    }
    plan
}

/// A slice being planned: the existing slice it reuses, if any.
struct Draft<'a> {
    from: Option<&'a EndpointSlice>,
    ports: Vec<PortKey>,
    endpoints: Vec<Endpoint>,
}

impl Draft<'_> {
    fn build(&self, svc: &Service, new_name: &mut dyn FnMut(&str) -> String) -> EndpointSlice {
        let svc_name = svc.metadata.name.clone().unwrap_or_default();
        let mut labels = svc.metadata.labels.clone().unwrap_or_default();
        labels.insert(SERVICE_NAME.into(), svc_name.clone());
        labels.insert(MANAGED_BY.into(), CONTROLLER_NAME.into());
        if is_headless(svc) {
            labels.insert(HEADLESS.into(), String::new());
        } else {
            labels.remove(HEADLESS);
        }
        let metadata = match self.from {
            Some(old) => ObjectMeta {
                labels: Some(labels),
                owner_references: Some(vec![controller_reference(svc)]),
                ..old.metadata.clone()
            },
            None => ObjectMeta {
                name: Some(new_name(&format!("{svc_name}-"))),
                generate_name: Some(format!("{svc_name}-")),
                namespace: svc.metadata.namespace.clone(),
                labels: Some(labels),
                owner_references: Some(vec![controller_reference(svc)]),
                ..Default::default()
            },
        };
        let mut endpoints = self.endpoints.clone();
        endpoints.sort_by_key(|e| address_key(&e.addresses[0]));
        EndpointSlice {
            metadata,
            address_type: "IPv4".into(),
            endpoints,
            ports: Some(self.ports.iter().cloned().map(PortKey::into_port).collect()),
        }
    }
}

/// Equal for what this controller writes; `ports: null` and `[]` are the
/// same (the server may store either), so a round trip is no change.
fn same_content(a: &EndpointSlice, b: &EndpointSlice) -> bool {
    let ports = |s: &EndpointSlice| s.ports.clone().unwrap_or_default();
    a.metadata.labels == b.metadata.labels
        && a.metadata.owner_references == b.metadata.owner_references
        && a.address_type == b.address_type
        && a.endpoints == b.endpoints
        && ports(a) == ports(b)
}

/// `podToEndpoint` and `getEndpointPorts`: the endpoint of one Pod and the
/// ports it offers; None for Pods without an IPv4 address or finished.
fn endpoint_of(svc: &Service, pod: &Pod) -> Option<(Vec<PortKey>, Endpoint)> {
    if !pod_state::should_be_in_endpoints(pod, true) {
        return None;
    }
    let ip = pod_state::pod_ip(pod)?;
    ip.parse::<Ipv4Addr>().ok()?;
    let spec = svc.spec.as_ref()?;
    let serving = pod_state::is_ready(pod);
    let terminating = pod_state::is_terminating(pod);
    // Never "ready" while terminating, unless the Service asks for all.
    let ready = spec.publish_not_ready_addresses.unwrap_or(false) || (serving && !terminating);
    let svc_name = svc.metadata.name.as_deref().unwrap_or_default();
    let endpoint = Endpoint {
        addresses: vec![ip.to_string()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: pod_state::hostname_for_service(pod, svc_name).map(str::to_string),
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        target_ref: Some(pod_reference(pod)),
        ..Default::default()
    };
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|sp| {
            Some(PortKey {
                name: sp.name.clone().unwrap_or_default(),
                port: pod_state::find_port(pod, sp)?,
                protocol: sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect();
    Some((ports, endpoint))
}

/// IPv4 addresses in numeric order (`10.244.0.5` before `10.244.0.10`).
fn address_key(address: &str) -> (u32, String) {
    let n = address
        .parse::<Ipv4Addr>()
        .map(u32::from)
        .unwrap_or(u32::MAX);
    (n, address.to_string())
}

/// The port set of an existing slice, in the same form as desired ones.
fn ports_of(slice: &EndpointSlice) -> Vec<PortKey> {
    slice
        .ports
        .iter()
        .flatten()
        .map(|p| PortKey {
            name: p.name.clone().unwrap_or_default(),
            port: p.port.unwrap_or(0),
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            app_protocol: p.app_protocol.clone(),
        })
        .collect()
}

/// A resolved port. Every slice port has a name, `""` when the Service
/// port has none, as Kubernetes writes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct PortKey {
    name: String,
    port: i32,
    protocol: String,
    app_protocol: Option<String>,
}

impl PortKey {
    fn into_port(self) -> EndpointPort {
        EndpointPort {
            name: Some(self.name),
            port: Some(self.port),
            protocol: Some(self.protocol),
            app_protocol: self.app_protocol,
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
