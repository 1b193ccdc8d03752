//! The Endpoints object of a Service: which Pods back it, ready or not,
//! on which ports. Pure; the loop writes the result.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::labels::{map_selects, Labels};
use crate::pod_state;

/// The label that marks Endpoints this controller manages.
pub const MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpoint-controller";
/// Set on the Endpoints (and EndpointSlices) of a Service without a cluster IP.
pub const HEADLESS: &str = "service.kubernetes.io/headless";

/// What to do with a Service's Endpoints.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointsAction {
    Nothing,
    Create(Endpoints),
    /// The existing object with new labels and subsets (resourceVersion kept).
    Update(Endpoints),
    Delete,
}

/// The selector of a Service this controller serves: None for Services
/// without one (their Endpoints are the user's) and ExternalName Services.
pub fn selector_of(svc: &Service) -> Option<&Labels> {
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

pub fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// The Pods of the Service's namespace its selector picks.
pub fn selected_pods<'a>(svc: &Service, pods: &[&'a Pod]) -> Vec<&'a Pod> {
    let Some(selector) = selector_of(svc) else {
        return Vec::new();
    };
    let ns = svc.metadata.namespace.as_deref();
    pods.iter()
        .copied()
        .filter(|p| p.metadata.namespace.as_deref() == ns)
        .filter(|p| map_selects(selector, p.metadata.labels.as_ref()))
        .collect()
}

/// The `targetRef` of an address: the Pod.
pub fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// Decide the Endpoints of `svc` (None: the Service is gone;
/// `service_deleted`: we saw it go, so its Endpoints go too, even ones a
/// user wrote, as in Kubernetes).
pub fn plan_endpoints(
    svc: Option<&Service>,
    pods: &[&Pod],
    existing: Option<&Endpoints>,
    service_deleted: bool,
) -> EndpointsAction {
    let Some(svc) = svc else {
        let ours = existing.is_some_and(|e| {
            e.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(MANAGED_BY))
                .map(String::as_str)
                == Some(CONTROLLER_NAME)
        });
        return if existing.is_some() && (service_deleted || ours) {
            EndpointsAction::Delete
        } else {
            EndpointsAction::Nothing
        };
    };
    if selector_of(svc).is_none() {
        return EndpointsAction::Nothing;
    }
    let subsets = desired_subsets(svc, pods);
    let subsets = (!subsets.is_empty()).then_some(subsets);
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.insert(MANAGED_BY.into(), CONTROLLER_NAME.into());
    if is_headless(svc) {
        labels.insert(HEADLESS.into(), String::new());
    }
    match existing {
        None => EndpointsAction::Create(Endpoints {
            metadata: ObjectMeta {
                name: svc.metadata.name.clone(),
                namespace: svc.metadata.namespace.clone(),
                labels: Some(labels),
                ..Default::default()
            },
            subsets,
        }),
        Some(e) => {
            let have = e.subsets.clone().filter(|s| !s.is_empty());
            if have == subsets && e.metadata.labels.as_ref() == Some(&labels) {
                return EndpointsAction::Nothing;
            }
            let mut updated = e.clone();
            updated.metadata.labels = Some(labels);
            updated.subsets = subsets;
            EndpointsAction::Update(updated)
        }
    }
}

/// Kubernetes' endpoints controller: every selected Pod with an IP, on
/// each Service port its targetPort resolves to, ready or not ready; then
/// `RepackSubsets`: addresses offering the same ports share a subset.
pub fn desired_subsets(svc: &Service, pods: &[&Pod]) -> Vec<EndpointSubset> {
    let spec = svc.spec.clone().unwrap_or_default();
    let tolerate_unready = spec.publish_not_ready_addresses.unwrap_or(false);
    let svc_name = svc.metadata.name.as_deref().unwrap_or_default();
    let ports = spec.ports.unwrap_or_default();
    // ports offered -> (ready, not ready) addresses
    let mut groups: BTreeMap<Vec<PortKey>, (Vec<EndpointAddress>, Vec<EndpointAddress>)> =
        BTreeMap::new();
    for pod in selected_pods(svc, pods) {
        if !pod_state::should_be_in_endpoints(pod, tolerate_unready) {
            continue;
        }
        let Some(ip) = pod_state::pod_ip(pod) else {
            continue;
        };
        let address = EndpointAddress {
            ip: ip.to_string(),
            hostname: pod_state::hostname_for_service(pod, svc_name).map(str::to_string),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(pod_reference(pod)),
        };
        let offered: Vec<PortKey> = if ports.is_empty() {
            // A headless Service without ports still lists its Pods (DNS).
            if !is_headless(svc) {
                continue;
            }
            Vec::new()
        } else {
            let offered: Vec<PortKey> = ports
                .iter()
                .filter_map(|sp| {
                    let port = pod_state::find_port(pod, sp)?;
                    Some(PortKey {
                        name: sp.name.clone().filter(|n| !n.is_empty()),
                        port,
                        protocol: sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        app_protocol: sp.app_protocol.clone(),
                    })
                })
                .collect();
            if offered.is_empty() {
                continue;
            }
            offered
        };
        let entry = groups.entry(offered).or_default();
        if tolerate_unready || pod_state::is_ready(pod) {
            entry.0.push(address);
        } else {
            entry.1.push(address);
        }
    }
    let mut subsets: Vec<EndpointSubset> = groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(address_order);
            not_ready.sort_by(address_order);
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty())
                    .then(|| ports.into_iter().map(PortKey::into_port).collect()),
            }
        })
        .collect();
    subsets.sort_by_key(|s| first_ip(s).map(str::to_string));
    subsets
}

fn first_ip(s: &EndpointSubset) -> Option<&str> {
    s.addresses
        .iter()
        .chain(s.not_ready_addresses.iter())
        .flatten()
        .map(|a| a.ip.as_str())
        .next()
}

/// `LessEndpointAddress`: by IP as bytes, then by the Pod's uid.
fn address_order(a: &EndpointAddress, b: &EndpointAddress) -> std::cmp::Ordering {
    let uid = |x: &EndpointAddress| x.target_ref.as_ref().and_then(|r| r.uid.clone());
    a.ip.as_bytes()
        .cmp(b.ip.as_bytes())
        .then(uid(a).cmp(&uid(b)))
}

/// A resolved port, orderable so equal port sets group together; kept in
/// the Service's port order within a set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PortKey {
    name: Option<String>,
    port: i32,
    protocol: String,
    app_protocol: Option<String>,
}

impl PortKey {
    fn into_port(self) -> EndpointPort {
        EndpointPort {
            name: self.name,
            port: self.port,
            protocol: Some(self.protocol),
            app_protocol: self.app_protocol,
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
