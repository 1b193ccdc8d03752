//! What the controllers read from a Pod: readiness, whether it still counts,
//! which port a Service's targetPort names. Kubernetes' `podutil` helpers.

use k8s_openapi::api::core::v1::{Pod, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    condition_status(pod, "Ready") == Some("True")
}

/// The status of the Pod condition of `type_`, if present.
pub fn condition_status<'a>(pod: &'a Pod, type_: &str) -> Option<&'a str> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

/// When the Pod last became Ready (for `minReadySeconds`).
pub fn ready_since(pod: &Pod) -> Option<jiff::Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// `controller.IsPodActive`: not finished and not being deleted. Only active
/// Pods count towards a ReplicaSet's replicas.
pub fn is_active(pod: &Pod) -> bool {
    !is_terminating(pod) && !matches!(phase(pod), "Succeeded" | "Failed")
}

/// The Pod's primary IP, empty strings count as none.
pub fn pod_ip(pod: &Pod) -> Option<&str> {
    let status = pod.status.as_ref()?;
    status
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
        .or_else(|| {
            status
                .pod_ips
                .as_ref()?
                .first()
                .map(|p| p.ip.as_str())
                .filter(|ip| !ip.is_empty())
        })
}

/// `endpointutil.ShouldPodBeInEndpoints`: has an IP, is not terminating
/// (unless the caller includes terminating Pods) and, by its restart policy,
/// is not finished for good.
pub fn should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if pod_ip(pod).is_none() {
        return false;
    }
    if !include_terminating && is_terminating(pod) {
        return false;
    }
    let restart = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    match restart {
        "Never" => !matches!(phase(pod), "Succeeded" | "Failed"),
        "OnFailure" => phase(pod) != "Succeeded",
        _ => true,
    }
}

/// `podutil.FindPort`: the container port a Service port's targetPort means
/// on this Pod. A number is taken as is; a name is looked up among the
/// containers' ports with the same protocol. None when the name is unknown.
pub fn find_port(pod: &Pod, service_port: &ServicePort) -> Option<i32> {
    let protocol = service_port.protocol.as_deref().unwrap_or("TCP");
    match &service_port.target_port {
        None => Some(service_port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let containers = pod.spec.as_ref().map(|s| s.containers.as_slice())?;
            containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// `endpointutil.ShouldSetHostname`: a Pod with `hostname` whose `subdomain`
/// is this Service gets a DNS name under it.
pub fn hostname_for_service<'a>(pod: &'a Pod, service_name: &str) -> Option<&'a str> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_deref() == Some(service_name)).then_some(hostname)
}

/// Container restarts, for choosing which Pod to delete first.
pub fn restart_count(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Small Pod builders shared by the plan tests.
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    pub fn pod(name: &str, labels: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some("http".into()),
                        container_port: 8080,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                ..Default::default()
            }),
        }
    }

    /// A running Pod with an IP, Ready or not, on `node`.
    pub fn running(mut p: Pod, ip: &str, ready: bool, node: &str) -> Pod {
        p.spec.as_mut().unwrap().node_name = Some(node.into());
        let status = p.status.as_mut().unwrap();
        status.phase = Some("Running".into());
        status.pod_ip = Some(ip.into());
        status.conditions = Some(vec![PodCondition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            last_transition_time: Some(Time(jiff::Timestamp::from_second(1_000).unwrap())),
            ..Default::default()
        }]);
        p
    }

    /// A ClusterIP Service in `default` selecting `selector`, with ports
    /// given as (name, port, targetPort).
    pub fn service(
        name: &str,
        selector: &[(&str, &str)],
        ports: &[(&str, i32, IntOrString)],
    ) -> k8s_openapi::api::core::v1::Service {
        use k8s_openapi::api::core::v1::{Service, ServiceSpec};
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("svc-uid-{name}")),
                labels: Some([("team".to_string(), "blue".to_string())].into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some(
                    selector
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                cluster_ip: Some("10.96.0.20".into()),
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, p, t)| ServicePort {
                            name: (!n.is_empty()).then(|| n.to_string()),
                            port: *p,
                            target_port: Some(t.clone()),
                            protocol: Some("TCP".into()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            status: None,
        }
    }

    pub fn terminating(mut p: Pod) -> Pod {
        p.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::from_second(2_000).unwrap()));
        p
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn svc_port(target: Option<IntOrString>, protocol: &str) -> ServicePort {
        ServicePort {
            port: 80,
            target_port: target,
            protocol: Some(protocol.into()),
            ..Default::default()
        }
    }

    #[test]
    fn named_target_port_resolves_against_container_ports() {
        let p = pod("a", &[]);
        assert_eq!(
            find_port(
                &p,
                &svc_port(Some(IntOrString::String("http".into())), "TCP")
            ),
            Some(8080)
        );
        assert_eq!(
            find_port(
                &p,
                &svc_port(Some(IntOrString::String("http".into())), "UDP")
            ),
            None
        );
        assert_eq!(
            find_port(
                &p,
                &svc_port(Some(IntOrString::String("grpc".into())), "TCP")
            ),
            None
        );
        assert_eq!(
            find_port(&p, &svc_port(Some(IntOrString::Int(9)), "TCP")),
            Some(9)
        );
        assert_eq!(find_port(&p, &svc_port(None, "TCP")), Some(80));
    }

    #[test]
    fn endpoint_membership() {
        let p = pod("a", &[]);
        assert!(!should_be_in_endpoints(&p, true), "no IP yet");
        let r = running(p, "10.244.0.5", false, "n");
        assert!(should_be_in_endpoints(&r, false));
        assert!(!is_ready(&r));
        let t = terminating(r.clone());
        assert!(!should_be_in_endpoints(&t, false));
        assert!(should_be_in_endpoints(&t, true));
        assert!(!is_active(&t));
        let mut done = r;
        done.spec.as_mut().unwrap().restart_policy = Some("Never".into());
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(!should_be_in_endpoints(&done, true));
    }
}
