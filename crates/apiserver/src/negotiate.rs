//! What representation the client asked for in `Accept`.

use axum::http::{header, HeaderMap};

/// The Table versions kubectl asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableVersion {
    V1,
    V1Beta1,
}

impl TableVersion {
    pub fn api_version(self) -> &'static str {
        match self {
            TableVersion::V1 => "meta.k8s.io/v1",
            TableVersion::V1Beta1 => "meta.k8s.io/v1beta1",
        }
    }

    /// The response Content-Type that tells the client it got a Table.
    pub fn content_type(self) -> &'static str {
        match self {
            TableVersion::V1 => "application/json;as=Table;v=v1;g=meta.k8s.io",
            TableVersion::V1Beta1 => "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
        }
    }
}

/// Media ranges of the Accept header as (type, parameters) pairs.
fn media_ranges(headers: &HeaderMap) -> Vec<(String, Vec<(String, String)>)> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|range| {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let params = parts
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            (media, params)
        })
        .collect()
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The Table version of the first media range asking for a Table, if that
/// comes before any plain JSON range.
pub fn table_requested(headers: &HeaderMap) -> Option<TableVersion> {
    for (media, params) in media_ranges(headers) {
        match param(&params, "as") {
            Some("Table") if param(&params, "g") == Some("meta.k8s.io") => {
                match param(&params, "v") {
                    Some("v1") => return Some(TableVersion::V1),
                    Some("v1beta1") => return Some(TableVersion::V1Beta1),
                    _ => continue,
                }
            }
            Some(_) => continue,
            None if media == "application/json" || media == "*/*" => return None,
            None => continue,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn kubectl_table_accept() {
        let h = accept("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json");
        assert_eq!(table_requested(&h), Some(TableVersion::V1));
        let h = accept("application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json");
        assert_eq!(table_requested(&h), Some(TableVersion::V1Beta1));
        assert_eq!(table_requested(&accept("application/json")), None);
        assert_eq!(table_requested(&HeaderMap::new()), None);
    }
}
