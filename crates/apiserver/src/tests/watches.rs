//! Watch streams: replay, live events, resume, expiry, selectors,
//! watch-list bookmarks and Table events.

use super::{service, EventReader, Reply, TestServer};
use axum::http::{Method, StatusCode};
use podio::NoNode;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use store::StoreConfig;

async fn watch(t: &TestServer, uri: &str, headers: &[(&str, &str)]) -> EventReader {
    let r = t.raw(Method::GET, uri, headers, vec![]).await;
    assert_eq!(r.status(), StatusCode::OK);
    EventReader::new(r)
}

#[tokio::test]
async fn replay_then_live_then_resume() {
    let t = TestServer::new().await;
    t.namespace("w").await;
    t.post("/api/v1/namespaces/w/services", &service("a")).await;
    t.post("/api/v1/namespaces/w/services", &service("b")).await;
    let mut events = watch(
        &t,
        "/api/v1/namespaces/w/services?watch=true&resourceVersion=0",
        &[],
    )
    .await;
    let first = events.next().await;
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["metadata"]["name"], "a");
    assert_eq!(first["object"]["kind"], "Service");
    assert_eq!(events.next().await["object"]["metadata"]["name"], "b");

    let c = t
        .post("/api/v1/namespaces/w/services", &service("c"))
        .await
        .body;
    let live = events.next().await;
    assert_eq!(live["type"], "ADDED");
    assert_eq!(live["object"]["metadata"]["name"], "c");

    let deleted = t.delete("/api/v1/namespaces/w/services/a").await;
    assert_eq!(deleted.status, StatusCode::OK);
    let ev = events.next().await;
    assert_eq!(ev["type"], "DELETED");
    assert_eq!(ev["object"]["metadata"]["name"], "a");

    // From c's revision: only what came after (a's deletion).
    let rv = c["metadata"]["resourceVersion"].as_str().unwrap();
    let mut resumed = watch(
        &t,
        &format!("/api/v1/watch/namespaces/w/services?resourceVersion={rv}"),
        &[],
    )
    .await;
    let ev = resumed.next().await;
    assert_eq!(ev["type"], "DELETED");
    assert_eq!(ev["object"]["metadata"]["name"], "a");
    assert!(resumed
        .next_within(Duration::from_millis(300))
        .await
        .is_none());
}

#[tokio::test]
async fn too_old_resource_version_is_an_error_event() {
    let config = StoreConfig {
        history_len: 2,
        ..StoreConfig::default()
    };
    let t = TestServer::with(config, Arc::new(NoNode)).await;
    for name in ["a", "b", "c", "d"] {
        t.post("/api/v1/namespaces/default/services", &service(name))
            .await;
    }
    let mut events = watch(
        &t,
        "/api/v1/namespaces/default/services?watch=1&resourceVersion=1",
        &[],
    )
    .await;
    let ev = events.next().await;
    assert_eq!(ev["type"], "ERROR");
    assert_eq!(ev["object"]["kind"], "Status");
    assert_eq!(ev["object"]["code"], 410);
    assert_eq!(ev["object"]["reason"], "Expired");
    assert!(events
        .next_within(Duration::from_millis(300))
        .await
        .is_none());
}

#[tokio::test]
async fn selector_watch_sees_an_object_leave_as_deleted() {
    let t = TestServer::new().await;
    let mut events = watch(
        &t,
        "/api/v1/namespaces/default/services?watch=true&labelSelector=app%3Dweb",
        &[],
    )
    .await;
    t.post("/api/v1/namespaces/default/services", &service("web"))
        .await;
    t.post("/api/v1/namespaces/default/services", &service("other"))
        .await;
    let ev = events.next().await;
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("web"))
    );
    let r = patch_web(&t, r#"{"metadata":{"labels":{"app":"gone"}}}"#).await;
    assert_eq!(r.status, StatusCode::OK);
    let ev = events.next().await;
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("DELETED"), Some("web"))
    );
    // Back to matching: ADDED again.
    patch_web(&t, r#"{"metadata":{"labels":{"app":"web"}}}"#).await;
    assert_eq!(events.next().await["type"], "ADDED");
    assert!(events
        .next_within(Duration::from_millis(300))
        .await
        .is_none());
}

/// A client lists (revision N), someone creates a matching object, then
/// the client's watch from N arrives: the replayed creation is ADDED,
/// although the object already exists when the watch starts.
#[tokio::test]
async fn selector_watch_from_a_list_replays_a_creation_as_added() {
    let t = TestServer::new().await;
    let list = t
        .get("/api/v1/namespaces/default/services?labelSelector=app%3Dweb")
        .await
        .body;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    t.post("/api/v1/namespaces/default/services", &service("web"))
        .await;
    let mut events = watch(
        &t,
        &format!("/api/v1/namespaces/default/services?watch=true&labelSelector=app%3Dweb&resourceVersion={rv}"),
        &[],
    )
    .await;
    let ev = events.next().await;
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("web"))
    );
}

/// A label change replayed from before the watch: the object entering
/// the selection is ADDED, leaving it DELETED, whatever the objects look
/// like now (the history knows whether each previous version matched).
#[tokio::test]
async fn selector_watch_types_replayed_label_changes_by_the_version_before() {
    let t = TestServer::new().await;
    let created = t
        .post("/api/v1/namespaces/default/services", &service("web"))
        .await
        .body;
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let relabel = |tier: &'static str| {
        let body = format!(r#"{{"metadata":{{"labels":{{"tier":"{tier}"}}}}}}"#);
        let t = &t;
        async move { patch_web(t, &body).await }
    };
    // Not selected at the watch's start; in, out, in again, all before the
    // watch begins (so the current state says "selected").
    relabel("front").await;
    relabel("back").await;
    relabel("front").await;
    let mut events = watch(
        &t,
        &format!("/api/v1/namespaces/default/services?watch=true&labelSelector=tier%3Dfront&resourceVersion={rv}"),
        &[],
    )
    .await;
    for want in ["ADDED", "DELETED", "ADDED"] {
        let ev = events.next().await;
        assert_eq!(ev["type"], want, "{ev}");
        assert_eq!(ev["object"]["metadata"]["name"], "web");
    }
    // And live: a change that keeps it selected is MODIFIED.
    patch_web(&t, r#"{"metadata":{"labels":{"other":"x"}}}"#).await;
    assert_eq!(events.next().await["type"], "MODIFIED");
}

#[tokio::test]
async fn watch_list_ends_initial_events_with_a_bookmark() {
    let t = TestServer::new().await;
    t.post("/api/v1/namespaces/default/services", &service("web"))
        .await;
    let mut events = watch(
        &t,
        "/api/v1/namespaces/default/services?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&fieldSelector=metadata.name%3Dweb",
        &[],
    )
    .await;
    let ev = events.next().await;
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(ev["object"]["metadata"]["name"], "web");
    let mark = events.next().await;
    assert_eq!(mark["type"], "BOOKMARK");
    assert_eq!(mark["object"]["kind"], "Service");
    assert_eq!(
        mark["object"]["metadata"]["annotations"],
        json!({"k8s.io/initial-events-end": "true"})
    );
    assert!(mark["object"]["metadata"]["resourceVersion"].is_string());
    t.delete("/api/v1/namespaces/default/services/web").await;
    assert_eq!(events.next().await["type"], "DELETED");
}

#[tokio::test]
async fn table_watch_sends_columns_once() {
    let t = TestServer::new().await;
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let mut events = watch(
        &t,
        "/api/v1/namespaces/default/services?watch=true&resourceVersion=0",
        &[("accept", accept)],
    )
    .await;
    let first = events.next().await;
    assert_eq!(first["object"]["kind"], "Table");
    assert_eq!(first["object"]["rows"].as_array().unwrap().len(), 1);
    assert!(first["object"]["columnDefinitions"]
        .as_array()
        .is_some_and(|c| !c.is_empty()));
    t.post("/api/v1/namespaces/default/services", &service("web"))
        .await;
    let second = events.next().await;
    assert_eq!(second["type"], "ADDED");
    assert_eq!(second["object"]["rows"][0]["cells"][0], "web");
    assert!(second["object"]["columnDefinitions"].is_null());
}

#[tokio::test]
async fn named_watch_path_follows_one_object() {
    let t = TestServer::new().await;
    t.post("/api/v1/namespaces/default/services", &service("web"))
        .await;
    t.post("/api/v1/namespaces/default/services", &service("other"))
        .await;
    let mut events = watch(&t, "/api/v1/watch/namespaces/default/services/web", &[]).await;
    let ev = events.next().await;
    assert_eq!(ev["object"]["metadata"]["name"], "web");
    assert!(events
        .next_within(Duration::from_millis(300))
        .await
        .is_none());
}

/// A JSON merge patch of Service `default/web`.
async fn patch_web(t: &TestServer, body: &str) -> Reply {
    t.patch(
        "/api/v1/namespaces/default/services/web",
        "application/merge-patch+json",
        body,
    )
    .await
}
