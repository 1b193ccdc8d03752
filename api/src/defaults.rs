//! Defaulting, as Kubernetes' `SetDefaults_*` functions do it when an
//! object is decoded: fields a client left out get the values a real API
//! server would store (`type: ClusterIP`, `protocol: TCP`,
//! `restartPolicy: Always`, ...). Only fields that are unset change.
//!
//! Service IP family fields (`ipFamilies`, `ipFamilyPolicy`) depend on the
//! cluster and on the type change of an update, so
//! [`crate::service_admission::admit_service`] fills them, as Kubernetes'
//! Service storage does.

use serde_json::{json, Map, Value};

use crate::validation::access::{default_absent, default_zero, list_at, obj_mut, str_at};

/// Fill the defaults of an object of `kind` (`Service`, `Pod`, ...). Kinds
/// without defaults are left as they are.
pub fn apply_defaults(kind: &str, obj: &mut Value) {
    match kind {
        "Service" => default_service(obj),
        "Pod" => default_pod(obj),
        "Deployment" => default_deployment(obj),
        "ReplicaSet" => default_replica_set(obj),
        "Namespace" => default_namespace(obj),
        "Node" => default_node(obj),
        "Endpoints" => default_endpoints(obj),
        "EndpointSlice" => default_endpoint_slice(obj),
        _ => {}
    }
}

/// What Kubernetes' create strategies do to `status` before the first
/// write: a client cannot create an object with a status of its choosing.
/// A Pod starts `Pending` with its QoS class; Deployments, ReplicaSets and
/// Services start with an empty status.
pub fn reset_status_for_create(kind: &str, obj: &mut Value) {
    let status = match kind {
        "Pod" => json!({"phase": "Pending", "qosClass": pod_qos_class(obj)}),
        "Service" => json!({"loadBalancer": {}}),
        "Deployment" | "ReplicaSet" => json!({}),
        "Namespace" => json!({"phase": "Active"}),
        _ => return,
    };
    if let Some(o) = obj.as_object_mut() {
        o.insert("status".into(), status);
    }
}

fn each_obj_mut(list: Option<&mut Value>, mut f: impl FnMut(&mut Map<String, Value>)) {
    if let Some(items) = list.and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            f(item);
        }
    }
}

fn default_service(obj: &mut Value) {
    let spec = obj_mut(obj, &["spec"]);
    default_zero(spec, "sessionAffinity", json!("None"));
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": 10800}}),
                );
            }
        }
        _ => {}
    }
    default_zero(spec, "type", json!("ClusterIP"));
    each_obj_mut(spec.get_mut("ports"), |p| {
        default_zero(p, "protocol", json!("TCP"));
        // targetPort 0 or "" means "the same as port".
        if crate::validation::access::is_unset(p, "targetPort") {
            let port = p.get("port").cloned().unwrap_or(json!(0));
            p.insert("targetPort".into(), port);
        }
    });
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let has_external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let externally_accessible =
        ty == "LoadBalancer" || ty == "NodePort" || (ty == "ClusterIP" && has_external_ips);
    if externally_accessible {
        default_zero(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        default_absent(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        default_absent(spec, "allocateLoadBalancerNodePorts", json!(true));
        // Load-balancer addresses without a mode are plain virtual IPs.
        if let Some(ingress) = obj
            .get_mut("status")
            .and_then(|s| s.get_mut("loadBalancer"))
            .and_then(|l| l.get_mut("ingress"))
        {
            each_obj_mut(Some(ingress), |ing| {
                if ing
                    .get("ip")
                    .and_then(Value::as_str)
                    .is_some_and(|ip| !ip.is_empty())
                {
                    default_absent(ing, "ipMode", json!("VIP"));
                }
            });
        }
    }
}

fn default_pod(obj: &mut Value) {
    let spec = obj_mut(obj, &["spec"]);
    default_pod_spec(spec);
    default_absent(spec, "enableServiceLinks", json!(true));
    // Limits without requests: the requests are the limits.
    for list in ["containers", "initContainers"] {
        each_obj_mut(spec.get_mut(list), |c| {
            let Some(res) = c.get_mut("resources").and_then(Value::as_object_mut) else {
                return;
            };
            let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() else {
                return;
            };
            let requests = obj_mut_in(res, "requests");
            for (k, v) in limits {
                requests.entry(k).or_insert(v);
            }
        });
    }
}

fn obj_mut_in<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = m.entry(key.to_string()).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("just made an object")
}

/// `SetDefaults_PodSpec` and everything inside it (containers, probes,
/// volumes); shared by Pods and the Pod templates of workloads.
fn default_pod_spec(spec: &mut Map<String, Value>) {
    default_zero(spec, "dnsPolicy", json!("ClusterFirst"));
    default_zero(spec, "restartPolicy", json!("Always"));
    default_absent(spec, "securityContext", json!({}));
    default_absent(spec, "terminationGracePeriodSeconds", json!(30));
    default_zero(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        each_obj_mut(spec.get_mut(list), default_container);
    }
    each_obj_mut(spec.get_mut("volumes"), default_volume);
}

fn default_container(c: &mut Map<String, Value>) {
    if crate::validation::access::is_unset(c, "imagePullPolicy") {
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        let policy = if image_tag(image) == "latest" {
            "Always"
        } else {
            "IfNotPresent"
        };
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    default_zero(c, "terminationMessagePath", json!("/dev/termination-log"));
    default_zero(c, "terminationMessagePolicy", json!("File"));
    each_obj_mut(c.get_mut("ports"), |p| {
        default_zero(p, "protocol", json!("TCP"))
    });
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            default_zero(p, "timeoutSeconds", json!(1));
            default_zero(p, "periodSeconds", json!(10));
            default_zero(p, "successThreshold", json!(1));
            default_zero(p, "failureThreshold", json!(3));
            default_handler(p);
        }
    }
    if let Some(lifecycle) = c.get_mut("lifecycle").and_then(Value::as_object_mut) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lifecycle.get_mut(hook).and_then(Value::as_object_mut) {
                default_handler(h);
            }
        }
    }
    each_obj_mut(c.get_mut("env"), |e| {
        if let Some(field_ref) = e
            .get_mut("valueFrom")
            .and_then(|v| v.get_mut("fieldRef"))
            .and_then(Value::as_object_mut)
        {
            default_zero(field_ref, "apiVersion", json!("v1"));
        }
    });
}

/// `httpGet` handlers default to path `/` over HTTP.
fn default_handler(h: &mut Map<String, Value>) {
    if let Some(get) = h.get_mut("httpGet").and_then(Value::as_object_mut) {
        default_zero(get, "path", json!("/"));
        default_zero(get, "scheme", json!("HTTP"));
    }
}

fn default_volume(v: &mut Map<String, Value>) {
    if v.keys().all(|k| k == "name") {
        v.insert("emptyDir".into(), json!({}));
    }
    for source in ["configMap", "secret", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(source).and_then(Value::as_object_mut) {
            default_absent(s, "defaultMode", json!(420));
        }
    }
}

/// The tag an image reference names, `latest` when it names neither a tag
/// nor a digest (the rule behind the `imagePullPolicy` default).
fn image_tag(image: &str) -> &str {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    // A colon before the last slash belongs to a registry port.
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, tag)) => tag,
        None if digest.is_some() => "",
        None => "latest",
    }
}

fn default_template(obj: &mut Value) {
    let spec = obj_mut(obj, &["spec", "template", "spec"]);
    default_pod_spec(spec);
}

fn default_deployment(obj: &mut Value) {
    let spec = obj_mut(obj, &["spec"]);
    default_absent(spec, "replicas", json!(1));
    let strategy = obj_mut_in(spec, "strategy");
    default_zero(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let rolling = obj_mut_in(strategy, "rollingUpdate");
        default_absent(rolling, "maxUnavailable", json!("25%"));
        default_absent(rolling, "maxSurge", json!("25%"));
    }
    default_absent(spec, "revisionHistoryLimit", json!(10));
    default_absent(spec, "progressDeadlineSeconds", json!(600));
    default_template(obj);
}

fn default_replica_set(obj: &mut Value) {
    default_absent(obj_mut(obj, &["spec"]), "replicas", json!(1));
    default_template(obj);
}

fn default_namespace(obj: &mut Value) {
    let name = str_at(obj, &["metadata", "name"]).to_string();
    if !name.is_empty() {
        // Every namespace carries its own name as a label, so selectors can
        // pick namespaces by name.
        obj_mut(obj, &["metadata", "labels"])
            .insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    default_zero(obj_mut(obj, &["status"]), "phase", json!("Active"));
}

fn default_node(obj: &mut Value) {
    let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) else {
        return;
    };
    if status.get("allocatable").is_none_or(Value::is_null) {
        if let Some(capacity) = status.get("capacity").filter(|c| c.is_object()).cloned() {
            status.insert("allocatable".into(), capacity);
        }
    }
}

fn default_endpoints(obj: &mut Value) {
    if let Some(subsets) = obj.get_mut("subsets").and_then(Value::as_array_mut) {
        for ss in subsets.iter_mut().filter_map(Value::as_object_mut) {
            each_obj_mut(ss.get_mut("ports"), |p| {
                default_zero(p, "protocol", json!("TCP"))
            });
        }
    }
}

fn default_endpoint_slice(obj: &mut Value) {
    // An unnamed port is `name: ""`, which clients such as kubectl's
    // describe rely on.
    each_obj_mut(obj.get_mut("ports"), |p| {
        default_absent(p, "name", json!(""));
        default_absent(p, "protocol", json!("TCP"));
    });
}

/// Kubernetes' QoS class of a Pod: `Guaranteed` when every container has
/// CPU and memory limits equal to its requests, `BestEffort` when no
/// container asks for either, `Burstable` otherwise.
pub fn pod_qos_class(pod: &Value) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for list in ["containers", "initContainers"] {
        for c in list_at(pod, &["spec", list]) {
            let req = c
                .get("resources")
                .and_then(|r| r.get("requests"))
                .and_then(Value::as_object);
            let lim = c
                .get("resources")
                .and_then(|r| r.get("limits"))
                .and_then(Value::as_object);
            for res in ["cpu", "memory"] {
                let r = req
                    .and_then(|m| m.get(res))
                    .or_else(|| lim.and_then(|m| m.get(res)));
                let l = lim.and_then(|m| m.get(res));
                if r.is_some() || l.is_some() {
                    any = true;
                }
                if l.is_none() || r != l {
                    guaranteed = false;
                }
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(kind: &str, v: Value) -> Value {
        let mut v = v;
        apply_defaults(kind, &mut v);
        v
    }

    #[test]
    fn service_defaults() {
        let s = defaulted(
            "Service",
            json!({"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        );
        assert_eq!(
            s["spec"],
            json!({"selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                   "sessionAffinity": "None", "type": "ClusterIP", "internalTrafficPolicy": "Cluster"})
        );
        let np = defaulted(
            "Service",
            json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": "http"}]}}),
        );
        assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(np["spec"]["ports"][0]["targetPort"], "http");
        assert!(np["spec"].get("allocateLoadBalancerNodePorts").is_none());
        let lb = defaulted(
            "Service",
            json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
                                             "status": {"loadBalancer": {"ingress": [{"ip": "172.18.255.1"}]}}}),
        );
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
        assert_eq!(lb["status"]["loadBalancer"]["ingress"][0]["ipMode"], "VIP");
        let en = defaulted(
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
        );
        assert!(en["spec"].get("internalTrafficPolicy").is_none());
        assert!(en["spec"].get("externalTrafficPolicy").is_none());
        let sticky = defaulted(
            "Service",
            json!({"spec": {"sessionAffinity": "ClientIP", "ports": [{"port": 80}]}}),
        );
        assert_eq!(
            sticky["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
            10800
        );
        // Explicit values stay.
        let keep = defaulted(
            "Service",
            json!({"spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false,
                                                "internalTrafficPolicy": "Local", "ports": [{"port": 53, "protocol": "UDP"}]}}),
        );
        assert_eq!(keep["spec"]["allocateLoadBalancerNodePorts"], false);
        assert_eq!(keep["spec"]["internalTrafficPolicy"], "Local");
        assert_eq!(keep["spec"]["ports"][0]["protocol"], "UDP");
    }

    #[test]
    fn pod_defaults() {
        let p = defaulted(
            "Pod",
            json!({"spec": {"containers": [
            {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}],
             "readinessProbe": {"httpGet": {"port": 80}}},
            {"name": "side", "image": "busybox:1.36", "resources": {"limits": {"cpu": "1"}}}]}}),
        );
        let spec = &p["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["enableServiceLinks"], true);
        assert_eq!(spec["securityContext"], json!({}));
        let web = &spec["containers"][0];
        assert_eq!(web["imagePullPolicy"], "Always");
        assert_eq!(web["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(web["terminationMessagePolicy"], "File");
        assert_eq!(web["ports"][0]["protocol"], "TCP");
        assert_eq!(
            web["readinessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                   "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        let side = &spec["containers"][1];
        assert_eq!(side["imagePullPolicy"], "IfNotPresent");
        assert_eq!(side["resources"]["requests"]["cpu"], "1");
        assert_eq!(pod_qos_class(&p), "Burstable");
    }

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("nginx"), "latest");
        assert_eq!(image_tag("nginx:1.25"), "1.25");
        assert_eq!(image_tag("localhost:5000/nginx"), "latest");
        assert_eq!(image_tag("curlimages/curl:8.5.0"), "8.5.0");
        assert_eq!(image_tag("nginx@sha256:abc"), "");
    }

    #[test]
    fn workload_defaults() {
        let d = defaulted(
            "Deployment",
            json!({"spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}}),
        );
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        let tpl = &d["spec"]["template"]["spec"];
        assert_eq!(tpl["restartPolicy"], "Always");
        // enableServiceLinks is a Pod default, not a template one.
        assert!(tpl.get("enableServiceLinks").is_none());
        let zero = defaulted(
            "ReplicaSet",
            json!({"spec": {"replicas": 0, "template": {"spec": {"containers": []}}}}),
        );
        assert_eq!(zero["spec"]["replicas"], 0);
        let recreate = defaulted(
            "Deployment",
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
        );
        assert_eq!(recreate["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn other_kinds() {
        let ns = defaulted("Namespace", json!({"metadata": {"name": "demo"}}));
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "demo"
        );
        assert_eq!(ns["status"]["phase"], "Active");
        let slice = defaulted(
            "EndpointSlice",
            json!({"addressType": "IPv4", "ports": [{"port": 80}]}),
        );
        assert_eq!(
            slice["ports"][0],
            json!({"port": 80, "name": "", "protocol": "TCP"})
        );
        let ep = defaulted("Endpoints", json!({"subsets": [{"ports": [{"port": 80}]}]}));
        assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
        let mut pod = json!({"spec": {"containers": [{"name": "a", "image": "nginx"}]}});
        reset_status_for_create("Pod", &mut pod);
        assert_eq!(
            pod["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
    }
}
