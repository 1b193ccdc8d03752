//! Discovery documents, built from the registry: what `/api`, `/apis`,
//! `/api/v1`, `/apis/<group>/<version>` and `/version` answer, in both the
//! classic form and the aggregated (`apidiscovery.k8s.io/v2`) form kubectl
//! asks for first. Field names and order are Kubernetes'.

use data_encoding::BASE64;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::registry::{ResourceInfo, RESOURCES};

/// The Kubernetes version minik8s speaks.
pub const MAJOR: &str = "1";
pub const MINOR: &str = "35";
pub const GIT_VERSION: &str = "v1.35.0-minik8s";

/// The Content-Type of an aggregated discovery answer; kubectl only reads
/// the aggregated form when the response carries exactly this.
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// What a subresource answers with and which verbs it takes.
struct Subresource {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
}

/// Kubernetes' description of each subresource minik8s may serve. `None`
/// for an unknown name (it is then left out of discovery).
fn subresource(res: &ResourceInfo, name: &str) -> Option<Subresource> {
    let same = |kind: &'static str, verbs: &'static [&'static str]| Subresource {
        group: res.group,
        version: res.version,
        kind,
        verbs,
    };
    let core = |kind: &'static str, verbs: &'static [&'static str]| Subresource {
        group: "",
        version: "v1",
        kind,
        verbs,
    };
    Some(match name {
        "status" | "ephemeralcontainers" | "resize" => same(res.kind, &["get", "patch", "update"]),
        "scale" => Subresource {
            group: "autoscaling",
            version: "v1",
            kind: "Scale",
            verbs: &["get", "patch", "update"],
        },
        "finalize" => same(res.kind, &["update"]),
        "log" => core("Pod", &["get"]),
        "exec" => core("PodExecOptions", &["create", "get"]),
        "attach" => core("PodAttachOptions", &["create", "get"]),
        "portforward" => core("PodPortForwardOptions", &["create", "get"]),
        "binding" => core("Binding", &["create"]),
        "eviction" => Subresource {
            group: "policy",
            version: "v1",
            kind: "Eviction",
            verbs: &["create"],
        },
        _ => return None,
    })
}

/// The resources of one group/version, sorted by plural (Kubernetes'
/// order in discovery).
fn resources_of(group: &str, version: &str) -> Vec<&'static ResourceInfo> {
    let mut rs: Vec<&ResourceInfo> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    rs.sort_by_key(|r| r.plural);
    rs
}

/// The non-core groups and their versions, groups sorted by name.
fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => versions.push(r.version),
            Some(_) => {}
            None => out.push((r.group, vec![r.version])),
        }
    }
    out.sort_by_key(|(g, _)| *g);
    out
}

/// Kubernetes' storage version hash: base64 of the first 8 bytes of
/// sha256("<group>/<version>/<kind>"). Clients use it to notice a change
/// of storage version.
pub fn storage_version_hash(group: &str, version: &str, kind: &str) -> String {
    let digest = Sha256::digest(format!("{group}/{version}/{kind}").as_bytes());
    BASE64.encode(&digest[..8])
}

fn strings(items: &[&str]) -> Value {
    Value::from(items.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

/// `GET /api`: the core group's versions.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn group_json(group: &str, versions: &[&str]) -> Value {
    let gv = |v: &str| json!({"groupVersion": format!("{group}/{v}"), "version": v});
    json!({
        "name": group,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": gv(versions[0]),
    })
}

/// `GET /apis`: every non-core group.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = groups().iter().map(|(g, vs)| group_json(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/<group>`, or `None` for a group minik8s does not serve.
pub fn api_group(group: &str) -> Option<Value> {
    let (g, versions) = groups().into_iter().find(|(g, _)| *g == group)?;
    let mut doc = Map::new();
    doc.insert("kind".into(), json!("APIGroup"));
    doc.insert("apiVersion".into(), json!("v1"));
    if let Value::Object(m) = group_json(g, &versions) {
        doc.extend(m);
    }
    Some(Value::Object(doc))
}

/// `GET /api/v1` (group "") or `/apis/<group>/<version>`: the
/// APIResourceList, subresources included; `None` when nothing is served
/// there.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let rs = resources_of(group, version);
    if rs.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in &rs {
        let mut e = Map::new();
        e.insert("name".into(), json!(r.plural));
        e.insert("singularName".into(), json!(r.singular));
        e.insert("namespaced".into(), json!(r.namespaced));
        e.insert("kind".into(), json!(r.kind));
        e.insert("verbs".into(), strings(r.verbs));
        if !r.short_names.is_empty() {
            e.insert("shortNames".into(), strings(r.short_names));
        }
        if !r.categories.is_empty() {
            e.insert("categories".into(), strings(r.categories));
        }
        e.insert(
            "storageVersionHash".into(),
            json!(storage_version_hash(r.group, r.version, r.kind)),
        );
        resources.push(Value::Object(e));

        let mut subs: Vec<&str> = r.subresources.to_vec();
        subs.sort();
        for name in subs {
            let Some(s) = subresource(r, name) else {
                continue;
            };
            let mut e = Map::new();
            e.insert("name".into(), json!(format!("{}/{name}", r.plural)));
            e.insert("singularName".into(), json!(""));
            e.insert("namespaced".into(), json!(r.namespaced));
            if s.group != r.group || s.version != r.version {
                e.insert("group".into(), json!(s.group));
                e.insert("version".into(), json!(s.version));
            }
            e.insert("kind".into(), json!(s.kind));
            e.insert("verbs".into(), strings(s.verbs));
            resources.push(Value::Object(e));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut doc = Map::new();
    doc.insert("kind".into(), json!("APIResourceList"));
    // The legacy core list carries no apiVersion, the group lists do.
    if !group.is_empty() {
        doc.insert("apiVersion".into(), json!("v1"));
    }
    doc.insert("groupVersion".into(), json!(group_version));
    doc.insert("resources".into(), Value::Array(resources));
    Some(Value::Object(doc))
}

fn response_kind(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

/// One group's entry of an aggregated discovery document.
fn group_discovery(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            let resources: Vec<Value> = resources_of(group, v)
                .iter()
                .map(|r| resource_discovery(r))
                .collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let metadata = if group.is_empty() {
        json!({})
    } else {
        json!({"name": group})
    };
    json!({"metadata": metadata, "versions": versions})
}

fn resource_discovery(r: &ResourceInfo) -> Value {
    let mut e = Map::new();
    e.insert("resource".into(), json!(r.plural));
    e.insert(
        "responseKind".into(),
        response_kind(r.group, r.version, r.kind),
    );
    e.insert(
        "scope".into(),
        json!(if r.namespaced {
            "Namespaced"
        } else {
            "Cluster"
        }),
    );
    e.insert("singularResource".into(), json!(r.singular));
    e.insert("verbs".into(), strings(r.verbs));
    if !r.short_names.is_empty() {
        e.insert("shortNames".into(), strings(r.short_names));
    }
    if !r.categories.is_empty() {
        e.insert("categories".into(), strings(r.categories));
    }
    let mut names: Vec<&str> = r.subresources.to_vec();
    names.sort();
    let subs: Vec<Value> = names
        .into_iter()
        .filter_map(|name| {
            let s = subresource(r, name)?;
            Some(json!({
                "subresource": name,
                "responseKind": response_kind(s.group, s.version, s.kind),
                "verbs": strings(s.verbs),
            }))
        })
        .collect();
    if !subs.is_empty() {
        e.insert("subresources".into(), Value::Array(subs));
    }
    Value::Object(e)
}

fn discovery_list(items: Vec<Value>) -> Value {
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// `GET /api` asked for as an APIGroupDiscoveryList (send it with
/// [`AGGREGATED_CONTENT_TYPE`]).
pub fn aggregated_core() -> Value {
    discovery_list(vec![group_discovery("", &["v1"])])
}

/// `GET /apis` asked for as an APIGroupDiscoveryList.
pub fn aggregated_groups() -> Value {
    discovery_list(
        groups()
            .iter()
            .map(|(g, vs)| group_discovery(g, vs))
            .collect(),
    )
}

/// Whether an Accept header asks for aggregated discovery v2 (kubectl
/// lists it first, with plain JSON as a fallback).
pub fn accepts_aggregated(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        let has = |p: &str| params.iter().any(|x| x.eq_ignore_ascii_case(p));
        params
            .first()
            .is_some_and(|m| m.eq_ignore_ascii_case("application/json"))
            && has("g=apidiscovery.k8s.io")
            && has("v=v2")
            && has("as=APIGroupDiscoveryList")
    })
}

/// `GET /version`.
pub fn version_info() -> Value {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    json!({
        "major": MAJOR,
        "minor": MINOR,
        "emulationMajor": MAJOR,
        "emulationMinor": MINOR,
        "minCompatibilityMajor": MAJOR,
        "minCompatibilityMinor": "34",
        "gitVersion": GIT_VERSION,
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{arch}", std::env::consts::OS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r[key] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    #[test]
    fn storage_version_hashes_match_kubernetes() {
        // Values a real 1.35 API server reports.
        assert_eq!(storage_version_hash("", "v1", "Pod"), "xPOwRZ+Yhw8=");
        assert_eq!(storage_version_hash("", "v1", "Service"), "0/CO1lhkEBI=");
        assert_eq!(
            storage_version_hash("apps", "v1", "Deployment"),
            "8aSe+NMegvE="
        );
    }

    #[test]
    fn core_resource_list() {
        let doc = api_resource_list("", "v1").unwrap();
        assert_eq!(doc["kind"], "APIResourceList");
        assert!(doc.get("apiVersion").is_none());
        assert_eq!(doc["groupVersion"], "v1");
        let rs = &doc["resources"];
        let svc = find(rs, "name", "services");
        assert_eq!(
            *svc,
            json!({"name": "services", "singularName": "service", "namespaced": true, "kind": "Service",
                   "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                   "shortNames": ["svc"], "categories": ["all"], "storageVersionHash": "0/CO1lhkEBI="})
        );
        assert_eq!(
            *find(rs, "name", "pods/log"),
            json!({"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]})
        );
        assert_eq!(find(rs, "name", "pods/exec")["kind"], "PodExecOptions");
        assert_eq!(find(rs, "name", "services/status")["kind"], "Service");
        assert_eq!(find(rs, "name", "namespaces")["namespaced"], false);
        // Sorted by name, each resource followed by its subresources.
        let names: Vec<&str> = rs
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(api_resource_list("", "v2").is_none());
    }

    #[test]
    fn group_resource_lists_and_groups() {
        let apps = api_resource_list("apps", "v1").unwrap();
        assert_eq!(apps["apiVersion"], "v1");
        assert_eq!(apps["groupVersion"], "apps/v1");
        assert_eq!(
            *find(&apps["resources"], "name", "deployments/scale"),
            json!({"name": "deployments/scale", "singularName": "", "namespaced": true,
                   "group": "autoscaling", "version": "v1", "kind": "Scale",
                   "verbs": ["get", "patch", "update"]})
        );
        assert_eq!(
            find(&apps["resources"], "name", "replicasets")["shortNames"],
            json!(["rs"])
        );
        let slices = api_resource_list("discovery.k8s.io", "v1").unwrap();
        assert!(find(&slices["resources"], "name", "endpointslices")
            .get("shortNames")
            .is_none());

        let list = api_group_list();
        assert_eq!(list["kind"], "APIGroupList");
        assert_eq!(
            list["groups"][0],
            json!({"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                   "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}})
        );
        assert_eq!(list["groups"][1]["name"], "discovery.k8s.io");
        assert_eq!(api_group("apps").unwrap()["kind"], "APIGroup");
        assert!(api_group("batch").is_none());
        assert_eq!(api_versions("127.0.0.1:6443")["versions"], json!(["v1"]));
    }

    #[test]
    fn aggregated_documents() {
        let core = aggregated_core();
        assert_eq!(core["apiVersion"], "apidiscovery.k8s.io/v2");
        assert_eq!(core["items"][0]["metadata"], json!({}));
        let v1 = &core["items"][0]["versions"][0];
        assert_eq!(v1["version"], "v1");
        assert_eq!(v1["freshness"], "Current");
        let pods = find(&v1["resources"], "resource", "pods");
        assert_eq!(
            pods["responseKind"],
            json!({"group": "", "version": "v1", "kind": "Pod"})
        );
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["singularResource"], "pod");
        let attach = find(&pods["subresources"], "subresource", "attach");
        assert_eq!(attach["responseKind"]["kind"], "PodAttachOptions");
        assert_eq!(
            find(&v1["resources"], "resource", "nodes")["scope"],
            "Cluster"
        );

        let groups = aggregated_groups();
        assert_eq!(groups["items"][0]["metadata"]["name"], "apps");
        let deploy = find(
            &groups["items"][0]["versions"][0]["resources"],
            "resource",
            "deployments",
        );
        assert_eq!(deploy["shortNames"], json!(["deploy"]));
        let scale = find(&deploy["subresources"], "subresource", "scale");
        assert_eq!(
            scale["responseKind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        // Every resource carries a responseKind, or kubectl drops it.
        for item in groups["items"]
            .as_array()
            .unwrap()
            .iter()
            .chain(core["items"].as_array().unwrap())
        {
            for r in item["versions"][0]["resources"].as_array().unwrap() {
                assert!(r["responseKind"]["kind"].is_string());
            }
        }
    }

    #[test]
    fn accept_negotiation_and_version() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert!(accepts_aggregated(kubectl));
        assert!(!accepts_aggregated("application/json"));
        let v = version_info();
        assert_eq!(v["gitVersion"], "v1.35.0-minik8s");
        assert_eq!(
            (v["major"].as_str(), v["minor"].as_str()),
            (Some("1"), Some("35"))
        );
        assert!(v["platform"].as_str().unwrap().contains('/'));
    }
}
