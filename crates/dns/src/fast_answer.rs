//! Answering a `fast_query::Question` straight from the table into wire
//! bytes, without building hickory `Message`s or `Record`s: the
//! client's header fields and question are copied, the records encoded
//! by hand. It covers what the full handler answers from the table alone
//! (addresses, SRV, PTR, NS, TXT, NXDOMAIN and NODATA with the SOA) and
//! gives up (false) on everything else: names to forward, CNAMEs (which
//! may need the upstream), SOA/ANY questions, an unsynced table, answers
//! that would need truncation. The answers are the full handler's, record
//! for record; the tests compare the two on every kind of name.

use hickory_proto::rr::{RData, Record, RecordType};

use crate::fast_query::Question;
use crate::lookup::{rdata_type, zone_of, Zone};
use crate::records::{Rdata, Table};

const CLASS_IN: [u8; 2] = [0, 1];
const TYPE_OPT: [u8; 2] = [0, 41];
/// A pointer to the question's name, right after the 12-byte header.
const QNAME_POINTER: [u8; 2] = [0xc0, 0x0c];
/// UDP answers without EDNS fit in 512 bytes (RFC 1035 4.2.1).
const CLASSIC_UDP_LIMIT: usize = 512;

const RCODE_NXDOMAIN: u8 = 3;

/// The record types answered here.
fn answerable(qtype: u16) -> Option<RecordType> {
    let t = RecordType::from(qtype);
    matches!(
        t,
        RecordType::A
            | RecordType::AAAA
            | RecordType::SRV
            | RecordType::PTR
            | RecordType::NS
            | RecordType::TXT
            | RecordType::CNAME
    )
    .then_some(t)
}

/// A dotted, lowercase name from the table as wire labels; false for
/// names the full handler's name parser might read differently.
fn emit_dotted(out: &mut Vec<u8>, name: &str) -> bool {
    let start = out.len();
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return false;
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.len() - start <= 255
}

fn emit_name(out: &mut Vec<u8>, name: &hickory_proto::rr::Name) {
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
}

/// Type, class and TTL of a record whose owner was just written, then
/// its data through `data`, with the data's length in front.
fn emit_rr(
    out: &mut Vec<u8>,
    rtype: RecordType,
    ttl: u32,
    data: impl FnOnce(&mut Vec<u8>) -> bool,
) -> bool {
    out.extend_from_slice(&u16::from(rtype).to_be_bytes());
    out.extend_from_slice(&CLASS_IN);
    out.extend_from_slice(&ttl.to_be_bytes());
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    if !data(out) {
        return false;
    }
    let len = out.len() - len_at - 2;
    out[len_at..len_at + 2].copy_from_slice(&(len as u16).to_be_bytes());
    true
}

/// One answer record, owned by the question's name.
fn emit_answer(out: &mut Vec<u8>, ttl: u32, rdata: &Rdata) -> bool {
    out.extend_from_slice(&QNAME_POINTER);
    emit_rr(out, rdata_type(rdata), ttl, |out| match rdata {
        Rdata::A(ip) => {
            out.extend_from_slice(&ip.octets());
            true
        }
        Rdata::Aaaa(ip) => {
            out.extend_from_slice(&ip.octets());
            true
        }
        Rdata::Srv {
            priority,
            weight,
            port,
            target,
        } => {
            out.extend_from_slice(&priority.to_be_bytes());
            out.extend_from_slice(&weight.to_be_bytes());
            out.extend_from_slice(&port.to_be_bytes());
            emit_dotted(out, target)
        }
        Rdata::Ptr(t) | Rdata::Ns(t) | Rdata::Cname(t) => emit_dotted(out, t),
        Rdata::Txt(t) => {
            let Ok(len) = u8::try_from(t.len()) else {
                return false;
            };
            out.push(len);
            out.extend_from_slice(t.as_bytes());
            true
        }
    })
}

/// The zone's SOA in the authority section (negative answers).
fn emit_soa(out: &mut Vec<u8>, soa: &Record) -> bool {
    let RData::SOA(data) = &soa.data else {
        return false;
    };
    emit_name(out, &soa.name);
    emit_rr(out, RecordType::SOA, soa.ttl, |out| {
        emit_name(out, &data.mname);
        emit_name(out, &data.rname);
        out.extend_from_slice(&data.serial.to_be_bytes());
        out.extend_from_slice(&data.refresh.to_be_bytes());
        out.extend_from_slice(&data.retry.to_be_bytes());
        out.extend_from_slice(&data.expire.to_be_bytes());
        out.extend_from_slice(&data.minimum.to_be_bytes());
        true
    })
}

/// Write the answer to `q` into `out`; false (and `out` undefined) when
/// the full handler must answer.
pub fn answer(table: &Table, q: &Question<'_>, out: &mut Vec<u8>) -> bool {
    out.clear();
    if !table.is_synced() {
        return false;
    }
    let Some(qtype) = answerable(q.qtype) else {
        return false;
    };
    let key = q.key();
    let Some(zone) = zone_of(table, key) else {
        return false;
    };
    let soa = match zone {
        Zone::Cluster => table.zone_soa(),
        Zone::Reverse => table.reverse_soa(),
    };
    let ttl = table.zone().ttl;

    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(q.section);
    let mut rcode = 0;
    let mut answers = 0u16;
    let mut authority = 0u16;
    match table.get(key) {
        None => {
            rcode = RCODE_NXDOMAIN;
            if !emit_soa(out, soa) {
                return false;
            }
            authority = 1;
        }
        Some(entry) => {
            if qtype != RecordType::CNAME && entry.records().any(|r| matches!(r, Rdata::Cname(_))) {
                return false;
            }
            let matching = || entry.records().filter(|r| rdata_type(r) == qtype);
            let n = matching().count();
            // Address records turn with the question's id, as in `lookup`.
            let turn = if matches!(qtype, RecordType::A | RecordType::AAAA) && n > 1 {
                q.id as usize % n
            } else {
                0
            };
            for r in matching().skip(turn).chain(matching().take(turn)) {
                if !emit_answer(out, ttl, &r) {
                    return false;
                }
                answers += 1;
            }
            if n == 0 {
                if !emit_soa(out, soa) {
                    return false;
                }
                authority = 1;
            }
        }
    }
    let mut additional = 0u16;
    let mut limit = CLASSIC_UDP_LIMIT;
    if let Some(payload) = q.edns_payload {
        // Our OPT: the client's payload size (at least 512), version 0,
        // no flags, no options; as the full handler answers.
        let payload = payload.max(CLASSIC_UDP_LIMIT as u16);
        out.push(0);
        out.extend_from_slice(&TYPE_OPT);
        out.extend_from_slice(&payload.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        additional = 1;
        limit = payload as usize;
    }
    if out.len() > limit {
        // Needs truncation: the full handler does that.
        return false;
    }
    // QR, opcode QUERY, AA, RD echoed; RA (names outside the zone are
    // resolved recursively), CD echoed.
    let flags_hi = 0x80 | 0x04 | u8::from(q.rd);
    let flags_lo = 0x80 | (u8::from(q.cd) << 4) | rcode;
    out[0..2].copy_from_slice(&q.id.to_be_bytes());
    out[2] = flags_hi;
    out[3] = flags_lo;
    out[4..6].copy_from_slice(&1u16.to_be_bytes());
    out[6..8].copy_from_slice(&answers.to_be_bytes());
    out[8..10].copy_from_slice(&authority.to_be_bytes());
    out[10..12].copy_from_slice(&additional.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fallback::{answer_with, encode_udp};
    use crate::forward::Forwarder;
    use crate::handler::ClusterDnsHandler;
    use crate::objects::{
        ClusterState, EndpointInfo, NamedPort, PodInfo, PortProtocol, ServiceAddress, ServiceInfo,
        SliceInfo,
    };
    use crate::records::{build_table, ZoneConfig};
    use crate::shared::SharedTable;
    use crate::Upstream;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::Name;
    use hickory_server::net::NetError;
    use hickory_server::server::{ResponseHandler, ResponseInfo};
    use hickory_server::zone_handler::MessageResponse;
    use std::net::IpAddr;
    use std::sync::{Arc, Mutex};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn service(name: &str, address: ServiceAddress) -> ServiceInfo {
        ServiceInfo::http("default", name, address)
    }

    fn cluster() -> ClusterState {
        let mut st = ClusterState::default();
        for (name, address) in [
            (
                "web",
                ServiceAddress::ClusterIps(vec![ip("10.96.142.31")].into()),
            ),
            (
                "ext",
                ServiceAddress::ExternalName("db.example.test".into()),
            ),
            ("db", ServiceAddress::Headless),
            ("many", ServiceAddress::Headless),
            ("pending", ServiceAddress::Pending),
        ] {
            st.services
                .insert(format!("default/{name}"), service(name, address));
        }
        let endpoints = |n: u8, host: bool| -> Box<[EndpointInfo]> {
            (1..=n)
                .map(|i| EndpointInfo {
                    addresses: vec![ip(&format!("10.244.{}.{i}", if host { 0 } else { 1 }))].into(),
                    hostname: (host && i == 1).then(|| "db-0".into()),
                    ready: true,
                })
                .collect()
        };
        let ports: Box<[NamedPort]> = vec![NamedPort {
            name: "pg".into(),
            protocol: PortProtocol::Tcp,
            port: 5432,
        }]
        .into();
        st.slices.insert(
            "default/db-x".into(),
            SliceInfo {
                namespace: "default".into(),
                service: "db".into(),
                ports: ports.clone(),
                endpoints: endpoints(3, true),
            },
        );
        st.slices.insert(
            "default/many-x".into(),
            SliceInfo {
                namespace: "default".into(),
                service: "many".into(),
                ports,
                endpoints: endpoints(60, false),
            },
        );
        st.pods.insert(
            "default/p".into(),
            PodInfo {
                namespace: "default".into(),
                ips: vec![ip("10.244.0.2")].into(),
            },
        );
        st
    }

    /// Catches what the full handler sends.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    #[async_trait::async_trait]
    impl ResponseHandler for Capture {
        async fn send_response<'a>(
            &mut self,
            response: MessageResponse<
                '_,
                'a,
                impl Iterator<Item = &'a Record> + Send + 'a,
                impl Iterator<Item = &'a Record> + Send + 'a,
                impl Iterator<Item = &'a Record> + Send + 'a,
                impl Iterator<Item = &'a Record> + Send + 'a,
            >,
        ) -> Result<ResponseInfo, NetError> {
            let (info, bytes) = encode_udp(response)?;
            *self.0.lock().unwrap() = bytes;
            Ok(info)
        }
    }

    fn query(id: u16, name: &str, qtype: RecordType, edns: Option<u16>, rd: bool) -> Vec<u8> {
        let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = rd;
        msg.metadata.checking_disabled = !rd;
        msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some(payload) = edns {
            let mut e = Edns::new();
            e.set_max_payload(payload);
            msg.set_edns(e);
        }
        msg.to_vec().unwrap()
    }

    struct Both {
        table: Arc<SharedTable>,
        handler: ClusterDnsHandler,
    }

    impl Both {
        fn new() -> Both {
            let zone = Arc::new(ZoneConfig::default());
            let table = Arc::new(SharedTable::new(build_table(&cluster(), zone, 9)));
            let handler =
                ClusterDnsHandler::new(table.clone(), Forwarder::new(&Upstream::Refuse, &[]));
            Both { table, handler }
        }

        fn fast(&self, packet: &[u8]) -> Option<Vec<u8>> {
            let q = crate::fast_query::parse(packet)?;
            let mut out = Vec::new();
            answer(&self.table.load(), &q, &mut out).then_some(out)
        }

        async fn full(&self, packet: &[u8]) -> Vec<u8> {
            let capture = Capture::default();
            answer_with(
                &self.handler,
                packet.to_vec(),
                "127.0.0.1:5353".parse().unwrap(),
                capture.clone(),
            )
            .await;
            let bytes = capture.0.lock().unwrap().clone();
            bytes
        }
    }

    /// The same answer, field by field (names compare case-insensitively,
    /// as DNS does; the question is compared byte for byte).
    fn assert_same(query: &[u8], fast: &[u8], full: &[u8], what: &str) {
        let section = crate::fast_query::parse(query).unwrap().section;
        let question = 12..12 + section.len();
        assert_eq!(&fast[question.clone()], section, "{what}: question bytes");
        assert_eq!(&full[question], section, "{what}: question bytes");
        let a = Message::from_vec(fast).unwrap();
        let b = Message::from_vec(full).unwrap();
        assert_eq!(a.metadata, b.metadata, "{what}: header");
        assert_eq!(a.queries, b.queries, "{what}: question");
        assert_eq!(a.answers, b.answers, "{what}: answers");
        assert_eq!(a.authorities, b.authorities, "{what}: authority");
        assert_eq!(a.additionals, b.additionals, "{what}: additional");
        assert_eq!(a.edns, b.edns, "{what}: EDNS");
        assert_eq!(
            a.answers.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            b.answers.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            "{what}: answer text (owner case included)"
        );
    }

    #[tokio::test]
    async fn fast_answers_equal_the_full_handlers() {
        let both = Both::new();
        let cases: &[(&str, RecordType)] = &[
            ("web.default.svc.cluster.local.", RecordType::A),
            ("WeB.DeFault.SVC.cluster.LOCAL.", RecordType::A),
            ("web.default.svc.cluster.local.", RecordType::AAAA),
            ("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV),
            ("_pg._tcp.db.default.svc.cluster.local.", RecordType::SRV),
            ("31.142.96.10.in-addr.arpa.", RecordType::PTR),
            ("1.0.244.10.in-addr.arpa.", RecordType::PTR),
            ("2.0.244.10.in-addr.arpa.", RecordType::PTR),
            ("99.0.244.10.in-addr.arpa.", RecordType::PTR),
            ("db.default.svc.cluster.local.", RecordType::A),
            ("db-0.db.default.svc.cluster.local.", RecordType::A),
            ("10-244-0-2.default.pod.cluster.local.", RecordType::A),
            ("ext.default.svc.cluster.local.", RecordType::CNAME),
            ("pending.default.svc.cluster.local.", RecordType::A),
            ("nope.default.svc.cluster.local.", RecordType::A),
            ("default.svc.cluster.local.", RecordType::A),
            ("cluster.local.", RecordType::NS),
            ("dns-version.cluster.local.", RecordType::TXT),
            ("ns.dns.cluster.local.", RecordType::A),
            ("nope.cluster.local.", RecordType::SRV),
        ];
        for &(name, qtype) in cases {
            for (id, edns, rd) in [
                (7, None, true),
                (8, Some(1232), false),
                (9, Some(100), true),
            ] {
                let q = query(id, name, qtype, edns, rd);
                let what = format!("{name} {qtype} id={id} edns={edns:?}");
                let fast = both.fast(&q).unwrap_or_else(|| panic!("{what}: not fast"));
                let full = both.full(&q).await;
                assert_same(&q, &fast, &full, &what);
            }
        }
    }

    #[tokio::test]
    async fn headless_addresses_turn_alike() {
        let both = Both::new();
        for id in 0..6 {
            let q = query(
                id,
                "db.default.svc.cluster.local.",
                RecordType::A,
                None,
                true,
            );
            let fast = both.fast(&q).unwrap();
            assert_same(&q, &fast, &both.full(&q).await, &format!("id {id}"));
        }
    }

    #[tokio::test]
    async fn the_rest_is_left_to_the_full_handler() {
        let both = Both::new();
        for (name, qtype, edns) in [
            // CNAME to chase, SOA, ANY, a name to forward, MX.
            ("ext.default.svc.cluster.local.", RecordType::A, None),
            ("cluster.local.", RecordType::SOA, None),
            ("web.default.svc.cluster.local.", RecordType::ANY, None),
            ("example.test.", RecordType::A, None),
            ("web.default.svc.cluster.local.", RecordType::MX, None),
            // 60 addresses: more than 512 bytes, truncated by the full one.
            ("many.default.svc.cluster.local.", RecordType::A, None),
        ] {
            let q = query(1, name, qtype, edns, true);
            assert!(both.fast(&q).is_none(), "{name} {qtype}");
        }
        // With a big enough EDNS buffer, the 60 addresses are fast again.
        let q = query(
            1,
            "many.default.svc.cluster.local.",
            RecordType::A,
            Some(4096),
            true,
        );
        let fast = both.fast(&q).unwrap();
        assert_same(&q, &fast, &both.full(&q).await, "many with EDNS 4096");
        assert_eq!(Message::from_vec(&fast).unwrap().answers.len(), 60);
    }

    #[tokio::test]
    async fn unsynced_table_goes_to_the_full_handler() {
        let both = Both::new();
        both.table
            .store(Table::unsynced(Arc::new(ZoneConfig::default())));
        let q = query(
            1,
            "web.default.svc.cluster.local.",
            RecordType::A,
            None,
            true,
        );
        assert!(both.fast(&q).is_none());
    }
}
