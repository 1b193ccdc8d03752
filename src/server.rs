//! `minik8s server`: open the store, serve the API, then start the
//! controllers and (unless `--no-node`) the node: its network namespace,
//! the pod runner, kube-proxy and the cluster DNS. On SIGINT/SIGTERM every
//! component stops and the node's namespaces, links, routes and rules are
//! removed.

use anyhow::{bail, Context, Result};
use ipnet::Ipv4Net;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Where objects (and Pod logs) are kept.
    #[arg(long, default_value = "/var/lib/minik8s")]
    data_dir: PathBuf,
    /// Address of the API (loopback only by default; port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// The node's name; its network namespace is named after it.
    #[arg(long, default_value = "minik8s-node")]
    node_name: String,
    /// NodeIP with its prefix; the host side of the node's veth gets the
    /// subnet's first address.
    #[arg(long, default_value = "192.168.49.2/24")]
    node_ip: Ipv4Net,
    /// The cluster's Pod CIDR; the node gets its first /24.
    #[arg(long, default_value = "10.244.0.0/16")]
    pod_cidr: Ipv4Net,
    /// Where ClusterIPs come from (first address: `kubernetes`, tenth:
    /// `kube-dns`).
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cidr: Ipv4Net,
    /// Addresses the built-in load-balancer provider hands out, routed from
    /// the host into the node.
    #[arg(long, default_value = "172.18.255.0/24")]
    lb_pool: Ipv4Net,
    /// Turn the built-in load-balancer provider off: EXTERNAL-IP stays
    /// <pending>, as on a local cluster without one.
    #[arg(long)]
    disable_lb: bool,
    /// Where DNS questions outside cluster.local go: an address, `none`
    /// (answer REFUSED), or by default the host's /etc/resolv.conf.
    #[arg(long)]
    dns_upstream: Option<String>,
    /// Run only the API and the controllers: no node, no Pods, no root
    /// needed.
    #[arg(long)]
    no_node: bool,
}

pub fn main(args: ServerArgs) -> ExitCode {
    limit_malloc_arenas();
    init_logging();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives every thread that allocates its own arena (up to 8 per
/// core) and keeps freed memory in each: with many Services the server's
/// resident memory grew by half again. Two arenas are plenty for a server
/// whose threads mostly wait on I/O.
fn limit_malloc_arenas() {
    // SAFETY: mallopt only changes allocator tuning; called before the
    // runtime starts any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hickory_server=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(args: ServerArgs) -> Result<()> {
    // Catch SIGINT/SIGTERM before anything is created: a signal during
    // start-up then ends in the orderly shutdown below (which removes the
    // node's network) instead of killing the process half set up.
    let mut signals = ShutdownSignals::install()?;
    // SAFETY: geteuid has no preconditions.
    if !args.no_node && unsafe { libc::geteuid() } != 0 {
        bail!(
            "minik8s server needs root to create network namespaces and iptables rules; \
             run it with sudo (or add --no-node for the API and controllers only)"
        );
    }
    let node_net = args.node_ip;
    let host_ip = Ipv4Net::new(first_host(&node_net), node_net.prefix_len())?;
    let node_pod_cidr = Ipv4Net::new(args.pod_cidr.network(), 24.max(args.pod_cidr.prefix_len()))?;

    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
    let store_dir = args.data_dir.join("store");
    let store: Arc<dyn store::Store> = Arc::new(
        store::SledStore::open(&store_dir)
            .with_context(|| format!("cannot open the store in {}", store_dir.display()))?,
    );

    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {}: {e}{}",
            args.listen,
            if e.kind() == std::io::ErrorKind::AddrInUse {
                " (is another minik8s server running? stop it, or pick another --listen address)"
            } else {
                ""
            }
        )
    })?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();

    let api_config = apiserver::ApiServerConfig {
        service_cidr: args.service_cidr,
        kubernetes_endpoint: (host_ip.addr(), addr.port()),
        ..Default::default()
    };

    // The node's network comes first: the pod runner's streams (logs,
    // exec) are handed to the API server when it starts.
    let node = if args.no_node {
        None
    } else {
        let net_config = nodenet::NodeNetConfig {
            name: args.node_name.clone(),
            host_ip,
            node_ip: node_net.addr(),
            pod_cidr: node_pod_cidr,
            cluster_pod_cidr: args.pod_cidr,
            service_cidr: args.service_cidr,
            lb_pool: Some(args.lb_pool),
            state_dir: args.data_dir.join("node"),
            ..nodenet::NodeNetConfig::default()
        };
        let network = nodenet::NodeNetwork::setup(net_config)
            .await
            .context("cannot set up the node's network")?;
        Some(Arc::new(network))
    };

    let started =
        start_components(&args, api_config, store, listener, node.clone(), &shutdown).await;
    let (api_task, tasks) = match started {
        Ok(running) => running,
        Err(e) => {
            // Nothing may outlive a failed start: stop what did start and
            // remove the node's network before reporting.
            shutdown.cancel();
            if let Some(net) = node {
                remove_node_network(net).await;
            }
            return Err(e);
        }
    };

    signals.wait().await;
    eprintln!("minik8s: shutting down");
    shutdown.cancel();
    for (name, task) in tasks {
        if let Err(e) = task.await {
            eprintln!("minik8s: {name} ended abnormally: {e}");
        }
    }
    if let Some(net) = node {
        remove_node_network(net).await;
    }
    for task in api_task {
        let _ = task.await;
    }
    Ok(())
}

type Tasks = Vec<(&'static str, tokio::task::JoinHandle<()>)>;

/// The API server (on `listener`, and for Pods on the host side of the
/// node's veth), the controllers and, with a node, the pod runner,
/// kube-proxy and the cluster DNS.
async fn start_components(
    args: &ServerArgs,
    api_config: apiserver::ApiServerConfig,
    store: Arc<dyn store::Store>,
    listener: tokio::net::TcpListener,
    node: Option<Arc<nodenet::NodeNetwork>>,
    shutdown: &CancellationToken,
) -> Result<(Vec<tokio::task::JoinHandle<std::io::Result<()>>>, Tasks)> {
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    let dns_ip = api_config.dns_service_ip();
    let (host_ip, _) = api_config.kubernetes_endpoint;
    let client = client::Client::new(url.clone());
    let kubelet = node.as_ref().map(|net| {
        let mut config = kubelet::KubeletConfig::new(
            args.node_name.clone(),
            args.data_dir.join("kubelet"),
            std::env::current_exe().unwrap_or_else(|_| "minik8s".into()),
        );
        config.cluster_dns = dns_ip;
        kubelet::Kubelet::new(config, client.clone(), kubelet::node_network(net.clone()))
    });
    let podio: Arc<dyn podio::PodIo> = match &kubelet {
        Some(k) => k.pod_io(),
        None => Arc::new(podio::NoNode),
    };

    let api = apiserver::ApiServer::new(api_config, store, podio);
    apiserver::bootstrap(&api)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the cluster's built-in objects: {e}"))?;
    let mut api_tasks = Vec::new();
    // Pods reach the API through the `kubernetes` Service, whose endpoint
    // is the host side of the node's veth: listen there too when the main
    // address is loopback only.
    if node.is_some() && addr.ip().is_loopback() {
        let pod_side = SocketAddr::new(host_ip.into(), addr.port());
        match tokio::net::TcpListener::bind(pod_side).await {
            Ok(l) => api_tasks.push(tokio::spawn(apiserver::serve(
                l,
                api.clone(),
                shutdown.clone(),
            ))),
            Err(e) => {
                tracing::warn!(addr = %pod_side, error = %e, "the API will not answer Pods on the kubernetes Service")
            }
        }
    }
    api_tasks.push(tokio::spawn(apiserver::serve(
        listener,
        api,
        shutdown.clone(),
    )));
    println!("minik8s API listening on {url}");

    let mut tasks = Vec::new();
    let controllers_config = controllers::ControllersConfig {
        lb_pool: (!args.disable_lb).then(|| host_range(&args.lb_pool)),
    };
    tasks.push((
        "controllers",
        tokio::spawn(controllers::run(
            client.clone(),
            controllers_config,
            shutdown.clone(),
        )),
    ));

    if let (Some(net), Some(kubelet)) = (&node, kubelet) {
        tasks.push(("kubelet", tokio::spawn(kubelet.run(shutdown.clone()))));
        let writer = Arc::new(proxy::IptablesInNetns::new(
            net.netns_path(),
            proxy::Backend::Netlink,
        ));
        let proxy = proxy::Proxy::new(
            client.clone(),
            proxy::ProxyConfig {
                cluster_cidr: args.pod_cidr.to_string(),
                check_every: Duration::from_secs(5),
                full_resync: Duration::from_secs(60),
            },
            writer,
        );
        tasks.push(("proxy", tokio::spawn(proxy.run(shutdown.clone()))));

        let upstream = match args.dns_upstream.as_deref() {
            None => dns::Upstream::HostResolvConf,
            Some("none") => dns::Upstream::Refuse,
            Some(a) => dns::Upstream::Addr(parse_upstream(a)?),
        };
        let dns_server = dns::DnsServer::bind(dns::DnsConfig {
            netns_path: Some(net.netns_path()),
            listen: SocketAddr::new(net.bridge_ip().into(), 53),
            upstream,
            service_ip: dns_ip,
            reverse_cidrs: vec![args.service_cidr, args.pod_cidr],
            ..dns::DnsConfig::default()
        })
        .context("cannot start the cluster DNS")?;
        let dns_client = client.clone();
        let dns_shutdown = shutdown.clone();
        tasks.push((
            "dns",
            tokio::spawn(async move {
                if let Err(e) = dns_server.run(dns_client, dns_shutdown).await {
                    tracing::error!(error = %e, "cluster DNS stopped");
                }
            }),
        ));
    }

    Ok((api_tasks, tasks))
}

/// Remove the node's network once every component let go of it.
async fn remove_node_network(net: Arc<nodenet::NodeNetwork>) {
    match Arc::try_unwrap(net) {
        Ok(net) => {
            if let Err(e) = net.teardown().await {
                eprintln!("minik8s: cannot remove the node's network: {e:#}");
            }
        }
        Err(_) => eprintln!("minik8s: node network still in use; not removed"),
    }
}

/// First and last usable address of a pool.
fn host_range(net: &Ipv4Net) -> (Ipv4Addr, Ipv4Addr) {
    let first = u32::from(net.network()) + 1;
    let last = u32::from(net.broadcast()).saturating_sub(1).max(first);
    (Ipv4Addr::from(first), Ipv4Addr::from(last))
}

/// The subnet's first host address (the host side of the node's veth).
fn first_host(net: &Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()) + 1)
}

fn parse_upstream(a: &str) -> Result<SocketAddr> {
    if let Ok(s) = a.parse::<SocketAddr>() {
        return Ok(s);
    }
    let ip: std::net::IpAddr = a.parse().with_context(|| {
        format!("--dns-upstream {a}: not an address (want IP, IP:PORT or none)")
    })?;
    Ok(SocketAddr::new(ip, 53))
}

/// SIGINT and SIGTERM, caught from the moment they are installed; a
/// signal that arrived before `wait` makes it return at once.
struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> Result<ShutdownSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate()).context("cannot catch SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot catch SIGINT")?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
