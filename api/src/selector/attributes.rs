//! What label and field selectors can see of an object, kept apart from
//! the object: the watch history stores it for the version before each
//! change, so a selector watch can tell whether that version matched
//! (Kubernetes' watch cache keeps `PrevObjLabels` / `PrevObjFields` for
//! the same reason). Pure.

use serde_json::{Map, Value};

/// Paths (JSON pointers) that some kind's field selector reads; see
/// `field::kind_fields` and `field::field_value`. Objects of other kinds
/// simply have nothing at most of them.
const SELECTABLE: &[&str] = &[
    "/metadata/name",
    "/metadata/namespace",
    "/metadata/labels",
    "/spec/nodeName",
    "/spec/restartPolicy",
    "/spec/schedulerName",
    "/spec/serviceAccountName",
    "/spec/hostNetwork",
    "/spec/unschedulable",
    "/spec/clusterIP",
    "/spec/type",
    "/status/phase",
    "/status/podIP",
    "/status/podIPs",
    "/status/nominatedNodeName",
    "/status/replicas",
    "/involvedObject",
    "/reason",
    "/reportingComponent",
    "/source",
    "/type",
];

/// The part of `obj` that selectors read, in the object's own shape (so
/// `LabelSelector::matches_object` and `FieldSelector::matches` work on
/// it unchanged): a few hundred bytes instead of the whole object.
pub fn selection_attributes(obj: &Value) -> Value {
    let mut out = Value::Object(Map::new());
    for path in SELECTABLE {
        if let Some(v) = obj.pointer(path) {
            put(&mut out, path, v.clone());
        }
    }
    out
}

/// Sets `path` in `out`, making the objects on the way.
fn put(out: &mut Value, path: &str, v: Value) {
    let mut at = out;
    let mut parts = path.trim_start_matches('/').split('/').peekable();
    while let Some(part) = parts.next() {
        let Value::Object(map) = at else { return };
        if parts.peek().is_none() {
            map.insert(part.to_string(), v);
            return;
        }
        at = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::{field_value, selectable_fields, LabelSelector};
    use serde_json::json;

    fn samples() -> Vec<(&'static str, Value)> {
        vec![
            (
                "Pod",
                json!({"kind": "Pod", "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"}, "annotations": {"big": "x"}},
                    "spec": {"nodeName": "minik8s", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                             "serviceAccountName": "default", "hostNetwork": true, "containers": [{"name": "c", "image": "nginx"}]},
                    "status": {"phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
                               "nominatedNodeName": "n", "conditions": [{"type": "Ready", "status": "True"}]}}),
            ),
            (
                "Event",
                json!({"kind": "Event", "metadata": {"name": "e", "namespace": "default"},
                    "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1", "uid": "u", "apiVersion": "v1", "resourceVersion": "5", "fieldPath": "spec.containers{c}"},
                    "reason": "Pulled", "reportingComponent": "kubelet", "source": {"component": "kubelet"}, "type": "Normal", "message": "long text"}),
            ),
            (
                "Service",
                json!({"kind": "Service", "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
                    "spec": {"clusterIP": "10.96.0.5", "type": "NodePort", "ports": [{"port": 80}], "selector": {"app": "web"}}}),
            ),
            (
                "Node",
                json!({"kind": "Node", "metadata": {"name": "minik8s"}, "spec": {"unschedulable": true}}),
            ),
            (
                "Namespace",
                json!({"kind": "Namespace", "metadata": {"name": "ns"}, "status": {"phase": "Active"}}),
            ),
            (
                "ReplicaSet",
                json!({"kind": "ReplicaSet", "metadata": {"name": "rs", "namespace": "default"}, "status": {"replicas": 3}}),
            ),
            (
                "ConfigMap",
                json!({"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}, "data": {"k": "v"}}),
            ),
        ]
    }

    #[test]
    fn every_selectable_field_reads_the_same_from_the_attributes() {
        for (kind, obj) in samples() {
            let attrs = selection_attributes(&obj);
            for field in selectable_fields(kind) {
                assert_eq!(
                    field_value(kind, &attrs, field),
                    field_value(kind, &obj, field),
                    "{kind} {field}"
                );
            }
            let web = LabelSelector::parse("app=web").unwrap();
            assert_eq!(
                web.matches_object(&attrs),
                web.matches_object(&obj),
                "{kind}"
            );
        }
    }

    #[test]
    fn the_rest_of_the_object_is_left_out() {
        let (_, pod) = samples().remove(0);
        let attrs = selection_attributes(&pod);
        assert!(attrs.pointer("/spec/containers").is_none());
        assert!(attrs.pointer("/metadata/annotations").is_none());
        assert!(attrs.pointer("/status/conditions").is_none());
        assert_eq!(attrs["metadata"]["labels"]["app"], "web");
    }
}
