//! Which DNS records the cluster has, following the Kubernetes DNS-Based
//! Service Discovery specification (what CoreDNS's kubernetes plugin
//! serves): pure functions from one Service (with its EndpointSlices) or
//! one Pod to the `Contribution`s it puts into the `Table`. The feed adds
//! and removes exactly these when an object changes; `build_table` adds
//! them all at once.
//!
//! Names are lowercase strings and record data a small enum, not hickory
//! `Record`s: a Service costs a few hundred bytes, and wire records are
//! made per answer (`lookup`, `fast_answer`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::objects::{ClusterState, NamedPort, PodInfo, ServiceAddress, ServiceInfo, SliceInfo};
pub use crate::table::{Contribution, Entry, Rdata, Table, ZoneConfig, REVERSE_V4_ZONE};

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

/// Collects one object's contributions.
struct Out<'a>(&'a mut Vec<Contribution>);

impl Out<'_> {
    fn add(&mut self, name: &str, rdata: Rdata) {
        self.0.push(Contribution {
            name: name.into(),
            rdata: Some(rdata),
            weak: false,
        });
    }

    /// The name exists even without records of its own.
    fn exists(&mut self, name: &str) {
        self.0.push(Contribution {
            name: name.into(),
            rdata: None,
            weak: false,
        });
    }

    fn add_ptr(&mut self, ip: IpAddr, target: &Arc<str>, weak: bool) {
        // Reverse names are served for IPv4 only (the cluster's families).
        if let IpAddr::V4(v4) = ip {
            self.0.push(Contribution {
                name: reverse_name(v4).into(),
                rdata: Some(Rdata::Ptr(target.clone())),
                weak,
            });
        }
    }
}

fn domain_of(zone: &ZoneConfig) -> String {
    zone.domain.trim_end_matches('.').to_ascii_lowercase()
}

/// The zone's own names: its name server, the spec's version record, and
/// `svc.<domain>` and `pod.<domain>`, which exist even in an empty cluster.
pub fn zone_records(zone: &ZoneConfig, out: &mut Vec<Contribution>) {
    let domain = domain_of(zone);
    let mut o = Out(out);
    let ns_name: Arc<str> = format!("ns.dns.{domain}").into();
    o.add(&domain, Rdata::Ns(ns_name.clone()));
    o.add(&ns_name, Rdata::A(zone.service_ip));
    o.add(&format!("dns-version.{domain}"), Rdata::Txt("1.1.0".into()));
    o.exists(&format!("svc.{domain}"));
    o.exists(&format!("pod.{domain}"));
}

/// The records of one Service; `slices` are its EndpointSlices (only a
/// headless Service's are used).
pub fn service_records(
    svc: &ServiceInfo,
    slices: &[&SliceInfo],
    domain: &str,
    out: &mut Vec<Contribution>,
) {
    let mut o = Out(out);
    let fqdn: Arc<str> = format!("{}.{}.svc.{domain}", svc.name, svc.namespace).into();
    match &svc.address {
        ServiceAddress::ClusterIps(ips) => {
            for &ip in ips.iter() {
                o.add(&fqdn, address_rdata(ip));
                o.add_ptr(ip, &fqdn, false);
            }
            for port in svc.ports.iter() {
                o.add(&srv_name(port, &fqdn), srv(port.port, &fqdn));
            }
            // The name exists even without addresses of one family.
            o.exists(&fqdn);
        }
        ServiceAddress::Headless => {
            o.exists(&fqdn);
            add_headless(&mut o, svc, &fqdn, slices);
        }
        ServiceAddress::ExternalName(target) => {
            o.add(&fqdn, Rdata::Cname(Arc::from(&**target)));
        }
        ServiceAddress::Pending => o.exists(&fqdn),
    }
}

/// The records of one Pod: `<a-b-c-d>.<ns>.pod.<domain>` and a weak PTR
/// (a headless endpoint's name for the same address wins).
pub fn pod_records(pod: &PodInfo, domain: &str, out: &mut Vec<Contribution>) {
    let mut o = Out(out);
    for &ip in pod.ips.iter() {
        let name: Arc<str> = format!("{}.{}.pod.{domain}", dashed(ip), pod.namespace).into();
        o.add(&name, address_rdata(ip));
        o.add_ptr(ip, &name, true);
    }
}

/// All records of the cluster. `serial` is the SOA serial (CoreDNS uses
/// the time of the last change).
pub fn build_table(state: &ClusterState, zone: Arc<ZoneConfig>, serial: u32) -> Table {
    let domain = domain_of(&zone);
    let mut table = Table::with_capacity(
        zone.clone(),
        serial,
        state.services.len() * 4 + state.pods.len() * 2 + 16,
    );
    let mut out = Vec::new();
    zone_records(&zone, &mut out);

    let mut slices_by_service: HashMap<(&str, &str), Vec<&SliceInfo>> = HashMap::new();
    for slice in state.slices.values() {
        slices_by_service
            .entry((&slice.namespace, &slice.service))
            .or_default()
            .push(slice);
    }
    for svc in state.services.values() {
        let slices = slices_by_service
            .get(&(&*svc.namespace, &*svc.name))
            .map(Vec::as_slice)
            .unwrap_or_default();
        service_records(svc, slices, &domain, &mut out);
        for c in out.drain(..) {
            table.add(&c);
        }
    }
    for pod in state.pods.values() {
        pod_records(pod, &domain, &mut out);
    }
    for c in out.drain(..) {
        table.add(&c);
    }
    table
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
fn add_headless(o: &mut Out<'_>, svc: &ServiceInfo, fqdn: &Arc<str>, slices: &[&SliceInfo]) {
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
                o.add(fqdn, address_rdata(ip));
                o.add(&ep_name, address_rdata(ip));
                o.add_ptr(ip, &ep_name, false);
                for port in slice.ports.iter() {
                    o.add(&srv_name(port, fqdn), srv(port.port, &ep_name));
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
        ServiceInfo::new(ns, name, address, ports)
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
            t.records_of("web.default.svc.cluster.local"),
            Some(vec![Rdata::A("10.96.142.31".parse().unwrap())])
        );
        assert_eq!(
            t.records_of("_http._tcp.web.default.svc.cluster.local"),
            Some(vec![Rdata::Srv {
                priority: 0,
                weight: 100,
                port: 80,
                target: "web.default.svc.cluster.local".into()
            }])
        );
        assert_eq!(
            t.records_of("31.142.96.10.in-addr.arpa"),
            Some(vec![Rdata::Ptr("web.default.svc.cluster.local".into())])
        );
    }

    #[test]
    fn headless_service_publishes_ready_endpoints_only() {
        let t = build_table(&state(), zone(), 1);
        let set = t.records_of("db.default.svc.cluster.local").unwrap();
        assert_eq!(
            set,
            [
                Rdata::A("10.244.0.8".parse().unwrap()),
                Rdata::A("10.244.0.9".parse().unwrap())
            ]
        );
        assert!(t.records_of("db-0.db.default.svc.cluster.local").is_some());
        assert!(t
            .records_of("10-244-0-9.db.default.svc.cluster.local")
            .is_some());
        assert!(t
            .records_of("10-244-0-10.db.default.svc.cluster.local")
            .is_none());
        let srv = t
            .records_of("_pg._tcp.db.default.svc.cluster.local")
            .unwrap();
        assert_eq!(srv.len(), 2);
        assert!(srv.contains(&Rdata::Srv {
            priority: 0,
            weight: 50,
            port: 5432,
            target: "db-0.db.default.svc.cluster.local".into()
        }));
        // The endpoint name wins over the Pod name for the reverse record.
        assert_eq!(
            t.records_of("8.0.244.10.in-addr.arpa"),
            Some(vec![Rdata::Ptr("db-0.db.default.svc.cluster.local".into())])
        );
    }

    #[test]
    fn not_ready_endpoints_are_published_when_the_service_asks() {
        let mut st = state();
        st.services.get_mut("default/db").unwrap().publish_not_ready = true;
        let t = build_table(&st, zone(), 1);
        assert_eq!(
            t.records_of("db.default.svc.cluster.local").unwrap().len(),
            3
        );
    }

    #[test]
    fn external_name_is_a_cname() {
        let t = build_table(&state(), zone(), 1);
        assert_eq!(
            t.records_of("ext.default.svc.cluster.local"),
            Some(vec![Rdata::Cname("db.example.com".into())])
        );
    }

    #[test]
    fn pods_get_dashed_names_and_ptrs() {
        let t = build_table(&state(), zone(), 1);
        assert_eq!(
            t.records_of("10-244-0-5.default.pod.cluster.local"),
            Some(vec![Rdata::A("10.244.0.5".parse().unwrap())])
        );
        assert_eq!(
            t.records_of("5.0.244.10.in-addr.arpa"),
            Some(vec![Rdata::Ptr(
                "10-244-0-5.default.pod.cluster.local".into()
            )])
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
            assert_eq!(t.records_of(name), Some(vec![]), "{name}");
        }
        assert!(t.records_of("other.svc.cluster.local").is_none());
        assert!(t.records_of("in-addr.arpa").is_none());
        assert!(t.records_of("cluster.local").is_some());
    }

    #[test]
    fn zone_soa_is_shaped_like_corednss() {
        let t = build_table(&ClusterState::default(), zone(), 42);
        assert_eq!(
            t.zone_soa().to_string(),
            "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5"
        );
        assert_eq!(
            t.records_of("ns.dns.cluster.local"),
            Some(vec![Rdata::A(Ipv4Addr::new(10, 96, 0, 10))])
        );
    }
}
