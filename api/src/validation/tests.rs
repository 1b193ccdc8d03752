//! Validation of Pods, workloads, endpoints and cluster kinds through
//! [`validate`], on defaulted objects as the API server sees them.

use serde_json::{json, Value};

use super::validate;
use crate::defaults::apply_defaults;
use crate::field_error::FieldError;

fn check(kind: &str, obj: Value, old: Option<&Value>) -> Vec<String> {
    let mut obj = obj;
    apply_defaults(kind, &mut obj);
    validate(kind, &obj, old)
        .iter()
        .map(FieldError::message)
        .collect()
}

fn pod(spec: Value) -> Value {
    json!({"metadata": {"name": "web-1", "namespace": "default"}, "spec": spec})
}

fn deployment(selector: Value, labels: Value) -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"},
           "spec": {"replicas": 3, "selector": selector,
                    "template": {"metadata": {"labels": labels},
                                 "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}})
}

#[test]
fn chapter_pod_is_valid() {
    let p = pod(
        json!({"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]}),
    );
    assert_eq!(check("Pod", p, None), Vec::<String>::new());
}

#[test]
fn pod_container_rules() {
    assert_eq!(
        check("Pod", pod(json!({})), None),
        vec!["spec.containers: Required value"]
    );
    assert_eq!(
        check("Pod", pod(json!({"containers": [{"name": "web"}]})), None),
        vec!["spec.containers[0].image: Required value"]
    );
    let errs = check(
        "Pod",
        pod(
            json!({"containers": [{"name": "Web", "image": "nginx"}, {"name": "Web", "image": "nginx"}]}),
        ),
        None,
    );
    assert!(
        errs[0].starts_with(
            "spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label"
        ),
        "{errs:?}"
    );
    assert_eq!(
        errs.last().unwrap(),
        "spec.containers[1].name: Duplicate value: \"Web\""
    );
    assert_eq!(
        check("Pod", pod(json!({"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 0}, {"containerPort": 99999, "protocol": "ICMP"}]}]})), None),
        vec![
            "spec.containers[0].ports[0].containerPort: Required value",
            "spec.containers[0].ports[1].containerPort: Invalid value: 99999: must be between 1 and 65535, inclusive",
            "spec.containers[0].ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
        ]
    );
    assert_eq!(
        check("Pod", pod(json!({"restartPolicy": "Sometimes", "containers": [{"name": "web", "image": "nginx"}]})), None),
        vec!["spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""]
    );
    assert_eq!(
        check(
            "Pod",
            pod(
                json!({"containers": [{"name": "web", "image": "nginx", "readinessProbe": {"periodSeconds": 5}}]})
            ),
            None
        ),
        vec!["spec.containers[0].readinessProbe: Required value: must specify a handler type"]
    );
    assert_eq!(
        check(
            "Pod",
            pod(
                json!({"containers": [{"name": "web", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]})
            ),
            None
        ),
        vec!["spec.containers[0].volumeMounts[0].name: Not found: \"data\""]
    );
}

#[test]
fn pod_updates() {
    let mut old = pod(json!({"containers": [{"name": "web", "image": "nginx"}]}));
    apply_defaults("Pod", &mut old);
    // Labels, images and binding to a node may change.
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"app": "web"});
    new["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    new["spec"]["nodeName"] = json!("minik8s-node");
    assert_eq!(check("Pod", new.clone(), Some(&old)), Vec::<String>::new());
    // The restart policy may not.
    let mut bad = old.clone();
    bad["spec"]["restartPolicy"] = json!("Never");
    let errs = check("Pod", bad, Some(&old));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    ));
    assert!(
        errs[0].contains("- \trestartPolicy: \"Always\"\n+ \trestartPolicy: \"Never\""),
        "{}",
        errs[0]
    );
    // Once bound, a Pod stays on its node.
    let mut moved = new.clone();
    moved["spec"]["nodeName"] = json!("other");
    assert_eq!(check("Pod", moved, Some(&new)).len(), 1);
    let mut more = old.clone();
    more["spec"]["containers"] =
        json!([{"name": "web", "image": "nginx"}, {"name": "b", "image": "nginx"}]);
    assert_eq!(
        check("Pod", more, Some(&old)),
        vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]
    );
}

#[test]
fn chapter_deployment_is_valid() {
    assert_eq!(
        check(
            "Deployment",
            deployment(
                json!({"matchLabels": {"app": "web"}}),
                json!({"app": "web"})
            ),
            None
        ),
        Vec::<String>::new()
    );
}

#[test]
fn workload_selector_rules() {
    assert_eq!(
        check("Deployment", deployment(json!({"matchLabels": {"app": "web"}}), json!({"app": "x"})), None),
        vec!["spec.template.metadata.labels: Invalid value: {\"app\":\"x\"}: `selector` does not match template `labels`"]
    );
    let mut no_sel = deployment(json!(null), json!({"app": "web"}));
    no_sel["spec"].as_object_mut().unwrap().remove("selector");
    assert_eq!(
        check("ReplicaSet", no_sel, None),
        vec!["spec.selector: Required value"]
    );
    let mut neg = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    neg["spec"]["replicas"] = json!(-1);
    assert_eq!(
        check("Deployment", neg, None),
        vec!["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]
    );
    let mut never = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    never["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    assert_eq!(
        check("ReplicaSet", never, None),
        vec!["spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""]
    );
    let mut old = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    apply_defaults("Deployment", &mut old);
    let changed = deployment(
        json!({"matchLabels": {"app": "web2"}}),
        json!({"app": "web2"}),
    );
    assert_eq!(
        check("Deployment", changed, Some(&old)),
        vec!["spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"web2\"}}: field is immutable"]
    );
    let mut bad_strategy = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    bad_strategy["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "x"}});
    assert_eq!(
        check("Deployment", bad_strategy, None),
        vec![
            "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"x\": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0",
        ]
    );
}

#[test]
fn endpoints_and_slices() {
    let ep = json!({"metadata": {"name": "web", "namespace": "default"},
                    "subsets": [{"addresses": [{"ip": "10.244.0.5"}], "ports": [{"port": 80}]}]});
    assert_eq!(check("Endpoints", ep, None), Vec::<String>::new());
    let bad = json!({"metadata": {"name": "web", "namespace": "default"},
                     "subsets": [{"addresses": [{"ip": "10.244.0"}], "ports": [{"port": 80}, {"port": 81}]}]});
    assert_eq!(
        check("Endpoints", bad, None),
        vec![
            "subsets[0].addresses[0].ip: Invalid value: \"10.244.0\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            "subsets[0].ports[0].name: Required value",
            "subsets[0].ports[1].name: Required value",
        ]
    );
    let slice = json!({"metadata": {"name": "web-abc12", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
                       "addressType": "IPv4", "endpoints": [{"addresses": ["10.244.0.5"]}], "ports": [{"port": 80}]});
    assert_eq!(
        check("EndpointSlice", slice.clone(), None),
        Vec::<String>::new()
    );
    let mut bad = slice.clone();
    bad["endpoints"] = json!([{"addresses": []}, {"addresses": ["fe80::1"]}]);
    assert_eq!(
        check("EndpointSlice", bad, None),
        vec![
            "endpoints[0].addresses: Required value: must contain at least 1 address",
            "endpoints[1].addresses[0]: Invalid value: \"fe80::1\": must be a valid IPv4 address",
        ]
    );
    let mut changed = slice.clone();
    changed["addressType"] = json!("IPv6");
    changed["endpoints"] = json!([]);
    assert_eq!(
        check("EndpointSlice", changed, Some(&slice)),
        vec!["addressType: Invalid value: \"IPv6\": field is immutable"]
    );
}

#[test]
fn cluster_kinds() {
    assert_eq!(
        check("Namespace", json!({"metadata": {"name": "demo"}}), None),
        Vec::<String>::new()
    );
    let errs = check("Namespace", json!({"metadata": {"name": "demo.x"}}), None);
    assert_eq!(
        errs,
        vec!["metadata.name: Invalid value: \"demo.x\": must not contain dots"]
    );
    assert_eq!(
        check("Node", json!({"metadata": {"name": "minik8s-node"}}), None),
        Vec::<String>::new()
    );
    let ev = json!({"metadata": {"name": "web.1", "namespace": "default"},
                    "involvedObject": {"kind": "Service", "name": "web", "namespace": "other"}});
    assert_eq!(
        check("Event", ev, None),
        vec!["involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"]
    );
}
