//! The server over real loopback sockets: what a client sees on the wire
//! for the cluster's names, for forwarded names, over UDP and TCP. No API
//! server: the table is stored directly; upstreams are fakes on loopback.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use dns::objects::{ClusterState, EndpointInfo, ServiceAddress, ServiceInfo, SliceInfo};
use dns::{build_table, DnsConfig, DnsServer, SharedTable, Upstream};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn service(ns: &str, name: &str, address: ServiceAddress) -> ServiceInfo {
    ServiceInfo::http(ns, name, address)
}

fn cluster() -> ClusterState {
    let mut st = ClusterState::default();
    st.services.insert(
        "default/web".into(),
        service(
            "default",
            "web",
            ServiceAddress::ClusterIps(vec![ip("10.96.142.31")].into()),
        ),
    );
    st.services.insert(
        "default/ext".into(),
        service(
            "default",
            "ext",
            ServiceAddress::ExternalName("db.example.test".into()),
        ),
    );
    st.services.insert(
        "default/many".into(),
        service("default", "many", ServiceAddress::Headless),
    );
    let endpoints: Vec<EndpointInfo> = (1..=100)
        .map(|i| EndpointInfo {
            addresses: vec![ip(&format!("10.244.1.{i}"))].into(),
            hostname: None,
            ready: true,
        })
        .collect();
    st.slices.insert(
        "default/many-x".into(),
        SliceInfo {
            namespace: "default".into(),
            service: "many".into(),
            ports: Box::new([]),
            endpoints: endpoints.into(),
        },
    );
    st
}

/// A fake upstream: `missing.*` is NXDOMAIN, anything else has A 192.0.2.1.
async fn fake_upstream() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut reply = query.clone();
            reply.metadata.message_type = MessageType::Response;
            reply.metadata.recursion_available = true;
            let q = &query.queries[0];
            if q.name().to_ascii().starts_with("missing.") {
                reply.metadata.response_code = ResponseCode::NXDomain;
            } else {
                reply.add_answer(Record::from_rdata(
                    q.name().clone(),
                    30,
                    RData::A(A::new(192, 0, 2, 1)),
                ));
            }
            let _ = socket.send_to(&reply.to_vec().unwrap(), peer).await;
        }
    });
    addr
}

struct Running {
    addr: SocketAddr,
    table: Arc<SharedTable>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), dns::DnsError>>,
}

async fn start(upstream: Upstream) -> Running {
    let config = DnsConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream,
        publish_endpoints: false,
        ..DnsConfig::default()
    };
    let server = DnsServer::bind(config).unwrap();
    let addr = server.local_addr();
    let table = server.table();
    table.store(build_table(&cluster(), server.zone(), 3));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.serve(shutdown.clone()));
    Running {
        addr,
        table,
        shutdown,
        task,
    }
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

fn query_bytes(name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut msg = Message::new(4242, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        msg.set_edns(e);
    }
    msg.to_vec().unwrap()
}

async fn udp(addr: SocketAddr, name: &str, qtype: RecordType, edns: bool) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket
        .send_to(&query_bytes(name, qtype, edns), addr)
        .await
        .unwrap();
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

async fn tcp(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let q = query_bytes(name, qtype, false);
    s.write_u16(q.len() as u16).await.unwrap();
    s.write_all(&q).await.unwrap();
    let len = s.read_u16().await.unwrap() as usize;
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

fn addresses(msg: &Message) -> Vec<String> {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn service_name_answers_cluster_ip_authoritatively() {
    let s = start(Upstream::Refuse).await;
    let m = udp(
        s.addr,
        "web.default.svc.cluster.local.",
        RecordType::A,
        false,
    )
    .await;
    assert_eq!(m.metadata.id, 4242);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(addresses(&m), ["10.96.142.31"]);
    assert_eq!(m.answers[0].ttl, 5);
    let srv = tcp(
        s.addr,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(srv.answers.len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn unknown_name_is_nxdomain_and_other_type_is_nodata_both_with_soa() {
    let s = start(Upstream::Refuse).await;
    let nx = udp(
        s.addr,
        "nope.default.svc.cluster.local.",
        RecordType::A,
        true,
    )
    .await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert!(nx.edns.is_some(), "EDNS query gets an EDNS answer");
    assert_eq!(nx.authorities.len(), 1);
    assert_eq!(nx.authorities[0].record_type(), RecordType::SOA);
    let nodata = udp(
        s.addr,
        "web.default.svc.cluster.local.",
        RecordType::AAAA,
        false,
    )
    .await;
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    assert_eq!(nodata.authorities[0].record_type(), RecordType::SOA);
    s.stop().await;
}

#[tokio::test]
async fn big_answer_is_truncated_over_udp_and_whole_over_tcp() {
    let s = start(Upstream::Refuse).await;
    let m = udp(
        s.addr,
        "many.default.svc.cluster.local.",
        RecordType::A,
        false,
    )
    .await;
    assert!(m.metadata.truncation);
    assert!(m.answers.len() < 100);
    let full = tcp(s.addr, "many.default.svc.cluster.local.", RecordType::A).await;
    assert!(!full.metadata.truncation);
    assert_eq!(full.answers.len(), 100);
    s.stop().await;
}

#[tokio::test]
async fn outside_names_are_forwarded_or_refused() {
    let upstream = fake_upstream().await;
    let s = start(Upstream::Addr(upstream)).await;
    let m = udp(s.addr, "www.example.test.", RecordType::A, false).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&m), ["192.0.2.1"]);
    assert!(!m.metadata.authoritative);
    let nx = udp(s.addr, "missing.example.test.", RecordType::A, false).await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    s.stop().await;

    let refusing = start(Upstream::Refuse).await;
    let m = udp(refusing.addr, "www.example.test.", RecordType::A, false).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    refusing.stop().await;
}

#[tokio::test]
async fn external_name_is_cname_plus_the_targets_upstream_answer() {
    let upstream = fake_upstream().await;
    let s = start(Upstream::Addr(upstream)).await;
    let m = udp(
        s.addr,
        "ext.default.svc.cluster.local.",
        RecordType::A,
        false,
    )
    .await;
    assert_eq!(m.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(addresses(&m), ["192.0.2.1"]);
    s.stop().await;
}

#[tokio::test]
async fn a_stored_table_is_served_at_once() {
    let s = start(Upstream::Refuse).await;
    let mut st = cluster();
    st.services.insert(
        "default/new".into(),
        service(
            "default",
            "new",
            ServiceAddress::ClusterIps(vec![ip("10.96.7.7")].into()),
        ),
    );
    let zone = Arc::new(DnsConfig::default().zone());
    s.table.store(build_table(&st, zone, 4));
    let m = udp(
        s.addr,
        "new.default.svc.cluster.local.",
        RecordType::A,
        false,
    )
    .await;
    assert_eq!(addresses(&m), ["10.96.7.7"]);
    s.stop().await;
}
