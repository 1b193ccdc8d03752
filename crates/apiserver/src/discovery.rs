//! Discovery (`/api`, `/apis`, group versions), `/version`, health and
//! OpenAPI endpoints: what kubectl reads before it does anything. The
//! documents come from `api::discovery` and `api::openapi`; this file only
//! picks one per request.

use crate::error::{no_such_path, ApiError};
use crate::resources::json_response;
use api::discovery::{self as docs, AGGREGATED_CONTENT_TYPE};
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value;

pub async fn ok() -> &'static str {
    "ok"
}

pub async fn version() -> Response {
    json_response(StatusCode::OK, &docs::version_info(), &[])
}

/// Whether the request's Accept asks for aggregated discovery.
fn wants_aggregated(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(docs::accepts_aggregated)
}

fn aggregated(doc: &Value) -> Response {
    let mut r = json_response(StatusCode::OK, doc, &[]);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(AGGREGATED_CONTENT_TYPE),
    );
    r
}

pub async fn core_versions(headers: HeaderMap) -> Response {
    if wants_aggregated(&headers) {
        return aggregated(&docs::aggregated_core());
    }
    json_response(StatusCode::OK, &docs::api_versions(""), &[])
}

pub async fn groups(headers: HeaderMap) -> Response {
    if wants_aggregated(&headers) {
        return aggregated(&docs::aggregated_groups());
    }
    json_response(StatusCode::OK, &docs::api_group_list(), &[])
}

pub async fn group(Path(group): Path<String>) -> Result<Response, ApiError> {
    let doc = docs::api_group(&group).ok_or_else(no_such_path)?;
    Ok(json_response(StatusCode::OK, &doc, &[]))
}

pub async fn core_resources(Path(version): Path<String>) -> Result<Response, ApiError> {
    let doc = docs::api_resource_list("", &version).ok_or_else(no_such_path)?;
    Ok(json_response(StatusCode::OK, &doc, &[]))
}

pub async fn group_resources(
    Path((group, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let doc = docs::api_resource_list(&group, &version).ok_or_else(no_such_path)?;
    Ok(json_response(StatusCode::OK, &doc, &[]))
}

pub async fn openapi_index() -> Response {
    json_response(StatusCode::OK, &api::openapi::openapi_v3_index(), &[])
}

pub async fn openapi_document(Path(path): Path<String>) -> Result<Response, ApiError> {
    let doc = api::openapi::openapi_v3_document(&path).ok_or_else(no_such_path)?;
    Ok(json_response(StatusCode::OK, doc, &[]))
}
