//! Request bodies: the size limit, and JSON or YAML into a `Value`.

use crate::error::ApiError;
use crate::protobuf;
use api::status::StatusError;
use axum::body::Body;
use axum::http::{header, HeaderMap};
use bytes::Bytes;
use serde_json::Value;

/// Read the whole body, refusing more than `limit` bytes with Kubernetes'
/// 413 before buffering it when Content-Length already says so.
pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || StatusError::request_entity_too_large(&format!("limit is {limit}")).into();
    if declared.is_some_and(|n| n > limit as u64) {
        // Read the upload (up to a bound) before answering: a client still
        // sending when the connection closes sees a broken pipe instead of
        // the 413 it should print.
        if declared.is_some_and(|n| n <= DRAIN_LIMIT as u64) {
            let _ = axum::body::to_bytes(body, DRAIN_LIMIT).await;
        }
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}

/// The largest refused upload that is still read to its end.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// The media type of the request, lower-cased without parameters.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// Whether a media type carries YAML rather than JSON.
pub fn is_yaml(media_type: &str) -> bool {
    media_type.ends_with("yaml")
}

/// JSON and YAML bodies (and the JSON and YAML patch types) are read;
/// protobuf and CBOR are not.
fn readable(media_type: &str) -> bool {
    media_type.is_empty()
        || media_type.ends_with("json")
        || is_yaml(media_type)
        || media_type == "text/plain"
        || media_type == "*/*"
}

/// Decode an object body; JSON unless the media type says YAML.
pub fn decode_object(media_type: &str, bytes: &[u8], kind: &str) -> Result<Value, ApiError> {
    if media_type == protobuf::MEDIA_TYPE {
        if !protobuf::knows(kind) {
            return Err(StatusError::unsupported_media_type(&[
                "application/json",
                "application/yaml",
            ])
            .into());
        }
        return protobuf::decode(kind, bytes).map_err(|e| {
            StatusError::bad_request(format!(
                "unable to decode the protobuf body as a {kind}: {e}"
            ))
            .into()
        });
    }
    let value = decode_value(media_type, bytes)?;
    if !value.is_object() {
        return Err(StatusError::bad_request(
            "the body of the request must be a JSON or YAML object",
        )
        .into());
    }
    Ok(value)
}

/// Decode any JSON or YAML document (a JSON patch is an array).
pub fn decode_value(media_type: &str, bytes: &[u8]) -> Result<Value, ApiError> {
    if !readable(media_type) {
        return Err(
            StatusError::unsupported_media_type(&["application/json", "application/yaml"]).into(),
        );
    }
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(StatusError::bad_request("the body of the request is empty").into());
    }
    if is_yaml(media_type) {
        serde_yaml::from_slice::<Value>(bytes).map_err(|e| {
            StatusError::bad_request(format!("error converting YAML to JSON: yaml: {e}")).into()
        })
    } else {
        serde_json::from_slice::<Value>(bytes).map_err(|e| {
            StatusError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
                .into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_json_and_yaml() {
        let v = decode_object("application/json", br#"{"a":1}"#, "Service").unwrap();
        assert_eq!(v["a"], 1);
        let v = decode_object("application/yaml", b"a: 1\nb: [x]\n", "Service").unwrap();
        assert_eq!(v["b"][0], "x");
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        let e = decode_object("application/json", b"{nope", "Service").unwrap_err();
        let s = e.to_status();
        assert_eq!(s.code, 400);
        assert!(s.message.contains("json parse error"), "{}", s.message);
        let e = decode_object("application/json", b"[1]", "Service").unwrap_err();
        assert_eq!(e.to_status().code, 400);
        let e = decode_object("application/yaml", b"a: [", "Service").unwrap_err();
        assert_eq!(e.to_status().code, 400);
        let e = decode_object("application/vnd.kubernetes.protobuf", b"k8s", "Scale").unwrap_err();
        assert_eq!(e.to_status().code, 415);
        let e =
            decode_object("application/vnd.kubernetes.protobuf", b"k8s", "Service").unwrap_err();
        assert_eq!(e.to_status().code, 400);
        let e = decode_object("application/cbor", b"x", "Service").unwrap_err();
        assert_eq!(e.to_status().code, 415);
    }
}
