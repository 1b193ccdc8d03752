//! PATCH bodies: which format a Content-Type names, and applying one (the
//! formats themselves are `api::patch`'s).

use crate::error::ApiError;
use api::patch::{apply_patch, strategic_merge, PATCH_CONTENT_TYPES};
use api::registry::ResourceInfo;
use api::status::StatusError;
use serde_json::Value;

pub use api::patch::PatchType;

/// The patch type of a request's media type; 415 for any other.
pub fn patch_type(media: &str) -> Result<PatchType, ApiError> {
    PatchType::from_content_type(media)
        .ok_or_else(|| StatusError::unsupported_media_type(PATCH_CONTENT_TYPES).into())
}

/// `patch` applied to `current`. Server-side apply merges the applied
/// configuration like a strategic merge patch: fields it names are set,
/// lists with merge keys are merged by key, the rest is kept.
pub fn apply(
    res: &ResourceInfo,
    patch_type: PatchType,
    current: &Value,
    patch: &Value,
) -> Result<Value, ApiError> {
    let result = match patch_type {
        PatchType::Apply => {
            if !patch.is_object() {
                return Err(
                    StatusError::bad_request("an applied configuration must be an object").into(),
                );
            }
            strategic_merge(res.kind, current, patch)
        }
        other => apply_patch(res.kind, other, current, patch),
    };
    result.map_err(|e| StatusError::bad_request(e).into())
}
