//! Create, update (PUT), patch and bind: every write that stores an
//! object goes through `create_object` or `save_update`, so admission and
//! optimistic concurrency are the same for every kind and verb.

use crate::admission::{admit, Admitted};
use crate::allocator::settled_write;
use crate::body::{content_type, decode_object, decode_value, read_limited};
use crate::decoding::{check_request_body, FieldValidation};
use crate::error::ApiError;
use crate::object_meta::{self, carry_over, generate_name, meta_mut, stamp_created};
use crate::patch::{self, PatchType};
use crate::read::load;
use crate::resources::{json_response, RequestContext};
use crate::storage::Write;
use api::field_error::{FieldError, FieldErrorType};
use api::registry::{ResourceInfo, NAMESPACES};
use api::status::StatusError;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use store::StoreError;

pub use crate::delete::{delete, delete_collection};

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteTarget {
    /// The object itself: `status` is kept as stored when the kind has a
    /// status subresource.
    Main,
    /// `.../status`: only `status` changes.
    Status,
}

impl WriteTarget {
    fn of(ctx: &RequestContext) -> WriteTarget {
        match ctx.path.subresource.as_deref() {
            Some("status") => WriteTarget::Status,
            _ => WriteTarget::Main,
        }
    }
}

fn has_status_subresource(res: &ResourceInfo) -> bool {
    res.subresources.contains(&"status")
}

/// Kinds whose PUT creates a missing object, as Kubernetes' Endpoints and
/// Events do.
fn creates_on_update(res: &ResourceInfo) -> bool {
    res.group.is_empty() && matches!(res.kind, "Endpoints" | "Event")
}

/// Read and decode the body of a write.
async fn read_object(ctx: &RequestContext, body: Body, kind: &str) -> Result<Value, ApiError> {
    let media = content_type(&ctx.headers);
    let bytes = read_limited(&ctx.headers, body, ctx.server.config.max_body_bytes).await?;
    decode_object(&media, &bytes, kind)
}

/// The body's apiVersion/kind, when given, must be the path's.
fn check_kind(res: &ResourceInfo, obj: &Value) -> Result<(), ApiError> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if !api_version.is_empty() && api_version != res.api_version() {
        return Err(StatusError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            res.api_version()
        ))
        .into());
    }
    if !kind.is_empty() && kind != res.kind {
        return Err(StatusError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            res.kind
        ))
        .into());
    }
    Ok(())
}

/// The body's namespace, when given, must be the path's; then it is set.
fn check_namespace(ctx: &RequestContext, obj: &mut Value) -> Result<(), ApiError> {
    let path_ns = ctx.namespace().map(str::to_string);
    match (object_meta::namespace(obj), path_ns.as_deref()) {
        (Some(body_ns), Some(path_ns)) if body_ns != path_ns => Err(StatusError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )
        .into()),
        _ => {
            let meta = meta_mut(obj);
            match path_ns {
                Some(ns) => meta.insert("namespace".into(), json!(ns)),
                None => meta.remove("namespace"),
            };
            Ok(())
        }
    }
}

pub async fn create(ctx: RequestContext, body: Body) -> Result<Response, ApiError> {
    let res = ctx.resource();
    if res.namespaced && ctx.namespace().is_none() {
        return Err(crate::error::method_not_allowed().into());
    }
    let mut obj = read_object(&ctx, body, res.kind).await?;
    check_kind(res, &obj)?;
    check_request_body(res, &obj, FieldValidation::from_query(&ctx.query)?)?;
    check_namespace(&ctx, &mut obj)?;
    let created = create_object(&ctx, obj).await?;
    Ok(created.response(StatusCode::CREATED))
}

/// A stored object and the warnings its write produced.
pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
}

impl Written {
    pub fn response(&self, code: StatusCode) -> Response {
        json_response(code, &self.object, &self.warnings)
    }
}

/// Name, stamp, admit and store a new object of the request's kind.
pub async fn create_object(ctx: &RequestContext, mut obj: Value) -> Result<Written, ApiError> {
    let res = ctx.resource();
    let mode = FieldValidation::from_query(&ctx.query)?;
    let generate_from = object_meta::meta_str(&obj, "generateName")
        .filter(|g| !g.is_empty())
        .map(str::to_string);
    if object_meta::name(&obj).is_empty() {
        match &generate_from {
            Some(prefix) => {
                meta_mut(&mut obj).insert("name".into(), json!(generate_name(prefix)));
            }
            None => {
                let required = FieldError {
                    field: "metadata.name".into(),
                    error_type: FieldErrorType::Required,
                    value: None,
                    detail: "name or generateName is required".into(),
                };
                return Err(StatusError::invalid(res, "", &[required]).into());
            }
        }
    }
    if let Some(ns) = ctx.namespace() {
        require_active_namespace(ctx, res, ns).await?;
    }
    stamp_created(&mut obj, &res.api_version(), res.kind);
    // A client cannot create an object with a status it made up; the
    // component that owns the status writes it through `/status`.
    api::defaults::reset_status_for_create(res.kind, &mut obj);
    let Admitted {
        warnings,
        mut reservation,
    } = admit(&ctx.server, res, &mut obj, None, mode).await?;
    if ctx.dry_run() {
        // Dropping the reservation gives the addresses back.
        return Ok(Written {
            object: obj,
            warnings,
        });
    }
    // A generated name that collides is drawn again, as Kubernetes does.
    for _ in 0..5 {
        let name = object_meta::name(&obj).to_string();
        let key = ctx.key(&name);
        let (result, unsettled) = settled_write(
            &ctx.server.storage,
            key,
            Write::Create(obj.clone()),
            reservation,
        )
        .await;
        reservation = unsettled;
        match result {
            Ok(object) => return Ok(Written { object, warnings }),
            Err(StoreError::AlreadyExists) if generate_from.is_some() => {
                let prefix = generate_from.as_deref().unwrap_or("");
                meta_mut(&mut obj).insert("name".into(), json!(generate_name(prefix)));
                if let Some(r) = reservation.as_mut() {
                    r.rename(&ctx.key(object_meta::name(&obj)));
                }
            }
            Err(StoreError::AlreadyExists) => {
                return Err(StatusError::already_exists(res, &name).into())
            }
            Err(e) => return Err(ApiError::Storage(e)),
        }
    }
    Err(StatusError::already_exists(res, object_meta::name(&obj)).into())
}

/// 404 when the namespace is missing, 403 while it is being deleted.
async fn require_active_namespace(
    ctx: &RequestContext,
    res: &ResourceInfo,
    ns: &str,
) -> Result<(), ApiError> {
    let namespace = ctx
        .server
        .storage
        .get(&NAMESPACES.key(None, ns))
        .await
        .map_err(ApiError::Storage)?
        .ok_or_else(|| StatusError::not_found(&NAMESPACES, ns))?;
    if object_meta::meta_str(&namespace, "deletionTimestamp").is_some() {
        return Err(StatusError::forbidden(
            res,
            "",
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        )
        .into());
    }
    Ok(())
}

pub async fn update(ctx: RequestContext, body: Body) -> Result<Response, ApiError> {
    let res = ctx.resource();
    let name = ctx.name().to_string();
    let mut obj = read_object(&ctx, body, res.kind).await?;
    let target = WriteTarget::of(&ctx);
    check_kind(res, &obj)?;
    check_request_body(res, &obj, FieldValidation::from_query(&ctx.query)?)?;
    check_namespace(&ctx, &mut obj)?;
    match object_meta::name(&obj) {
        "" => {
            meta_mut(&mut obj).insert("name".into(), json!(name));
        }
        body_name if body_name != name => {
            return Err(StatusError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            ))
            .into())
        }
        _ => {}
    }
    let client_rv = object_meta::resource_version(&obj).map_err(|v| {
        StatusError::bad_request(format!("invalid resourceVersion {v:?}: not a number"))
    })?;
    let old = match ctx
        .server
        .storage
        .get(&ctx.key(&name))
        .await
        .map_err(ApiError::Storage)?
    {
        Some(old) => old,
        None if creates_on_update(res) && target == WriteTarget::Main => {
            let created = create_object(&ctx, obj).await?;
            return Ok(created.response(StatusCode::CREATED));
        }
        None => return Err(StatusError::not_found(res, &name).into()),
    };
    if client_rv.is_some() && client_rv != stored_rv(&old) {
        return Err(StatusError::conflict(res, &name).into());
    }
    let (wanted_uid, stored_uid) = (
        object_meta::meta_str(&obj, "uid").unwrap_or(""),
        object_meta::meta_str(&old, "uid").unwrap_or(""),
    );
    if !wanted_uid.is_empty() && wanted_uid != stored_uid {
        // The object was deleted and created again since the client read it.
        return Err(StatusError::conflict_because(
            res,
            &name,
            &format!("Precondition failed: UID in precondition: {wanted_uid}, UID in object meta: {stored_uid}"),
        )
        .into());
    }
    let saved = save_update(&ctx, &old, obj, target)
        .await?
        .ok_or_else(|| StatusError::conflict(res, &name))?;
    Ok(saved.response(StatusCode::OK))
}

fn finalizers(obj: &Value) -> Vec<Value> {
    obj["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub fn stored_rv(obj: &Value) -> Option<u64> {
    object_meta::resource_version(obj).ok().flatten()
}

/// Store `new` in place of `old` after admission. `Ok(None)`: `old` is no
/// longer current (someone wrote in between); the caller retries or
/// reports a conflict.
pub async fn save_update(
    ctx: &RequestContext,
    old: &Value,
    mut new: Value,
    target: WriteTarget,
) -> Result<Option<Written>, ApiError> {
    let res = ctx.resource();
    let mode = FieldValidation::from_query(&ctx.query)?;
    let name = object_meta::name(old).to_string();
    new = match target {
        WriteTarget::Main => {
            if has_status_subresource(res) {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        new.as_object_mut().map(|o| o.remove("status"));
                    }
                }
            }
            carry_over(old, &mut new);
            new
        }
        WriteTarget::Status => {
            let mut merged = old.clone();
            match new.get("status") {
                Some(s) => merged["status"] = s.clone(),
                None => {
                    merged.as_object_mut().map(|o| o.remove("status"));
                }
            }
            merged
        }
    };
    let old_rv = stored_rv(old);
    if let Some(rv) = old_rv {
        meta_mut(&mut new).insert("resourceVersion".into(), json!(rv.to_string()));
    }
    let Admitted {
        warnings,
        reservation,
    } = admit(&ctx.server, res, &mut new, Some(old), mode).await?;
    if &new == old || ctx.dry_run() {
        // Nothing changed: no new revision and no watch event, as in
        // Kubernetes. (Dropping the reservation gives it back.)
        return Ok(Some(Written {
            object: new,
            warnings,
        }));
    }
    let key = ctx.key(&name);
    let finalized = object_meta::meta_str(&new, "deletionTimestamp").is_some()
        && !finalizers(old).is_empty()
        && finalizers(&new).is_empty();
    let write = if finalized {
        // The last finalizer of an object being deleted is gone: the
        // deletion completes.
        Write::Delete(old_rv)
    } else {
        Write::Update(new, old_rv)
    };
    let (result, _unsettled) = settled_write(&ctx.server.storage, key, write, reservation).await;
    match result {
        Ok(object) => Ok(Some(Written { object, warnings })),
        Err(StoreError::Conflict) => Ok(None),
        Err(StoreError::NotFound) => Err(StatusError::not_found(res, &name).into()),
        Err(e) => Err(ApiError::Storage(e)),
    }
}

/// Retries of a patch whose read-modify-write lost a race.
const PATCH_ATTEMPTS: usize = 5;

pub async fn patch(ctx: RequestContext, body: Body) -> Result<Response, ApiError> {
    let res = ctx.resource();
    let name = ctx.name().to_string();
    let media = content_type(&ctx.headers);
    let patch_type = patch::patch_type(&media)?;
    let bytes = read_limited(&ctx.headers, body, ctx.server.config.max_body_bytes).await?;
    let doc = decode_value(&media, &bytes)?;
    let target = WriteTarget::of(&ctx);
    for _ in 0..PATCH_ATTEMPTS {
        let old = match ctx
            .server
            .storage
            .get(&ctx.key(&name))
            .await
            .map_err(ApiError::Storage)?
        {
            Some(old) => old,
            None if patch_type == PatchType::Apply && target == WriteTarget::Main => {
                return apply_create(&ctx, doc).await;
            }
            None => return Err(StatusError::not_found(res, &name).into()),
        };
        let patched = patch::apply(res, patch_type, &old, &doc)?;
        let wanted_rv = object_meta::resource_version(&patched).ok().flatten();
        if wanted_rv.is_some() && wanted_rv != stored_rv(&old) {
            return Err(StatusError::conflict(res, &name).into());
        }
        if let Some(saved) = save_update(&ctx, &old, patched, target).await? {
            return Ok(saved.response(StatusCode::OK));
        }
    }
    Err(StatusError::conflict(res, &name).into())
}

/// Server-side apply of an object that does not exist yet: create it.
async fn apply_create(ctx: &RequestContext, mut obj: Value) -> Result<Response, ApiError> {
    let res = ctx.resource();
    if !obj.is_object() {
        return Err(StatusError::bad_request("an applied configuration must be an object").into());
    }
    check_kind(res, &obj)?;
    check_namespace(ctx, &mut obj)?;
    let name = ctx.name();
    match object_meta::name(&obj) {
        n if n == name => {}
        "" => {
            meta_mut(&mut obj).insert("name".into(), json!(name));
        }
        other => {
            return Err(StatusError::bad_request(format!(
                "the name of the object ({other}) does not match the name on the URL ({name})"
            ))
            .into())
        }
    }
    let created = create_object(ctx, obj).await?;
    Ok(created.response(StatusCode::CREATED))
}

/// `POST pods/<name>/binding`: the scheduler assigns a Pod to a node.
pub async fn bind(ctx: RequestContext, body: Body) -> Result<Response, ApiError> {
    let res = ctx.resource();
    let name = ctx.name().to_string();
    let binding = read_object(&ctx, body, "Binding").await?;
    let node = binding["target"]["name"].as_str().unwrap_or("").to_string();
    if node.is_empty() {
        let e = FieldError {
            field: "target.name".into(),
            error_type: FieldErrorType::Required,
            value: None,
            detail: String::new(),
        };
        return Err(StatusError::invalid(res, &name, &[e]).into());
    }
    for _ in 0..PATCH_ATTEMPTS {
        let mut pod = load(&ctx, &name).await?;
        let current = pod["spec"]["nodeName"].as_str().unwrap_or("");
        if !current.is_empty() {
            return Err(StatusError::conflict_because(
                res,
                &name,
                &format!("pod {name} is already assigned to node \"{current}\""),
            )
            .into());
        }
        let rv = stored_rv(&pod);
        pod["spec"]["nodeName"] = json!(node);
        match ctx.server.storage.update(&ctx.key(&name), pod, rv).await {
            Ok(_) => {
                let ok = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
                return Ok(json_response(StatusCode::CREATED, &ok, &[]));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(ApiError::Storage(e)),
        }
    }
    Err(StatusError::conflict(res, &name).into())
}
