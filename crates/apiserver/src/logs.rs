//! `pods/<name>/log`: the container's log as plain text, streamed from the
//! pod runner line by line.

use crate::error::ApiError;
use crate::read::load;
use crate::resources::RequestContext;
use api::status::StatusError;
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use podio::{ContainerRef, LogOptions, PodIoError};

/// The status a pod runner failure is reported with.
pub fn podio_status(e: PodIoError) -> StatusError {
    match e {
        PodIoError::NotFound(m) => StatusError {
            code: 404,
            reason: "NotFound".into(),
            message: m,
            details: None,
        },
        PodIoError::BadRequest(m) => StatusError::bad_request(m),
        PodIoError::Internal(m) => StatusError::internal(m),
    }
}

/// 400 unless `container` is one of the Pod's containers.
pub fn check_container(pod: &serde_json::Value, container: Option<&str>) -> Result<(), ApiError> {
    let Some(wanted) = container else {
        return Ok(());
    };
    let known = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|list| pod["spec"][list].as_array().into_iter().flatten())
        .any(|c| c["name"].as_str() == Some(wanted));
    if known {
        Ok(())
    } else {
        let pod_name = crate::object_meta::name(pod);
        Err(StatusError::bad_request(format!(
            "container {wanted} is not valid for pod {pod_name}"
        ))
        .into())
    }
}

fn unsigned(ctx: &RequestContext, key: &str) -> Result<Option<u64>, ApiError> {
    match ctx.query.number(key)? {
        Some(n) if n < 0 => {
            Err(StatusError::bad_request(format!("{key} must be non-negative")).into())
        }
        other => Ok(other.map(|n| n as u64)),
    }
}

pub async fn logs(ctx: RequestContext) -> Result<Response, ApiError> {
    let pod = load(&ctx, ctx.name()).await?;
    let container = ctx.query.non_empty("container").map(str::to_string);
    check_container(&pod, container.as_deref())?;
    let options = LogOptions {
        follow: ctx.query.flag("follow"),
        tail_lines: unsigned(&ctx, "tailLines")?,
        timestamps: ctx.query.flag("timestamps"),
        previous: ctx.query.flag("previous"),
        since_seconds: unsigned(&ctx, "sinceSeconds")?,
        limit_bytes: unsigned(&ctx, "limitBytes")?,
    };
    let target = ContainerRef {
        namespace: ctx.namespace().unwrap_or("default").to_string(),
        pod: ctx.name().to_string(),
        container,
    };
    let lines = ctx
        .server
        .podio
        .logs(target, options)
        .await
        .map_err(podio_status)?;
    // The stream ends at shutdown too, so a `logs -f` cannot hold the
    // server open.
    let done = ctx.server.streams_done.clone();
    let lines = lines.take_until(async move { done.cancelled().await });
    let body = Body::from_stream(lines.map(Ok::<_, std::convert::Infallible>));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
        body,
    )
        .into_response())
}
