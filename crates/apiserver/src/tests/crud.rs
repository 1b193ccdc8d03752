//! Create, get, list, update, delete and the errors around them.

use super::{service, TestServer};
use axum::http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn create_get_list_service() {
    let t = TestServer::new().await;
    let r = t
        .post("/api/v1/namespaces/default/services", &service("web"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let created = r.body;
    let meta = &created["metadata"];
    assert_eq!(meta["namespace"], "default");
    assert_eq!(meta["generation"], 1);
    assert_eq!(meta["uid"].as_str().unwrap().len(), 36);
    let ts = meta["creationTimestamp"].as_str().unwrap();
    assert!(ts.len() == 20 && ts.ends_with('Z'), "{ts}");
    assert!(meta["resourceVersion"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .is_ok());
    // Admission ran: defaults and an allocated ClusterIP.
    assert_eq!(created["spec"]["type"], "ClusterIP");
    assert_eq!(created["spec"]["ports"][0]["protocol"], "TCP");
    assert!(created["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .starts_with("10."));

    let got = t.get("/api/v1/namespaces/default/services/web").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, created);

    let list = t.get("/api/v1/namespaces/default/services").await;
    assert_eq!(list.body["kind"], "ServiceList");
    assert_eq!(list.body["apiVersion"], "v1");
    assert!(list.body["metadata"]["resourceVersion"].is_string());
    assert!(list.body["metadata"].get("continue").is_none());
    let names: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_eq!(i["kind"], "Service");
            assert_eq!(i["apiVersion"], "v1");
            i["metadata"]["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(names, vec!["kubernetes", "web"]);

    // All namespaces: kube-dns too.
    let all = t
        .get("/api/v1/services?labelSelector=k8s-app%3Dkube-dns")
        .await;
    assert_eq!(all.body["items"][0]["metadata"]["name"], "kube-dns");
    assert_eq!(all.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bootstrap_objects_exist_and_are_idempotent() {
    let t = TestServer::new().await;
    crate::bootstrap(&t.server).await.unwrap();
    let k = t
        .get("/api/v1/namespaces/default/services/kubernetes")
        .await
        .body;
    assert_eq!(k["spec"]["clusterIP"], "10.96.0.1");
    assert_eq!(k["spec"]["ports"][0]["targetPort"], 6443);
    let dns = t
        .get("/api/v1/namespaces/kube-system/services/kube-dns")
        .await
        .body;
    assert_eq!(dns["spec"]["clusterIP"], "10.96.0.10");
    assert!(dns["spec"].get("selector").is_none());
    let ns = t.get("/api/v1/namespaces").await.body;
    assert_eq!(ns["items"].as_array().unwrap().len(), 4);
    let slice = t
        .get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")
        .await
        .body;
    assert_eq!(slice["ports"][0]["port"], 6443);
    let ep = t
        .get("/api/v1/namespaces/default/endpoints/kubernetes")
        .await
        .body;
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "192.168.49.1");
}

#[tokio::test]
async fn errors_have_kubernetes_bodies() {
    let t = TestServer::new().await;
    let r = t.get("/api/v1/namespaces/default/services/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"services \"nope\" not found","reason":"NotFound",
               "details":{"name":"nope","kind":"services"},"code":404})
    );
    let r = t
        .get("/apis/apps/v1/namespaces/default/deployments/nope")
        .await;
    assert_eq!(r.body["message"], "deployments.apps \"nope\" not found");

    let r = t
        .post("/api/v1/namespaces/nope/services", &service("web"))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["message"], "namespaces \"nope\" not found");

    let r = t.get("/api/v1/widgets").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body["message"],
        "the server could not find the requested resource"
    );

    t.post("/api/v1/namespaces/default/services", &service("web"))
        .await;
    let r = t
        .post("/api/v1/namespaces/default/services", &service("web"))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["reason"], "AlreadyExists");
    assert_eq!(r.body["message"], "services \"web\" already exists");

    let r = t
        .call(
            Method::POST,
            "/api/v1/namespaces/default/services",
            "application/json",
            "{nope",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("json parse error"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn stale_update_conflicts_and_generation_follows_spec() {
    let t = TestServer::new().await;
    let created = t
        .post("/api/v1/namespaces/default/services", &service("web"))
        .await
        .body;
    let mut changed = created.clone();
    changed["spec"]["ports"][0]["port"] = json!(8080);
    changed["spec"]["type"] = json!("LoadBalancer");
    changed["status"] = json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}});
    let r = t
        .put(
            "/api/v1/namespaces/default/services/web",
            &changed.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["metadata"]["generation"], 2);
    assert_eq!(r.body["spec"]["ports"][0]["port"], 8080);
    // Status is not written through the main resource.
    assert_eq!(r.body["status"], json!({"loadBalancer": {}}));
    assert_eq!(r.body["spec"]["clusterIP"], created["spec"]["clusterIP"]);

    // `created` carries the old resourceVersion now.
    let r = t
        .put(
            "/api/v1/namespaces/default/services/web",
            &changed.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.body["message"],
        "Operation cannot be fulfilled on services \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // A label change keeps the generation.
    let mut current = t.get("/api/v1/namespaces/default/services/web").await.body;
    current["metadata"]["labels"]["x"] = json!("y");
    let r = t
        .put(
            "/api/v1/namespaces/default/services/web",
            &current.to_string(),
        )
        .await;
    assert_eq!(r.body["metadata"]["generation"], 2);

    // The status subresource changes status only.
    let mut status = r.body.clone();
    status["spec"]["ports"][0]["port"] = json!(9999);
    status["status"] = json!({"loadBalancer": {"ingress": [{"ip": "172.18.255.1"}]}});
    let r = t
        .put(
            "/api/v1/namespaces/default/services/web/status",
            &status.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["status"]["loadBalancer"]["ingress"][0]["ip"],
        "172.18.255.1"
    );
    assert_eq!(r.body["spec"]["ports"][0]["port"], 8080);
}

#[tokio::test]
async fn generate_name_and_delete() {
    let t = TestServer::new().await;
    let pod = r#"{"metadata":{"generateName":"web-"},"spec":{"containers":[{"name":"c","image":"nginx"}]}}"#;
    let r = t.post("/api/v1/namespaces/default/pods", pod).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let name = r.body["metadata"]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("web-") && name.len() == 9, "{name}");
    assert_eq!(r.body["kind"], "Pod");
    assert_eq!(r.body["status"]["phase"], "Pending");

    // Not on a node: removed at once, the object is returned.
    let r = t
        .delete(&format!("/api/v1/namespaces/default/pods/{name}"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["metadata"]["name"], name.as_str());
    let r = t
        .get(&format!("/api/v1/namespaces/default/pods/{name}"))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pods_on_a_node_terminate_gracefully() {
    let t = TestServer::new().await;
    let pod = r#"{"metadata":{"name":"p"},"spec":{"nodeName":"minik8s-node","terminationGracePeriodSeconds":10,"containers":[{"name":"c","image":"nginx"}]}}"#;
    assert_eq!(
        t.post("/api/v1/namespaces/default/pods", pod).await.status,
        StatusCode::CREATED
    );
    // 200 with the marked Pod, as Kubernetes answers kubectl.
    let r = t.delete("/api/v1/namespaces/default/pods/p").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["metadata"]["deletionGracePeriodSeconds"], 10);
    assert!(r.body["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(
        t.get("/api/v1/namespaces/default/pods/p").await.status,
        StatusCode::OK
    );
    // The kubelet finishes the deletion.
    let r = t
        .call(
            Method::DELETE,
            "/api/v1/namespaces/default/pods/p",
            "application/json",
            r#"{"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":0}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        t.get("/api/v1/namespaces/default/pods/p").await.status,
        StatusCode::NOT_FOUND
    );
    // 202 only for a pending deletion asked with orphanDependents=false.
    t.post("/api/v1/namespaces/default/pods", pod).await;
    let r = t
        .call(
            Method::DELETE,
            "/api/v1/namespaces/default/pods/p",
            "application/json",
            r#"{"kind":"DeleteOptions","apiVersion":"v1","orphanDependents":false}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn namespace_deletion_removes_its_content() {
    let t = TestServer::new().await;
    t.namespace("team").await;
    t.post("/api/v1/namespaces/team/services", &service("web"))
        .await;
    let r = t.delete("/api/v1/namespaces/team").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"]["phase"], "Terminating");
    let r = t
        .post("/api/v1/namespaces/team/services", &service("other"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    for _ in 0..50 {
        if t.get("/api/v1/namespaces/team").await.status == StatusCode::NOT_FOUND {
            assert_eq!(
                t.get("/api/v1/namespaces/team/services/web").await.status,
                StatusCode::NOT_FOUND
            );
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("namespace team was not removed");
}

#[tokio::test]
async fn tables_for_get_and_list() {
    let t = TestServer::new().await;
    t.post("/api/v1/namespaces/default/services", &service("web"))
        .await;
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let r = t
        .raw(
            Method::GET,
            "/api/v1/namespaces/default/services?limit=500",
            &[("accept", accept)],
            vec![],
        )
        .await;
    assert_eq!(
        r.headers()["content-type"],
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    );
    let body: serde_json::Value = serde_json::from_slice(
        &axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["kind"], "Table");
    assert_eq!(body["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(body["columnDefinitions"][0]["name"], "Name");
    assert_eq!(body["rows"].as_array().unwrap().len(), 2);
    assert_eq!(body["rows"][1]["cells"][0], "web");
    assert_eq!(body["rows"][1]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(body["rows"][1]["object"]["metadata"]["name"], "web");

    let r = t
        .raw(
            Method::GET,
            "/api/v1/namespaces/default/services/web",
            &[("accept", accept)],
            vec![],
        )
        .await;
    let body: serde_json::Value = serde_json::from_slice(
        &axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["rows"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn discovery_documents() {
    let t = TestServer::new().await;
    assert_eq!(t.get("/api").await.body["kind"], "APIVersions");
    assert_eq!(t.get("/apis").await.body["kind"], "APIGroupList");
    let accept =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let r = t
        .raw(Method::GET, "/apis", &[("accept", accept)], vec![])
        .await;
    assert_eq!(
        r.headers()["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    let r = t.get("/api/v1").await;
    assert_eq!(r.body["kind"], "APIResourceList");
    assert_eq!(t.get("/apis/apps/v1").await.body["groupVersion"], "apps/v1");
    assert_eq!(t.get("/apis/nope/v1").await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.get("/healthz").await.body, "ok");
    assert_eq!(t.get("/version").await.body["major"], "1");
    assert_eq!(t.get("/version/").await.body["major"], "1");
    assert_eq!(t.get("/openapi/v2").await.status, StatusCode::NOT_FOUND);
    let index = t.get("/openapi/v3").await.body;
    assert!(
        index["paths"]["api/v1"]["serverRelativeURL"].is_string(),
        "{index}"
    );
    assert_eq!(
        t.get("/openapi/v3/apis/apps/v1?hash=x").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unchanged_updates_write_nothing() {
    let t = TestServer::new().await;
    let created = t
        .post("/api/v1/namespaces/default/services", &service("web"))
        .await
        .body;
    let r = t
        .put(
            "/api/v1/namespaces/default/services/web",
            &created.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    let r = t
        .patch(
            "/api/v1/namespaces/default/services/web",
            "application/merge-patch+json",
            "{}",
        )
        .await;
    assert_eq!(
        r.body["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn dry_run_and_delete_collection() {
    let t = TestServer::new().await;
    let r = t
        .post(
            "/api/v1/namespaces/default/services?dryRun=All",
            &service("web"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        t.get("/api/v1/namespaces/default/services/web")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    t.post("/api/v1/namespaces/default/services", &service("a"))
        .await;
    t.post("/api/v1/namespaces/default/services", &service("b"))
        .await;
    let r = t
        .delete("/api/v1/namespaces/default/services?labelSelector=app%3Da")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        t.get("/api/v1/namespaces/default/services/a").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.get("/api/v1/namespaces/default/services/b").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn selectors_filter_lists() {
    let t = TestServer::new().await;
    t.post("/api/v1/namespaces/default/services", &service("a"))
        .await;
    t.post("/api/v1/namespaces/default/services", &service("b"))
        .await;
    let r = t
        .get("/api/v1/namespaces/default/services?fieldSelector=metadata.name%3Db")
        .await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["metadata"]["name"], "b");
    let r = t
        .get("/api/v1/namespaces/default/services?labelSelector=app+in+(a,b)")
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let r = t
        .get("/api/v1/namespaces/default/services?fieldSelector=spec.foo%3Dx")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["message"], "field label not supported: spec.foo");
}
