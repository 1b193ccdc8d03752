//! How one question is answered from a `Table`: a pure function, so every
//! DNS rule (NXDOMAIN vs NODATA, CNAME chasing, which names are ours) is
//! tested without sockets.

use std::net::Ipv4Addr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use ipnet::Ipv4Net;

use crate::records::{Rdata, Table, REVERSE_V4_ZONE};

/// Longest CNAME chain followed inside the zone (loops end here too).
const MAX_CNAME_CHAIN: usize = 8;

/// Who answers a question.
#[derive(Debug, PartialEq)]
pub enum Resolution {
    /// The name is in the cluster domain or a cluster reverse range: the
    /// table's answer is authoritative.
    Answer(Answer),
    /// Not ours: the upstream resolver answers.
    Forward,
}

/// An authoritative answer.
#[derive(Debug, PartialEq)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    /// The zone's SOA on NXDOMAIN and NODATA (negative caching, RFC 2308).
    pub authority: Vec<Record>,
    /// A CNAME pointed out of the zone (an ExternalName Service): the
    /// server asks upstream for this name and appends what it gets, as
    /// CoreDNS does, since stub resolvers do not follow CNAMEs themselves.
    pub chase: Option<Name>,
}

/// Which of our zones a lowercase name (no trailing dot) falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Zone {
    Cluster,
    Reverse,
}

fn in_domain(name: &str, domain: &str) -> bool {
    name == domain
        || (name.len() > domain.len()
            && name.ends_with(domain)
            && name.as_bytes()[name.len() - domain.len() - 1] == b'.')
}

/// A reverse name is ours when the address range it names lies inside a
/// cluster CIDR: `5.0.244.10.in-addr.arpa` and `244.10.in-addr.arpa` for
/// 10.244.0.0/16, but not `10.in-addr.arpa` (most of 10/8 is not ours).
fn reverse_in_cidrs(name: &str, cidrs: &[Ipv4Net]) -> bool {
    let Some(rest) = name.strip_suffix(REVERSE_V4_ZONE) else {
        return false;
    };
    let Some(rest) = rest.strip_suffix('.') else {
        return false;
    };
    // The octets are the last (up to four) labels, most significant last.
    let labels: Vec<&str> = rest.rsplit('.').take(4).collect();
    let mut octets = [0u8; 4];
    for (i, label) in labels.iter().enumerate() {
        // Only canonical decimal octets name addresses ("010" does not).
        if label.is_empty() || (label.len() > 1 && label.starts_with('0')) {
            return false;
        }
        match label.parse::<u8>() {
            Ok(o) => octets[i] = o,
            Err(_) => return false,
        }
    }
    let prefix = (labels.len() * 8) as u8;
    let Ok(net) = Ipv4Net::new(Ipv4Addr::from(octets), prefix) else {
        return false;
    };
    cidrs.iter().any(|c| c.contains(&net))
}

pub(crate) fn zone_of(table: &Table, name: &str) -> Option<Zone> {
    let cfg = table.zone();
    if in_domain(name, &cfg.domain) {
        Some(Zone::Cluster)
    } else if reverse_in_cidrs(name, &cfg.reverse_cidrs) {
        Some(Zone::Reverse)
    } else {
        None
    }
}

/// `Web.Default.svc.cluster.local.` -> `web.default.svc.cluster.local`.
pub fn table_key(name: &Name) -> String {
    let mut key = String::with_capacity(name.len());
    for label in name.iter() {
        if !key.is_empty() {
            key.push('.');
        }
        for &b in label {
            key.push(b.to_ascii_lowercase() as char);
        }
    }
    key
}

fn parse_name(s: &str) -> Option<Name> {
    let mut n = Name::from_ascii(s).ok()?;
    n.set_fqdn(true);
    Some(n)
}

fn wire(owner: &Name, ttl: u32, rdata: &Rdata) -> Option<Record> {
    let data = match rdata {
        Rdata::A(ip) => RData::A(A(*ip)),
        Rdata::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
        Rdata::Cname(t) => RData::CNAME(CNAME(parse_name(t)?)),
        Rdata::Srv {
            priority,
            weight,
            port,
            target,
        } => RData::SRV(SRV::new(*priority, *weight, *port, parse_name(target)?)),
        Rdata::Ptr(t) => RData::PTR(PTR(parse_name(t)?)),
        Rdata::Ns(t) => RData::NS(NS(parse_name(t)?)),
        Rdata::Txt(t) => RData::TXT(TXT::new(vec![t.to_string()])),
    };
    Some(Record::from_rdata(owner.clone(), ttl, data))
}

pub(crate) fn rdata_type(r: &Rdata) -> RecordType {
    match r {
        Rdata::A(_) => RecordType::A,
        Rdata::Aaaa(_) => RecordType::AAAA,
        Rdata::Cname(_) => RecordType::CNAME,
        Rdata::Srv { .. } => RecordType::SRV,
        Rdata::Ptr(_) => RecordType::PTR,
        Rdata::Ns(_) => RecordType::NS,
        Rdata::Txt(_) => RecordType::TXT,
    }
}

/// Answer `qname`/`qtype` from `table`. `rotate` turns the order of
/// address records (the request id is a fine source), so clients that
/// take the first address of a headless Service spread over its Pods.
pub fn resolve(table: &Table, qname: &Name, qtype: RecordType, rotate: usize) -> Resolution {
    let mut key = table_key(qname);
    let Some(zone) = zone_of(table, &key) else {
        return Resolution::Forward;
    };
    let soa = match zone {
        Zone::Cluster => table.zone_soa(),
        Zone::Reverse => table.reverse_soa(),
    };
    let mut answer = Answer {
        rcode: ResponseCode::NoError,
        answers: Vec::new(),
        authority: Vec::new(),
        chase: None,
    };
    if !table.is_synced() {
        answer.rcode = ResponseCode::ServFail;
        return Resolution::Answer(answer);
    }
    let ttl = table.zone().ttl;
    let mut owner = qname.clone();
    owner.set_fqdn(true);
    for _ in 0..MAX_CNAME_CHAIN {
        let Some(entry) = table.get(&key) else {
            answer.rcode = ResponseCode::NXDomain;
            answer.authority.push(soa.clone());
            return Resolution::Answer(answer);
        };
        if qtype != RecordType::CNAME && qtype != RecordType::ANY {
            if let Some(Rdata::Cname(target)) =
                entry.records().find(|r| matches!(r, Rdata::Cname(_)))
            {
                let Some(target_name) = parse_name(&target) else {
                    break;
                };
                answer
                    .answers
                    .extend(wire(&owner, ttl, &Rdata::Cname(target.clone())));
                let target_key = target.to_ascii_lowercase();
                if zone_of(table, &target_key) == Some(Zone::Cluster) {
                    owner = target_name;
                    key = target_key;
                    continue;
                }
                answer.chase = Some(target_name);
                return Resolution::Answer(answer);
            }
        }
        let before = answer.answers.len();
        if qtype == RecordType::SOA || qtype == RecordType::ANY {
            if key == table.zone().domain && zone == Zone::Cluster {
                let mut rec = soa.clone();
                rec.name = owner.clone();
                answer.answers.push(rec);
            }
        }
        let matching: Vec<Rdata> = entry
            .records()
            .filter(|r| qtype == RecordType::ANY || rdata_type(r) == qtype)
            .collect();
        let n = matching.len();
        let turn = if matches!(qtype, RecordType::A | RecordType::AAAA) && n > 1 {
            rotate % n
        } else {
            0
        };
        for i in 0..n {
            answer
                .answers
                .extend(wire(&owner, ttl, &matching[(i + turn) % n]));
        }
        if answer.answers.len() == before {
            // The name exists, but not with this type: NODATA.
            answer.authority.push(soa.clone());
        }
        return Resolution::Answer(answer);
    }
    // A CNAME loop inside the zone.
    answer.rcode = ResponseCode::ServFail;
    Resolution::Answer(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::{ClusterState, ServiceAddress, ServiceInfo};
    use crate::records::{build_table, ZoneConfig};
    use std::sync::Arc;

    fn svc(ns: &str, name: &str, address: ServiceAddress) -> ServiceInfo {
        ServiceInfo::new(ns, name, address, vec![])
    }

    fn table() -> Table {
        let mut st = ClusterState::default();
        st.services.insert(
            "default/web".into(),
            svc(
                "default",
                "web",
                ServiceAddress::ClusterIps(vec!["10.96.142.31".parse().unwrap()].into()),
            ),
        );
        st.services.insert(
            "default/ext".into(),
            svc(
                "default",
                "ext",
                ServiceAddress::ExternalName("db.example.com".into()),
            ),
        );
        st.services.insert(
            "default/alias".into(),
            svc(
                "default",
                "alias",
                ServiceAddress::ExternalName("web.default.svc.cluster.local".into()),
            ),
        );
        st.services.insert(
            "default/loop".into(),
            svc(
                "default",
                "loop",
                ServiceAddress::ExternalName("loop.default.svc.cluster.local".into()),
            ),
        );
        build_table(&st, Arc::new(ZoneConfig::default()), 7)
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn answer(r: Resolution) -> Answer {
        match r {
            Resolution::Answer(a) => a,
            Resolution::Forward => panic!("forwarded"),
        }
    }

    fn texts(records: &[Record]) -> Vec<String> {
        records.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn a_record_of_a_service_keeps_the_query_case() {
        let a = answer(resolve(
            &table(),
            &name("Web.Default.svc.cluster.local."),
            RecordType::A,
            0,
        ));
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert_eq!(
            texts(&a.answers),
            ["Web.Default.svc.cluster.local. 5 IN A 10.96.142.31"]
        );
        assert!(a.authority.is_empty());
    }

    #[test]
    fn unknown_name_in_zone_is_nxdomain_with_soa() {
        let a = answer(resolve(
            &table(),
            &name("nope.default.svc.cluster.local."),
            RecordType::A,
            0,
        ));
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        assert!(a.answers.is_empty());
        assert_eq!(
            texts(&a.authority),
            ["cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 7 7200 1800 86400 5"]
        );
    }

    #[test]
    fn known_name_other_type_is_nodata_with_soa() {
        let a = answer(resolve(
            &table(),
            &name("web.default.svc.cluster.local."),
            RecordType::AAAA,
            0,
        ));
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert!(a.answers.is_empty());
        assert_eq!(a.authority.len(), 1);
        let ent = answer(resolve(
            &table(),
            &name("default.svc.cluster.local."),
            RecordType::A,
            0,
        ));
        assert_eq!(ent.rcode, ResponseCode::NoError);
    }

    #[test]
    fn external_name_answers_cname_and_asks_upstream_for_the_target() {
        let a = answer(resolve(
            &table(),
            &name("ext.default.svc.cluster.local."),
            RecordType::A,
            0,
        ));
        assert_eq!(
            texts(&a.answers),
            ["ext.default.svc.cluster.local. 5 IN CNAME db.example.com."]
        );
        assert_eq!(a.chase, Some(name("db.example.com.")));
    }

    #[test]
    fn cname_inside_the_zone_is_followed() {
        let a = answer(resolve(
            &table(),
            &name("alias.default.svc.cluster.local."),
            RecordType::A,
            0,
        ));
        assert_eq!(
            texts(&a.answers),
            [
                "alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.",
                "web.default.svc.cluster.local. 5 IN A 10.96.142.31"
            ]
        );
        assert_eq!(a.chase, None);
        let looped = answer(resolve(
            &table(),
            &name("loop.default.svc.cluster.local."),
            RecordType::A,
            0,
        ));
        assert_eq!(looped.rcode, ResponseCode::ServFail);
    }

    #[test]
    fn ptr_of_a_cluster_ip_and_nxdomain_inside_cluster_ranges() {
        let t = table();
        let a = answer(resolve(
            &t,
            &name("31.142.96.10.in-addr.arpa."),
            RecordType::PTR,
            0,
        ));
        assert_eq!(
            texts(&a.answers),
            ["31.142.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."]
        );
        let miss = answer(resolve(
            &t,
            &name("32.142.96.10.in-addr.arpa."),
            RecordType::PTR,
            0,
        ));
        assert_eq!(miss.rcode, ResponseCode::NXDomain);
        assert!(texts(&miss.authority)[0]
            .starts_with("in-addr.arpa. 5 IN SOA ns.dns.in-addr.arpa. hostmaster.in-addr.arpa."));
    }

    #[test]
    fn names_outside_our_zones_are_forwarded() {
        let t = table();
        for n in [
            "example.com.",
            "1.1.168.192.in-addr.arpa.",
            "10.in-addr.arpa.",
            "local.",
            "xcluster.local.",
        ] {
            assert_eq!(
                resolve(&t, &name(n), RecordType::A, 0),
                Resolution::Forward,
                "{n}"
            );
        }
        assert!(matches!(
            resolve(&t, &name("96.10.in-addr.arpa."), RecordType::PTR, 0),
            Resolution::Answer(_)
        ));
    }

    #[test]
    fn apex_answers_soa_and_ns() {
        let t = table();
        let soa = answer(resolve(&t, &name("cluster.local."), RecordType::SOA, 0));
        assert_eq!(soa.answers.len(), 1);
        let ns = answer(resolve(&t, &name("cluster.local."), RecordType::NS, 0));
        assert_eq!(
            texts(&ns.answers),
            ["cluster.local. 5 IN NS ns.dns.cluster.local."]
        );
    }

    #[test]
    fn unsynced_table_is_servfail_for_our_names_only() {
        let t = Table::unsynced(Arc::new(ZoneConfig::default()));
        let a = answer(resolve(
            &t,
            &name("web.default.svc.cluster.local."),
            RecordType::A,
            0,
        ));
        assert_eq!(a.rcode, ResponseCode::ServFail);
        assert_eq!(
            resolve(&t, &name("example.com."), RecordType::A, 0),
            Resolution::Forward
        );
    }

    #[test]
    fn address_answers_rotate() {
        let mut st = ClusterState::default();
        let ips = vec!["10.96.0.1".parse().unwrap(), "10.96.0.2".parse().unwrap()];
        // Two families' worth of addresses would be odd for one Service;
        // two IPv4 ClusterIPs suffice to see the order turn.
        st.services.insert(
            "a/s".into(),
            svc("a", "s", ServiceAddress::ClusterIps(ips.into())),
        );
        let t = build_table(&st, Arc::new(ZoneConfig::default()), 1);
        let first = answer(resolve(
            &t,
            &name("s.a.svc.cluster.local."),
            RecordType::A,
            0,
        ));
        let second = answer(resolve(
            &t,
            &name("s.a.svc.cluster.local."),
            RecordType::A,
            1,
        ));
        assert_eq!(first.answers[0].data, second.answers[1].data);
        assert_ne!(first.answers[0].data, second.answers[0].data);
    }
}
