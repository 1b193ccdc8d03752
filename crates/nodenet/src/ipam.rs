//! Pod address allocation from the node's Pod CIDR (pure; persisted by
//! `state.rs`).
//!
//! Like the host-local CNI IPAM plugin it hands out addresses round-robin,
//! continuing after the last one reserved, so a freshly released address is
//! not given to the next Pod while peers may still hold its ARP entry or
//! conntrack state.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::error::NodeNetError;

/// Allocations of one Pod CIDR: address -> Pod uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIpam {
    cidr: Ipv4Net,
    allocated: BTreeMap<Ipv4Addr, String>,
    last_reserved: Option<Ipv4Addr>,
}

impl PodIpam {
    pub fn new(cidr: Ipv4Net) -> PodIpam {
        PodIpam {
            cidr: cidr.trunc(),
            allocated: BTreeMap::new(),
            last_reserved: None,
        }
    }

    /// Rebuilds the allocator from persisted allocations. Entries outside
    /// the usable range (the Pod CIDR changed) are returned as rejected so
    /// the caller can remove their sandboxes.
    pub fn restore(
        cidr: Ipv4Net,
        entries: impl IntoIterator<Item = (Ipv4Addr, String)>,
        last_reserved: Option<Ipv4Addr>,
    ) -> (PodIpam, Vec<(Ipv4Addr, String)>) {
        let mut ipam = PodIpam::new(cidr);
        let mut rejected = Vec::new();
        for (ip, uid) in entries {
            let taken_by_other = ipam.allocated.get(&ip).is_some_and(|u| *u != uid);
            if !ipam.is_usable(ip) || taken_by_other || ipam.ip_of(&uid).is_some() {
                rejected.push((ip, uid));
            } else {
                ipam.allocated.insert(ip, uid);
            }
        }
        ipam.last_reserved = last_reserved.filter(|ip| ipam.cidr.contains(ip));
        (ipam, rejected)
    }

    pub fn cidr(&self) -> Ipv4Net {
        self.cidr
    }

    /// The bridge (gateway) address: the first host address of the CIDR.
    pub fn gateway(&self) -> Ipv4Addr {
        gateway_of(self.cidr)
    }

    pub fn last_reserved(&self) -> Option<Ipv4Addr> {
        self.last_reserved
    }

    pub fn ip_of(&self, pod_uid: &str) -> Option<Ipv4Addr> {
        self.allocated
            .iter()
            .find(|(_, uid)| uid.as_str() == pod_uid)
            .map(|(ip, _)| *ip)
    }

    pub fn allocations(&self) -> impl Iterator<Item = (Ipv4Addr, &str)> {
        self.allocated.iter().map(|(ip, uid)| (*ip, uid.as_str()))
    }

    /// The Pod's address: the one it already holds (same uid after a
    /// restart), else the next free one after the last reserved.
    pub fn allocate(&mut self, pod_uid: &str) -> Result<Ipv4Addr, NodeNetError> {
        if let Some(ip) = self.ip_of(pod_uid) {
            return Ok(ip);
        }
        let (first, last) = self
            .usable_range()
            .ok_or(NodeNetError::PodCidrExhausted { cidr: self.cidr })?;
        let start = match self.last_reserved {
            Some(prev) if u32::from(prev) >= first && u32::from(prev) < last => u32::from(prev) + 1,
            _ => first,
        };
        let span = last - first + 1;
        for step in 0..span {
            let candidate = first + (start - first + step) % span;
            let ip = Ipv4Addr::from(candidate);
            if let std::collections::btree_map::Entry::Vacant(slot) = self.allocated.entry(ip) {
                slot.insert(pod_uid.to_string());
                self.last_reserved = Some(ip);
                return Ok(ip);
            }
        }
        Err(NodeNetError::PodCidrExhausted { cidr: self.cidr })
    }

    /// Frees the Pod's address; returns it, or None if it held none.
    pub fn release(&mut self, pod_uid: &str) -> Option<Ipv4Addr> {
        let ip = self.ip_of(pod_uid)?;
        self.allocated.remove(&ip);
        Some(ip)
    }

    fn is_usable(&self, ip: Ipv4Addr) -> bool {
        self.usable_range()
            .is_some_and(|(first, last)| (first..=last).contains(&u32::from(ip)))
    }

    /// First and last address a Pod may get: skips the network address, the
    /// bridge (first host) and the broadcast address.
    fn usable_range(&self) -> Option<(u32, u32)> {
        let network = u32::from(self.cidr.network());
        let broadcast = u32::from(self.cidr.broadcast());
        let first = network.checked_add(2)?;
        let last = broadcast.checked_sub(1)?;
        (first <= last).then_some((first, last))
    }
}

/// The bridge address of a Pod CIDR (10.244.0.0/24 -> 10.244.0.1).
pub fn gateway_of(cidr: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.network()).wrapping_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn skips_network_bridge_and_broadcast() {
        let mut ipam = PodIpam::new(net("10.244.0.0/29"));
        let got: Vec<_> = (0..5)
            .map(|i| ipam.allocate(&format!("uid{i}")).unwrap().to_string())
            .collect();
        assert_eq!(
            got,
            [
                "10.244.0.2",
                "10.244.0.3",
                "10.244.0.4",
                "10.244.0.5",
                "10.244.0.6"
            ]
        );
        assert!(matches!(
            ipam.allocate("uid5"),
            Err(NodeNetError::PodCidrExhausted { .. })
        ));
        assert_eq!(ipam.gateway(), "10.244.0.1".parse::<Ipv4Addr>().unwrap());
    }

    #[test]
    fn same_uid_gets_same_address() {
        let mut ipam = PodIpam::new(net("10.244.0.0/24"));
        let a = ipam.allocate("a").unwrap();
        ipam.allocate("b").unwrap();
        assert_eq!(ipam.allocate("a").unwrap(), a);
        assert_eq!(ipam.allocations().count(), 2);
    }

    #[test]
    fn released_address_is_not_reused_immediately() {
        let mut ipam = PodIpam::new(net("10.244.0.0/24"));
        let a = ipam.allocate("a").unwrap();
        assert_eq!(ipam.release("a"), Some(a));
        assert_eq!(ipam.release("a"), None);
        let b = ipam.allocate("b").unwrap();
        assert_ne!(a, b, "round-robin continues after the last reserved");
    }

    #[test]
    fn wraps_around_to_free_addresses() {
        let mut ipam = PodIpam::new(net("10.244.0.0/29"));
        for i in 0..5 {
            ipam.allocate(&format!("u{i}")).unwrap();
        }
        ipam.release("u1");
        assert_eq!(ipam.allocate("new").unwrap().to_string(), "10.244.0.3");
    }

    #[test]
    fn never_hands_out_an_address_twice() {
        let mut ipam = PodIpam::new(net("10.244.0.0/24"));
        let mut seen = std::collections::HashSet::new();
        for i in 0..253 {
            assert!(seen.insert(ipam.allocate(&format!("u{i}")).unwrap()));
            if i % 3 == 0 {
                // Releasing and re-allocating the same uid must not duplicate.
                let ip = ipam.release(&format!("u{i}")).unwrap();
                seen.remove(&ip);
                assert!(seen.insert(ipam.allocate(&format!("u{i}")).unwrap()));
            }
        }
        assert!(ipam.allocate("one-too-many").is_err());
    }

    #[test]
    fn restore_keeps_valid_and_rejects_foreign_entries() {
        let entries = vec![
            ("10.244.0.7".parse().unwrap(), "a".to_string()),
            ("10.244.1.7".parse().unwrap(), "outside".to_string()),
            ("10.244.0.1".parse().unwrap(), "bridge".to_string()),
            ("10.244.0.7".parse().unwrap(), "dup-ip".to_string()),
            ("10.244.0.8".parse().unwrap(), "a".to_string()),
        ];
        let (mut ipam, rejected) = PodIpam::restore(
            net("10.244.0.0/24"),
            entries,
            Some("10.244.0.7".parse().unwrap()),
        );
        let rejected: Vec<_> = rejected.into_iter().map(|(_, uid)| uid).collect();
        assert_eq!(rejected, ["outside", "bridge", "dup-ip", "a"]);
        assert_eq!(ipam.ip_of("a"), Some("10.244.0.7".parse().unwrap()));
        assert_eq!(ipam.allocate("b").unwrap().to_string(), "10.244.0.8");
    }

    #[test]
    fn tiny_cidrs_have_no_pod_addresses() {
        let mut ipam = PodIpam::new(net("10.244.0.0/31"));
        assert!(ipam.allocate("a").is_err());
    }
}
