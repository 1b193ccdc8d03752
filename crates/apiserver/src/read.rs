//! GET of one object and of a collection, as JSON or as a server-printed
//! Table.

use crate::error::ApiError;
use crate::negotiate::{table_requested, TableVersion};
use crate::resources::{json_response, RequestContext};
use crate::selection::Filter;
use crate::table;
use api::registry::ResourceInfo;
use api::status::StatusError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

/// The stored object at `key`, or 404 for the request's kind and name.
pub async fn load(ctx: &RequestContext, name: &str) -> Result<Value, ApiError> {
    ctx.server
        .storage
        .get(&ctx.key(name))
        .await
        .map_err(ApiError::Storage)?
        .ok_or_else(|| StatusError::not_found(ctx.resource(), name).into())
}

pub async fn get(ctx: RequestContext) -> Result<Response, ApiError> {
    let obj = load(&ctx, ctx.name()).await?;
    match table_requested(&ctx.headers) {
        Some(version) => {
            let rv = obj["metadata"]["resourceVersion"].clone();
            let t = table::render(
                ctx.resource(),
                &[obj],
                version,
                rv,
                true,
                table::include_object(&ctx.query),
            );
            Ok(table_response(&t, version))
        }
        None => Ok(json_response(StatusCode::OK, &obj, &[])),
    }
}

/// Objects of the path's collection that the query selects, and the
/// store revision the list was read at.
pub async fn select(ctx: &RequestContext, filter: &Filter) -> Result<(Vec<Value>, u64), ApiError> {
    let (objects, revision) = ctx
        .server
        .storage
        .list(&ctx.prefix())
        .await
        .map_err(ApiError::Storage)?;
    let selected = objects.into_iter().filter(|o| filter.matches(o)).collect();
    Ok((selected, revision))
}

pub async fn list(ctx: RequestContext) -> Result<Response, ApiError> {
    let filter = Filter::from_query(ctx.resource(), &ctx.query, None)?;
    let (objects, revision) = select(&ctx, &filter).await?;
    let rv = json!(revision.to_string());
    match table_requested(&ctx.headers) {
        Some(version) => {
            let t = table::render(
                ctx.resource(),
                &objects,
                version,
                rv,
                true,
                table::include_object(&ctx.query),
            );
            Ok(table_response(&t, version))
        }
        None => Ok(json_response(
            StatusCode::OK,
            &list_object(ctx.resource(), objects, &revision.to_string()),
            &[],
        )),
    }
}

/// `{kind: ServiceList, apiVersion, metadata: {resourceVersion}, items}`;
/// items carry their kind and apiVersion, as Kubernetes' do.
pub fn list_object(res: &ResourceInfo, mut items: Vec<Value>, revision: &str) -> Value {
    for item in &mut items {
        item["kind"] = json!(res.kind);
        item["apiVersion"] = json!(res.api_version());
    }
    json!({
        "kind": res.list_kind(),
        "apiVersion": res.api_version(),
        "metadata": {"resourceVersion": revision},
        "items": items,
    })
}

pub fn table_response(table: &Value, version: TableVersion) -> Response {
    let mut r = json_response(StatusCode::OK, table, &[]);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(version.content_type()),
    );
    r
}
