//! Names that are not the cluster's go to an upstream resolver: UDP first,
//! TCP when the answer comes back truncated.
//!
//! The sockets are made on the runtime's threads, so they live in the
//! network namespace the server process runs in (the host's), not in the
//! node's: the node has no route out, the host has its resolvers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::config::Upstream;
use crate::DnsError;

/// How long one upstream gets before the next is asked. Stub resolvers
/// give up after 5 s; two tries fit in that.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// The `nameserver` lines of a resolv.conf, port 53, without `exclude`
/// (the cluster DNS itself: asking it would loop).
pub fn parse_resolv_conf(text: &str, exclude: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut servers = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        // An IPv6 link-local address may carry a zone (`fe80::1%eth0`);
        // the zone is not needed to pick the server here.
        let Some(ip) = words
            .next()
            .and_then(|w| w.split('%').next()?.parse::<IpAddr>().ok())
        else {
            continue;
        };
        let addr = SocketAddr::new(ip, 53);
        if !exclude.contains(&addr) && !servers.contains(&addr) {
            servers.push(addr);
        }
    }
    servers
}

/// Sends questions to the configured upstream resolvers.
#[derive(Clone, Debug)]
pub struct Forwarder {
    servers: Arc<[SocketAddr]>,
    refuse: bool,
    next_id: Arc<AtomicU16>,
}

impl Forwarder {
    /// `exclude`: addresses of the cluster DNS itself.
    pub fn new(upstream: &Upstream, exclude: &[SocketAddr]) -> Forwarder {
        let (servers, refuse) = match upstream {
            Upstream::Refuse => (Vec::new(), true),
            Upstream::Addr(a) => (vec![*a], false),
            Upstream::HostResolvConf => {
                let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot read /etc/resolv.conf; names outside the cluster fail");
                    String::new()
                });
                (parse_resolv_conf(&text, exclude), false)
            }
        };
        Forwarder {
            servers: servers.into(),
            refuse,
            next_id: Arc::new(AtomicU16::new(seed_id())),
        }
    }

    /// True with `--dns-upstream none`: outside names are REFUSED.
    pub fn refuses(&self) -> bool {
        self.refuse
    }

    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// Forward a client's query as it came (its id, flags and EDNS
    /// options) and return the upstream's answer.
    pub async fn forward(&self, query: &[u8]) -> Result<Message, DnsError> {
        let mut last = DnsError::NoUpstream;
        for &server in self.servers.iter() {
            match exchange(server, query).await {
                Ok(m) => return Ok(m),
                Err(e) => {
                    tracing::debug!(%server, error = %e, "upstream failed");
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// Ask the upstream for `name`/`qtype` on our own behalf (the target of
    /// an ExternalName Service's CNAME).
    pub async fn ask(&self, name: &Name, qtype: RecordType) -> Result<Message, DnsError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(name.clone(), qtype));
        let bytes = msg.to_vec().map_err(|e| DnsError::Upstream {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            reason: e.to_string(),
        })?;
        self.forward(&bytes).await
    }
}

/// A start for our own query ids that differs between runs.
fn seed_id() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ std::process::id()) as u16
}

fn upstream_error(addr: SocketAddr, reason: impl ToString) -> DnsError {
    DnsError::Upstream {
        addr,
        reason: reason.to_string(),
    }
}

/// Does `reply` answer `query` (same id and question)? Anything else on
/// the socket is ignored, not taken as the answer.
fn answers(query: &[u8], reply: &[u8]) -> bool {
    reply.len() >= 12 && query.len() >= 12 && reply[..2] == query[..2] && reply[2] & 0x80 != 0
}

/// One question to one server: UDP, then TCP if the reply is truncated.
async fn exchange(server: SocketAddr, query: &[u8]) -> Result<Message, DnsError> {
    let reply = tokio::time::timeout(UPSTREAM_TIMEOUT, exchange_udp(server, query))
        .await
        .map_err(|_| upstream_error(server, "timed out (UDP)"))??;
    let msg = Message::from_vec(&reply).map_err(|e| upstream_error(server, e))?;
    if !msg.metadata.truncation {
        return Ok(msg);
    }
    let reply = tokio::time::timeout(UPSTREAM_TIMEOUT, exchange_tcp(server, query))
        .await
        .map_err(|_| upstream_error(server, "timed out (TCP)"))??;
    Message::from_vec(&reply).map_err(|e| upstream_error(server, e))
}

async fn exchange_udp(server: SocketAddr, query: &[u8]) -> Result<Vec<u8>, DnsError> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let err = |e: std::io::Error| upstream_error(server, e);
    // A fresh socket (fresh random source port) per question.
    let socket = UdpSocket::bind(local).await.map_err(err)?;
    socket.connect(server).await.map_err(err)?;
    socket.send(query).await.map_err(err)?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await.map_err(err)?;
        if answers(query, &buf[..n]) {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn exchange_tcp(server: SocketAddr, query: &[u8]) -> Result<Vec<u8>, DnsError> {
    let err = |e: std::io::Error| upstream_error(server, e);
    let mut stream = TcpStream::connect(server).await.map_err(err)?;
    let len = u16::try_from(query.len()).map_err(|_| upstream_error(server, "query too long"))?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await.map_err(err)?;
    loop {
        let len = stream.read_u16().await.map_err(err)? as usize;
        let mut buf = vec![0u8; len];
        stream.read_exact(&mut buf).await.map_err(err)?;
        if answers(query, &buf) {
            return Ok(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_without_the_cluster_dns() {
        let text = "# generated\nsearch example\nnameserver 127.0.0.53\nnameserver 10.96.0.10\nnameserver fe80::1%eth0\n  nameserver   192.0.2.1  \nnameserver bogus\n";
        let servers = parse_resolv_conf(text, &["10.96.0.10:53".parse().unwrap()]);
        assert_eq!(
            servers,
            vec![
                "127.0.0.53:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap(),
                "192.0.2.1:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn replies_must_match_the_query_id_and_be_responses() {
        let query = [0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        let mut reply = query;
        assert!(!answers(&query, &reply));
        reply[2] |= 0x80;
        assert!(answers(&query, &reply));
        reply[1] = 0x35;
        assert!(!answers(&query, &reply));
    }

    #[tokio::test]
    async fn forwards_over_udp_and_falls_back_to_tcp_on_truncation() {
        // A fake upstream on loopback: UDP replies truncated, TCP in full.
        // The same port number for UDP and TCP; retry when the TCP side of
        // a random UDP port happens to be taken.
        let (udp, addr, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
                break (udp, addr, tcp);
            }
        };
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, peer) = udp.recv_from(&mut buf).await.unwrap();
            let mut reply = Message::from_vec(&buf[..n]).unwrap();
            reply.metadata.message_type = MessageType::Response;
            reply.metadata.truncation = true;
            udp.send_to(&reply.to_vec().unwrap(), peer).await.unwrap();
        });
        tokio::spawn(async move {
            let (mut s, _) = tcp.accept().await.unwrap();
            let len = s.read_u16().await.unwrap() as usize;
            let mut buf = vec![0u8; len];
            s.read_exact(&mut buf).await.unwrap();
            let mut reply = Message::from_vec(&buf).unwrap();
            reply.metadata.message_type = MessageType::Response;
            reply.add_answer(hickory_proto::rr::Record::from_rdata(
                Name::from_ascii("db.example.com.").unwrap(),
                60,
                hickory_proto::rr::RData::A(hickory_proto::rr::rdata::A::new(192, 0, 2, 7)),
            ));
            let bytes = reply.to_vec().unwrap();
            s.write_u16(bytes.len() as u16).await.unwrap();
            s.write_all(&bytes).await.unwrap();
        });
        let fwd = Forwarder::new(&Upstream::Addr(addr), &[]);
        let reply = fwd
            .ask(&Name::from_ascii("db.example.com.").unwrap(), RecordType::A)
            .await
            .unwrap();
        assert!(!reply.metadata.truncation);
        assert_eq!(reply.answers.len(), 1);
    }

    #[tokio::test]
    async fn refusing_forwarder_has_no_servers() {
        let fwd = Forwarder::new(&Upstream::Refuse, &[]);
        assert!(fwd.refuses());
        assert!(matches!(
            fwd.forward(&[0; 12]).await,
            Err(DnsError::NoUpstream)
        ));
    }
}
