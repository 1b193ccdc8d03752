//! The DNS server: sockets made in the node's network namespace, served by
//! our UDP threads (`udp_fast`) and hickory's `Server` (TCP) with our
//! handler, fed from the API.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use client::Client;
use hickory_server::Server;
use tokio_util::sync::CancellationToken;

use crate::config::DnsConfig;
use crate::fallback::Fallback;
use crate::feed::feed_table;
use crate::forward::Forwarder;
use crate::handler::ClusterDnsHandler;
use crate::kube_dns::publish_endpoints;
use crate::records::{Table, ZoneConfig};
use crate::shared::SharedTable;
use crate::sockets::{open_listeners, Listeners};
use crate::udp_fast;
use crate::DnsError;

/// A TCP client that sends nothing for this long is dropped.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;

/// The cluster DNS, bound and ready to serve.
pub struct DnsServer {
    config: DnsConfig,
    zone: Arc<ZoneConfig>,
    listeners: Listeners,
    table: Arc<SharedTable>,
    forwarder: Forwarder,
}

impl DnsServer {
    /// Open the UDP and TCP sockets (inside `config.netns_path` when set).
    /// Port 0 picks a free port, the same for UDP and TCP; `local_addr`
    /// tells which.
    pub fn bind(config: DnsConfig) -> Result<DnsServer, DnsError> {
        let listeners = match &config.netns_path {
            None => open_listeners(config.listen)?,
            Some(path) => {
                let listen = config.listen;
                nodenet::run_in_netns(path, move || open_listeners(listen)).map_err(|e| {
                    DnsError::Netns {
                        path: path.clone(),
                        reason: e.to_string(),
                    }
                })??
            }
        };
        let zone = Arc::new(config.zone());
        // Never forward to ourselves: not to the Service address, and not
        // to our own socket (only reachable when in the same namespace).
        let mut exclude = vec![SocketAddr::new(IpAddr::V4(config.service_ip), 53)];
        if config.netns_path.is_none() {
            exclude.push(listeners.local_addr);
        }
        let forwarder = Forwarder::new(&config.upstream, &exclude);
        tracing::info!(addr = %listeners.local_addr, upstream = ?forwarder.servers(), refuse = forwarder.refuses(), "cluster DNS listening");
        Ok(DnsServer {
            table: Arc::new(SharedTable::new(Table::unsynced(zone.clone()))),
            zone,
            config,
            listeners,
            forwarder,
        })
    }

    /// The address the server answers on (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners.local_addr
    }

    /// The zone this server answers for.
    pub fn zone(&self) -> Arc<ZoneConfig> {
        self.zone.clone()
    }

    /// The table the server answers from. `run` keeps it up to date from
    /// the API; without an API (benchmarks), store a table built by
    /// `records::build_table` and call `serve`.
    pub fn table(&self) -> Arc<SharedTable> {
        self.table.clone()
    }

    /// Serve the cluster: watch Services, EndpointSlices and Pods (all
    /// namespaces) into the table, publish the kube-dns endpoints, answer
    /// until `shutdown`.
    pub async fn run(self, client: Client, shutdown: CancellationToken) -> Result<(), DnsError> {
        // Helpers stop with the server, also when it fails on its own.
        let stop = shutdown.child_token();
        let feed = tokio::spawn(feed_table(
            client.clone(),
            self.table.clone(),
            self.zone.clone(),
            stop.clone(),
        ));
        let publish = self
            .config
            .publish_endpoints
            .then(|| tokio::spawn(publish_endpoints(client, self.local_addr(), stop.clone())));
        let served = self.serve(stop.clone()).await;
        stop.cancel();
        let _ = feed.await;
        if let Some(publish) = publish {
            let _ = publish.await;
        }
        served
    }

    /// Answer from the table as it is (nothing feeds it) until `shutdown`.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), DnsError> {
        let handler = ClusterDnsHandler::new(self.table.clone(), self.forwarder.clone());
        let io = |e: std::io::Error| DnsError::Serve(e.to_string());
        // TCP: hickory's server.
        let mut server = Server::new(handler.clone());
        self.listeners.tcp.set_nonblocking(true).map_err(io)?;
        let tcp = tokio::net::TcpListener::from_std(self.listeners.tcp).map_err(io)?;
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        // UDP: our own reading threads, with hickory for unusual questions.
        let fallback = Fallback::new(handler, tokio::runtime::Handle::current());
        let udp = udp_fast::start(self.listeners.udp, self.table.clone(), fallback)
            .map_err(|e| DnsError::Serve(format!("cannot start the UDP threads: {e}")))?;

        let inner = server.shutdown_token().clone();
        let relay = tokio::spawn(async move {
            shutdown.cancelled().await;
            inner.cancel();
        });
        let result = server.block_until_done().await;
        relay.abort();
        if let Err(e) = tokio::task::spawn_blocking(move || udp.stop()).await {
            tracing::error!(error = %e, "cannot stop the DNS UDP threads");
        }
        result.map_err(|e| DnsError::Serve(e.to_string()))
    }
}
