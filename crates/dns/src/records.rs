//! Which DNS records the cluster has: a pure function from Services,
//! EndpointSlices and Pods to an immutable `Table`, following the
//! Kubernetes DNS-Based Service Discovery specification (what CoreDNS's
//! kubernetes plugin serves).
//!
//! The table stores names as lowercase strings and record data in a small
//! enum, not as hickory `Record`s: a Service costs a few hundred bytes, and
//! wire records are made per answer (`lookup`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record};
use ipnet::Ipv4Net;

use crate::name_hash::NameMap;
use crate::objects::{ClusterState, NamedPort, ServiceAddress, ServiceInfo, SliceInfo};

/// The suffix of IPv4 reverse names.
pub const REVERSE_V4_ZONE: &str = "in-addr.arpa";

/// What the zone is and how its answers look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneConfig {
    /// The cluster domain, without trailing dot (`cluster.local`).
    pub domain: String,
    /// TTL of every answer and of the SOA (negative caching).
    pub ttl: u32,
    /// The DNS Service's ClusterIP, the address of `ns.dns.<domain>`.
    pub service_ip: Ipv4Addr,
    /// Address ranges whose reverse names are answered here (Service and
    /// Pod CIDRs); reverse names outside them are forwarded.
    pub reverse_cidrs: Vec<Ipv4Net>,
}

impl Default for ZoneConfig {
    fn default() -> Self {
        ZoneConfig {
            domain: "cluster.local".to_string(),
            ttl: 5,
            service_ip: Ipv4Addr::new(10, 96, 0, 10),
            reverse_cidrs: vec![
                Ipv4Net::new(Ipv4Addr::new(10, 96, 0, 0), 12).expect("valid prefix"),
                Ipv4Net::new(Ipv4Addr::new(10, 244, 0, 0), 16).expect("valid prefix"),
            ],
        }
    }
}

/// Record data of one name. Targets are shared (`Arc<str>`): a Service's
/// name is the target of its SRV and PTR records alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rdata {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(Arc<str>),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Arc<str>,
    },
    Ptr(Arc<str>),
    Ns(Arc<str>),
    Txt(Arc<str>),
}

/// An immutable snapshot of every record; replaced whole on change.
#[derive(Debug)]
pub struct Table {
    zone: Arc<ZoneConfig>,
    synced: bool,
    /// Lowercase names without trailing dot. A name with an empty slice
    /// exists without records of its own (an "empty non-terminal" such as
    /// `default.svc.cluster.local`): NODATA, not NXDOMAIN.
    names: NameMap<Vec<Rdata>>,
    zone_soa: Record,
    reverse_soa: Record,
}

impl Table {
    /// The table before the first complete list of objects: answers for
    /// the zone are SERVFAIL (try again), never a wrong NXDOMAIN.
    pub fn unsynced(zone: Arc<ZoneConfig>) -> Table {
        Table {
            zone_soa: soa_record(&zone.domain, &zone, 0),
            reverse_soa: soa_record(REVERSE_V4_ZONE, &zone, 0),
            zone,
            synced: false,
            names: NameMap::default(),
        }
    }

    pub fn zone(&self) -> &ZoneConfig {
        &self.zone
    }

    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// Records of a lowercase name without trailing dot; None when the
    /// name does not exist.
    pub fn get(&self, name: &str) -> Option<&[Rdata]> {
        self.names.get(name).map(Vec::as_slice)
    }

    /// Number of names (including empty non-terminals).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The SOA of the cluster domain.
    pub fn zone_soa(&self) -> &Record {
        &self.zone_soa
    }

    /// The SOA of `in-addr.arpa`, for answers about cluster addresses.
    pub fn reverse_soa(&self) -> &Record {
        &self.reverse_soa
    }

    /// Every name with its records, for tests and zone-file export.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Rdata])> {
        self.names.iter().map(|(k, v)| (&**k, v.as_slice()))
    }
}

/// The zone's SOA, shaped as CoreDNS makes it:
/// `<zone>. IN SOA ns.dns.<zone>. hostmaster.<zone>. <serial> 7200 1800 86400 <ttl>`.
fn soa_record(zone: &str, cfg: &ZoneConfig, serial: u32) -> Record {
    let name = |s: String| Name::from_ascii(s).unwrap_or_else(|_| Name::root());
    Record::from_rdata(
        name(format!("{zone}.")),
        cfg.ttl,
        RData::SOA(SOA::new(
            name(format!("ns.dns.{zone}.")),
            name(format!("hostmaster.{zone}.")),
            serial,
            7200,
            1800,
            86400,
            cfg.ttl,
        )),
    )
}

/// `10.96.0.10` -> `10.0.96.10.in-addr.arpa`.
pub fn reverse_name(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{d}.{c}.{b}.{a}.{REVERSE_V4_ZONE}")
}

/// The label of an address in Pod and headless-endpoint names:
/// `10.244.0.5` -> `10-244-0-5`.
pub fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    }
}

fn address_rdata(ip: IpAddr) -> Rdata {
    match ip {
        IpAddr::V4(v4) => Rdata::A(v4),
        IpAddr::V6(v6) => Rdata::Aaaa(v6),
    }
}

/// Collects records per name, then freezes them into a `Table`.
struct Builder {
    names: NameMap<Vec<Rdata>>,
}

impl Builder {
    fn add(&mut self, name: &str, rdata: Rdata) {
        let set = match self.names.get_mut(name) {
            Some(set) => set,
            None => self.names.entry(name.into()).or_default(),
        };
        if !set.contains(&rdata) {
            set.push(rdata);
        }
    }

    fn has_ptr(&self, rev: &str) -> bool {
        self.names.get(rev).is_some_and(|s| !s.is_empty())
    }

    fn add_ptr(&mut self, ip: IpAddr, target: &Arc<str>) {
        // Reverse names are served for IPv4 only (the cluster's families).
        if let IpAddr::V4(v4) = ip {
            self.add(&reverse_name(v4), Rdata::Ptr(target.clone()));
        }
    }

    /// Adds every missing ancestor of every name down from `apex`
    /// (exclusive), so that e.g. `default.svc.cluster.local` is NODATA.
    fn add_empty_non_terminals(&mut self, apexes: &[&str]) {
        let mut missing: Vec<Box<str>> = Vec::new();
        for name in self.names.keys() {
            let Some(apex) = apexes.iter().find(|a| {
                name.len() > a.len()
                    && name.ends_with(*a)
                    && name.as_bytes()[name.len() - a.len() - 1] == b'.'
            }) else {
                continue;
            };
            let mut rest: &str = name;
            while let Some(dot) = rest.find('.') {
                rest = &rest[dot + 1..];
                if rest.len() <= apex.len() {
                    break;
                }
                if !self.names.contains_key(rest) {
                    missing.push(rest.into());
                }
            }
        }
        for name in missing {
            self.names.entry(name).or_default();
        }
    }

    fn finish(mut self, zone: Arc<ZoneConfig>, serial: u32) -> Table {
        // In place: re-collecting into a new map would hash every name again.
        for set in self.names.values_mut() {
            // Equal shares of weight among a name's SRV targets, as
            // CoreDNS gives them.
            let srv_count = set
                .iter()
                .filter(|r| matches!(r, Rdata::Srv { .. }))
                .count();
            if srv_count > 0 {
                let share = (100 / srv_count).max(1) as u16;
                for r in set.iter_mut() {
                    if let Rdata::Srv { weight, .. } = r {
                        *weight = share;
                    }
                }
            }
            set.shrink_to_fit();
        }
        let names = self.names;
        Table {
            zone_soa: soa_record(&zone.domain, &zone, serial),
            reverse_soa: soa_record(REVERSE_V4_ZONE, &zone, serial),
            zone,
            synced: true,
            names,
        }
    }
}

/// All records of the cluster. `serial` is the SOA serial (CoreDNS uses
/// the time of the last change).
pub fn build_table(state: &ClusterState, zone: Arc<ZoneConfig>, serial: u32) -> Table {
    let domain = zone.domain.trim_end_matches('.').to_ascii_lowercase();
    let mut b = Builder {
        names: NameMap::with_capacity_and_hasher(
            state.services.len() * 4 + state.pods.len() * 2 + 16,
            Default::default(),
        ),
    };

    // The zone's own names: its name server and the spec's version record.
    let ns_name: Arc<str> = format!("ns.dns.{domain}").into();
    b.add(&domain, Rdata::Ns(ns_name.clone()));
    b.add(&ns_name, Rdata::A(zone.service_ip));
    b.add(&format!("dns-version.{domain}"), Rdata::Txt("1.1.0".into()));
    // `svc.<domain>` and `pod.<domain>` exist even in an empty cluster.
    b.names.entry(format!("svc.{domain}").into()).or_default();
    b.names.entry(format!("pod.{domain}").into()).or_default();

    let mut slices_by_service: HashMap<(&str, &str), Vec<&SliceInfo>> = HashMap::new();
    for slice in state.slices.values() {
        slices_by_service
            .entry((&slice.namespace, &slice.service))
            .or_default()
            .push(slice);
    }

    for svc in state.services.values() {
        let fqdn: Arc<str> = format!("{}.{}.svc.{domain}", svc.name, svc.namespace).into();
        match &svc.address {
            ServiceAddress::ClusterIps(ips) => {
                for &ip in ips.iter() {
                    b.add(&fqdn, address_rdata(ip));
                    b.add_ptr(ip, &fqdn);
                }
                for port in svc.ports.iter() {
                    b.add(&srv_name(port, &fqdn), srv(port.port, &fqdn));
                }
                // The name exists even without named ports.
                b.names.entry((*fqdn).into()).or_default();
            }
            ServiceAddress::Headless => {
                b.names.entry((*fqdn).into()).or_default();
                let slices = slices_by_service
                    .get(&(&*svc.namespace, &*svc.name))
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                add_headless(&mut b, svc, &fqdn, slices);
            }
            ServiceAddress::ExternalName(target) => {
                b.add(&fqdn, Rdata::Cname(Arc::from(&**target)));
            }
            ServiceAddress::Pending => {
                b.names.entry((*fqdn).into()).or_default();
            }
        }
    }

    for pod in state.pods.values() {
        for &ip in pod.ips.iter() {
            let name: Arc<str> = format!("{}.{}.pod.{domain}", dashed(ip), pod.namespace).into();
            b.add(&name, address_rdata(ip));
            // A Pod IP that already names a headless endpoint keeps that
            // name, the more useful one (e.g. a StatefulSet's `db-0`).
            if let IpAddr::V4(v4) = ip {
                if !b.has_ptr(&reverse_name(v4)) {
                    b.add_ptr(ip, &name);
                }
            }
        }
    }

    b.add_empty_non_terminals(&[&domain, REVERSE_V4_ZONE]);
    b.finish(zone, serial)
}

fn srv_name(port: &NamedPort, fqdn: &str) -> String {
    format!("_{}._{}.{fqdn}", port.name, port.protocol.label())
}

fn srv(port: u16, target: &Arc<str>) -> Rdata {
    Rdata::Srv {
        priority: 0,
        weight: 100,
        port,
        target: target.clone(),
    }
}

/// A headless Service publishes its ready endpoints: an address record per
/// endpoint under the Service's name, a name per endpoint (its hostname,
/// else its dashed address), SRV records that point at those names, and
/// PTRs back to them.
fn add_headless(b: &mut Builder, svc: &ServiceInfo, fqdn: &Arc<str>, slices: &[&SliceInfo]) {
    for slice in slices {
        for ep in slice.endpoints.iter() {
            if !(ep.ready || svc.publish_not_ready) {
                continue;
            }
            for &ip in ep.addresses.iter() {
                let label = match &ep.hostname {
                    Some(h) => h.to_string(),
                    None => dashed(ip),
                };
                let ep_name: Arc<str> = format!("{label}.{fqdn}").into();
                b.add(fqdn, address_rdata(ip));
                b.add(&ep_name, address_rdata(ip));
                b.add_ptr(ip, &ep_name);
                for port in slice.ports.iter() {
                    b.add(&srv_name(port, fqdn), srv(port.port, &ep_name));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::{EndpointInfo, PodInfo, PortProtocol};

    fn zone() -> Arc<ZoneConfig> {
        Arc::new(ZoneConfig::default())
    }

    fn port(name: &str, proto: PortProtocol, port: u16) -> NamedPort {
        NamedPort {
            name: name.into(),
            protocol: proto,
            port,
        }
    }

    fn service(
        ns: &str,
        name: &str,
        address: ServiceAddress,
        ports: Vec<NamedPort>,
    ) -> ServiceInfo {
        ServiceInfo {
            namespace: ns.into(),
            name: name.into(),
            address,
            ports: ports.into(),
            publish_not_ready: false,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn state() -> ClusterState {
        let mut st = ClusterState::default();
        st.services.insert(
            "default/web".into(),
            service(
                "default",
                "web",
                ServiceAddress::ClusterIps(vec![ip("10.96.142.31")].into()),
                vec![port("http", PortProtocol::Tcp, 80)],
            ),
        );
        st.services.insert(
            "default/db".into(),
            service("default", "db", ServiceAddress::Headless, vec![]),
        );
        st.services.insert(
            "default/ext".into(),
            service(
                "default",
                "ext",
                ServiceAddress::ExternalName("db.example.com".into()),
                vec![],
            ),
        );
        st.slices.insert(
            "default/db-x1".into(),
            SliceInfo {
                namespace: "default".into(),
                service: "db".into(),
                ports: vec![port("pg", PortProtocol::Tcp, 5432)].into(),
                endpoints: vec![
                    EndpointInfo {
                        addresses: vec![ip("10.244.0.8")].into(),
                        hostname: Some("db-0".into()),
                        ready: true,
                    },
                    EndpointInfo {
                        addresses: vec![ip("10.244.0.9")].into(),
                        hostname: None,
                        ready: true,
                    },
                    EndpointInfo {
                        addresses: vec![ip("10.244.0.10")].into(),
                        hostname: None,
                        ready: false,
                    },
                ]
                .into(),
            },
        );
        st.pods.insert(
            "default/db-0".into(),
            PodInfo {
                namespace: "default".into(),
                ips: vec![ip("10.244.0.8")].into(),
            },
        );
        st.pods.insert(
            "default/web-1".into(),
            PodInfo {
                namespace: "default".into(),
                ips: vec![ip("10.244.0.5")].into(),
            },
        );
        st
    }

    #[test]
    fn cluster_ip_service_has_a_srv_and_ptr() {
        let t = build_table(&state(), zone(), 1);
        assert_eq!(
            t.get("web.default.svc.cluster.local"),
            Some(&[Rdata::A("10.96.142.31".parse().unwrap())][..])
        );
        assert_eq!(
            t.get("_http._tcp.web.default.svc.cluster.local"),
            Some(
                &[Rdata::Srv {
                    priority: 0,
                    weight: 100,
                    port: 80,
                    target: "web.default.svc.cluster.local".into()
                }][..]
            )
        );
        assert_eq!(
            t.get("31.142.96.10.in-addr.arpa"),
            Some(&[Rdata::Ptr("web.default.svc.cluster.local".into())][..])
        );
    }

    #[test]
    fn headless_service_publishes_ready_endpoints_only() {
        let t = build_table(&state(), zone(), 1);
        let set = t.get("db.default.svc.cluster.local").unwrap();
        assert_eq!(
            set,
            &[
                Rdata::A("10.244.0.8".parse().unwrap()),
                Rdata::A("10.244.0.9".parse().unwrap())
            ]
        );
        assert!(t.get("db-0.db.default.svc.cluster.local").is_some());
        assert!(t.get("10-244-0-9.db.default.svc.cluster.local").is_some());
        assert!(t.get("10-244-0-10.db.default.svc.cluster.local").is_none());
        let srv = t.get("_pg._tcp.db.default.svc.cluster.local").unwrap();
        assert_eq!(srv.len(), 2);
        assert!(srv.contains(&Rdata::Srv {
            priority: 0,
            weight: 50,
            port: 5432,
            target: "db-0.db.default.svc.cluster.local".into()
        }));
        // The endpoint name wins over the Pod name for the reverse record.
        assert_eq!(
            t.get("8.0.244.10.in-addr.arpa"),
            Some(&[Rdata::Ptr("db-0.db.default.svc.cluster.local".into())][..])
        );
    }

    #[test]
    fn not_ready_endpoints_are_published_when_the_service_asks() {
        let mut st = state();
        st.services.get_mut("default/db").unwrap().publish_not_ready = true;
        let t = build_table(&st, zone(), 1);
        assert_eq!(t.get("db.default.svc.cluster.local").unwrap().len(), 3);
    }

    #[test]
    fn external_name_is_a_cname() {
        let t = build_table(&state(), zone(), 1);
        assert_eq!(
            t.get("ext.default.svc.cluster.local"),
            Some(&[Rdata::Cname("db.example.com".into())][..])
        );
    }

    #[test]
    fn pods_get_dashed_names_and_ptrs() {
        let t = build_table(&state(), zone(), 1);
        assert_eq!(
            t.get("10-244-0-5.default.pod.cluster.local"),
            Some(&[Rdata::A("10.244.0.5".parse().unwrap())][..])
        );
        assert_eq!(
            t.get("5.0.244.10.in-addr.arpa"),
            Some(&[Rdata::Ptr("10-244-0-5.default.pod.cluster.local".into())][..])
        );
    }

    #[test]
    fn ancestors_exist_as_empty_non_terminals() {
        let t = build_table(&state(), zone(), 1);
        for name in [
            "default.svc.cluster.local",
            "svc.cluster.local",
            "_tcp.web.default.svc.cluster.local",
            "default.pod.cluster.local",
            "0.244.10.in-addr.arpa",
        ] {
            assert_eq!(t.get(name), Some(&[][..]), "{name}");
        }
        assert!(t.get("other.svc.cluster.local").is_none());
        assert!(t.get("in-addr.arpa").is_none());
        assert!(t.get("cluster.local").is_some());
    }

    #[test]
    fn zone_soa_is_shaped_like_corednss() {
        let t = build_table(&ClusterState::default(), zone(), 42);
        assert_eq!(
            t.zone_soa().to_string(),
            "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5"
        );
        assert_eq!(
            t.get("ns.dns.cluster.local"),
            Some(&[Rdata::A(Ipv4Addr::new(10, 96, 0, 10))][..])
        );
    }
}
