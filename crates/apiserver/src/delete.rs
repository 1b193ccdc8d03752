//! DELETE of one object or a collection, with Kubernetes' graceful
//! deletion for Pods on a node, finalizers, and Namespace termination.

use crate::admission::allocates;
use crate::allocator::settled_write;
use crate::body::{content_type, decode_object, read_limited};
use crate::error::ApiError;
use crate::object_meta::{self, format_time, meta_mut, now_rfc3339};
use crate::read::{list_object, load, select};
use crate::resources::{json_response, RequestContext};
use crate::selection::Filter;
use crate::server::ApiServer;
use crate::storage::Write;
use crate::write::stored_rv;
use api::registry::{ResourceInfo, NAMESPACES, RESOURCES};
use api::status::StatusError;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use store::StoreError;

/// Namespaces Kubernetes refuses to delete.
const PROTECTED_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// A Pod's grace period when neither the request nor the Pod names one.
const DEFAULT_GRACE_SECONDS: i64 = 30;

/// How often a terminating Namespace is checked for remaining content.
const NAMESPACE_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The parts of `DeleteOptions` (body or query) the server honours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    /// `dryRun: ["All"]` in the body (the query form is the context's).
    pub dry_run: bool,
    /// The deprecated `orphanDependents`; `false` is the one case in which
    /// Kubernetes answers 202 to a deletion that is not finished.
    pub orphan_dependents: Option<bool>,
}

async fn read_options(ctx: &RequestContext, body: Body) -> Result<DeleteOptions, ApiError> {
    let bytes = read_limited(&ctx.headers, body, ctx.server.config.max_body_bytes).await?;
    let mut options = DeleteOptions::default();
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        let body = decode_object(&content_type(&ctx.headers), &bytes, "DeleteOptions")?;
        options.grace_period_seconds = body["gracePeriodSeconds"].as_i64();
        options.precondition_uid = body["preconditions"]["uid"].as_str().map(str::to_string);
        options.precondition_resource_version = body["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string);
        options.dry_run = body["dryRun"].as_array().is_some_and(|d| !d.is_empty());
        options.orphan_dependents = body["orphanDependents"].as_bool();
    }
    if let Some(orphan) = ctx.query.non_empty("orphanDependents") {
        options.orphan_dependents.get_or_insert(orphan == "true");
    }
    if let Some(grace) = ctx.query.number("gracePeriodSeconds")? {
        options.grace_period_seconds.get_or_insert(grace);
    }
    Ok(options)
}

pub async fn delete(ctx: RequestContext, body: Body) -> Result<Response, ApiError> {
    let options = read_options(&ctx, body).await?;
    let name = ctx.name().to_string();
    let (object, removed) = delete_object(&ctx, &name, &options).await?;
    // Kubernetes answers 200 also when the object is only marked (a Pod's
    // graceful deletion, a terminating Namespace), and 202 only for a
    // pending deletion with `orphanDependents: false`: clients written
    // against it expect exactly that.
    let code = if !removed && options.orphan_dependents == Some(false) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(json_response(code, &object, &[]))
}

/// `DELETE` on a collection: every selected object, answered with the
/// list of what was deleted.
pub async fn delete_collection(ctx: RequestContext, body: Body) -> Result<Response, ApiError> {
    let res = ctx.resource();
    if res.namespaced && ctx.namespace().is_none() {
        return Err(crate::error::method_not_allowed().into());
    }
    let options = read_options(&ctx, body).await?;
    let filter = Filter::from_query(ctx.resource(), &ctx.query, None)?;
    let (objects, revision) = select(&ctx, &filter).await?;
    let mut deleted = Vec::new();
    for obj in objects {
        match delete_object(&ctx, object_meta::name(&obj), &options).await {
            Ok((gone, _)) => deleted.push(gone),
            // Deleted by someone else meanwhile: that is what was asked.
            Err(ApiError::Status(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &list_object(res, deleted, &revision.to_string()),
        &[],
    ))
}

/// Retries of a delete whose read-modify-write lost a race.
const DELETE_ATTEMPTS: usize = 5;

/// Delete (or start deleting) one object; returns what Kubernetes
/// returns, the object as deleted or as marked for deletion, and whether
/// it is gone from the store.
pub async fn delete_object(
    ctx: &RequestContext,
    name: &str,
    options: &DeleteOptions,
) -> Result<(Value, bool), ApiError> {
    let res = ctx.resource();
    for _ in 0..DELETE_ATTEMPTS {
        let old = load(ctx, name).await?;
        check_preconditions(res, name, &old, options)?;
        let rv = stored_rv(&old);
        let marked = match plan(res, &old, options) {
            DeletePlan::Remove => None,
            DeletePlan::Keep => return Ok((old, false)),
            DeletePlan::Mark(marked) => Some(marked),
            DeletePlan::Refuse(e) => return Err(e.into()),
        };
        if ctx.dry_run() || options.dry_run {
            let removed = marked.is_none();
            return Ok((marked.unwrap_or(old), removed));
        }
        let removed = marked.is_none();
        let key = ctx.key(name);
        // A removed Service gives its addresses back once the delete
        // commits (a marked one keeps them until then).
        let reservation = if removed && allocates(res) {
            let allocations = ctx
                .server
                .service_allocator
                .allocations(&ctx.server.storage)
                .await
                .map_err(ApiError::Storage)?;
            Some(allocations.release_on_delete(&key, &old))
        } else {
            None
        };
        let write = match marked {
            Some(marked) => Write::Update(marked, rv),
            None => Write::Delete(rv),
        };
        let (result, _unsettled) =
            settled_write(&ctx.server.storage, key, write, reservation).await;
        match result {
            Ok(done) => {
                if res.kind == "Namespace" && res.group.is_empty() {
                    spawn_namespace_termination(ctx.server.clone(), name.to_string());
                }
                return Ok((done, removed));
            }
            Err(StoreError::Conflict) => continue,
            Err(StoreError::NotFound) => return Err(StatusError::not_found(res, name).into()),
            Err(e) => return Err(ApiError::Storage(e)),
        }
    }
    Err(StatusError::conflict(res, name).into())
}

fn check_preconditions(
    res: &ResourceInfo,
    name: &str,
    obj: &Value,
    options: &DeleteOptions,
) -> Result<(), ApiError> {
    if let Some(uid) = &options.precondition_uid {
        let actual = object_meta::meta_str(obj, "uid").unwrap_or("");
        if uid != actual {
            return Err(StatusError::conflict_because(
                res,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            )
            .into());
        }
    }
    if let Some(rv) = &options.precondition_resource_version {
        let actual = object_meta::meta_str(obj, "resourceVersion").unwrap_or("");
        if rv != actual {
            return Err(StatusError::conflict_because(
                res,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// What a delete does to an object.
#[derive(Debug, PartialEq)]
enum DeletePlan {
    /// Remove it from the store now.
    Remove,
    /// Already being deleted no faster than asked: nothing to do.
    Keep,
    /// Store this version (with `deletionTimestamp`); someone else
    /// finishes the deletion.
    Mark(Value),
    Refuse(StatusError),
}

/// Decide how to delete `obj`: pure, so each rule has a unit test.
fn plan(res: &ResourceInfo, obj: &Value, options: &DeleteOptions) -> DeletePlan {
    let name = object_meta::name(obj);
    let being_deleted = object_meta::meta_str(obj, "deletionTimestamp").is_some();
    if res.group.is_empty() && res.kind == "Namespace" {
        if PROTECTED_NAMESPACES.contains(&name) {
            return DeletePlan::Refuse(StatusError::forbidden(
                res,
                name,
                "this namespace may not be deleted",
            ));
        }
        if being_deleted {
            return DeletePlan::Keep;
        }
        // The termination sweep removes the content, then the Namespace.
        let mut marked = obj.clone();
        meta_mut(&mut marked).insert("deletionTimestamp".into(), json!(now_rfc3339()));
        marked["status"]["phase"] = json!("Terminating");
        return DeletePlan::Mark(marked);
    }
    let has_finalizers = obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    if has_finalizers {
        if being_deleted {
            return DeletePlan::Keep;
        }
        let mut marked = obj.clone();
        let meta = meta_mut(&mut marked);
        meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        return DeletePlan::Mark(marked);
    }
    if res.group.is_empty() && res.kind == "Pod" && runs_on_node(obj) {
        let grace = options.grace_period_seconds.unwrap_or_else(|| {
            obj["spec"]["terminationGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(DEFAULT_GRACE_SECONDS)
        });
        if grace > 0 {
            // The kubelet stops the containers, then deletes the Pod with
            // gracePeriodSeconds=0.
            let current = obj["metadata"]["deletionGracePeriodSeconds"].as_i64();
            if being_deleted && current.is_some_and(|c| c <= grace) {
                return DeletePlan::Keep;
            }
            let deadline = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
            let mut marked = obj.clone();
            let meta = meta_mut(&mut marked);
            meta.insert("deletionTimestamp".into(), json!(format_time(deadline)));
            meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
            return DeletePlan::Mark(marked);
        }
    }
    DeletePlan::Remove
}

/// A Pod whose containers a kubelet may be running: bound to a node and
/// not finished.
fn runs_on_node(pod: &Value) -> bool {
    let bound = pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    bound && !finished
}

/// Remove everything in a terminating Namespace, then the Namespace,
/// in the background (Kubernetes' namespace controller does this).
pub fn spawn_namespace_termination(server: Arc<ApiServer>, namespace: String) {
    tokio::spawn(async move {
        loop {
            match sweep_namespace(&server, &namespace).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!(namespace, error = %e, "namespace termination"),
            }
            tokio::select! {
                _ = server.streams_done.cancelled() => return,
                _ = tokio::time::sleep(NAMESPACE_SWEEP_INTERVAL) => {}
            }
        }
    });
}

/// One pass of namespace termination; true once the Namespace is gone.
async fn sweep_namespace(server: &Arc<ApiServer>, namespace: &str) -> Result<bool, ApiError> {
    let mut remaining = 0;
    for res in RESOURCES.iter().filter(|r| r.namespaced) {
        let ctx = RequestContext::internal(server.clone(), res, Some(namespace));
        let (objects, _) = server
            .storage
            .list(&ctx.prefix())
            .await
            .map_err(ApiError::Storage)?;
        for obj in objects {
            remaining += 1;
            match delete_object(&ctx, object_meta::name(&obj), &DeleteOptions::default()).await {
                Ok(_) => {}
                Err(ApiError::Status(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    if remaining > 0 {
        return Ok(false);
    }
    match server
        .storage
        .delete(&NAMESPACES.key(None, namespace), None)
        .await
    {
        Ok(_) | Err(StoreError::NotFound) => Ok(true),
        Err(e) => Err(ApiError::Storage(e)),
    }
}

/// Restart the termination of Namespaces a previous run left half-deleted.
pub async fn resume_namespace_terminations(server: &Arc<ApiServer>) -> Result<(), ApiError> {
    let (namespaces, _) = server
        .storage
        .list(&NAMESPACES.key_prefix(None))
        .await
        .map_err(ApiError::Storage)?;
    for ns in namespaces {
        if object_meta::meta_str(&ns, "deletionTimestamp").is_some() {
            spawn_namespace_termination(server.clone(), object_meta::name(&ns).to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::registry::{PODS, SERVICES};

    fn grace(g: Option<i64>) -> DeleteOptions {
        DeleteOptions {
            grace_period_seconds: g,
            ..Default::default()
        }
    }

    #[test]
    fn pods_on_a_node_are_marked_then_removed_with_zero_grace() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n", "terminationGracePeriodSeconds": 5}, "status": {"phase": "Running"}});
        let DeletePlan::Mark(marked) = plan(&PODS, &pod, &grace(None)) else {
            panic!("not marked")
        };
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 5);
        assert!(marked["metadata"]["deletionTimestamp"].is_string());
        assert_eq!(plan(&PODS, &marked, &grace(None)), DeletePlan::Keep);
        assert_eq!(plan(&PODS, &marked, &grace(Some(0))), DeletePlan::Remove);
    }

    #[test]
    fn unbound_or_finished_pods_and_other_kinds_go_at_once() {
        let unbound = json!({"metadata": {"name": "p"}, "spec": {}});
        assert_eq!(plan(&PODS, &unbound, &grace(None)), DeletePlan::Remove);
        let done = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n"}, "status": {"phase": "Succeeded"}});
        assert_eq!(plan(&PODS, &done, &grace(None)), DeletePlan::Remove);
        let svc = json!({"metadata": {"name": "web"}, "spec": {}});
        assert_eq!(plan(&SERVICES, &svc, &grace(None)), DeletePlan::Remove);
    }

    #[test]
    fn finalizers_and_namespaces() {
        let held = json!({"metadata": {"name": "web", "finalizers": ["x"]}});
        assert!(matches!(
            plan(&SERVICES, &held, &grace(None)),
            DeletePlan::Mark(_)
        ));
        let ns = json!({"metadata": {"name": "default"}});
        let DeletePlan::Refuse(e) = plan(&NAMESPACES, &ns, &grace(None)) else {
            panic!("default namespace deletable")
        };
        assert_eq!(
            e.message,
            "namespaces \"default\" is forbidden: this namespace may not be deleted"
        );
        let ns = json!({"metadata": {"name": "team"}, "status": {"phase": "Active"}});
        let DeletePlan::Mark(m) = plan(&NAMESPACES, &ns, &grace(None)) else {
            panic!("not marked")
        };
        assert_eq!(m["status"]["phase"], "Terminating");
    }
}
