//! The DNS server fed by a real API server (in-process, loopback, temp
//! store): objects written through the API show up in answers, and the
//! server publishes the kube-dns endpoints, idempotently across restarts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::registry::{ENDPOINTS, ENDPOINT_SLICES, PODS, SERVICES};
use client::{Client, ListParams};
use dns::{DnsConfig, DnsServer, Upstream};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

struct Api {
    client: Client,
    shutdown: CancellationToken,
    dir: PathBuf,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start_api() -> Api {
    let dir = std::env::temp_dir().join(format!(
        "minik8s-dns-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let store = store::SledStore::open(&dir).unwrap();
    let server = apiserver::ApiServer::new(
        apiserver::ApiServerConfig::default(),
        Arc::new(store),
        Arc::new(podio::NoNode),
    );
    apiserver::bootstrap(&server).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(apiserver::serve(listener, server, shutdown.clone()));
    Api {
        client: Client::new(format!("http://{addr}")),
        shutdown,
        dir,
    }
}

fn start_dns(
    client: &Client,
) -> (
    SocketAddr,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), dns::DnsError>>,
) {
    let config = DnsConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: Upstream::Refuse,
        ..DnsConfig::default()
    };
    let server = DnsServer::bind(config).unwrap();
    let addr = server.local_addr();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.run(client.clone(), shutdown.clone()));
    (addr, shutdown, task)
}

async fn ask(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let mut msg = Message::new(7, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(&msg.to_vec().unwrap(), addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

fn addresses(msg: &Message) -> Vec<String> {
    let mut v: Vec<String> = msg
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.to_string()),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// Ask until `done` holds (the test waits; the server does not poll).
async fn until(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    done: impl Fn(&Message) -> bool,
) -> (Message, Duration) {
    let started = Instant::now();
    loop {
        let m = ask(addr, name, qtype).await;
        if done(&m) {
            return (m, started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name}: last answer {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn cluster_ip(client: &Client, ns: &str, name: &str) -> String {
    for _ in 0..500 {
        let svc: Value = client.get(&SERVICES, Some(ns), name).await.unwrap();
        if let Some(ip) = svc["spec"]["clusterIP"].as_str().filter(|s| !s.is_empty()) {
            return ip.to_string();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no clusterIP for {ns}/{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_objects_become_answers_and_kube_dns_endpoints_are_published() {
    let api = start_api().await;
    let c = &api.client;
    let (addr, dns_stop, dns_task) = start_dns(c);

    // The API's own Service, from the first list.
    let (m, _) = until(
        addr,
        "kubernetes.default.svc.cluster.local.",
        RecordType::A,
        |m| m.metadata.response_code == ResponseCode::NoError && !m.answers.is_empty(),
    )
    .await;
    assert_eq!(addresses(&m), ["10.96.0.1"]);

    // A new Service is answered as soon as its event arrives.
    c.create(
        &SERVICES,
        Some("default"),
        &json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}
        }),
    )
    .await
    .unwrap();
    let created = Instant::now();
    let (m, _) = until(addr, "web.default.svc.cluster.local.", RecordType::A, |m| {
        !m.answers.is_empty()
    })
    .await;
    eprintln!(
        "service answered {:?} after its create returned",
        created.elapsed()
    );
    let ip = cluster_ip(c, "default", "web").await;
    assert_eq!(addresses(&m), [ip.clone()]);
    let rev: Vec<String> = ip.split('.').rev().map(str::to_string).collect();
    let ptr = ask(
        addr,
        &format!("{}.in-addr.arpa.", rev.join(".")),
        RecordType::PTR,
    )
    .await;
    assert_eq!(ptr.answers.len(), 1);

    // Headless: the ready endpoints of its slices.
    c.create(
        &SERVICES,
        Some("default"),
        &json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "db"},
            "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}
        }),
    )
    .await
    .unwrap();
    c.create(
        &ENDPOINT_SLICES,
        Some("default"),
        &json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "db-abcde", "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.244.0.8"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.244.0.9"], "conditions": {"ready": false}}
            ],
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]
        }),
    )
    .await
    .unwrap();
    let (m, _) = until(addr, "db.default.svc.cluster.local.", RecordType::A, |m| {
        !m.answers.is_empty()
    })
    .await;
    assert_eq!(addresses(&m), ["10.244.0.8"]);
    let m = ask(addr, "db-0.db.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(addresses(&m), ["10.244.0.8"]);

    // A Pod's dashed name once it has an IP.
    c.create(
        &PODS,
        Some("default"),
        &json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}
        }),
    )
    .await
    .unwrap();
    let mut pod = c.get(&PODS, Some("default"), "p").await.unwrap();
    pod["status"] =
        json!({"phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}]});
    c.replace_status(&PODS, Some("default"), "p", &pod)
        .await
        .unwrap();
    let (m, _) = until(
        addr,
        "10-244-0-5.default.pod.cluster.local.",
        RecordType::A,
        |m| !m.answers.is_empty(),
    )
    .await;
    assert_eq!(addresses(&m), ["10.244.0.5"]);

    // Deleted: NXDOMAIN again.
    c.delete(&SERVICES, Some("default"), "web").await.unwrap();
    until(addr, "web.default.svc.cluster.local.", RecordType::A, |m| {
        m.metadata.response_code == ResponseCode::NXDomain
    })
    .await;

    // kube-dns endpoints point at this server.
    let started = Instant::now();
    let endpoints = loop {
        match c.get(&ENDPOINTS, Some("kube-system"), "kube-dns").await {
            Ok(e) => break e,
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(endpoints["subsets"][0]["addresses"][0]["ip"], "127.0.0.1");
    assert_eq!(endpoints["subsets"][0]["ports"][0]["port"], addr.port());

    dns_stop.cancel();
    dns_task.await.unwrap().unwrap();

    // A restart rewrites them in place: still one slice, at the new port.
    let (addr2, dns_stop, dns_task) = start_dns(c);
    let selector = ListParams::labels("kubernetes.io/service-name=kube-dns");
    let started = Instant::now();
    loop {
        let list = c
            .list(&ENDPOINT_SLICES, Some("kube-system"), &selector)
            .await
            .unwrap();
        let items = list["items"].as_array().unwrap();
        assert!(items.len() <= 1, "{items:?}");
        if items.len() == 1 && items[0]["ports"][0]["port"] == addr2.port() {
            assert!(items[0]["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("kube-dns-"));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "slice not rewritten: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    dns_stop.cancel();
    dns_task.await.unwrap().unwrap();
}
