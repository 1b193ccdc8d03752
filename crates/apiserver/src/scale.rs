//! `deployments|replicasets/<name>/scale`: the autoscaling/v1 Scale view of
//! an object's `spec.replicas`.

use crate::body::{content_type, decode_object, decode_value, read_limited};
use crate::error::ApiError;
use crate::patch;
use crate::read::load;
use crate::resources::{json_response, RequestContext};
use crate::write::{save_update, stored_rv, WriteTarget};
use api::status::StatusError;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

/// The Scale of a Deployment or ReplicaSet.
pub fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let mut scale_meta = json!({});
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(field) {
            scale_meta[field] = v.clone();
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector_string(&obj["spec"]["selector"]),
        },
    })
}

/// A LabelSelector as the text form `app=web,tier in (a,b)`.
fn selector_string(selector: &Value) -> String {
    let mut terms: Vec<String> = selector["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    for expr in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = expr["key"].as_str().unwrap_or("");
        let values: Vec<&str> = expr["values"]
            .as_array()
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let term = match expr["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        terms.push(term);
    }
    terms.sort();
    terms.join(",")
}

pub async fn get(ctx: RequestContext) -> Result<Response, ApiError> {
    let obj = load(&ctx, ctx.name()).await?;
    Ok(json_response(StatusCode::OK, &scale_of(&obj), &[]))
}

pub async fn update(ctx: RequestContext, body: Body) -> Result<Response, ApiError> {
    let media = content_type(&ctx.headers);
    let bytes = read_limited(&ctx.headers, body, ctx.server.config.max_body_bytes).await?;
    let scale = decode_object(&media, &bytes, "Scale")?;
    let old = load(&ctx, ctx.name()).await?;
    apply_scale(&ctx, old, &scale).await
}

pub async fn patch(ctx: RequestContext, body: Body) -> Result<Response, ApiError> {
    let media = content_type(&ctx.headers);
    let patch_type = patch::patch_type(&media)?;
    let bytes = read_limited(&ctx.headers, body, ctx.server.config.max_body_bytes).await?;
    let doc = decode_value(&media, &bytes)?;
    // Like the main PATCH: a patch that names no resourceVersion is applied
    // again to the newest object when a controller wrote in between (the
    // Deployment controller updates status right after every scale).
    let pinned = doc["metadata"]["resourceVersion"].is_string();
    for _ in 0..PATCH_ATTEMPTS {
        let old = load(&ctx, ctx.name()).await?;
        let scale = patch::apply(ctx.resource(), patch_type, &scale_of(&old), &doc)?;
        match apply_scale(&ctx, old, &scale).await {
            Err(e) if !pinned && e.is_conflict() => continue,
            answer => return answer,
        }
    }
    Err(StatusError::conflict(ctx.resource(), ctx.name()).into())
}

/// How often a scale patch is re-applied after a write conflict.
const PATCH_ATTEMPTS: usize = 5;

/// Write the replicas of `scale` into the object and answer with the new
/// Scale.
async fn apply_scale(
    ctx: &RequestContext,
    old: Value,
    scale: &Value,
) -> Result<Response, ApiError> {
    let res = ctx.resource();
    let name = ctx.name();
    let wanted_rv = crate::object_meta::resource_version(scale).ok().flatten();
    if wanted_rv.is_some() && wanted_rv != stored_rv(&old) {
        return Err(StatusError::conflict(res, name).into());
    }
    let replicas = scale["spec"]["replicas"].as_i64().unwrap_or(0);
    if replicas < 0 {
        let e = api::field_error::FieldError {
            field: "spec.replicas".into(),
            error_type: api::field_error::FieldErrorType::Invalid,
            value: Some(json!(replicas)),
            detail: "must be greater than or equal to 0".into(),
        };
        return Err(StatusError {
            message: format!("Scale.autoscaling \"{name}\" is invalid: {}", e.message()),
            ..StatusError::invalid(res, name, &[e])
        }
        .into());
    }
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(replicas);
    let saved = save_update(ctx, &old, new, WriteTarget::Main)
        .await?
        .ok_or_else(|| StatusError::conflict(res, name))?;
    Ok(json_response(
        StatusCode::OK,
        &scale_of(&saved.object),
        &saved.warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_view() {
        let d = json!({
            "metadata": {"name": "web", "namespace": "default", "resourceVersion": "7", "labels": {"x": "y"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "a": "b"}}},
            "status": {"replicas": 2},
        });
        let s = scale_of(&d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "a=b,app=web");
        assert_eq!(s["metadata"]["resourceVersion"], "7");
        assert!(s["metadata"].get("labels").is_none());
    }
}
