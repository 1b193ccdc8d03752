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
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;

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

/// Objects of the path's collection that the query selects (shared with
/// the store's cache, not copied), and the store revision the list was
/// read at.
pub async fn select(
    ctx: &RequestContext,
    filter: &Filter,
) -> Result<(Vec<Arc<Value>>, u64), ApiError> {
    let (mut objects, revision) = ctx
        .server
        .storage
        .list_shared(&ctx.prefix())
        .await
        .map_err(ApiError::Storage)?;
    if !filter.is_everything() {
        objects.retain(|o| filter.matches(o));
    }
    Ok((objects, revision))
}

pub async fn list(ctx: RequestContext) -> Result<Response, ApiError> {
    let filter = Filter::from_query(ctx.resource(), &ctx.query, None)?;
    let (objects, revision) = select(&ctx, &filter).await?;
    match table_requested(&ctx.headers) {
        Some(version) => {
            let t = table::render(
                ctx.resource(),
                objects.iter().map(|o| &**o),
                version,
                json!(revision.to_string()),
                true,
                table::include_object(&ctx.query),
            );
            let response = table_response(&t, version);
            drop_later(objects.len(), t);
            Ok(response)
        }
        None => {
            let (api_version, revision) = (ctx.resource().api_version(), revision.to_string());
            let list = ListBody::new(ctx.resource(), &api_version, &objects, &revision);
            Ok(json_response(StatusCode::OK, &list, &[]))
        }
    }
}

/// Tables longer than this are freed off the request's path.
const DROP_LATER_OVER: usize = 64;

/// Free a Table of `len` rows once the response is built: taking apart
/// thousands of rows costs a good part of what building them did, and
/// the client need not wait for it.
fn drop_later<T: Send + 'static>(len: usize, value: T) {
    if len > DROP_LATER_OVER {
        tokio::task::spawn_blocking(move || drop(value));
    }
}

/// A List serialised straight from the shared objects: the same JSON as
/// [`list_object`], without copying any of them.
#[derive(Serialize)]
struct ListBody<'a> {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    metadata: ListMeta<'a>,
    items: Vec<ListItem<'a>>,
}

#[derive(Serialize)]
struct ListMeta<'a> {
    #[serde(rename = "resourceVersion")]
    resource_version: &'a str,
}

/// An item with the list's kind and apiVersion, in place when the object
/// has them and appended when not, as `list_object` sets them.
struct ListItem<'a> {
    object: &'a Value,
    kind: &'a str,
    api_version: &'a str,
}

impl<'a> ListBody<'a> {
    fn new(
        res: &'a ResourceInfo,
        api_version: &'a str,
        items: &'a [Arc<Value>],
        revision: &'a str,
    ) -> Self {
        ListBody {
            kind: res.list_kind(),
            api_version,
            metadata: ListMeta {
                resource_version: revision,
            },
            items: items
                .iter()
                .map(|object| ListItem {
                    object,
                    kind: res.kind,
                    api_version,
                })
                .collect(),
        }
    }
}

impl Serialize for ListItem<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Some(fields) = self.object.as_object() else {
            return self.object.serialize(serializer);
        };
        let mut map = serializer.serialize_map(None)?;
        for (k, v) in fields {
            match k.as_str() {
                "kind" => map.serialize_entry(k, self.kind)?,
                "apiVersion" => map.serialize_entry(k, self.api_version)?,
                _ => map.serialize_entry(k, v)?,
            }
        }
        if !fields.contains_key("kind") {
            map.serialize_entry("kind", self.kind)?;
        }
        if !fields.contains_key("apiVersion") {
            map.serialize_entry("apiVersion", self.api_version)?;
        }
        map.end()
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

#[cfg(test)]
mod tests {
    use super::*;
    use api::registry::SERVICES;

    #[test]
    fn shared_list_body_is_the_list_object() {
        let items = vec![
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {}}),
            // Without kind and apiVersion: both appended, in list_object's order.
            json!({"metadata": {"name": "b"}, "spec": {"type": "NodePort"}}),
            // A stale kind is replaced in place.
            json!({"kind": "Old", "metadata": {"name": "c"}}),
        ];
        let shared: Vec<Arc<Value>> = items.iter().cloned().map(Arc::new).collect();
        let api_version = SERVICES.api_version();
        let body = ListBody::new(&SERVICES, &api_version, &shared, "42");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            serde_json::to_string(&list_object(&SERVICES, items, "42")).unwrap()
        );
    }
}
