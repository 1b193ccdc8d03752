//! Strategic merge patch tests, mostly with the patches kubectl 1.35's
//! client-side apply and `kubectl patch` really send.

use serde_json::{json, Value};

use super::strategic_merge;

fn service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web", "tier": "frontend"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
        },
        "spec": {
            "type": "NodePort",
            "selector": {"app": "web"},
            "clusterIP": "10.96.0.20",
            "clusterIPs": ["10.96.0.20"],
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30080}
            ]
        },
        "status": {"loadBalancer": {}}
    })
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "nginx",
                        "image": "nginx:1.24",
                        "args": ["-g", "daemon off;"],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]
                    }],
                    "volumes": [{"name": "data", "hostPath": {"path": "/srv"}}]
                }
            }
        }
    })
}

fn smp(kind: &str, original: &Value, patch: Value) -> Value {
    strategic_merge(kind, original, &patch).unwrap()
}

#[test]
fn kubectl_apply_changes_a_node_port() {
    // What kubectl apply sent for web-svc.yaml with nodePort 30080 -> 30081.
    let patch = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":1}\n"}},
        "spec": {"$setElementOrder/ports": [{"port": 80}], "ports": [{"nodePort": 30081, "port": 80}]}
    });
    let out = smp("Service", &service(), patch);
    assert_eq!(
        out["spec"]["ports"],
        json!([{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30081}])
    );
    assert_eq!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "{\"new\":1}\n"
    );
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "web", "tier": "frontend"})
    );
    assert_eq!(out["spec"]["clusterIP"], "10.96.0.20");
}

#[test]
fn adding_and_removing_ports_by_key() {
    let added = smp(
        "Service",
        &service(),
        json!({"spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 80}],
                        "ports": [{"name": "https", "port": 443, "targetPort": 8443}]}}),
    );
    let ports: Vec<i64> = added["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    // $setElementOrder puts 443 first; 80 keeps its server-side fields.
    assert_eq!(ports, vec![443, 80]);
    assert_eq!(added["spec"]["ports"][1]["nodePort"], 30080);

    let removed = smp(
        "Service",
        &added,
        json!({"spec": {"$setElementOrder/ports": [{"port": 443}], "ports": [{"$patch": "delete", "port": 80}]}}),
    );
    assert_eq!(
        removed["spec"]["ports"],
        json!([{"name": "https", "port": 443, "targetPort": 8443}])
    );
}

#[test]
fn without_set_element_order_new_elements_come_first() {
    // Kubernetes puts elements the server did not know before the
    // server's own when no $setElementOrder says otherwise.
    let out = smp(
        "Service",
        &service(),
        json!({"spec": {"ports": [{"port": 443}]}}),
    );
    assert_eq!(out["spec"]["ports"].as_array().unwrap().len(), 2);
    assert_eq!(out["spec"]["ports"][0]["port"], 443);
    assert_eq!(out["spec"]["ports"][1]["port"], 80);
}

#[test]
fn null_deletes_and_maps_merge() {
    let out = smp(
        "Service",
        &service(),
        json!({"metadata": {"labels": {"tier": null, "env": "dev"}}, "spec": {"selector": {"app": "web2"}}}),
    );
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "web", "env": "dev"})
    );
    assert_eq!(out["spec"]["selector"], json!({"app": "web2"}));
    let no_selector = smp("Service", &service(), json!({"spec": {"selector": null}}));
    assert!(no_selector["spec"].get("selector").is_none());
}

#[test]
fn lists_without_merge_key_are_replaced() {
    let mut svc = service();
    svc["spec"]["externalIPs"] = json!(["192.168.49.10", "192.168.49.11"]);
    svc["status"]["loadBalancer"] = json!({"ingress": [{"ip": "172.18.255.1"}]});
    let out = smp(
        "Service",
        &svc,
        json!({"spec": {"externalIPs": ["192.168.49.12"]},
               "status": {"loadBalancer": {"ingress": [{"ip": "172.18.255.2"}]}}}),
    );
    assert_eq!(out["spec"]["externalIPs"], json!(["192.168.49.12"]));
    assert_eq!(
        out["status"]["loadBalancer"]["ingress"],
        json!([{"ip": "172.18.255.2"}])
    );

    let d = smp(
        "Deployment",
        &deployment(),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "args": ["-v"]}]}}}}),
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["args"],
        json!(["-v"])
    );
}

#[test]
fn kubectl_apply_changes_a_deployment_image() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "nginx"}],
        "containers": [{"image": "nginx:1.25", "name": "nginx"}]
    }}}});
    let out = smp("Deployment", &deployment(), patch);
    let c = &out["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx:1.25");
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn containers_env_ports_and_mounts_merge_by_their_keys() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "image": "busybox"},
        {"name": "nginx",
         "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}, {"$patch": "delete", "name": "A"}],
         "ports": [{"containerPort": 443}],
         "volumeMounts": [{"mountPath": "/data", "readOnly": true}]}
    ]}}}});
    let out = smp("Deployment", &deployment(), patch);
    let containers = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    // The patch's order wins where the patch names elements.
    assert_eq!(containers[0]["name"], "sidecar");
    let nginx = &containers[1];
    assert_eq!(nginx["image"], "nginx:1.24");
    assert_eq!(
        nginx["env"],
        json!([{"name": "B", "value": "20"}, {"name": "C", "value": "3"}])
    );
    assert_eq!(
        nginx["ports"],
        json!([{"containerPort": 443}, {"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(
        nginx["volumeMounts"],
        json!([{"name": "data", "mountPath": "/data", "readOnly": true}])
    );
}

#[test]
fn retain_keys_clears_unlisted_fields() {
    // kubectl apply switching a Deployment to Recreate.
    let out = smp(
        "Deployment",
        &deployment(),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": null, "type": "Recreate"}}}),
    );
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    // A volume switching source.
    let out = smp(
        "Deployment",
        &deployment(),
        json!({"spec": {"template": {"spec": {"volumes": [
            {"$retainKeys": ["emptyDir", "name"], "emptyDir": {}, "name": "data"}
        ]}}}}),
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "data", "emptyDir": {}}])
    );
    let bad = strategic_merge(
        "Deployment",
        &deployment(),
        &json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}}),
    );
    assert_eq!(bad.unwrap_err(), "invalid patch format of retainKeys");
}

#[test]
fn patch_replace_and_delete_directives() {
    let out = smp(
        "Service",
        &service(),
        json!({"spec": {"ports": [{"$patch": "replace"}, {"port": 8080, "name": "alt"}]}}),
    );
    assert_eq!(out["spec"]["ports"], json!([{"port": 8080, "name": "alt"}]));
    let out = smp(
        "Service",
        &service(),
        json!({"metadata": {"labels": {"$patch": "replace", "only": "this"}}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({"only": "this"}));
    let out = smp(
        "Service",
        &service(),
        json!({"spec": {"selector": {"$patch": "delete"}}}),
    );
    assert_eq!(out["spec"]["selector"], json!({}));
    let err = strategic_merge(
        "Service",
        &service(),
        &json!({"spec": {"ports": [{"$patch": "merge"}]}}),
    );
    assert_eq!(
        err.unwrap_err(),
        "merging lists cannot yet be specified in the patch"
    );
}

#[test]
fn primitive_merge_lists_and_delete_from_primitive_list() {
    let mut svc = service();
    svc["metadata"]["finalizers"] = json!(["a", "b"]);
    let out = smp(
        "Service",
        &svc,
        json!({"metadata": {"finalizers": ["c", "a"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
    let out = smp(
        "Service",
        &svc,
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    let out = smp(
        "Service",
        &svc,
        json!({"metadata": {"$setElementOrder/finalizers": ["b", "c"], "finalizers": ["c"],
                            "$deleteFromPrimitiveList/finalizers": ["a"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["b", "c"]));
}

#[test]
fn set_element_order_reorders_without_content_change() {
    let mut svc = service();
    svc["spec"]["ports"] = json!([{"port": 80, "name": "a"}, {"port": 443, "name": "b"}]);
    let out = smp(
        "Service",
        &svc,
        json!({"spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 80}]}}),
    );
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 443, "name": "b"}, {"port": 80, "name": "a"}])
    );
    let err = strategic_merge(
        "Service",
        &svc,
        &json!({"spec": {"$setElementOrder/ports": [{"port": 80}], "ports": [{"port": 443, "name": "c"}]}}),
    );
    assert!(err.unwrap_err().starts_with("The order in patch list:"));
}

#[test]
fn status_conditions_merge_by_type() {
    let pod = json!({"kind": "Pod", "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "True"},
        {"type": "Ready", "status": "False"}
    ]}});
    let out = smp(
        "Pod",
        &pod,
        json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                          "podIPs": [{"ip": "10.244.0.5"}]}}),
    );
    assert_eq!(out["status"]["phase"], "Running");
    assert_eq!(
        out["status"]["conditions"],
        json!([{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}])
    );
    assert_eq!(out["status"]["podIPs"], json!([{"ip": "10.244.0.5"}]));
}

#[test]
fn new_fields_lose_directives_and_nulls() {
    let svc = json!({"kind": "Service", "spec": {}});
    let out = smp(
        "Service",
        &svc,
        json!({"spec": {"ports": [{"$patch": "delete", "port": 1}, {"port": 80, "name": null}]}}),
    );
    assert_eq!(out["spec"]["ports"], json!([{"port": 80}]));
}

#[test]
fn errors() {
    assert_eq!(
        strategic_merge("Service", &service(), &json!([1])).unwrap_err(),
        "invalid JSON document"
    );
    let err = strategic_merge(
        "Service",
        &service(),
        &json!({"spec": {"ports": [{"name": "x"}]}}),
    );
    assert!(err
        .unwrap_err()
        .contains("does not contain declared merge key: port"));
    let err = strategic_merge("Service", &service(), &json!({"spec": {"ports": [[1]]}}));
    assert!(err.is_err());
    let err = strategic_merge(
        "Service",
        &service(),
        &json!({"metadata": {"$deleteFromPrimitiveList": ["a"]}}),
    );
    assert_eq!(err.unwrap_err(), "invalid patch format of primitive list");
}

#[test]
fn empty_patch_changes_nothing() {
    assert_eq!(smp("Service", &service(), json!({})), service());
    assert_eq!(smp("Deployment", &deployment(), json!({})), deployment());
}

/// Kubernetes' own ordering cases ("set elements order in a list with
/// server-only items" 1-3), on Service ports.
#[test]
fn set_element_order_with_server_only_items() {
    let cases: [(&[i64], &[i64], &[i64]); 3] = [
        (&[1, 3, 4, 2, 9], &[4, 2, 3, 1], &[4, 2, 3, 1, 9]),
        (&[1, 2, 9, 3, 4], &[2, 1, 4, 3], &[2, 1, 9, 4, 3]),
        (
            &[1, 2, 7, 9, 8, 3, 4],
            &[2, 1, 4, 3],
            &[2, 1, 7, 9, 8, 4, 3],
        ),
    ];
    for (current, order, want) in cases {
        let ports: Vec<Value> = current.iter().map(|p| json!({"port": p})).collect();
        let svc = json!({"spec": {"ports": ports}});
        let order: Vec<Value> = order.iter().map(|p| json!({"port": p})).collect();
        let out = smp(
            "Service",
            &svc,
            json!({"spec": {"$setElementOrder/ports": order}}),
        );
        let got: Vec<i64> = out["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["port"].as_i64().unwrap())
            .collect();
        assert_eq!(got, want);
    }
}
