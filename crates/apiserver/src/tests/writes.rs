//! Admission, body handling, patches, server-side apply and scale.

use super::{service, TestServer};
use axum::http::{Method, StatusCode};
use serde_json::json;

fn node_port_service(name: &str, node_port: u16) -> String {
    format!(
        r#"{{"metadata":{{"name":"{name}"}},"spec":{{"type":"NodePort","selector":{{"app":"web"}},"ports":[{{"port":80,"nodePort":{node_port}}}]}}}}"#
    )
}

#[tokio::test]
async fn node_port_allocation_errors() {
    let t = TestServer::new().await;
    let r = t
        .post(
            "/api/v1/namespaces/default/services",
            &node_port_service("web", 80),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["reason"], "Invalid");
    assert_eq!(
        r.body["message"],
        "Service \"web\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
    );
    assert_eq!(
        r.body["details"]["causes"][0]["field"],
        "spec.ports[0].nodePort"
    );

    let r = t
        .post(
            "/api/v1/namespaces/default/services",
            &node_port_service("web", 30080),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["spec"]["ports"][0]["nodePort"], 30080);
    let r = t
        .post(
            "/api/v1/namespaces/default/services",
            &node_port_service("other", 30080),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.body["message"],
        "Service \"other\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
    );

    // Updating the owner keeps its own port; no self-collision.
    let mut web = t.get("/api/v1/namespaces/default/services/web").await.body;
    web["metadata"]["labels"] = json!({"a": "b"});
    let r = t
        .put("/api/v1/namespaces/default/services/web", &web.to_string())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Without a nodePort one is picked from the range.
    let r = t
        .post(
            "/api/v1/namespaces/default/services",
            r#"{"metadata":{"name":"lb"},"spec":{"type":"LoadBalancer","ports":[{"port":80}]}}"#,
        )
        .await;
    let port = r.body["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    assert!((30000..=32767).contains(&port) && port != 30080, "{port}");
}

#[tokio::test]
async fn cluster_ips_are_unique_and_immutable() {
    let t = TestServer::new().await;
    let r = t
        .post(
            "/api/v1/namespaces/default/services",
            r#"{"metadata":{"name":"a"},"spec":{"clusterIP":"10.96.0.1","ports":[{"port":80}]}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("provided IP is already allocated"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn validation_errors_are_invalid() {
    let t = TestServer::new().await;
    let r = t
        .post(
            "/api/v1/namespaces/default/services",
            r#"{"metadata":{"name":"web"},"spec":{"type":"Foo","ports":[{"port":80}]}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .starts_with("Service \"web\" is invalid: spec.type"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn body_limit_is_3_mib() {
    let t = TestServer::new().await;
    let big = format!(
        r#"{{"metadata":{{"name":"big","annotations":{{"a":"{}"}}}},"data":{{}}}}"#,
        "x".repeat(3 * 1024 * 1024)
    );
    let r = t.post("/api/v1/namespaces/default/services", &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.body["message"],
        "Request entity too large: limit is 3145728"
    );
    assert_eq!(r.body["reason"], "RequestEntityTooLarge");
}

#[tokio::test]
async fn yaml_bodies_are_read() {
    let t = TestServer::new().await;
    let yaml =
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n";
    let r = t
        .call(
            Method::POST,
            "/api/v1/namespaces/default/services",
            "application/yaml",
            yaml,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = t
        .call(
            Method::POST,
            "/api/v1/namespaces/default/services",
            "application/yaml",
            "a: [",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unknown_fields_strict_and_warn() {
    let t = TestServer::new().await;
    let body = r#"{"metadata":{"name":"web"},"spec":{"foo":1,"ports":[{"port":80}]}}"#;
    let r = t
        .post(
            "/api/v1/namespaces/default/services?fieldValidation=Strict",
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // A POST body goes through the codec, whose error Kubernetes wraps.
    assert_eq!(
        r.body["message"],
        "Service in version \"v1\" cannot be handled as a Service: strict decoding error: unknown field \"spec.foo\""
    );
    let r = t
        .post(
            "/api/v1/namespaces/default/services?fieldValidation=Warn",
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        r.headers["warning"],
        "299 - \"unknown field \\\"spec.foo\\\"\""
    );
    // A patched object is reported bare, as Kubernetes' patch handler does.
    let r = t
        .patch(
            "/api/v1/namespaces/default/services/web?fieldValidation=Strict",
            "application/merge-patch+json",
            r#"{"spec":{"bar":1}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "strict decoding error: unknown field \"spec.bar\""
    );
}

#[tokio::test]
async fn patch_kinds() {
    let t = TestServer::new().await;
    t.post("/api/v1/namespaces/default/services", &service("web"))
        .await;
    let uri = "/api/v1/namespaces/default/services/web";

    let r = t
        .patch(
            uri,
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"tier":"front"}}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["metadata"]["labels"],
        json!({"app": "web", "tier": "front"})
    );

    // Strategic merge: ports merged by `port`, as kubectl apply sends.
    let r = t
        .patch(
            uri,
            "application/strategic-merge-patch+json",
            r#"{"spec":{"$setElementOrder/ports":[{"port":80},{"port":443}],"ports":[{"port":80,"name":"http"},{"port":443,"name":"https"}]}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ports = r.body["spec"]["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 2, "{}", r.body);
    assert_eq!(ports[0]["name"], "http");
    assert_eq!(ports[0]["protocol"], "TCP");
    assert_eq!(ports[1]["targetPort"], 443);

    let r = t
        .patch(
            uri,
            "application/json-patch+json",
            r#"[{"op":"replace","path":"/spec/sessionAffinity","value":"ClientIP"}]"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["spec"]["sessionAffinity"], "ClientIP");

    let r = t.patch(uri, "text/plain", "x").await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let r = t
        .patch(
            "/api/v1/namespaces/default/services/nope",
            "application/merge-patch+json",
            "{}",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A stale resourceVersion in the patch is a conflict.
    let r = t
        .patch(
            uri,
            "application/merge-patch+json",
            r#"{"metadata":{"resourceVersion":"1"}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn server_side_apply_creates_then_merges() {
    let t = TestServer::new().await;
    let uri = "/api/v1/namespaces/default/services/web?fieldManager=kubectl";
    let yaml = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n  ports:\n  - port: 80\n";
    let r = t.patch(uri, "application/apply-patch+yaml", yaml).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ip = r.body["spec"]["clusterIP"].clone();
    let yaml = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  type: NodePort\n  ports:\n  - port: 80\n    nodePort: 30080\n";
    let r = t.patch(uri, "application/apply-patch+yaml", yaml).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["spec"]["type"], "NodePort");
    assert_eq!(r.body["spec"]["ports"][0]["nodePort"], 30080);
    // Merged, not replaced: the selector and the ClusterIP stay.
    assert_eq!(r.body["spec"]["selector"]["app"], "web");
    assert_eq!(r.body["spec"]["clusterIP"], ip);
}

#[tokio::test]
async fn deployment_scale_subresource() {
    let t = TestServer::new().await;
    let d = r#"{"metadata":{"name":"web"},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx"}]}}}}"#;
    let r = t
        .post("/apis/apps/v1/namespaces/default/deployments", d)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let uri = "/apis/apps/v1/namespaces/default/deployments/web/scale";
    let s = t.get(uri).await.body;
    assert_eq!(s["kind"], "Scale");
    assert_eq!(s["apiVersion"], "autoscaling/v1");
    assert_eq!(s["spec"]["replicas"], 3);
    assert_eq!(s["status"]["selector"], "app=web");
    let r = t
        .patch(
            uri,
            "application/merge-patch+json",
            r#"{"spec":{"replicas":5}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["spec"]["replicas"], 5);
    let d = t
        .get("/apis/apps/v1/namespaces/default/deployments/web")
        .await
        .body;
    assert_eq!(d["spec"]["replicas"], 5);
    assert_eq!(d["metadata"]["generation"], 2);
    let r = t
        .put(
            uri,
            r#"{"metadata":{"name":"web","resourceVersion":"1"},"spec":{"replicas":1}}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn protobuf_bodies_from_kubectl_create() {
    let t = TestServer::new().await;
    let pb = "application/vnd.kubernetes.protobuf";
    let body = include_bytes!("../protobuf/testdata/namespace.pb").to_vec();
    let r = t
        .raw(
            Method::POST,
            "/api/v1/namespaces?fieldManager=kubectl-create&fieldValidation=Strict",
            &[("content-type", pb)],
            body,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        t.get("/api/v1/namespaces/team").await.body["status"]["phase"],
        "Active"
    );
    let body = include_bytes!("../protobuf/testdata/deployment.pb").to_vec();
    let r = t
        .raw(
            Method::POST,
            "/apis/apps/v1/namespaces/team/deployments?fieldValidation=Strict",
            &[("content-type", pb)],
            body,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let d = t
        .get("/apis/apps/v1/namespaces/team/deployments/web")
        .await
        .body;
    assert_eq!(d["spec"]["replicas"], 0);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    let r = t
        .raw(
            Method::PUT,
            "/apis/apps/v1/namespaces/team/deployments/web/scale",
            &[("content-type", pb)],
            b"k8s\0".to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
