//! Handler tests: the router driven with `oneshot` against a SledStore in
//! a temporary directory (no socket, no root).

mod crud;
mod streams;
mod watches;
mod writes;

use crate::{bootstrap, router, ApiServer, ApiServerConfig};
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use futures::StreamExt;
use podio::{NoNode, PodIo};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use store::{SledStore, StoreConfig};
use tower::ServiceExt;

/// A server on a fresh store; the directory is removed on drop.
pub struct TestServer {
    pub app: Router,
    pub server: Arc<ApiServer>,
    dir: PathBuf,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.streams_done.cancel();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestServer {
    pub async fn new() -> TestServer {
        Self::with(StoreConfig::default(), Arc::new(NoNode)).await
    }

    pub async fn with(store_config: StoreConfig, podio: Arc<dyn PodIo>) -> TestServer {
        let dir = std::env::temp_dir().join(format!("minik8s-apiserver-{}", uuid::Uuid::new_v4()));
        let store = SledStore::open_with(&dir, store_config).expect("store opens");
        let server = ApiServer::new(ApiServerConfig::default(), Arc::new(store), podio);
        bootstrap(&server).await.expect("bootstrap");
        TestServer {
            app: router(server.clone()),
            server,
            dir,
        }
    }

    /// Send a request; `body` is sent as is with `content_type`.
    pub async fn raw(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> axum::response::Response {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Body::from(body)).unwrap();
        self.app.clone().oneshot(req).await.unwrap()
    }

    pub async fn call(&self, method: Method, uri: &str, content_type: &str, body: &str) -> Reply {
        let headers: Vec<(&str, &str)> = if body.is_empty() {
            vec![]
        } else {
            vec![("content-type", content_type)]
        };
        let response = self
            .raw(method, uri, &headers, body.as_bytes().to_vec())
            .await;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.call(Method::GET, uri, "", "").await
    }

    pub async fn post(&self, uri: &str, body: &str) -> Reply {
        self.call(Method::POST, uri, "application/json", body).await
    }

    pub async fn put(&self, uri: &str, body: &str) -> Reply {
        self.call(Method::PUT, uri, "application/json", body).await
    }

    pub async fn patch(&self, uri: &str, content_type: &str, body: &str) -> Reply {
        self.call(Method::PATCH, uri, content_type, body).await
    }

    pub async fn delete(&self, uri: &str) -> Reply {
        self.call(Method::DELETE, uri, "", "").await
    }

    /// Create a namespace of its own for a test.
    pub async fn namespace(&self, name: &str) {
        let r = self
            .post(
                "/api/v1/namespaces",
                &format!(r#"{{"metadata":{{"name":"{name}"}}}}"#),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
}

/// Reads newline-delimited JSON events off a streaming body.
pub struct EventReader {
    stream: axum::body::BodyDataStream,
    buffer: Vec<u8>,
}

impl EventReader {
    pub fn new(response: axum::response::Response) -> Self {
        EventReader {
            stream: response.into_body().into_data_stream(),
            buffer: Vec::new(),
        }
    }

    /// The next event, or `None` when the stream ended or stayed silent
    /// for `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        loop {
            if let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=pos).collect();
                return Some(serde_json::from_slice(&line).expect("event is JSON"));
            }
            match tokio::time::timeout(wait, self.stream.next()).await {
                Ok(Some(Ok(chunk))) => self.buffer.extend_from_slice(&chunk),
                _ => return None,
            }
        }
    }

    pub async fn next(&mut self) -> Value {
        self.next_within(Duration::from_secs(5))
            .await
            .expect("an event within 5s")
    }
}

pub fn service(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"{name}","labels":{{"app":"{name}"}}}},"spec":{{"selector":{{"app":"{name}"}},"ports":[{{"port":80}}]}}}}"#
    )
}
