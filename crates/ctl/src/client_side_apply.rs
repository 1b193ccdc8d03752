//! Client-side apply as kubectl does it: the manifest is recorded in the
//! `kubectl.kubernetes.io/last-applied-configuration` annotation, and an
//! update is a three-way strategic merge patch computed from that record
//! (original), the manifest (modified) and the live object (current):
//! changes and additions come from current -> modified, deletions from
//! original -> modified. Fields the server filled in (clusterIP, nodePort,
//! status) are in none of the manifests, so they are never touched.
//! A port of apimachinery's `CreateThreeWayMergePatch` for the kinds
//! minik8s serves.

use crate::encoding::to_go_json;
use serde_json::{Map, Value};

pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What `apply` must do for one object.
#[derive(Clone, Debug, PartialEq)]
pub enum ApplyPlan {
    /// The object does not exist: POST this body.
    Create(Value),
    /// PATCH (strategic merge) with this body.
    Patch(Value),
    /// Nothing differs.
    Unchanged,
}

/// Decide create / patch / unchanged for a manifest object (namespace
/// already filled in) against the live object, if any.
pub fn plan(obj: &Value, live: Option<&Value>) -> ApplyPlan {
    let modified = with_last_applied(obj);
    match live {
        None => {
            let mut body = modified;
            prune_nulls(&mut body);
            ApplyPlan::Create(body)
        }
        Some(current) => {
            let kind = obj["kind"].as_str().unwrap_or_default();
            let original = last_applied(current);
            let patch = three_way_patch(kind, original.as_ref(), &modified, current);
            if patch.as_object().is_some_and(Map::is_empty) {
                ApplyPlan::Unchanged
            } else {
                ApplyPlan::Patch(patch)
            }
        }
    }
}

/// kubectl's `GetModifiedConfiguration(annotate=true)`: the object with an
/// annotation holding its own JSON (without that annotation, keys sorted,
/// newline-terminated, `annotations: {}` kept).
pub fn with_last_applied(obj: &Value) -> Value {
    let mut obj = obj.clone();
    let Some(root) = obj.as_object_mut() else {
        return obj;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    let meta = meta.as_object_mut().expect("just made an object");
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    annotations
        .as_object_mut()
        .expect("just made an object")
        .remove(LAST_APPLIED);
    let record = format!("{}\n", to_go_json(&obj));
    obj["metadata"]["annotations"][LAST_APPLIED] = Value::String(record);
    obj
}

/// The previous manifest recorded on a live object.
pub fn last_applied(live: &Value) -> Option<Value> {
    let text = live["metadata"]["annotations"][LAST_APPLIED].as_str()?;
    serde_json::from_str(text).ok()
}

/// Drop null map entries (kubectl does this before a create so that a
/// later apply of the same manifest finds nothing to change).
fn prune_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(prune_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

/// The strategic merge patch that turns `current` into `modified` and
/// removes what was in `original` but is no longer in `modified`.
pub fn three_way_patch(
    kind: &str,
    original: Option<&Value>,
    modified: &Value,
    current: &Value,
) -> Value {
    let as_map = |v: Option<&Value>| v.and_then(Value::as_object).cloned().unwrap_or_default();
    let modified = as_map(Some(modified));
    let current = as_map(Some(current));
    let original = as_map(original);
    let differ = Differ { kind };
    let delta = differ.diff_maps(
        &mut Vec::new(),
        &current,
        &modified,
        Options {
            ignore_deletions: true,
            ignore_changes_and_additions: false,
        },
    );
    let deletions = differ.diff_maps(
        &mut Vec::new(),
        &original,
        &modified,
        Options {
            ignore_deletions: false,
            ignore_changes_and_additions: true,
        },
    );
    Value::Object(differ.merge_patches(&mut Vec::new(), deletions, delta))
}

#[derive(Clone, Copy)]
struct Options {
    ignore_deletions: bool,
    ignore_changes_and_additions: bool,
}

struct Differ<'a> {
    kind: &'a str,
}

impl Differ<'_> {
    fn diff_maps(
        &self,
        path: &mut Vec<String>,
        original: &Map<String, Value>,
        modified: &Map<String, Value>,
        opts: Options,
    ) -> Map<String, Value> {
        let mut patch = Map::new();
        for (key, mv) in modified {
            let Some(ov) = original.get(key) else {
                if !opts.ignore_changes_and_additions {
                    patch.insert(key.clone(), mv.clone());
                }
                continue;
            };
            if !same_type(ov, mv) {
                if !opts.ignore_changes_and_additions {
                    patch.insert(key.clone(), mv.clone());
                }
                continue;
            }
            path.push(key.clone());
            match (ov, mv) {
                (Value::Object(o), Value::Object(m)) => {
                    let sub = self.diff_maps(path, o, m, opts);
                    if !sub.is_empty() {
                        patch.insert(key.clone(), Value::Object(sub));
                    }
                }
                (Value::Array(o), Value::Array(m)) => {
                    match merge_key(self.kind, path).filter(|k| all_maps_with_key(o, m, k)) {
                        Some(mk) => {
                            if let Some(list) = self.diff_lists_of_maps(path, o, m, mk, opts) {
                                patch.insert(key.clone(), Value::Array(list));
                            }
                        }
                        None => {
                            if !opts.ignore_changes_and_additions && !json_equal(ov, mv) {
                                patch.insert(key.clone(), mv.clone());
                            }
                        }
                    }
                }
                _ => {
                    if !opts.ignore_changes_and_additions && !json_equal(ov, mv) {
                        patch.insert(key.clone(), mv.clone());
                    }
                }
            }
            path.pop();
        }
        if !opts.ignore_deletions {
            for key in original.keys() {
                if !modified.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
        }
        patch
    }

    /// Elements matched by merge key are diffed recursively; new ones are
    /// added whole; missing ones get a `$patch: delete` directive. `None`
    /// when nothing changed.
    fn diff_lists_of_maps(
        &self,
        path: &mut Vec<String>,
        original: &[Value],
        modified: &[Value],
        mk: &str,
        opts: Options,
    ) -> Option<Vec<Value>> {
        if original.is_empty() {
            if modified.is_empty() || opts.ignore_changes_and_additions {
                return None;
            }
            return Some(modified.to_vec());
        }
        let mut patch = Vec::new();
        let mut deletions = Vec::new();
        for m in modified {
            let key = &m[mk];
            match original.iter().find(|o| key_equal(&o[mk], key)) {
                Some(o) => {
                    let sub = self.diff_maps(
                        path,
                        o.as_object().expect("checked: maps"),
                        m.as_object().expect("checked: maps"),
                        opts,
                    );
                    if !sub.is_empty() {
                        let mut sub = sub;
                        sub.insert(mk.to_string(), key.clone());
                        patch.push(Value::Object(sub));
                    }
                }
                None => {
                    if !opts.ignore_changes_and_additions {
                        patch.push(m.clone());
                    }
                }
            }
        }
        if !opts.ignore_deletions {
            for o in original {
                if !modified.iter().any(|m| key_equal(&m[mk], &o[mk])) {
                    let mut d = Map::new();
                    d.insert("$patch".into(), Value::String("delete".into()));
                    d.insert(mk.to_string(), o[mk].clone());
                    deletions.push(Value::Object(d));
                }
            }
        }
        patch.extend(deletions);
        (!patch.is_empty()).then_some(patch)
    }

    /// Apply the delta patch onto the deletions patch (both only add or
    /// delete, so a structural merge by merge key is enough).
    fn merge_patches(
        &self,
        path: &mut Vec<String>,
        base: Map<String, Value>,
        delta: Map<String, Value>,
    ) -> Map<String, Value> {
        let mut out = base;
        for (key, dv) in delta {
            let bv = out.remove(&key);
            path.push(key.clone());
            let merged = match (bv, dv) {
                (Some(Value::Object(b)), Value::Object(d)) => {
                    Value::Object(self.merge_patches(path, b, d))
                }
                (Some(Value::Array(b)), Value::Array(d)) => match merge_key(self.kind, path) {
                    Some(mk) => {
                        let mut list = b;
                        for item in d {
                            let pos = list.iter().position(|x| {
                                x.get("$patch").is_none() && key_equal(&x[mk], &item[mk])
                            });
                            match (pos, item) {
                                (Some(i), Value::Object(im)) => {
                                    let existing = match list.remove(i) {
                                        Value::Object(m) => m,
                                        _ => Map::new(),
                                    };
                                    list.insert(
                                        i,
                                        Value::Object(self.merge_patches(path, existing, im)),
                                    );
                                }
                                (_, item) => list.push(item),
                            }
                        }
                        Value::Array(list)
                    }
                    None => Value::Array(d),
                },
                (_, d) => d,
            };
            path.pop();
            out.insert(key, merged);
        }
        out
    }
}

/// Strategic merge keys of the lists in the kinds minik8s serves (the
/// `patchMergeKey` tags of the Kubernetes API types). Lists not named here
/// are replaced whole.
fn merge_key(kind: &str, path: &[String]) -> Option<&'static str> {
    let last = path.last()?.as_str();
    let parent = path.len().checked_sub(2).map(|i| path[i].as_str());
    const CONTAINERS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];
    match (parent, last) {
        (Some("metadata"), "ownerReferences") => Some("uid"),
        (Some(p), "ports") if CONTAINERS.contains(&p) => Some("containerPort"),
        (Some(p), "env") if CONTAINERS.contains(&p) => Some("name"),
        (Some(p), "volumeMounts") if CONTAINERS.contains(&p) => Some("mountPath"),
        (Some(p), "volumeDevices") if CONTAINERS.contains(&p) => Some("devicePath"),
        (Some(p), "resizePolicy") if CONTAINERS.contains(&p) => Some("resourceName"),
        (Some("spec"), l) if CONTAINERS.contains(&l) => Some("name"),
        (Some("spec"), "volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates") => {
            Some("name")
        }
        (Some("spec"), "hostAliases") => Some("ip"),
        (Some("spec"), "topologySpreadConstraints") => Some("topologyKey"),
        (Some("spec"), "ports") if kind == "Service" && path.len() == 2 => Some("port"),
        (Some("status"), "conditions") => Some("type"),
        _ => None,
    }
}

fn all_maps_with_key(a: &[Value], b: &[Value], key: &str) -> bool {
    a.iter()
        .chain(b)
        .all(|v| v.as_object().is_some_and(|m| m.contains_key(key)))
}

/// Go compares decoded JSON, where every number is a float64.
fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// Merge keys compare by their printed form (`%v` in Go).
fn key_equal(a: &Value, b: &Value) -> bool {
    json_equal(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(kind_type: &str, node_port: Option<u16>) -> Value {
        let mut port = json!({"port": 80, "targetPort": 80});
        if let Some(np) = node_port {
            port["nodePort"] = json!(np);
        }
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": kind_type, "selector": {"app": "web"}, "ports": [port]}
        })
    }

    /// What the server would store after a create: defaults and allocations.
    fn live_from(created: &Value) -> Value {
        let mut live = created.clone();
        live["metadata"]["uid"] = json!("u1");
        live["metadata"]["resourceVersion"] = json!("7");
        live["spec"]["clusterIP"] = json!("10.96.142.31");
        live["spec"]["clusterIPs"] = json!(["10.96.142.31"]);
        live["spec"]["sessionAffinity"] = json!("None");
        live["spec"]["ports"][0]["protocol"] = json!("TCP");
        live["status"] = json!({"loadBalancer": {}});
        live
    }

    #[test]
    fn missing_object_is_created_with_its_own_record() {
        let ApplyPlan::Create(body) = plan(&manifest("ClusterIP", None), None) else {
            panic!("expected create");
        };
        let record = body["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .unwrap();
        assert_eq!(
            record,
            "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"annotations\":{},\"name\":\"web\",\"namespace\":\"default\"},\"spec\":{\"ports\":[{\"port\":80,\"targetPort\":80}],\"selector\":{\"app\":\"web\"},\"type\":\"ClusterIP\"}}\n"
        );
    }

    #[test]
    fn same_manifest_again_is_unchanged_despite_server_defaults() {
        let m = manifest("ClusterIP", None);
        let ApplyPlan::Create(body) = plan(&m, None) else {
            panic!()
        };
        let live = live_from(&body);
        assert_eq!(plan(&m, Some(&live)), ApplyPlan::Unchanged);
    }

    #[test]
    fn changed_type_patches_only_what_changed() {
        let ApplyPlan::Create(body) = plan(&manifest("ClusterIP", None), None) else {
            panic!()
        };
        let live = live_from(&body);
        let next = manifest("NodePort", Some(30080));
        let ApplyPlan::Patch(patch) = plan(&next, Some(&live)) else {
            panic!("expected patch")
        };
        assert_eq!(patch["spec"]["type"], "NodePort");
        assert_eq!(
            patch["spec"]["ports"],
            json!([{"nodePort": 30080, "port": 80}])
        );
        // clusterIP and protocol were never in a manifest: left alone.
        assert!(patch["spec"].get("clusterIP").is_none());
        assert!(patch["metadata"]["annotations"][LAST_APPLIED].is_string());
    }

    #[test]
    fn removed_fields_and_list_items_are_deleted() {
        let mut first = manifest("NodePort", Some(30080));
        first["spec"]["ports"]
            .as_array_mut()
            .unwrap()
            .push(json!({"port": 443, "targetPort": 8443, "name": "https"}));
        first["metadata"]["labels"] = json!({"tier": "front"});
        let ApplyPlan::Create(body) = plan(&first, None) else {
            panic!()
        };
        let live = live_from(&body);
        let next = manifest("NodePort", Some(30080));
        let ApplyPlan::Patch(patch) = plan(&next, Some(&live)) else {
            panic!()
        };
        assert_eq!(patch["metadata"]["labels"], Value::Null);
        assert_eq!(
            patch["spec"]["ports"],
            json!([{"$patch": "delete", "port": 443}])
        );
    }

    #[test]
    fn container_lists_merge_by_name() {
        let deploy = |image: &str| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "default"},
                   "spec": {"replicas": 3, "template": {"spec": {"containers": [
                       {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]}}}})
        };
        let ApplyPlan::Create(body) = plan(&deploy("nginx"), None) else {
            panic!()
        };
        let mut live = body.clone();
        live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
        live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = json!("TCP");
        assert_eq!(plan(&deploy("nginx"), Some(&live)), ApplyPlan::Unchanged);
        let ApplyPlan::Patch(patch) = plan(&deploy("nginx:2"), Some(&live)) else {
            panic!()
        };
        assert_eq!(
            patch["spec"],
            json!({"template": {"spec": {"containers": [{"image": "nginx:2", "name": "nginx"}]}}})
        );
    }

    #[test]
    fn a_change_made_by_someone_else_is_reverted_to_the_manifest() {
        let m = manifest("ClusterIP", None);
        let ApplyPlan::Create(body) = plan(&m, None) else {
            panic!()
        };
        let mut live = live_from(&body);
        live["spec"]["selector"]["app"] = json!("webb");
        let ApplyPlan::Patch(patch) = plan(&m, Some(&live)) else {
            panic!()
        };
        assert_eq!(patch, json!({"spec": {"selector": {"app": "web"}}}));
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_equal(&json!(80), &json!(80.0)));
        assert!(!json_equal(&json!(80), &json!("80")));
    }
}
