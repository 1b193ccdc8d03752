//! The one entry point for every resource path: parse it, then hand the
//! request to the verb's handler. No kind has handlers of its own.

use crate::error::{method_not_allowed, no_such_path, ApiError};
use crate::query::Query;
use crate::request_path::{self, ResourcePath};
use crate::server::ApiServer;
use crate::{exec, logs, read, scale, watch, write};
use api::registry::ResourceInfo;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// What every verb handler needs to know about its request.
pub struct RequestContext {
    pub server: Arc<ApiServer>,
    pub path: ResourcePath,
    pub query: Query,
    pub headers: HeaderMap,
}

impl RequestContext {
    /// A context for work the server does on its own behalf (namespace
    /// termination): no query, no headers.
    pub fn internal(
        server: Arc<ApiServer>,
        resource: &'static ResourceInfo,
        namespace: Option<&str>,
    ) -> Self {
        RequestContext {
            server,
            path: ResourcePath {
                resource,
                namespace: namespace.map(str::to_string),
                name: None,
                subresource: None,
                watch_prefix: false,
            },
            query: Query::default(),
            headers: HeaderMap::new(),
        }
    }

    pub fn resource(&self) -> &'static ResourceInfo {
        self.path.resource
    }

    /// The namespace objects of this request live in (`None` for
    /// cluster-scoped kinds).
    pub fn namespace(&self) -> Option<&str> {
        if self.path.resource.namespaced {
            self.path.namespace.as_deref()
        } else {
            None
        }
    }

    /// The object name of the path; only called on named paths.
    pub fn name(&self) -> &str {
        self.path.name.as_deref().unwrap_or("")
    }

    pub fn key(&self, name: &str) -> String {
        self.path.resource.key(self.namespace(), name)
    }

    /// The storage prefix of the path's collection.
    pub fn prefix(&self) -> String {
        self.path.resource.key_prefix(self.namespace())
    }

    pub fn watch_requested(&self) -> bool {
        self.path.watch_prefix || self.query.flag("watch")
    }

    pub fn dry_run(&self) -> bool {
        self.query.non_empty("dryRun").is_some()
    }
}

/// A JSON response with Kubernetes' content type, plus `Warning` headers.
pub fn json_response<T: serde::Serialize + ?Sized>(
    code: StatusCode,
    body: &T,
    warnings: &[String],
) -> Response {
    let mut response = (
        code,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response();
    for w in warnings {
        // RFC 7234 warning, as Kubernetes sends: `299 - "text"`.
        let text = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
    response
}

pub async fn dispatch(State(server): State<Arc<ApiServer>>, request: Request) -> Response {
    match route(server, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn route(server: Arc<ApiServer>, request: Request) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let path = request_path::parse(parts.uri.path()).ok_or_else(no_such_path)?;
    let query = Query::parse(parts.uri.query())?;
    let ctx = RequestContext {
        server,
        path,
        query,
        headers: parts.headers.clone(),
    };
    let method = parts.method.clone();
    let named = ctx.path.name.is_some();
    match (ctx.path.subresource.as_deref(), &method, named) {
        (None, &Method::GET, _) if ctx.watch_requested() => watch::watch(ctx).await,
        (None, &Method::GET, false) => read::list(ctx).await,
        (None, &Method::GET, true) => read::get(ctx).await,
        (None, &Method::POST, false) => write::create(ctx, body).await,
        (None, &Method::PUT, true) => write::update(ctx, body).await,
        (None, &Method::PATCH, true) => write::patch(ctx, body).await,
        (None, &Method::DELETE, true) => write::delete(ctx, body).await,
        (None, &Method::DELETE, false) => write::delete_collection(ctx, body).await,
        (Some("status"), &Method::GET, _) => read::get(ctx).await,
        (Some("status"), &Method::PUT, _) => write::update(ctx, body).await,
        (Some("status"), &Method::PATCH, _) => write::patch(ctx, body).await,
        (Some("scale"), &Method::GET, _) => scale::get(ctx).await,
        (Some("scale"), &Method::PUT, _) => scale::update(ctx, body).await,
        (Some("scale"), &Method::PATCH, _) => scale::patch(ctx, body).await,
        (Some("binding"), &Method::POST, _) => write::bind(ctx, body).await,
        (Some("log"), &Method::GET, _) => logs::logs(ctx).await,
        (Some(sub @ ("exec" | "attach")), &Method::GET | &Method::POST, _) => {
            let attach = sub == "attach";
            exec::stream(ctx, &mut parts, attach).await
        }
        _ => Err(method_not_allowed().into()),
    }
}
