//! Which objects a list or watch returns: `labelSelector` and
//! `fieldSelector` of the query, plus the object name of a named watch.

use crate::error::ApiError;
use crate::object_meta;
use crate::query::Query;
use api::registry::ResourceInfo;
use api::selector::{FieldSelector, LabelSelector};
use serde_json::Value;

/// The selectors of one request.
#[derive(Debug, Clone)]
pub struct Filter {
    labels: LabelSelector,
    fields: FieldSelector,
    /// The object a `/watch/.../<name>` path names.
    name: Option<String>,
}

impl Filter {
    /// The selectors of the query for objects of `res`; `name` narrows to
    /// one object. Malformed selectors are 400s with Kubernetes' messages.
    pub fn from_query(
        res: &ResourceInfo,
        query: &Query,
        name: Option<&str>,
    ) -> Result<Filter, ApiError> {
        let labels = match query.non_empty("labelSelector") {
            Some(s) => LabelSelector::parse(s)?,
            None => LabelSelector::everything(),
        };
        let fields = match query.non_empty("fieldSelector") {
            Some(s) => FieldSelector::parse(res.kind, s)?,
            None => FieldSelector::everything(res.kind),
        };
        Ok(Filter {
            labels,
            fields,
            name: name.map(str::to_string),
        })
    }

    /// True when every object matches (no selector at all).
    pub fn is_everything(&self) -> bool {
        self.labels.is_everything() && self.fields.is_empty() && self.name.is_none()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.name
            .as_deref()
            .is_none_or(|n| object_meta::name(obj) == n)
            && self.labels.matches_object(obj)
            && self.fields.matches(obj)
    }
}
