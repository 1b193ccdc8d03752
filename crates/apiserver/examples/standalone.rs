//! An API server alone (no node, no controllers) on a data directory, for
//! pointing a client such as kubectl at it:
//! `cargo run -p apiserver --example standalone -- /tmp/data 127.0.0.1:6443`.

use apiserver::{bootstrap, serve, ApiServer, ApiServerConfig};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| "/tmp/minik8s-standalone".into());
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:6443".into());
    let store = store::SledStore::open(&dir)?;
    let server = ApiServer::new(
        ApiServerConfig::default(),
        Arc::new(store),
        Arc::new(podio::NoNode),
    );
    bootstrap(&server).await?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("serving on {}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    serve(listener, server, shutdown).await?;
    Ok(())
}
