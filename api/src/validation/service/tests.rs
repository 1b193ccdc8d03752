//! The Service write path as the API server runs it: defaults, admission
//! (allocation) and validation, with the chapter's manifests.

use std::net::Ipv4Addr;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};

use crate::defaults::apply_defaults;
use crate::field_error::FieldError;
use crate::service_admission::{admit_service, ServiceAllocations, ServiceNetwork};
use crate::validation::validate;

/// Defaults, admission and validation of one write; the error messages on
/// failure.
fn write(
    manifest: Value,
    old: Option<&Value>,
    used: &ServiceAllocations,
) -> Result<Value, Vec<String>> {
    let mut svc = manifest;
    apply_defaults("Service", &mut svc);
    let mut rng = StdRng::seed_from_u64(42);
    let msgs = |errs: Vec<FieldError>| errs.iter().map(FieldError::message).collect::<Vec<_>>();
    admit_service(&mut svc, old, used, &ServiceNetwork::default(), &mut rng).map_err(msgs)?;
    let errs = validate("Service", &svc, old);
    if errs.is_empty() {
        Ok(svc)
    } else {
        Err(msgs(errs))
    }
}

fn web(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "web", "namespace": "default", "uid": "u-web"}, "spec": spec})
}

fn none() -> ServiceAllocations {
    ServiceAllocations::default()
}

#[test]
fn cluster_ip_service_is_allocated_and_valid() {
    let svc = write(
        web(json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]})),
        None,
        &none(),
    )
    .unwrap();
    let ip: Ipv4Addr = svc["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
    assert!(
        u32::from(ip) > u32::from(Ipv4Addr::new(10, 96, 0, 255))
            && u32::from(ip) < u32::from(Ipv4Addr::new(10, 112, 0, 0)),
        "{ip}"
    );
    assert_eq!(svc["spec"]["clusterIPs"], json!([ip.to_string()]));
    assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(svc["spec"]["ipFamilyPolicy"], "SingleStack");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["sessionAffinity"], "None");
    assert_eq!(svc["spec"]["internalTrafficPolicy"], "Cluster");
    assert_eq!(
        svc["spec"]["ports"][0],
        json!({"port": 80, "targetPort": 80, "protocol": "TCP"})
    );
    assert_eq!(svc["status"], json!({"loadBalancer": {}}));
}

#[test]
fn requested_cluster_ips() {
    let mut used = none();
    used.cluster_ips.insert(Ipv4Addr::new(10, 96, 0, 5));
    let err = write(
        web(json!({"clusterIP": "10.96.0.5", "ports": [{"port": 80}]})),
        None,
        &used,
    )
    .unwrap_err();
    assert_eq!(
        err,
        vec!["spec.clusterIPs: Invalid value: [\"10.96.0.5\"]: failed to allocate IP 10.96.0.5: provided IP is already allocated"]
    );
    let err = write(
        web(json!({"clusterIP": "10.200.0.5", "ports": [{"port": 80}]})),
        None,
        &none(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        vec!["spec.clusterIPs: Invalid value: [\"10.200.0.5\"]: failed to allocate IP 10.200.0.5: the provided IP (10.200.0.5) is not in the valid range. The range of valid IPs is 10.96.0.0/12"]
    );
    // kube-dns asks for .10 by hand and gets it.
    let dns = write(
        json!({"metadata": {"name": "kube-dns", "namespace": "kube-system"},
               "spec": {"clusterIP": "10.96.0.10", "selector": {"k8s-app": "kube-dns"},
                        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}}),
        None,
        &none(),
    )
    .unwrap();
    assert_eq!(dns["spec"]["clusterIPs"], json!(["10.96.0.10"]));
}

#[test]
fn node_ports() {
    let np = |node_port: i64| {
        web(
            json!({"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "nodePort": node_port}]}),
        )
    };
    let svc = write(np(30080), None, &none()).unwrap();
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30080);
    assert_eq!(svc["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(
        write(np(80), None, &none()).unwrap_err(),
        vec!["spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"]
    );
    let mut used = none();
    used.node_ports.insert(30080);
    assert_eq!(
        write(np(30080), None, &used).unwrap_err(),
        vec!["spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"]
    );
    // Without a nodePort one is picked from the range, avoiding used ones.
    let picked = write(
        web(json!({"type": "NodePort", "ports": [{"port": 80}]})),
        None,
        &used,
    )
    .unwrap();
    let p = picked["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&p) && p != 30080);
    // Two ports with the same number share one node port.
    let dns = write(
        web(json!({"type": "NodePort", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]})),
        None,
        &none(),
    )
    .unwrap();
    assert_eq!(
        dns["spec"]["ports"][0]["nodePort"],
        dns["spec"]["ports"][1]["nodePort"]
    );
}

#[test]
fn type_changes_keep_the_cluster_ip_and_manage_node_ports() {
    let cluster_ip = write(
        web(json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]})),
        None,
        &none(),
    )
    .unwrap();
    let ip = cluster_ip["spec"]["clusterIP"].clone();

    // kubectl apply of the NodePort manifest: the live object with the
    // manifest's fields merged in (clusterIP stays from the live object).
    let mut next = cluster_ip.clone();
    next["spec"]["type"] = json!("NodePort");
    next["spec"]["ports"] = json!([{"port": 80, "targetPort": 80, "nodePort": 30080}]);
    let node_port = write(next, Some(&cluster_ip), &none()).unwrap();
    assert_eq!(node_port["spec"]["clusterIP"], ip);
    assert_eq!(node_port["spec"]["ports"][0]["nodePort"], 30080);

    // A PUT of a manifest without clusterIP and nodePort keeps both.
    let put = web(
        json!({"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]}),
    );
    let lb = write(put, Some(&node_port), &none()).unwrap();
    assert_eq!(lb["spec"]["clusterIP"], ip);
    assert_eq!(lb["spec"]["ports"][0]["nodePort"], 30080);
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);

    // Back to ClusterIP: the node port and the external policy go.
    let mut back = lb.clone();
    back["spec"]["type"] = json!("ClusterIP");
    let back = write(back, Some(&lb), &none()).unwrap();
    assert_eq!(back["spec"]["clusterIP"], ip);
    assert!(back["spec"]["ports"][0].get("nodePort").is_none());
    assert!(back["spec"].get("externalTrafficPolicy").is_none());
    assert!(back["spec"].get("allocateLoadBalancerNodePorts").is_none());
}

#[test]
fn cluster_ip_is_immutable() {
    let svc = write(
        web(json!({"clusterIP": "10.96.0.5", "ports": [{"port": 80}]})),
        None,
        &none(),
    )
    .unwrap();
    let mut changed = svc.clone();
    changed["spec"]["clusterIP"] = json!("10.96.0.6");
    assert_eq!(
        write(changed, Some(&svc), &none()).unwrap_err(),
        vec!["spec.clusterIPs[0]: Invalid value: [\"10.96.0.6\"]: may not change once set"]
    );
}

#[test]
fn external_name_services() {
    let en = write(
        web(json!({"type": "ExternalName", "externalName": "db.example.com"})),
        None,
        &none(),
    )
    .unwrap();
    assert!(en["spec"].get("clusterIP").is_none());
    assert!(en["spec"].get("ipFamilies").is_none());
    assert_eq!(
        write(web(json!({"type": "ExternalName"})), None, &none()).unwrap_err(),
        vec!["spec.externalName: Required value"]
    );
    assert_eq!(
        write(web(json!({"type": "ExternalName", "externalName": "db.example.com", "clusterIP": "10.96.0.7"})), None, &none())
            .unwrap_err()[0],
        "spec.clusterIPs: Forbidden: may not be set for ExternalName services"
    );

    // ClusterIP -> ExternalName drops the address; back again gets a new one.
    let c = write(web(json!({"ports": [{"port": 80}]})), None, &none()).unwrap();
    let mut to_en = c.clone();
    to_en["spec"]["type"] = json!("ExternalName");
    to_en["spec"]["externalName"] = json!("db.example.com");
    let en = write(to_en, Some(&c), &none()).unwrap();
    assert!(en["spec"].get("clusterIP").is_none() && en["spec"].get("ipFamilyPolicy").is_none());
    let mut to_c = en.clone();
    to_c["spec"]["type"] = json!("ClusterIP");
    to_c["spec"].as_object_mut().unwrap().remove("externalName");
    let c2 = write(to_c, Some(&en), &none()).unwrap();
    assert!(c2["spec"]["clusterIP"].as_str().unwrap().starts_with("10."));
}

#[test]
fn headless_services() {
    let h = write(
        web(json!({"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]})),
        None,
        &none(),
    )
    .unwrap();
    assert_eq!(h["spec"]["clusterIPs"], json!(["None"]));
    assert_eq!(h["spec"]["ipFamilyPolicy"], "SingleStack");
    // Headless without selector and without ports is fine.
    let bare = write(web(json!({"clusterIP": "None"})), None, &none()).unwrap();
    assert_eq!(bare["spec"]["ipFamilyPolicy"], "RequireDualStack");
    assert_eq!(bare["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(
        write(web(json!({"clusterIP": "None", "type": "NodePort", "ports": [{"port": 80}]})), None, &none()).unwrap_err(),
        vec!["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"]
    );
}

#[test]
fn port_rules() {
    assert_eq!(
        write(web(json!({"selector": {"app": "web"}})), None, &none()).unwrap_err(),
        vec!["spec.ports: Required value"]
    );
    assert_eq!(
        write(
            web(json!({"ports": [{"port": 80}, {"name": "b", "port": 81}]})),
            None,
            &none()
        )
        .unwrap_err(),
        vec!["spec.ports[0].name: Required value"]
    );
    assert_eq!(
        write(
            web(json!({"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]})),
            None,
            &none()
        )
        .unwrap_err(),
        vec!["spec.ports[1].name: Duplicate value: \"a\""]
    );
    assert_eq!(
        write(web(json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]})), None, &none()).unwrap_err(),
        vec!["spec.ports[1]: Duplicate value: {\"Name\":\"\",\"Protocol\":\"TCP\",\"AppProtocol\":null,\"Port\":80,\"TargetPort\":0,\"NodePort\":0}"]
    );
    assert_eq!(
        write(web(json!({"ports": [{"port": 70000, "protocol": "HTTP"}]})), None, &none()).unwrap_err(),
        vec![
            "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            "spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        ]
    );
    assert_eq!(
        write(web(json!({"type": "Foo", "ports": [{"port": 80}]})), None, &none()).unwrap_err(),
        vec!["spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""]
    );
    assert_eq!(
        write(web(json!({"sessionAffinity": "Sticky", "ports": [{"port": 80}]})), None, &none()).unwrap_err(),
        vec!["spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\""]
    );
    // A nodePort on a ClusterIP Service is refused by validation.
    let errs = validate(
        "Service",
        &json!({"metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
                 "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP", "nodePort": 30080}]}}),
        None,
    );
    assert_eq!(
        errs[0].message(),
        "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
    );
}

#[test]
fn service_name_must_be_dns1035() {
    let mut bad = web(json!({"ports": [{"port": 80}]}));
    bad["metadata"]["name"] = json!("1web");
    let err = write(bad, None, &none()).unwrap_err();
    assert!(
        err[0].starts_with("metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist"),
        "{err:?}"
    );
}

/// The API server may validate before it runs admission; updates must
/// still pass when they leave allocated values out or change the type.
#[test]
fn validation_before_admission_accepts_type_changes() {
    let node_port = write(
        web(json!({"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "nodePort": 30080}]})),
        None,
        &none(),
    )
    .unwrap();
    // A PUT of the ClusterIP manifest: no clusterIP, no nodePort.
    let mut put = web(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
    apply_defaults("Service", &mut put);
    assert!(validate("Service", &put, Some(&node_port)).is_empty());
    // A patch of the live object: its nodePort and externalTrafficPolicy
    // are still there when validation runs.
    let mut patched = node_port.clone();
    patched["spec"]["type"] = json!("ClusterIP");
    apply_defaults("Service", &mut patched);
    assert_eq!(
        validate("Service", &patched, Some(&node_port)),
        Vec::<FieldError>::new()
    );
    let mut to_en = node_port.clone();
    to_en["spec"]["type"] = json!("ExternalName");
    to_en["spec"]["externalName"] = json!("db.example.com");
    apply_defaults("Service", &mut to_en);
    assert_eq!(
        validate("Service", &to_en, Some(&node_port)),
        Vec::<FieldError>::new()
    );
}

#[test]
fn local_load_balancers_get_a_health_check_port() {
    let manifest = web(
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
    );
    let mut defaulted = manifest.clone();
    apply_defaults("Service", &mut defaulted);
    assert!(validate("Service", &defaulted, None).is_empty());
    let lb = write(manifest, None, &none()).unwrap();
    let hc = lb["spec"]["healthCheckNodePort"].as_i64().unwrap();
    let np = lb["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&hc) && hc != np);
}
