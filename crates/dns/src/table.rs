//! The records the server answers from, kept current one object at a time.
//!
//! Every API object contributes a few records (`records`); the table counts
//! who contributes what, so adding or removing one Service touches only
//! that Service's names instead of rebuilding 10,000 Services' worth of
//! records. Names also count the contributions below them: a name that
//! exists only because something lives under it (an "empty non-terminal"
//! such as `default.svc.cluster.local`) answers NODATA, not NXDOMAIN, and
//! disappears with the last name below it.

use std::net::Ipv4Addr;
use std::sync::Arc;

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record};
use ipnet::Ipv4Net;

use crate::name_hash::NameMap;

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
    Aaaa(std::net::Ipv6Addr),
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

/// One record (or, with `rdata: None`, only the existence of a name) that
/// one object puts into the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contribution {
    /// Lowercase, without trailing dot.
    pub name: Box<str>,
    pub rdata: Option<Rdata>,
    /// A weak PTR (a Pod's own name) is answered only while no other PTR
    /// names the address: a headless endpoint's name is the more useful.
    pub weak: bool,
}

#[derive(Clone, Debug)]
struct Item {
    rdata: Rdata,
    /// How many contributions carry this record.
    count: u32,
    weak: bool,
}

/// The records of one name.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    items: Vec<Item>,
    /// Contributions at this name or below it; the name exists while > 0.
    refs: u32,
}

impl Entry {
    /// The records answered for the name: SRV weights are equal shares of
    /// 100 among the name's SRV records (as CoreDNS gives them), and weak
    /// PTRs are left out when a strong one exists (only the first weak one
    /// otherwise).
    pub fn records(&self) -> Records<'_> {
        let srv = self
            .items
            .iter()
            .filter(|i| matches!(i.rdata, Rdata::Srv { .. }))
            .count();
        let strong_ptr = self
            .items
            .iter()
            .any(|i| !i.weak && matches!(i.rdata, Rdata::Ptr(_)));
        Records {
            items: self.items.iter(),
            srv_share: (100 / srv.max(1)).max(1) as u16,
            weak_allowed: !strong_ptr,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Iterator of an `Entry`'s answered records.
#[derive(Clone)]
pub struct Records<'a> {
    items: std::slice::Iter<'a, Item>,
    srv_share: u16,
    weak_allowed: bool,
}

impl Iterator for Records<'_> {
    type Item = Rdata;

    fn next(&mut self) -> Option<Rdata> {
        loop {
            let item = self.items.next()?;
            if item.weak {
                if !self.weak_allowed {
                    continue;
                }
                self.weak_allowed = false;
            }
            return Some(match &item.rdata {
                Rdata::Srv {
                    priority,
                    port,
                    target,
                    ..
                } => Rdata::Srv {
                    priority: *priority,
                    weight: self.srv_share,
                    port: *port,
                    target: target.clone(),
                },
                other => other.clone(),
            });
        }
    }
}

/// Every record of the cluster, with the zone's SOAs.
#[derive(Debug)]
pub struct Table {
    zone: Arc<ZoneConfig>,
    synced: bool,
    /// Lowercase names without trailing dot.
    names: NameMap<Entry>,
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

    /// An empty, synced table with room for about `names` names.
    pub fn with_capacity(zone: Arc<ZoneConfig>, serial: u32, names: usize) -> Table {
        Table {
            zone_soa: soa_record(&zone.domain, &zone, serial),
            reverse_soa: soa_record(REVERSE_V4_ZONE, &zone, serial),
            zone,
            synced: true,
            names: NameMap::with_capacity_and_hasher(names, Default::default()),
        }
    }

    pub fn zone(&self) -> &ZoneConfig {
        &self.zone
    }

    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// The entry of a lowercase name without trailing dot; None when the
    /// name does not exist.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.names.get(name)
    }

    /// The answered records of a name (tests and exports).
    pub fn records_of(&self, name: &str) -> Option<Vec<Rdata>> {
        self.get(name).map(|e| e.records().collect())
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

    /// A new SOA serial (CoreDNS uses the time of the last change), so
    /// secondaries and caches can tell the zone changed.
    pub fn set_serial(&mut self, serial: u32) {
        self.zone_soa = soa_record(&self.zone.domain, &self.zone, serial);
        self.reverse_soa = soa_record(REVERSE_V4_ZONE, &self.zone, serial);
    }

    /// Every name with its entry, for tests and zone-file export.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.names.iter().map(|(k, v)| (&**k, v))
    }

    /// The apex under which `name` lies, if any: names below it keep
    /// their ancestors alive; the apex itself needs its own records.
    fn apex_of<'n>(&self, name: &'n str) -> Option<&'n str> {
        [self.zone.domain.as_str(), REVERSE_V4_ZONE]
            .into_iter()
            .find(|apex| {
                name.len() > apex.len()
                    && name.ends_with(apex)
                    && name.as_bytes()[name.len() - apex.len() - 1] == b'.'
            })
            .map(|apex| &name[name.len() - apex.len()..])
    }

    /// `name` and its ancestors strictly below its apex.
    fn with_ancestors<'n>(&self, name: &'n str) -> impl Iterator<Item = &'n str> + use<'n> {
        ancestors(name, self.apex_of(name).map(str::len))
    }

    /// Put one contribution in.
    pub fn add(&mut self, c: &Contribution) {
        for name in self.with_ancestors(&c.name) {
            match self.names.get_mut(name) {
                Some(entry) => entry.refs += 1,
                None => {
                    self.names.insert(
                        name.into(),
                        Entry {
                            items: Vec::new(),
                            refs: 1,
                        },
                    );
                }
            }
        }
        let Some(rdata) = &c.rdata else {
            return;
        };
        let entry = self.names.get_mut(&*c.name).expect("entry made just above");
        match entry
            .items
            .iter_mut()
            .find(|i| i.rdata == *rdata && i.weak == c.weak)
        {
            Some(item) => item.count += 1,
            None => entry.items.push(Item {
                rdata: rdata.clone(),
                count: 1,
                weak: c.weak,
            }),
        }
    }

    /// Take one contribution out (one that was put in before; anything
    /// else is ignored rather than corrupting the counts).
    pub fn remove(&mut self, c: &Contribution) {
        let Some(entry) = self.names.get_mut(&*c.name) else {
            return;
        };
        if let Some(rdata) = &c.rdata {
            let Some(pos) = entry
                .items
                .iter()
                .position(|i| i.rdata == *rdata && i.weak == c.weak)
            else {
                return;
            };
            entry.items[pos].count -= 1;
            if entry.items[pos].count == 0 {
                // Keep the order of the others: answers do not reshuffle.
                entry.items.remove(pos);
            }
        }
        let names: Vec<&str> = self.with_ancestors(&c.name).collect();
        for name in names {
            if let Some(entry) = self.names.get_mut(name) {
                entry.refs = entry.refs.saturating_sub(1);
                if entry.refs == 0 {
                    self.names.remove(name);
                }
            }
        }
    }
}

/// `name`, then each name after dropping its first label, while longer
/// than the apex (of `apex_len` bytes); just `name` outside any apex.
fn ancestors(name: &str, apex_len: Option<usize>) -> impl Iterator<Item = &str> {
    let mut next = Some(name);
    std::iter::from_fn(move || {
        let current = next?;
        next = match (current.find('.'), apex_len) {
            (Some(dot), Some(apex)) if current.len() - dot - 1 > apex => Some(&current[dot + 1..]),
            _ => None,
        };
        Some(current)
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table::with_capacity(Arc::new(ZoneConfig::default()), 1, 0)
    }

    fn c(name: &str, rdata: Option<Rdata>) -> Contribution {
        Contribution {
            name: name.into(),
            rdata,
            weak: false,
        }
    }

    fn a(s: &str) -> Option<Rdata> {
        Some(Rdata::A(s.parse().unwrap()))
    }

    #[test]
    fn ancestors_live_while_something_is_below_them() {
        let mut t = table();
        let web = c("web.default.svc.cluster.local", a("10.96.0.20"));
        t.add(&web);
        assert_eq!(t.records_of("default.svc.cluster.local"), Some(vec![]));
        assert_eq!(t.records_of("svc.cluster.local"), Some(vec![]));
        assert!(t.get("cluster.local").is_none(), "the apex needs its own");
        t.remove(&web);
        assert!(t.get("web.default.svc.cluster.local").is_none());
        assert!(t.get("default.svc.cluster.local").is_none());
        assert!(t.is_empty());
    }

    #[test]
    fn a_record_shared_by_two_objects_stays_until_both_are_gone() {
        let mut t = table();
        let one = c("db.default.svc.cluster.local", a("10.244.0.8"));
        t.add(&one);
        t.add(&one);
        assert_eq!(t.records_of(&one.name).unwrap().len(), 1);
        t.remove(&one);
        assert_eq!(t.records_of(&one.name).unwrap().len(), 1);
        t.remove(&one);
        assert!(t.get(&one.name).is_none());
    }

    #[test]
    fn removing_what_was_never_added_changes_nothing() {
        let mut t = table();
        let web = c("web.default.svc.cluster.local", a("10.96.0.20"));
        t.add(&web);
        t.remove(&c("web.default.svc.cluster.local", a("10.96.0.21")));
        t.remove(&c("other.default.svc.cluster.local", None));
        assert_eq!(t.records_of(&web.name).unwrap().len(), 1);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn weak_ptr_yields_to_a_strong_one() {
        let mut t = table();
        let rev = "8.0.244.10.in-addr.arpa";
        let pod = Contribution {
            name: rev.into(),
            rdata: Some(Rdata::Ptr("10-244-0-8.default.pod.cluster.local".into())),
            weak: true,
        };
        let ep = c(
            rev,
            Some(Rdata::Ptr("db-0.db.default.svc.cluster.local".into())),
        );
        t.add(&pod);
        assert_eq!(t.records_of(rev), Some(vec![pod.rdata.clone().unwrap()]));
        t.add(&ep);
        assert_eq!(t.records_of(rev), Some(vec![ep.rdata.clone().unwrap()]));
        t.remove(&ep);
        assert_eq!(t.records_of(rev), Some(vec![pod.rdata.clone().unwrap()]));
        assert!(t.get("0.244.10.in-addr.arpa").is_some());
        assert!(t.get("in-addr.arpa").is_none());
    }

    #[test]
    fn srv_weights_are_equal_shares() {
        let mut t = table();
        let name = "_pg._tcp.db.default.svc.cluster.local";
        for target in ["a", "b", "c"] {
            t.add(&c(
                name,
                Some(Rdata::Srv {
                    priority: 0,
                    weight: 100,
                    port: 5432,
                    target: target.into(),
                }),
            ));
        }
        let weights: Vec<u16> = t
            .records_of(name)
            .unwrap()
            .into_iter()
            .map(|r| match r {
                Rdata::Srv { weight, .. } => weight,
                _ => 0,
            })
            .collect();
        assert_eq!(weights, [33, 33, 33]);
    }
}
