//! OpenAPI v3 documents, generated from the registry: the index at
//! `/openapi/v3` and one document per group/version.
//!
//! They describe the REST operations truthfully but keep schemas minimal.
//! What kubectl needs from them: each kind's `patch` operation carries
//! `x-kubernetes-group-version-kind` and a `fieldValidation` query
//! parameter, so `kubectl apply`/`create` leave validation to the server
//! (`?fieldValidation=Strict`). The component schemas deliberately carry no
//! `x-kubernetes-group-version-kind`: kubectl would then compute apply
//! patches from these (field-less) schemas instead of its built-in types.

use std::sync::OnceLock;

use data_encoding::HEXUPPER;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha512};

use crate::discovery::GIT_VERSION;
use crate::registry::{ResourceInfo, RESOURCES};

/// The content types a PATCH accepts.
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// One group/version document and the hash clients cache it by.
struct GroupVersionDoc {
    /// `api/v1`, `apis/apps/v1`: the document's path under `/openapi/v3/`.
    path: String,
    doc: Value,
    hash: String,
}

fn documents() -> &'static [GroupVersionDoc] {
    static DOCS: OnceLock<Vec<GroupVersionDoc>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let mut gvs: Vec<(&str, &str)> = Vec::new();
        for r in RESOURCES {
            if !gvs.contains(&(r.group, r.version)) {
                gvs.push((r.group, r.version));
            }
        }
        gvs.into_iter()
            .map(|(group, version)| {
                let doc = group_version_document(group, version);
                let bytes = serde_json::to_vec(&doc).unwrap_or_default();
                GroupVersionDoc {
                    path: gv_path(group, version),
                    hash: HEXUPPER.encode(&Sha512::digest(&bytes)),
                    doc,
                }
            })
            .collect()
    })
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `GET /openapi/v3`: where each group/version document is.
pub fn openapi_v3_index() -> Value {
    let mut paths = Map::new();
    for d in documents() {
        paths.insert(
            d.path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{}?hash={}", d.path, d.hash)}),
        );
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/<path>` (`api/v1`, `apis/apps/v1`; any `?hash=` is
/// the caller's to ignore), or `None` for a path not served.
pub fn openapi_v3_document(path: &str) -> Option<&'static Value> {
    let path = path
        .trim_start_matches('/')
        .trim_start_matches("openapi/v3/");
    documents().iter().find(|d| d.path == path).map(|d| &d.doc)
}

/// The hash of a group/version document, for an ETag.
pub fn openapi_v3_hash(path: &str) -> Option<&'static str> {
    let path = path
        .trim_start_matches('/')
        .trim_start_matches("openapi/v3/");
    documents()
        .iter()
        .find(|d| d.path == path)
        .map(|d| d.hash.as_str())
}

/// `io.k8s.api.core.v1`, `io.k8s.api.apps.v1`, `io.k8s.api.discovery.v1`.
fn schema_prefix(group: &str, version: &str) -> String {
    let short = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    format!("io.k8s.api.{short}.{version}")
}

/// `CoreV1`, `AppsV1`, `DiscoveryV1`: the operationId infix.
fn operation_group(group: &str, version: &str) -> String {
    let short = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    format!("{}{}", capitalize(short), capitalize(version))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn query(name: &str, kind: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": kind, "uniqueItems": true}
    })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "description": description,
        "required": true,
        "schema": {"type": "string", "uniqueItems": true}
    })
}

fn dry_run() -> Value {
    query(
        "dryRun",
        "string",
        "When present, indicates that modifications should not be persisted.",
    )
}

fn field_manager() -> Value {
    query(
        "fieldManager",
        "string",
        "fieldManager is a name associated with the actor or entity that is making these changes.",
    )
}

/// The parameter kubectl looks for before it leaves validation to the
/// server.
fn field_validation() -> Value {
    query(
        "fieldValidation",
        "string",
        "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.",
    )
}

fn json_response(code: &str, description: &str, schema: &str) -> (String, Value) {
    (
        code.to_string(),
        json!({"description": description, "content": {"application/json": {"schema": schema_ref(schema)}}}),
    )
}

fn responses(list: Vec<(String, Value)>) -> Value {
    let mut m: Map<String, Value> = list.into_iter().collect();
    m.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(m)
}

/// Group, version and kind of what an operation reads or writes.
#[derive(Clone, Copy)]
struct Gvk<'a> {
    group: &'a str,
    version: &'a str,
    kind: &'a str,
}

impl Gvk<'_> {
    fn schema(&self) -> String {
        format!("{}.{}", schema_prefix(self.group, self.version), self.kind)
    }

    fn extension(&self) -> Value {
        json!({"group": self.group, "kind": self.kind, "version": self.version})
    }
}

struct Operation<'a> {
    verb: &'a str,
    id: String,
    description: String,
    parameters: Vec<Value>,
    body: Option<Value>,
    responses: Value,
    gvk: Gvk<'a>,
    tag: String,
}

impl Operation<'_> {
    fn to_json(&self) -> Value {
        let mut op = Map::new();
        op.insert("tags".into(), json!([self.tag]));
        op.insert("description".into(), json!(self.description));
        op.insert("operationId".into(), json!(self.id));
        if !self.parameters.is_empty() {
            op.insert("parameters".into(), Value::Array(self.parameters.clone()));
        }
        if let Some(b) = &self.body {
            op.insert("requestBody".into(), b.clone());
        }
        op.insert("responses".into(), self.responses.clone());
        op.insert("x-kubernetes-action".into(), json!(self.verb));
        op.insert(
            "x-kubernetes-group-version-kind".into(),
            self.gvk.extension(),
        );
        Value::Object(op)
    }
}

fn json_body(schema: &str) -> Value {
    json!({"content": {"*/*": {"schema": schema_ref(schema)}}, "required": true})
}

fn patch_body() -> Value {
    let content: Map<String, Value> = PATCH_TYPES
        .iter()
        .map(|t| {
            (
                t.to_string(),
                json!({"schema": schema_ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")}),
            )
        })
        .collect();
    json!({"content": content, "required": true})
}

/// The read, replace and patch operations of an object or of one of its
/// subresources (`status`, `scale`).
fn object_operations(
    res: &ResourceInfo,
    gvk: Gvk<'_>,
    id_suffix: &str,
    what: &str,
    tag: &str,
) -> Map<String, Value> {
    let schema = gvk.schema();
    let og = operation_group(res.group, res.version);
    let op = |verb: &str, prefix: &str, description: String, parameters, body, responses| {
        Operation {
            verb,
            id: format!("{prefix}{og}{id_suffix}"),
            description,
            parameters,
            body,
            responses,
            gvk,
            tag: tag.to_string(),
        }
        .to_json()
    };
    let mut item = Map::new();
    item.insert(
        "get".into(),
        op(
            "get",
            "read",
            format!("read {what}"),
            vec![],
            None,
            responses(vec![json_response("200", "OK", &schema)]),
        ),
    );
    item.insert(
        "put".into(),
        op(
            "put",
            "replace",
            format!("replace {what}"),
            vec![dry_run(), field_manager(), field_validation()],
            Some(json_body(&schema)),
            responses(vec![
                json_response("200", "OK", &schema),
                json_response("201", "Created", &schema),
            ]),
        ),
    );
    let force = query(
        "force",
        "boolean",
        "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people.",
    );
    item.insert(
        "patch".into(),
        op(
            "patch",
            "patch",
            format!("partially update {what}"),
            vec![dry_run(), field_manager(), field_validation(), force],
            Some(patch_body()),
            responses(vec![
                json_response("200", "OK", &schema),
                json_response("201", "Created", &schema),
            ]),
        ),
    );
    item
}

/// All paths of one kind: the collection, the object and its
/// subresources, and (namespaced kinds) the all-namespaces list.
fn resource_paths(res: &ResourceInfo, paths: &mut Map<String, Value>) {
    let gvk = Gvk {
        group: res.group,
        version: res.version,
        kind: res.kind,
    };
    let og = operation_group(res.group, res.version);
    let tag = format!(
        "{}_{}",
        if res.group.is_empty() {
            "core"
        } else {
            res.group.split('.').next().unwrap_or(res.group)
        },
        res.version
    );
    let scope = if res.namespaced { "Namespaced" } else { "" };
    let base = if res.namespaced {
        format!(
            "/{}/namespaces/{{namespace}}/{}",
            gv_path(res.group, res.version),
            res.plural
        )
    } else {
        format!("/{}/{}", gv_path(res.group, res.version), res.plural)
    };
    let mut scope_params = Vec::new();
    if res.namespaced {
        scope_params.push(path_param(
            "namespace",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    let list_schema = format!("{}List", gvk.schema());
    let status_schema = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
    let has = |verb: &str| res.verbs.contains(&verb);

    // The collection.
    let mut collection = Map::new();
    let list_op = |id: String, description: String| {
        Operation {
            verb: "list",
            id,
            description,
            parameters: vec![
                query("labelSelector", "string", "A selector to restrict the list of returned objects by their labels."),
                query("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields."),
                query("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions a request may be served from."),
                query("watch", "boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications."),
            ],
            body: None,
            responses: responses(vec![json_response("200", "OK", &list_schema)]),
            gvk,
            tag: tag.clone(),
        }
        .to_json()
    };
    if has("list") {
        collection.insert(
            "get".into(),
            list_op(
                format!("list{og}{scope}{}", res.kind),
                format!("list or watch objects of kind {}", res.kind),
            ),
        );
    }
    if has("create") {
        let schema = gvk.schema();
        collection.insert(
            "post".into(),
            Operation {
                verb: "post",
                id: format!("create{og}{scope}{}", res.kind),
                description: format!("create a {}", res.kind),
                parameters: vec![dry_run(), field_manager(), field_validation()],
                body: Some(json_body(&schema)),
                responses: responses(vec![
                    json_response("200", "OK", &schema),
                    json_response("201", "Created", &schema),
                    json_response("202", "Accepted", &schema),
                ]),
                gvk,
                tag: tag.clone(),
            }
            .to_json(),
        );
    }
    if has("deletecollection") {
        collection.insert(
            "delete".into(),
            Operation {
                verb: "deletecollection",
                id: format!("delete{og}Collection{scope}{}", res.kind),
                description: format!("delete collection of {}", res.kind),
                parameters: vec![dry_run()],
                body: None,
                responses: responses(vec![json_response("200", "OK", status_schema)]),
                gvk,
                tag: tag.clone(),
            }
            .to_json(),
        );
    }
    if !scope_params.is_empty() {
        collection.insert("parameters".into(), Value::Array(scope_params.clone()));
    }
    paths.insert(base.clone(), Value::Object(collection));

    // The object.
    let what = format!("the specified {}", res.kind);
    let mut object = object_operations(res, gvk, &format!("{scope}{}", res.kind), &what, &tag);
    if has("delete") {
        object.insert(
            "delete".into(),
            Operation {
                verb: "delete",
                id: format!("delete{og}{scope}{}", res.kind),
                description: format!("delete a {}", res.kind),
                parameters: vec![dry_run()],
                body: None,
                responses: responses(vec![
                    json_response("200", "OK", &gvk.schema()),
                    json_response("202", "Accepted", &gvk.schema()),
                ]),
                gvk,
                tag: tag.clone(),
            }
            .to_json(),
        );
    }
    let mut object_params = vec![path_param("name", &format!("name of the {}", res.kind))];
    object_params.extend(scope_params.iter().cloned());
    object.insert("parameters".into(), Value::Array(object_params.clone()));
    paths.insert(format!("{base}/{{name}}"), Value::Object(object));

    // Subresources that read and write a whole object.
    for sub in res.subresources {
        let (sub_gvk, suffix) = match *sub {
            "status" => (gvk, "Status"),
            "scale" => (
                Gvk {
                    group: "autoscaling",
                    version: "v1",
                    kind: "Scale",
                },
                "Scale",
            ),
            _ => continue,
        };
        let what = format!("{} of the specified {}", sub, res.kind);
        let mut item = object_operations(
            res,
            sub_gvk,
            &format!("{scope}{}{suffix}", res.kind),
            &what,
            &tag,
        );
        item.insert("parameters".into(), Value::Array(object_params.clone()));
        paths.insert(format!("{base}/{{name}}/{sub}"), Value::Object(item));
    }

    if res.namespaced && has("list") {
        let mut all = Map::new();
        all.insert(
            "get".into(),
            list_op(
                format!("list{og}{}ForAllNamespaces", res.kind),
                format!("list or watch objects of kind {}", res.kind),
            ),
        );
        paths.insert(
            format!("/{}/{}", gv_path(res.group, res.version), res.plural),
            Value::Object(all),
        );
    }
}

fn object_schema(description: &str) -> Value {
    json!({"description": description, "type": "object"})
}

fn group_version_document(group: &str, version: &str) -> Value {
    let resources: Vec<&ResourceInfo> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for r in &resources {
        resource_paths(r, &mut paths);
        let prefix = schema_prefix(r.group, r.version);
        schemas.insert(format!("{prefix}.{}", r.kind), object_schema(r.kind));
        schemas.insert(
            format!("{prefix}.{}List", r.kind),
            object_schema(&format!("{}List is a list of {} objects.", r.kind, r.kind)),
        );
        if r.subresources.contains(&"scale") {
            schemas.insert(
                "io.k8s.api.autoscaling.v1.Scale".into(),
                object_schema("Scale represents a scaling request for a resource."),
            );
        }
    }
    schemas.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch".into(),
        object_schema("Patch is provided to give a concrete name and type to the Kubernetes PATCH request body."),
    );
    schemas.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status".into(),
        object_schema("Status is a return value for calls that don't return other objects."),
    );
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What kubectl's query-parameter check does: find a PATCH operation
    /// for the kind and look for the parameter among its query parameters.
    fn patch_supports(doc: &Value, group: &str, version: &str, kind: &str, param: &str) -> bool {
        doc["paths"].as_object().unwrap().values().any(|item| {
            let op = &item["patch"];
            let gvk = &op["x-kubernetes-group-version-kind"];
            gvk["group"] == group
                && gvk["version"] == version
                && gvk["kind"] == kind
                && op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == param && p["in"] == "query")
        })
    }

    #[test]
    fn index_points_at_every_group_version() {
        let index = openapi_v3_index();
        let paths = index["paths"].as_object().unwrap();
        for key in ["api/v1", "apis/apps/v1", "apis/discovery.k8s.io/v1"] {
            let url = paths[key]["serverRelativeURL"].as_str().unwrap();
            let (path, hash) = url.split_once("?hash=").unwrap();
            assert_eq!(path, format!("/openapi/v3/{key}"));
            assert_eq!(hash.len(), 128);
            assert_eq!(Some(hash), openapi_v3_hash(key));
            assert!(openapi_v3_document(path).is_some());
        }
        assert!(openapi_v3_document("apis/batch/v1").is_none());
    }

    #[test]
    fn every_kind_can_be_validated_by_the_server() {
        for r in RESOURCES {
            let doc = openapi_v3_document(&gv_path(r.group, r.version)).unwrap();
            assert!(
                patch_supports(doc, r.group, r.version, r.kind, "fieldValidation"),
                "{}",
                r.kind
            );
        }
        let apps = openapi_v3_document("apis/apps/v1").unwrap();
        assert!(patch_supports(
            apps,
            "autoscaling",
            "v1",
            "Scale",
            "fieldValidation"
        ));
        assert!(!patch_supports(
            apps,
            "",
            "v1",
            "Service",
            "fieldValidation"
        ));
    }

    #[test]
    fn paths_follow_the_rest_layout() {
        let core = openapi_v3_document("api/v1").unwrap();
        let paths = core["paths"].as_object().unwrap();
        let svc = &paths["/api/v1/namespaces/{namespace}/services/{name}"];
        assert_eq!(svc["patch"]["operationId"], "patchCoreV1NamespacedService");
        assert_eq!(
            svc["patch"]["x-kubernetes-group-version-kind"],
            json!({"group": "", "kind": "Service", "version": "v1"})
        );
        assert!(
            svc["patch"]["requestBody"]["content"]["application/strategic-merge-patch+json"]
                .is_object()
        );
        assert_eq!(svc["get"]["x-kubernetes-action"], "get");
        assert!(paths.contains_key("/api/v1/namespaces/{namespace}/services/{name}/status"));
        assert!(paths.contains_key("/api/v1/services"));
        assert_eq!(
            paths["/api/v1/nodes/{name}"]["patch"]["operationId"],
            "patchCoreV1Node"
        );
        assert!(!paths.contains_key("/api/v1/namespaces/{namespace}/nodes"));
        let apps = openapi_v3_document("apis/apps/v1").unwrap();
        let scale = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
        assert_eq!(
            scale["patch"]["operationId"],
            "patchAppsV1NamespacedDeploymentScale"
        );
        // Every $ref resolves within the document.
        let text = apps.to_string();
        for part in text.split("#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(apps["components"]["schemas"].get(name).is_some(), "{name}");
        }
        // No component claims a kind (see the module docs).
        for s in apps["components"]["schemas"].as_object().unwrap().values() {
            assert!(s.get("x-kubernetes-group-version-kind").is_none());
        }
    }
}
