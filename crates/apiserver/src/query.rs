//! The query string of a request: repeated keys kept (`command=sh&command=-c`).

use crate::error::ApiError;
use api::status::StatusError;

/// Decoded `key=value` pairs in request order.
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Query, ApiError> {
        let raw = raw.unwrap_or("");
        serde_urlencoded::from_str::<Vec<(String, String)>>(raw)
            .map(Query)
            .map_err(|e| StatusError::bad_request(format!("invalid query string: {e}")).into())
    }

    /// The last value of `key` (Go's `url.Values.Get` takes the first; a
    /// key is given once in practice).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated key, in order.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean flag: `true`/`1` (and a bare key) mean true.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True" | ""))
    }

    /// A non-empty string value.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// An integer value; a malformed one is a 400.
    pub fn number(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.non_empty(key) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                StatusError::bad_request(format!("invalid value for {key}: {v:?}")).into()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_flags() {
        let q = Query::parse(Some(
            "command=sh&command=-c&command=echo%20hi&tty=true&stdin=1&x=false",
        ))
        .unwrap();
        assert_eq!(q.all("command"), vec!["sh", "-c", "echo hi"]);
        assert!(q.flag("tty"));
        assert!(q.flag("stdin"));
        assert!(!q.flag("x"));
        assert!(!q.flag("missing"));
        assert_eq!(
            Query::parse(Some("fieldSelector=metadata.name%3Dweb"))
                .unwrap()
                .get("fieldSelector"),
            Some("metadata.name=web")
        );
        assert!(Query::parse(Some("tailLines=x"))
            .unwrap()
            .number("tailLines")
            .is_err());
    }
}
