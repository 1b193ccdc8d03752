//! The HTTP client of the minik8s API. Every in-process component
//! (controllers, kubelet, proxy, dns) and the CLI talk to the API server
//! through it, so what a user sees and what the node acts on go through the
//! same paths.

mod error;
mod watcher;

pub use error::ClientError;
pub use watcher::{watcher, WatcherEvent};

use api::registry::ResourceInfo;
use futures::{Stream, StreamExt};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// The Accept header kubectl sends to get a server-side printed Table.
pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

/// A handle on one API server; cheap to clone (one connection pool).
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

/// Selectors of a list or watch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

impl ListParams {
    pub fn labels(selector: impl Into<String>) -> Self {
        ListParams {
            label_selector: Some(selector.into()),
            field_selector: None,
        }
    }
    pub fn fields(selector: impl Into<String>) -> Self {
        ListParams {
            label_selector: None,
            field_selector: Some(selector.into()),
        }
    }
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(l) = &self.label_selector {
            q.push(("labelSelector", l.clone()));
        }
        if let Some(f) = &self.field_selector {
            q.push(("fieldSelector", f.clone()));
        }
        q
    }
}

/// The body formats of PATCH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 7386 JSON merge patch.
    Merge,
    /// Kubernetes' strategic merge patch (lists merged by key).
    Strategic,
    /// RFC 6902 JSON patch.
    Json,
    /// Server-side apply (`application/apply-patch+yaml`).
    Apply,
}

impl PatchType {
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
            PatchType::Json => "application/json-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// One line of a watch stream.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchEvent {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    pub kind: String,
    pub object: Value,
}

/// Convert a JSON object into a k8s-openapi type.
pub fn typed<K: DeserializeOwned>(v: Value) -> Result<K, ClientError> {
    serde_json::from_value(v).map_err(|e| ClientError::Decode(e.to_string()))
}

impl Client {
    /// `base` is the API's URL, e.g. `http://127.0.0.1:6443`.
    pub fn new(base: impl Into<String>) -> Client {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client without TLS always builds");
        Client {
            base: base.into().trim_end_matches('/').to_string(),
            http,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The underlying HTTP client, for requests this type has no method for
    /// (discovery, subresources).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Absolute URL of an API path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ClientError> {
        self.get_path(&res.path(namespace, Some(name))).await
    }

    /// The List object (`items`, `metadata.resourceVersion`).
    pub async fn list(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<Value, ClientError> {
        let req = self.request(Method::GET, &res.path(namespace, None), None);
        self.send(req.query(&params.query())).await
    }

    /// The items of a list, typed.
    pub async fn list_as<K: DeserializeOwned>(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<Vec<K>, ClientError> {
        let list = self.list(res, namespace, params).await?;
        match list.get("items") {
            Some(Value::Array(items)) => items.iter().cloned().map(typed).collect(),
            _ => Ok(Vec::new()),
        }
    }

    /// A server-printed `Table` of one object (`name`) or of a list.
    pub async fn get_table(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        name: Option<&str>,
        params: &ListParams,
    ) -> Result<Value, ClientError> {
        let req = self.request(Method::GET, &res.path(namespace, name), None);
        let req = req.header(reqwest::header::ACCEPT, TABLE_ACCEPT);
        self.send(req.query(&params.query())).await
    }

    pub async fn create(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        obj: &Value,
    ) -> Result<Value, ClientError> {
        let path = res.path(namespace, None);
        self.send(self.request(Method::POST, &path, Some(obj)))
            .await
    }

    /// PUT of the whole object; its `metadata.resourceVersion` is the
    /// precondition (409 Conflict when stale).
    pub async fn replace(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        obj: &Value,
    ) -> Result<Value, ClientError> {
        let path = res.path(namespace, Some(name));
        self.send(self.request(Method::PUT, &path, Some(obj))).await
    }

    /// PUT of the `status` subresource.
    pub async fn replace_status(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        obj: &Value,
    ) -> Result<Value, ClientError> {
        let path = status_path(res, namespace, name);
        self.send(self.request(Method::PUT, &path, Some(obj))).await
    }

    pub async fn patch(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        kind: PatchType,
        patch: &Value,
    ) -> Result<Value, ClientError> {
        let path = res.path(namespace, Some(name));
        self.patch_path(&path, kind, patch, &[]).await
    }

    pub async fn patch_status(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        kind: PatchType,
        patch: &Value,
    ) -> Result<Value, ClientError> {
        let path = status_path(res, namespace, name);
        self.patch_path(&path, kind, patch, &[]).await
    }

    /// PATCH of any API path with extra query parameters (e.g.
    /// `fieldManager`).
    pub async fn patch_path(
        &self,
        path: &str,
        kind: PatchType,
        patch: &Value,
        query: &[(&str, &str)],
    ) -> Result<Value, ClientError> {
        // Not `.json()`: that would set the content type to plain JSON.
        let body = serde_json::to_vec(patch).map_err(|e| ClientError::Decode(e.to_string()))?;
        let req = self.request(Method::PATCH, path, None).query(query);
        let req = req.header(reqwest::header::CONTENT_TYPE, kind.content_type());
        self.send(req.body(body)).await
    }

    pub async fn delete(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ClientError> {
        let path = res.path(namespace, Some(name));
        self.send(self.request(Method::DELETE, &path, None)).await
    }

    /// DELETE with a `DeleteOptions` body (e.g. `{"gracePeriodSeconds":0}`).
    pub async fn delete_with(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        options: &Value,
    ) -> Result<Value, ClientError> {
        let path = res.path(namespace, Some(name));
        self.send(self.request(Method::DELETE, &path, Some(options)))
            .await
    }

    /// GET of any API path, decoded as JSON.
    pub async fn get_path(&self, path: &str) -> Result<Value, ClientError> {
        self.send(self.request(Method::GET, path, None)).await
    }

    /// Watch from `resource_version` (`""`/`"0"`: ADDED for every existing
    /// object first). The stream ends when the server closes the watch.
    pub async fn watch(
        &self,
        res: &ResourceInfo,
        namespace: Option<&str>,
        params: &ListParams,
        resource_version: &str,
    ) -> Result<impl Stream<Item = Result<WatchEvent, ClientError>> + Send + 'static, ClientError>
    {
        let mut query = params.query();
        query.push(("watch", "true".into()));
        query.push(("resourceVersion", resource_version.into()));
        query.push(("allowWatchBookmarks", "true".into()));
        let resp = self
            .http
            .get(self.url(&res.path(namespace, None)))
            .query(&query)
            .send()
            .await
            .map_err(|e| ClientError::from_transport(&self.base, e))?;
        let resp = error::check(resp).await?;
        Ok(watch_lines(resp.bytes_stream()))
    }

    /// A request to an API path, with a JSON body when one is given.
    fn request(&self, method: Method, path: &str, body: Option<&Value>) -> reqwest::RequestBuilder {
        let req = self.http.request(method, self.url(path));
        match body {
            Some(body) => req.json(body),
            None => req,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::from_transport(&self.base, e))?;
        let resp = error::check(resp).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::from_transport(&self.base, e))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }
}

/// The path of an object's `status` subresource.
fn status_path(res: &ResourceInfo, namespace: Option<&str>, name: &str) -> String {
    format!("{}/status", res.path(namespace, Some(name)))
}

/// Split a chunked body into newline-delimited watch events.
fn watch_lines<S, E>(
    body: S,
) -> impl Stream<Item = Result<WatchEvent, ClientError>> + Send + 'static
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    E: std::fmt::Display,
{
    let state = (Box::pin(body), Vec::<u8>::new(), false);
    futures::stream::unfold(state, |(mut body, mut buf, mut done)| async move {
        loop {
            if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                if line.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                return Some((parse_event(&line), (body, buf, done)));
            }
            if done {
                if buf.iter().all(|b| b.is_ascii_whitespace()) {
                    return None;
                }
                let line = std::mem::take(&mut buf);
                return Some((parse_event(&line), (body, buf, done)));
            }
            match body.next().await {
                Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    done = true;
                    buf.clear();
                    return Some((Err(ClientError::Stream(e.to_string())), (body, buf, done)));
                }
                None => done = true,
            }
        }
    })
}

fn parse_event(line: &[u8]) -> Result<WatchEvent, ClientError> {
    let v: Value = serde_json::from_slice(line)
        .map_err(|e| ClientError::Decode(format!("watch event: {e}")))?;
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ClientError::Decode("watch event without type".into()))?
        .to_string();
    let object = v.get("object").cloned().unwrap_or(Value::Null);
    Ok(WatchEvent { kind, object })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn splits_watch_lines_across_chunks() {
        let chunks: Vec<Result<bytes::Bytes, String>> = vec![
            Ok(bytes::Bytes::from_static(
                b"{\"type\":\"ADDED\",\"object\":{\"a\":1}}\n{\"type\":\"MOD",
            )),
            Ok(bytes::Bytes::from_static(
                b"IFIED\",\"object\":{\"a\":2}}\n",
            )),
        ];
        let events: Vec<_> = watch_lines(futures::stream::iter(chunks)).collect().await;
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].as_ref().unwrap().kind, "MODIFIED");
        assert_eq!(events[1].as_ref().unwrap().object["a"], 2);
    }
}
