use super::*;
use crate::pod_state::testing::{pod, running, service, terminating};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn web() -> Service {
    service("web", &[("app", "web")], &[("", 80, IntOrString::Int(80))])
}

fn ips(addrs: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
    addrs.iter().flatten().map(|a| a.ip.as_str()).collect()
}

#[test]
fn ready_and_unready_pods_with_ips() {
    let a = running(pod("a", &[("app", "web")]), "10.244.0.7", true, "node1");
    let b = running(pod("b", &[("app", "web")]), "10.244.0.10", true, "node1");
    let c = running(pod("c", &[("app", "web")]), "10.244.0.6", false, "node1");
    let pending = pod("d", &[("app", "web")]);
    let dying = terminating(running(
        pod("e", &[("app", "web")]),
        "10.244.0.8",
        true,
        "node1",
    ));
    let other = running(pod("f", &[("app", "db")]), "10.244.0.9", true, "node1");
    let pods = [&a, &b, &c, &pending, &dying, &other];
    let EndpointsAction::Create(ep) = plan_endpoints(Some(&web()), &pods, None, false) else {
        panic!("expected a create")
    };
    let subsets = ep.subsets.unwrap();
    assert_eq!(subsets.len(), 1);
    // Sorted by IP bytes, as Kubernetes does.
    assert_eq!(
        ips(&subsets[0].addresses),
        vec!["10.244.0.10", "10.244.0.7"]
    );
    assert_eq!(ips(&subsets[0].not_ready_addresses), vec!["10.244.0.6"]);
    let addr = &subsets[0].addresses.as_ref().unwrap()[1];
    assert_eq!(addr.node_name.as_deref(), Some("node1"));
    let target = addr.target_ref.as_ref().unwrap();
    assert_eq!(
        (
            target.kind.as_deref(),
            target.name.as_deref(),
            target.uid.as_deref()
        ),
        (Some("Pod"), Some("a"), Some("uid-a"))
    );
    let port = &subsets[0].ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.protocol.as_deref()),
        (None, 80, Some("TCP"))
    );
    let labels = ep.metadata.labels.unwrap();
    assert_eq!(labels[MANAGED_BY], CONTROLLER_NAME);
    assert_eq!(labels["team"], "blue");
    assert!(ep.metadata.owner_references.is_none());
}

#[test]
fn no_matching_pods_gives_no_subsets() {
    let EndpointsAction::Create(ep) = plan_endpoints(Some(&web()), &[], None, false) else {
        panic!("expected a create")
    };
    assert_eq!(ep.subsets, None);
}

#[test]
fn named_target_port_and_unresolvable_pods() {
    let svc = service(
        "web",
        &[("app", "web")],
        &[("http", 80, IntOrString::String("http".into()))],
    );
    let a = running(pod("a", &[("app", "web")]), "10.244.0.5", true, "n");
    let mut b = running(pod("b", &[("app", "web")]), "10.244.0.6", true, "n");
    b.spec.as_mut().unwrap().containers[0].ports = None;
    let subsets = desired_subsets(&svc, &[&a, &b]);
    assert_eq!(subsets.len(), 1);
    assert_eq!(ips(&subsets[0].addresses), vec!["10.244.0.5"]);
    let port = &subsets[0].ports.as_ref().unwrap()[0];
    assert_eq!((port.name.as_deref(), port.port), (Some("http"), 8080));
}

#[test]
fn publish_not_ready_addresses_keeps_everything_ready() {
    let mut svc = web();
    svc.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
    let c = running(pod("c", &[("app", "web")]), "10.244.0.6", false, "n");
    let dying = terminating(running(
        pod("e", &[("app", "web")]),
        "10.244.0.8",
        true,
        "n",
    ));
    let subsets = desired_subsets(&svc, &[&c, &dying]);
    assert_eq!(ips(&subsets[0].addresses), vec!["10.244.0.6", "10.244.0.8"]);
    assert_eq!(subsets[0].not_ready_addresses, None);
}

#[test]
fn headless_pod_hostnames_and_label() {
    let mut svc = service("db", &[("app", "db")], &[]);
    svc.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    let mut a = running(pod("a", &[("app", "db")]), "10.244.0.5", true, "n");
    a.spec.as_mut().unwrap().hostname = Some("db-0".into());
    a.spec.as_mut().unwrap().subdomain = Some("db".into());
    let EndpointsAction::Create(ep) = plan_endpoints(Some(&svc), &[&a], None, false) else {
        panic!()
    };
    let subset = &ep.subsets.unwrap()[0];
    assert_eq!(subset.ports, None);
    assert_eq!(
        subset.addresses.as_ref().unwrap()[0].hostname.as_deref(),
        Some("db-0")
    );
    assert_eq!(ep.metadata.labels.unwrap()[HEADLESS], "");
}

#[test]
fn unchanged_is_nothing_and_changes_update_in_place() {
    let a = running(pod("a", &[("app", "web")]), "10.244.0.5", true, "n");
    let EndpointsAction::Create(mut ep) = plan_endpoints(Some(&web()), &[&a], None, false) else {
        panic!()
    };
    ep.metadata.resource_version = Some("42".into());
    assert_eq!(
        plan_endpoints(Some(&web()), &[&a], Some(&ep), false),
        EndpointsAction::Nothing
    );
    let EndpointsAction::Update(updated) = plan_endpoints(Some(&web()), &[], Some(&ep), false)
    else {
        panic!()
    };
    assert_eq!(updated.metadata.resource_version.as_deref(), Some("42"));
    assert_eq!(updated.subsets, None);
}

#[test]
fn selectorless_external_name_and_deleted_services() {
    let mut manual = web();
    manual.spec.as_mut().unwrap().selector = None;
    let user_ep = Endpoints {
        metadata: ObjectMeta {
            name: Some("web".into()),
            ..Default::default()
        },
        subsets: None,
    };
    assert_eq!(
        plan_endpoints(Some(&manual), &[], Some(&user_ep), false),
        EndpointsAction::Nothing
    );
    let mut external = web();
    external.spec.as_mut().unwrap().type_ = Some("ExternalName".into());
    assert_eq!(
        plan_endpoints(Some(&external), &[], None, false),
        EndpointsAction::Nothing
    );
    // Gone while we watched: delete. Gone before (leftover): only ours.
    assert_eq!(
        plan_endpoints(None, &[], Some(&user_ep), true),
        EndpointsAction::Delete
    );
    assert_eq!(
        plan_endpoints(None, &[], Some(&user_ep), false),
        EndpointsAction::Nothing
    );
    let EndpointsAction::Create(ours) = plan_endpoints(Some(&web()), &[], None, false) else {
        panic!()
    };
    assert_eq!(
        plan_endpoints(None, &[], Some(&ours), false),
        EndpointsAction::Delete
    );
    assert_eq!(
        plan_endpoints(None, &[], None, true),
        EndpointsAction::Nothing
    );
}
