//! The chapter's `get` outputs, cell by cell.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::*;

fn now() -> Timestamp {
    "2024-05-03T12:00:00Z".parse().unwrap()
}

/// The cells of the single row of `kind`'s table for `obj`.
fn cells(kind: &str, obj: Value) -> Vec<Value> {
    let t = table(kind, &[obj], now(), true);
    t["rows"][0]["cells"].as_array().unwrap().clone()
}

fn svc(name: &str, created: &str, spec: Value, status: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "default", "creationTimestamp": created, "labels": {"app": name}},
           "spec": spec, "status": status})
}

#[test]
fn get_svc_rows() {
    let kubernetes = svc(
        "kubernetes",
        "2024-05-01T12:00:00Z",
        json!({"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
               "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}),
        json!({"loadBalancer": {}}),
    );
    assert_eq!(
        cells("Service", kubernetes),
        vec![
            json!("kubernetes"),
            json!("ClusterIP"),
            json!("10.96.0.1"),
            json!("<none>"),
            json!("443/TCP"),
            json!("2d"),
            json!("<none>")
        ]
    );
    let web = |ty: &str, ports: Value, status: Value| {
        svc(
            "web",
            "2024-05-03T11:59:50Z",
            json!({"type": ty, "clusterIPs": ["10.96.142.31"], "selector": {"app": "web"}, "ports": ports}),
            status,
        )
    };
    assert_eq!(
        cells(
            "Service",
            web(
                "ClusterIP",
                json!([{"port": 80, "protocol": "TCP"}]),
                json!({})
            )
        ),
        vec![
            json!("web"),
            json!("ClusterIP"),
            json!("10.96.142.31"),
            json!("<none>"),
            json!("80/TCP"),
            json!("10s"),
            json!("app=web")
        ]
    );
    let np = cells(
        "Service",
        web(
            "NodePort",
            json!([{"port": 80, "protocol": "TCP", "nodePort": 30080}]),
            json!({}),
        ),
    );
    assert_eq!(
        (&np[1], &np[3], &np[4]),
        (&json!("NodePort"), &json!("<none>"), &json!("80:30080/TCP"))
    );
    let pending = cells(
        "Service",
        web(
            "LoadBalancer",
            json!([{"port": 80, "protocol": "TCP", "nodePort": 31523}]),
            json!({"loadBalancer": {}}),
        ),
    );
    assert_eq!(
        (&pending[3], &pending[4]),
        (&json!("<pending>"), &json!("80:31523/TCP"))
    );
    let ready = cells(
        "Service",
        web(
            "LoadBalancer",
            json!([{"port": 80, "nodePort": 31523}]),
            json!({"loadBalancer": {"ingress": [{"ip": "172.18.255.200"}, {"hostname": "lb.example.com"}, {"ip": "172.18.255.1"}]}}),
        ),
    );
    // Sorted, unique, and not cut: server-side tables are wide.
    assert_eq!(
        ready[3],
        json!("172.18.255.1,172.18.255.200,lb.example.com")
    );
    let en = cells(
        "Service",
        svc(
            "db",
            "2024-05-03T11:00:00Z",
            json!({"type": "ExternalName", "externalName": "db.example.com"}),
            json!({}),
        ),
    );
    assert_eq!(
        en[2..5],
        [json!("<none>"), json!("db.example.com"), json!("<none>")]
    );
    let multi = cells(
        "Service",
        web(
            "ClusterIP",
            json!([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]),
            json!({}),
        ),
    );
    assert_eq!(multi[4], json!("53/UDP,53/TCP"));
}

#[test]
fn service_columns_and_objects() {
    let obj = svc(
        "web",
        "2024-05-03T11:59:50Z",
        json!({"type": "ClusterIP", "ports": []}),
        json!({}),
    );
    let t = table("Service", std::slice::from_ref(&obj), now(), true);
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    let cols: Vec<(String, i64)> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["priority"].as_i64().unwrap(),
            )
        })
        .collect();
    let expect = [
        ("Name", 0),
        ("Type", 0),
        ("Cluster-IP", 0),
        ("External-IP", 0),
        ("Port(s)", 0),
        ("Age", 0),
        ("Selector", 1),
    ];
    assert_eq!(
        cols,
        expect
            .iter()
            .map(|(n, p)| (n.to_string(), *p))
            .collect::<Vec<_>>()
    );
    assert_eq!(t["columnDefinitions"][0]["format"], "name");
    assert_eq!(t["columnDefinitions"][1]["format"], "");
    assert!(t["columnDefinitions"][0]["description"]
        .as_str()
        .unwrap()
        .starts_with("Name must be unique within a namespace."));
    assert_eq!(t["rows"][0]["cells"][2], "<none>");
    assert_eq!(t["rows"][0]["cells"][4], "<none>");
    assert_eq!(
        t["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
    );
    let bare = table("Service", std::slice::from_ref(&obj), now(), false);
    assert!(bare["rows"][0].get("object").is_none());
    let full = table_with(
        "Service",
        std::slice::from_ref(&obj),
        now(),
        IncludeObject::Object,
    );
    assert_eq!(full["rows"][0]["object"], obj);
    assert_eq!(table("Service", &[], now(), true)["rows"], json!([]));
}

#[test]
fn endpoints_rows() {
    let ep = |addrs: &[&str]| {
        json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-03T11:59:30Z"},
               "subsets": [{"addresses": addrs.iter().map(|a| json!({"ip": a})).collect::<Vec<_>>(),
                            "ports": [{"port": 80, "protocol": "TCP"}]}]})
    };
    assert_eq!(
        cells("Endpoints", ep(&["10.244.0.5", "10.244.0.6", "10.244.0.7"])),
        vec![
            json!("web"),
            json!("10.244.0.5:80,10.244.0.6:80,10.244.0.7:80"),
            json!("30s")
        ]
    );
    assert_eq!(
        cells(
            "Endpoints",
            ep(&[
                "10.244.0.5",
                "10.244.0.6",
                "10.244.0.7",
                "10.244.0.8",
                "10.244.0.9"
            ])
        )[1],
        json!("10.244.0.5:80,10.244.0.6:80,10.244.0.7:80 + 2 more...")
    );
    let none = json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-03T11:59:00Z"}});
    assert_eq!(
        cells("Endpoints", none),
        vec![json!("web"), json!("<none>"), json!("60s")]
    );
    let headless =
        json!({"metadata": {"name": "db"}, "subsets": [{"addresses": [{"ip": "10.244.0.9"}]}]});
    assert_eq!(
        cells("Endpoints", headless)[1..],
        [json!("10.244.0.9"), json!("<unknown>")]
    );
}

#[test]
fn endpoint_slice_rows() {
    let slice = json!({"metadata": {"name": "web-abc12", "creationTimestamp": "2024-05-03T11:59:30Z"},
        "addressType": "IPv4", "ports": [{"name": "", "port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.244.0.5"]}, {"addresses": ["10.244.0.6"]}, {"addresses": ["10.244.0.7"]}]});
    assert_eq!(
        cells("EndpointSlice", slice),
        vec![
            json!("web-abc12"),
            json!("IPv4"),
            json!("80"),
            json!("10.244.0.5,10.244.0.6,10.244.0.7"),
            json!("30s")
        ]
    );
    let empty = json!({"metadata": {"name": "web-x"}, "addressType": "IPv4",
        "ports": [{"name": "http"}, {}, {"port": 1}, {"port": 2}], "endpoints": []});
    assert_eq!(
        cells("EndpointSlice", empty)[2..4],
        [json!("http,*,1 + 1 more..."), json!("<unset>")]
    );
}

fn pod(status: Value) -> Value {
    json!({"metadata": {"name": "web-7d4b9c-x2x9q", "creationTimestamp": "2024-05-03T11:55:00Z"},
           "spec": {"nodeName": "minik8s-node", "containers": [{"name": "nginx", "image": "nginx"}]},
           "status": status})
}

#[test]
fn pod_rows() {
    let running = pod(
        json!({"phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "nginx", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2024-05-03T11:55:02Z"}}}]}),
    );
    assert_eq!(
        cells("Pod", running),
        vec![
            json!("web-7d4b9c-x2x9q"),
            json!("1/1"),
            json!("Running"),
            json!("0"),
            json!("5m"),
            json!("10.244.0.5"),
            json!("minik8s-node"),
            json!("<none>"),
            json!("<none>")
        ]
    );
    let creating = pod(json!({"phase": "Pending",
        "containerStatuses": [{"name": "nginx", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}));
    let c = cells("Pod", creating);
    assert_eq!(
        (&c[1], &c[2], &c[5]),
        (&json!("0/1"), &json!("ContainerCreating"), &json!("<none>"))
    );
    let crash = pod(json!({"phase": "Running",
        "containerStatuses": [{"name": "nginx", "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2024-05-03T11:55:00Z"}}}]}));
    let c = cells("Pod", crash);
    assert_eq!(
        (&c[2], &c[3]),
        (&json!("CrashLoopBackOff"), &json!("3 (5m ago)"))
    );
    let done = pod(json!({"phase": "Succeeded",
        "containerStatuses": [{"name": "nginx", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}));
    let t = table("Pod", &[done], now(), true);
    assert_eq!(t["rows"][0]["cells"][2], "Completed");
    assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Succeeded");
    let exit = pod(json!({"phase": "Failed",
        "containerStatuses": [{"name": "nginx", "restartCount": 0, "state": {"terminated": {"exitCode": 2}}}]}));
    assert_eq!(cells("Pod", exit)[2], "ExitCode:2");
    let mut deleting = pod(json!({"phase": "Running"}));
    deleting["metadata"]["deletionTimestamp"] = json!("2024-05-03T11:59:00Z");
    assert_eq!(cells("Pod", deleting)[2], "Terminating");
    let pulling = pod(json!({"phase": "Pending",
        "containerStatuses": [{"name": "nginx", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}));
    assert_eq!(cells("Pod", pulling)[2], "ImagePullBackOff");
    let mut init = pod(json!({"phase": "Pending",
        "initContainerStatuses": [{"name": "setup", "state": {"running": {}}}]}));
    init["spec"]["initContainers"] = json!([{"name": "setup", "image": "busybox"}]);
    assert_eq!(cells("Pod", init)[2], "Init:0/1");
    assert_eq!(cells("Pod", pod(json!({})))[2], "");
}

#[test]
fn workload_rows() {
    let d = json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-03T11:00:00Z"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod", "dev"]}]},
                 "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}, {"name": "log", "image": "busybox"}]}}},
        "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2}});
    assert_eq!(
        cells("Deployment", d.clone()),
        vec![
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("60m"),
            json!("nginx,log"),
            json!("nginx,busybox"),
            json!("app=web,env notin (dev,prod)")
        ]
    );
    let t = table("Deployment", std::slice::from_ref(&d), now(), true);
    assert_eq!(t["columnDefinitions"][2]["name"], "Up-to-date");
    let rs = json!({"metadata": {"name": "web-7d4b9c", "creationTimestamp": "2024-05-03T11:00:00Z"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d4b9c"}},
                 "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
        "status": {"replicas": 3, "readyReplicas": 3}});
    assert_eq!(
        cells("ReplicaSet", rs),
        vec![
            json!("web-7d4b9c"),
            json!(3),
            json!(3),
            json!(3),
            json!("60m"),
            json!("nginx"),
            json!("nginx"),
            json!("app=web,pod-template-hash=7d4b9c")
        ]
    );
    let t = table("ReplicaSet", &[], now(), true);
    let names: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Name",
            "Desired",
            "Current",
            "Ready",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    assert_eq!(t["columnDefinitions"][1]["type"], "integer");
}

#[test]
fn cluster_rows() {
    let ns = json!({"metadata": {"name": "default", "creationTimestamp": "2024-05-01T12:00:00Z"}, "status": {"phase": "Active"}});
    assert_eq!(
        cells("Namespace", ns),
        vec![json!("default"), json!("Active"), json!("2d")]
    );
    let node = json!({"metadata": {"name": "minik8s-node", "creationTimestamp": "2024-05-01T12:00:00Z",
                                   "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "192.168.49.2"}, {"type": "Hostname", "address": "minik8s-node"}],
                   "nodeInfo": {"kubeletVersion": "v1.35.0", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0"}}});
    assert_eq!(
        cells("Node", node),
        vec![
            json!("minik8s-node"),
            json!("Ready"),
            json!("control-plane"),
            json!("2d"),
            json!("v1.35.0"),
            json!("192.168.49.2"),
            json!("<none>"),
            json!("Debian GNU/Linux 12 (bookworm)"),
            json!("6.1.0"),
            json!("<unknown>")
        ]
    );
    let cordoned = json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}});
    assert_eq!(
        cells("Node", cordoned)[1..3],
        [json!("Unknown,SchedulingDisabled"), json!("<none>")]
    );
    let ev = json!({"metadata": {"name": "web.17c1", "creationTimestamp": "2024-05-03T11:58:00Z"},
        "involvedObject": {"kind": "Service", "name": "web", "namespace": "default"},
        "type": "Normal", "reason": "EnsuredLoadBalancer", "message": "Ensured load balancer\n",
        "source": {"component": "service-controller"}, "firstTimestamp": "2024-05-03T11:58:00Z",
        "lastTimestamp": "2024-05-03T11:59:00Z", "count": 2});
    assert_eq!(
        cells("Event", ev),
        vec![
            json!("60s"),
            json!("Normal"),
            json!("EnsuredLoadBalancer"),
            json!("service/web"),
            json!(""),
            json!("service-controller"),
            json!("Ensured load balancer"),
            json!("2m"),
            json!(2),
            json!("web.17c1")
        ]
    );
    let t = table("Event", &[], now(), true);
    let visible: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["priority"] == 0)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        visible,
        ["Last Seen", "Type", "Reason", "Object", "Message"]
    );
}

#[test]
fn other_kinds_get_name_and_created_at() {
    let t = table(
        "ConfigMap",
        &[json!({"metadata": {"name": "x", "creationTimestamp": "2024-05-03T11:00:00Z"}})],
        now(),
        true,
    );
    assert_eq!(t["columnDefinitions"][1]["name"], "Created At");
    assert_eq!(t["columnDefinitions"][1]["type"], "date");
    assert_eq!(t["rows"][0]["cells"], json!(["x", "2024-05-03T11:00:00Z"]));
}
