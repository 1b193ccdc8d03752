use super::*;
use crate::pod_state::testing::{pod, running, service, terminating};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn web() -> Service {
    service("web", &[("app", "web")], &[("", 80, IntOrString::Int(80))])
}

fn names() -> impl FnMut(&str) -> String {
    let mut n = 0;
    move |prefix: &str| {
        n += 1;
        format!("{prefix}s{n}")
    }
}

fn web_pod(name: &str, ip: &str, ready: bool) -> Pod {
    running(pod(name, &[("app", "web")]), ip, ready, "node1")
}

fn addresses(slice: &EndpointSlice) -> Vec<&str> {
    slice
        .endpoints
        .iter()
        .map(|e| e.addresses[0].as_str())
        .collect()
}

/// Apply a plan to a set of slices, as the API would.
fn apply(slices: &mut Vec<EndpointSlice>, plan: &SlicePlan) {
    slices.retain(|s| !plan.delete.contains(s.metadata.name.as_ref().unwrap()));
    for u in &plan.update {
        let slot = slices
            .iter_mut()
            .find(|s| s.metadata.name == u.metadata.name)
            .unwrap();
        *slot = u.clone();
    }
    slices.extend(plan.create.iter().cloned());
}

#[test]
fn one_slice_with_all_pods_and_conditions() {
    let a = web_pod("a", "10.244.0.10", true);
    let b = web_pod("b", "10.244.0.5", false);
    let c = terminating(web_pod("c", "10.244.0.6", true));
    let no_ip = pod("d", &[("app", "web")]);
    let plan = plan_endpoint_slices(Some(&web()), &[&a, &b, &c, &no_ip], &[], &mut names());
    assert_eq!(plan.create.len(), 1);
    let slice = &plan.create[0];
    assert_eq!(slice.metadata.name.as_deref(), Some("web-s1"));
    assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(
        addresses(slice),
        vec!["10.244.0.5", "10.244.0.6", "10.244.0.10"]
    );
    let cond = |i: usize| slice.endpoints[i].conditions.clone().unwrap();
    assert_eq!(
        (cond(0).ready, cond(0).serving, cond(0).terminating),
        (Some(false), Some(false), Some(false))
    );
    assert_eq!(
        (cond(1).ready, cond(1).serving, cond(1).terminating),
        (Some(false), Some(true), Some(true))
    );
    assert_eq!(
        (cond(2).ready, cond(2).serving, cond(2).terminating),
        (Some(true), Some(true), Some(false))
    );
    assert_eq!(slice.endpoints[2].node_name.as_deref(), Some("node1"));
    assert_eq!(
        slice.endpoints[2]
            .target_ref
            .as_ref()
            .unwrap()
            .name
            .as_deref(),
        Some("a")
    );
    let port = &slice.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.protocol.as_deref()),
        (Some(""), Some(80), Some("TCP"))
    );
    let labels = slice.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[SERVICE_NAME], "web");
    assert_eq!(labels[MANAGED_BY], CONTROLLER_NAME);
    let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Service", "web", Some(true))
    );
}

#[test]
fn updates_in_place_and_keeps_the_name() {
    let mut slices = Vec::new();
    let a = web_pod("a", "10.244.0.5", true);
    let b = web_pod("b", "10.244.0.6", true);
    apply(
        &mut slices,
        &plan_endpoint_slices(Some(&web()), &[&a, &b], &[], &mut names()),
    );
    // Steady state: nothing to write.
    let refs: Vec<&EndpointSlice> = slices.iter().collect();
    assert_eq!(
        plan_endpoint_slices(Some(&web()), &[&a, &b], &refs, &mut names()),
        SlicePlan::default()
    );
    // b dies, c arrives: the same slice changes.
    let c = web_pod("c", "10.244.0.7", false);
    let plan = plan_endpoint_slices(Some(&web()), &[&a, &c], &refs, &mut names());
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.update.len(), 1);
    assert_eq!(plan.update[0].metadata.name.as_deref(), Some("web-s1"));
    assert_eq!(addresses(&plan.update[0]), vec!["10.244.0.5", "10.244.0.7"]);
}

#[test]
fn selector_matching_nothing_leaves_a_placeholder_that_is_reused() {
    let mut slices = Vec::new();
    let a = web_pod("a", "10.244.0.5", true);
    apply(
        &mut slices,
        &plan_endpoint_slices(Some(&web()), &[&a], &[], &mut names()),
    );
    let broken = service("web", &[("app", "webb")], &[("", 80, IntOrString::Int(80))]);
    let refs: Vec<&EndpointSlice> = slices.iter().collect();
    let plan = plan_endpoint_slices(Some(&broken), &[&a], &refs, &mut names());
    assert_eq!(plan.update.len(), 1, "{plan:?}");
    assert!(plan.update[0].endpoints.is_empty());
    assert_eq!(plan.update[0].ports, Some(vec![]));
    apply(&mut slices, &plan);
    let refs: Vec<&EndpointSlice> = slices.iter().collect();
    assert_eq!(
        plan_endpoint_slices(Some(&broken), &[&a], &refs, &mut names()),
        SlicePlan::default()
    );
    // Fixed again: the placeholder becomes the real slice, same name.
    let plan = plan_endpoint_slices(Some(&web()), &[&a], &refs, &mut names());
    assert_eq!(plan.update.len(), 1);
    assert_eq!(plan.update[0].metadata.name.as_deref(), Some("web-s1"));
    assert_eq!(addresses(&plan.update[0]), vec!["10.244.0.5"]);
    // A fresh Service with no Pods gets a placeholder too.
    let fresh = plan_endpoint_slices(Some(&web()), &[], &[], &mut names());
    assert_eq!(fresh.create.len(), 1);
    assert!(fresh.create[0].endpoints.is_empty());
}

#[test]
fn splits_at_one_hundred_endpoints() {
    let pods: Vec<Pod> = (0..250)
        .map(|i| {
            web_pod(
                &format!("p{i}"),
                &format!("10.244.{}.{}", i / 200, i % 200 + 1),
                true,
            )
        })
        .collect();
    let refs: Vec<&Pod> = pods.iter().collect();
    let plan = plan_endpoint_slices(Some(&web()), &refs, &[], &mut names());
    let sizes: Vec<usize> = plan.create.iter().map(|s| s.endpoints.len()).collect();
    assert_eq!(sizes, vec![100, 100, 50]);
    // One more Pod fills the slice with room instead of a new slice.
    let mut slices = Vec::new();
    apply(&mut slices, &plan);
    let extra = web_pod("extra", "10.244.9.9", true);
    let mut more = refs.clone();
    more.push(&extra);
    let srefs: Vec<&EndpointSlice> = slices.iter().collect();
    let plan = plan_endpoint_slices(Some(&web()), &more, &srefs, &mut names());
    assert!(plan.create.is_empty());
    assert_eq!(plan.update.len(), 1);
    assert_eq!(plan.update[0].endpoints.len(), 51);
}

#[test]
fn pods_offering_different_ports_get_different_slices() {
    let svc = service(
        "web",
        &[("app", "web")],
        &[("http", 80, IntOrString::String("http".into()))],
    );
    let a = web_pod("a", "10.244.0.5", true);
    let mut b = web_pod("b", "10.244.0.6", true);
    b.spec.as_mut().unwrap().containers[0]
        .ports
        .as_mut()
        .unwrap()[0]
        .container_port = 9090;
    let plan = plan_endpoint_slices(Some(&svc), &[&a, &b], &[], &mut names());
    let mut found: Vec<(i32, Vec<&str>)> = plan
        .create
        .iter()
        .map(|s| (s.ports.as_ref().unwrap()[0].port.unwrap(), addresses(s)))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![(8080, vec!["10.244.0.5"]), (9090, vec!["10.244.0.6"])]
    );
    assert_eq!(
        plan.create[0].ports.as_ref().unwrap()[0].name.as_deref(),
        Some("http")
    );
}

#[test]
fn headless_hostnames_and_no_slices_without_selector() {
    let mut svc = service("db", &[("app", "db")], &[]);
    svc.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    let mut a = running(pod("a", &[("app", "db")]), "10.244.0.5", true, "n");
    a.spec.as_mut().unwrap().hostname = Some("db-0".into());
    a.spec.as_mut().unwrap().subdomain = Some("db".into());
    let plan = plan_endpoint_slices(Some(&svc), &[&a], &[], &mut names());
    assert_eq!(
        plan.create[0].endpoints[0].hostname.as_deref(),
        Some("db-0")
    );
    assert_eq!(
        plan.create[0].metadata.labels.as_ref().unwrap()[HEADLESS],
        ""
    );

    let mut slices = Vec::new();
    apply(&mut slices, &plan);
    let refs: Vec<&EndpointSlice> = slices.iter().collect();
    let mut external = svc.clone();
    external.spec.as_mut().unwrap().type_ = Some("ExternalName".into());
    let plan = plan_endpoint_slices(Some(&external), &[&a], &refs, &mut names());
    assert_eq!(plan.delete, vec!["db-s1".to_string()]);
    assert!(plan.create.is_empty());
    let plan = plan_endpoint_slices(None, &[&a], &refs, &mut names());
    assert_eq!(plan.delete, vec!["db-s1".to_string()]);
}

#[test]
fn managed_slices_are_recognised_by_labels() {
    let plan = plan_endpoint_slices(Some(&web()), &[], &[], &mut names());
    assert!(is_managed_for(&plan.create[0], "web"));
    assert!(!is_managed_for(&plan.create[0], "other"));
}
