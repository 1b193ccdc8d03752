//! The server's shared state, its router and its listener loop.

use crate::allocator::ServiceAllocator;
use crate::config::ApiServerConfig;
use crate::storage::Storage;
use crate::{discovery, resources};
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use podio::PodIo;
use std::sync::Arc;
use store::Store;
use tokio_util::sync::CancellationToken;

/// What every request handler shares.
pub struct ApiServer {
    pub config: ApiServerConfig,
    pub storage: Storage,
    pub podio: Arc<dyn PodIo>,
    /// Which ClusterIPs and NodePorts the Services hold: every Service
    /// write reserves and settles through it, so two Services are never
    /// given the same address and no write lists the others.
    pub service_allocator: ServiceAllocator,
    /// Cancelled at shutdown: ends watches, log follows and exec sessions,
    /// which would otherwise hold the listener open.
    pub streams_done: CancellationToken,
}

impl ApiServer {
    pub fn new(config: ApiServerConfig, store: Arc<dyn Store>, podio: Arc<dyn PodIo>) -> Arc<Self> {
        Arc::new(ApiServer {
            service_allocator: ServiceAllocator::new(config.service_network()),
            config,
            storage: Storage::new(store),
            podio,
            streams_done: CancellationToken::new(),
        })
    }
}

/// Every route of the API; testable with `tower::ServiceExt::oneshot`.
pub fn router(state: Arc<ApiServer>) -> Router {
    Router::new()
        .route("/api", get(discovery::core_versions))
        .route("/apis", get(discovery::groups))
        .route("/api/{version}", get(discovery::core_resources))
        .route("/apis/{group}", get(discovery::group))
        .route("/apis/{group}/{version}", get(discovery::group_resources))
        .route("/version", get(discovery::version))
        // Clients generated from the OpenAPI spec (the Python `kubernetes`
        // package) ask for `/version/`, which Kubernetes answers too.
        .route("/version/", get(discovery::version))
        .route("/healthz", get(discovery::ok))
        .route("/livez", get(discovery::ok))
        .route("/readyz", get(discovery::ok))
        .route("/openapi/v3", get(discovery::openapi_index))
        .route("/openapi/v3/{*path}", get(discovery::openapi_document))
        .fallback(resources::dispatch)
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// Requests are logged at debug level: a busy controller loop must not
/// flood the default log.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let response = next.run(request).await;
    tracing::debug!(%method, %uri, status = response.status().as_u16(), "request");
    response
}

/// Serve the API on `listener` until `shutdown` is cancelled; then open
/// streams are ended and in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ApiServer>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let streams_done = state.streams_done.clone();
    let app = router(state);
    // Watch events are small writes that follow each other closely: with
    // Nagle's algorithm one waits for the client's delayed ACK (~40 ms),
    // which every watcher (proxy, DNS, controllers, kubectl -w) would feel.
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            streams_done.cancel();
        })
        .await
}
