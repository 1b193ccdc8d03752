//! The three PATCH body types the API accepts, as pure functions from the
//! current object and the patch to the patched object.

mod json_patch;
mod merge;
mod strategic;
mod strategic_order;
mod strategic_schema;

pub use json_patch::json_patch;
pub use merge::merge_patch;
pub use strategic::strategic_merge;

/// A PATCH request's body type, named by its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply)
    Apply,
}

impl PatchType {
    /// The patch type of a Content-Type header (parameters ignored).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media.to_ascii_lowercase().as_str() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// The Content-Types a PATCH may carry, for 415 answers.
pub const PATCH_CONTENT_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
    "application/strategic-merge-patch+json",
];

/// Apply a JSON, merge or strategic merge patch to an object of `kind`.
/// Server-side apply is the API server's business (it needs field
/// ownership), so `Apply` is refused here.
pub fn apply_patch(
    kind: &str,
    patch_type: PatchType,
    original: &serde_json::Value,
    patch: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    match patch_type {
        PatchType::Json => json_patch(original, patch),
        PatchType::Merge => merge_patch(original, patch),
        PatchType::Strategic => strategic_merge(kind, original, patch),
        PatchType::Apply => Err("apply patches are not applied by apply_patch".to_string()),
    }
}

#[cfg(test)]
mod strategic_tests;
