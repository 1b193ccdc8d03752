//! DNS programming latency: how long from "create this Service" to the
//! cluster DNS answering its name (and from "delete" to NXDOMAIN),
//! measured through a real API server (minik8s' apiserver over its sled
//! store, in this process, on loopback) with the DNS server fed by its
//! watches, exactly as `minik8s server` wires them.
//!
//!     dns_latency_bench --background 10000 --measure 300
//!
//! First creates `--background` Services (spread over 20 namespaces) so
//! every change lands in a big table, waits until the DNS answers the last
//! of them, then creates `--measure` Services one at a time: each clock
//! starts just before the create request and stops at the first answer
//! with the Service's address (asked every `POLL`). Then deletes them the
//! same way, until NXDOMAIN. Prints p50/p90/p99/max of each.
//!
//! The API server sets TCP_NODELAY on its connections: without it, a watch
//! event that follows another within ~40 ms waits for the client's delayed
//! ACK, which this benchmark showed as a 40-50 ms p99.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::registry::SERVICES;
use client::Client;
use dns::{DnsConfig, DnsServer, Upstream};
use futures::stream::{self, StreamExt};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// How often the name is asked while waiting for it.
const POLL: Duration = Duration::from_micros(500);
/// Give up on one Service after this long.
const GIVE_UP: Duration = Duration::from_secs(10);
/// Background Services created at once.
const CREATE_CONCURRENCY: usize = 32;

struct Args {
    background: usize,
    measure: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        background: 10_000,
        measure: 300,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--background" => args.background = value.parse().expect("--background N"),
            "--measure" => args.measure = value.parse().expect("--measure N"),
            other => panic!("unknown flag {other} (--background N, --measure N)"),
        }
    }
    args
}

fn service(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80}]}
    })
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// The API server on loopback over a fresh store in `dir`.
async fn start_api(dir: &PathBuf, shutdown: CancellationToken) -> Client {
    let store = store::SledStore::open(dir).expect("open store");
    let server = apiserver::ApiServer::new(
        apiserver::ApiServerConfig::default(),
        Arc::new(store),
        Arc::new(podio::NoNode),
    );
    apiserver::bootstrap(&server).await.expect("bootstrap");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind API");
    let addr = listener.local_addr().expect("API address");
    tokio::spawn(apiserver::serve(listener, server, shutdown));
    Client::new(format!("http://{addr}"))
}

/// Asks one name again and again on one socket.
struct Asker {
    socket: UdpSocket,
    server: SocketAddr,
    id: u16,
    buf: Vec<u8>,
}

impl Asker {
    async fn new(server: SocketAddr) -> Asker {
        Asker {
            socket: UdpSocket::bind("127.0.0.1:0").await.expect("client socket"),
            server,
            id: 0,
            buf: vec![0; 4096],
        }
    }

    /// The answer to `name` A, or None when none came within `POLL`.
    async fn ask(&mut self, name: &Name) -> Option<Message> {
        self.id = self.id.wrapping_add(1);
        let mut msg = Message::new(self.id, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(name.clone(), RecordType::A));
        let bytes = msg.to_vec().expect("encode query");
        self.socket.send_to(&bytes, self.server).await.ok()?;
        let deadline = tokio::time::Instant::now() + POLL;
        loop {
            let n = tokio::time::timeout_at(deadline, self.socket.recv(&mut self.buf))
                .await
                .ok()?
                .ok()?;
            // Late answers to earlier questions are skipped.
            match Message::from_vec(&self.buf[..n]) {
                Ok(m) if m.metadata.id == self.id => return Some(m),
                _ => continue,
            }
        }
    }

    /// Ask until `done`; the time it took, or None after `GIVE_UP`.
    async fn until(&mut self, name: &str, done: impl Fn(&Message) -> bool) -> Option<Duration> {
        let name = Name::from_ascii(name).expect("valid name");
        let started = Instant::now();
        while started.elapsed() < GIVE_UP {
            if let Some(m) = self.ask(&name).await {
                if done(&m) {
                    return Some(started.elapsed());
                }
                // Answered but not yet right: wait a little, as a client
                // retrying would, instead of flooding the server.
                tokio::time::sleep(POLL).await;
            }
        }
        None
    }
}

fn has_answer(m: &Message) -> bool {
    m.metadata.response_code == ResponseCode::NoError && !m.answers.is_empty()
}

fn is_nxdomain(m: &Message) -> bool {
    m.metadata.response_code == ResponseCode::NXDomain
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1000.0
    };
    println!(
        "{what}: n={} p50={:.2} ms p90={:.2} ms p99={:.2} ms max={:.2} ms",
        samples.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0)
    );
}

async fn run(args: Args) {
    let shutdown = CancellationToken::new();
    let dir = std::env::temp_dir().join(format!("minik8s-dns-latency-{}", std::process::id()));
    let api = start_api(&dir, shutdown.clone()).await;

    let config = DnsConfig {
        listen: "127.0.0.1:0".parse().expect("valid address"),
        upstream: Upstream::Refuse,
        publish_endpoints: false,
        ..DnsConfig::default()
    };
    let dns_server = DnsServer::bind(config).expect("bind DNS");
    let dns_addr = dns_server.local_addr();
    let dns = tokio::spawn(dns_server.run(api.clone(), shutdown.clone()));
    let mut asker = Asker::new(dns_addr).await;

    let namespaces: Vec<String> = (0..20).map(|i| format!("team-{i}")).collect();
    for ns in &namespaces {
        api.create(&api::registry::NAMESPACES, None, &namespace(ns))
            .await
            .expect("create namespace");
    }
    let started = Instant::now();
    let failures = stream::iter(0..args.background)
        .map(|i| {
            let api = api.clone();
            let ns = namespaces[i % namespaces.len()].clone();
            async move {
                api.create(&SERVICES, Some(&ns), &service(&ns, &format!("bg-{i}")))
                    .await
                    .is_err()
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    assert_eq!(failures, 0, "background Services not created");
    if args.background > 0 {
        let last = args.background - 1;
        let ns = &namespaces[last % namespaces.len()];
        asker
            .until(&format!("bg-{last}.{ns}.svc.cluster.local."), has_answer)
            .await
            .expect("the background Services are answered");
    }
    eprintln!(
        "{} background Services created and answered in {:.1} s",
        args.background,
        started.elapsed().as_secs_f64()
    );

    let mut create_call = Vec::new();
    let mut created = Vec::new();
    for i in 0..args.measure {
        let name = format!("lat-{i}");
        let t0 = Instant::now();
        api.create(&SERVICES, Some("default"), &service("default", &name))
            .await
            .expect("create Service");
        create_call.push(t0.elapsed());
        let waited = asker
            .until(&format!("{name}.default.svc.cluster.local."), has_answer)
            .await
            .unwrap_or_else(|| panic!("{name} never answered"));
        created.push(create_call[i] + waited);
    }
    let mut deleted = Vec::new();
    for i in 0..args.measure {
        let name = format!("lat-{i}");
        let t0 = Instant::now();
        api.delete(&SERVICES, Some("default"), &name)
            .await
            .expect("delete Service");
        let call = t0.elapsed();
        let waited = asker
            .until(&format!("{name}.default.svc.cluster.local."), is_nxdomain)
            .await
            .unwrap_or_else(|| panic!("{name} still answered"));
        deleted.push(call + waited);
    }

    println!(
        "DNS programming latency with {} other Services (poll every {} us):",
        args.background,
        POLL.as_micros(),
    );
    report("  create call (API only)      ", &mut create_call);
    report("  created -> name answers     ", &mut created);
    report("  deleted -> name is NXDOMAIN ", &mut deleted);
    if let Some(rss) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_string)
        })
    {
        println!("  process (API + store + DNS) {rss}");
    }

    shutdown.cancel();
    let _ = dns.await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let args = parse_args();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(run(args));
}
