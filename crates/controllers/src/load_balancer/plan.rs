//! The built-in load-balancer provider's address book: which Service of
//! type LoadBalancer holds which address of the pool. Recomputed from all
//! Services each time, so it survives restarts with no state of its own:
//! the Services' status *is* the allocation.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;

use crate::runtime::ObjectRef;

/// `ipMode` of the addresses handed out: traffic arrives with the
/// load-balancer address as destination, and the node's rules DNAT it.
pub const IP_MODE: &str = "VIP";

/// An inclusive range of IPv4 addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPool {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
}

impl AddressPool {
    pub fn new(first: Ipv4Addr, last: Ipv4Addr) -> AddressPool {
        AddressPool { first, last }
    }

    /// The usable hosts of a CIDR such as `172.18.255.0/24`: without the
    /// network and broadcast addresses where the prefix has them.
    pub fn from_cidr(cidr: &str) -> Option<AddressPool> {
        let (addr, len) = cidr.split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let network = u32::from(addr) & mask;
        let broadcast = network | !mask;
        let (first, last) = if len >= 31 {
            (network, broadcast)
        } else {
            (network + 1, broadcast - 1)
        };
        Some(AddressPool::new(first.into(), last.into()))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&ip)
    }

    fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.first)..=u32::from(self.last)).map(Ipv4Addr::from)
    }
}

/// A Service whose load-balancer status must change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub service: ObjectRef,
    /// The address to publish, or None to clear the status.
    pub address: Option<Ipv4Addr>,
}

/// Whether this provider serves the Service: type LoadBalancer, no other
/// `loadBalancerClass`, not being deleted.
pub fn wants_address(svc: &Service) -> bool {
    let Some(spec) = svc.spec.as_ref() else {
        return false;
    };
    spec.type_.as_deref() == Some("LoadBalancer")
        && spec.load_balancer_class.is_none()
        && svc.metadata.deletion_timestamp.is_none()
}

/// The pool address the Service's status shows, if any.
pub fn published_address(svc: &Service, pool: &AddressPool) -> Option<Ipv4Addr> {
    svc.status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .iter()
        .filter_map(|i| i.ip.as_deref()?.parse::<Ipv4Addr>().ok())
        .find(|ip| pool.contains(*ip))
}

fn requested_address(svc: &Service) -> Option<Ipv4Addr> {
    svc.spec
        .as_ref()?
        .load_balancer_ip
        .as_deref()
        .filter(|s| !s.is_empty())?
        .parse()
        .ok()
}

/// Whether the status is exactly what this provider writes for `ip`.
fn shows_exactly(svc: &Service, ip: Ipv4Addr) -> bool {
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    matches!(ingress.map(Vec::as_slice), Some([only])
        if only.ip.as_deref() == Some(ip.to_string().as_str())
            && only.ip_mode.as_deref() == Some(IP_MODE)
            && only.hostname.is_none())
}

/// Decide every Service's address. Older Services keep what they hold and
/// choose first; an address is never given twice; `spec.loadBalancerIP` is
/// honoured when it is in the pool and free (otherwise the Service waits,
/// `<pending>`); Services that no longer want an address lose it.
pub fn plan_load_balancers(services: &[&Service], pool: &AddressPool) -> Vec<StatusChange> {
    let mut order: Vec<&Service> = services.to_vec();
    order.sort_by_key(|s| {
        (
            s.metadata.creation_timestamp.clone(),
            s.metadata.namespace.clone(),
            s.metadata.name.clone(),
        )
    });
    let mut taken: HashSet<Ipv4Addr> = HashSet::new();
    let mut assigned: Vec<(&Service, Option<Ipv4Addr>)> = Vec::new();
    // Keep what is held (first holder wins a duplicate).
    for svc in &order {
        let keep = wants_address(svc)
            .then(|| published_address(svc, pool))
            .flatten()
            .filter(|ip| requested_address(svc).is_none_or(|r| r == *ip))
            .filter(|ip| taken.insert(*ip));
        assigned.push((svc, keep));
    }
    // Then hand out addresses to those without one.
    let mut free = pool
        .addresses()
        .filter(|ip| !taken.contains(ip))
        .collect::<Vec<_>>()
        .into_iter();
    for (svc, ip) in assigned.iter_mut() {
        if ip.is_some() || !wants_address(svc) {
            continue;
        }
        *ip = match requested_address(svc) {
            Some(r) if pool.contains(r) && taken.insert(r) => Some(r),
            Some(_) => None,
            None => free.by_ref().find(|ip| taken.insert(*ip)),
        };
    }
    assigned
        .into_iter()
        .filter_map(|(svc, ip)| {
            let change = match ip {
                Some(ip) => !shows_exactly(svc, ip),
                None => published_address(svc, pool).is_some(),
            };
            change.then(|| StatusChange {
                service: ObjectRef::of(&svc.metadata),
                address: ip,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, ServiceSpec, ServiceStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pool() -> AddressPool {
        AddressPool::new(
            Ipv4Addr::new(172, 18, 255, 1),
            Ipv4Addr::new(172, 18, 255, 3),
        )
    }

    fn svc(name: &str, created: i64, type_: &str) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                creation_timestamp: Some(Time(jiff::Timestamp::from_second(created).unwrap())),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                type_: Some(type_.into()),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn with_address(mut s: Service, ip: &str) -> Service {
        s.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(vec![LoadBalancerIngress {
                    ip: Some(ip.into()),
                    ip_mode: Some(IP_MODE.into()),
                    ..Default::default()
                }]),
            }),
            conditions: None,
        });
        s
    }

    fn change(name: &str, ip: Option<&str>) -> StatusChange {
        StatusChange {
            service: ObjectRef::new("default", name),
            address: ip.map(|i| i.parse().unwrap()),
        }
    }

    #[test]
    fn pools_from_cidrs() {
        let p = AddressPool::from_cidr("172.18.255.0/24").unwrap();
        assert_eq!(
            (p.first, p.last),
            (
                "172.18.255.1".parse().unwrap(),
                "172.18.255.254".parse().unwrap()
            )
        );
        let p = AddressPool::from_cidr("10.0.0.7/32").unwrap();
        assert_eq!(p.first, p.last);
        assert!(AddressPool::from_cidr("nonsense").is_none());
    }

    #[test]
    fn hands_out_lowest_free_addresses_once() {
        let a = with_address(svc("a", 1, "LoadBalancer"), "172.18.255.1");
        let b = svc("b", 2, "LoadBalancer");
        let c = svc("c", 3, "ClusterIP");
        let d = svc("d", 4, "LoadBalancer");
        let plan = plan_load_balancers(&[&d, &c, &b, &a], &pool());
        assert_eq!(
            plan,
            vec![
                change("b", Some("172.18.255.2")),
                change("d", Some("172.18.255.3"))
            ]
        );
        // Steady once written.
        let (b, d) = (
            with_address(b, "172.18.255.2"),
            with_address(d, "172.18.255.3"),
        );
        assert!(plan_load_balancers(&[&a, &b, &c, &d], &pool()).is_empty());
        // Exhausted: the next one stays pending.
        let e = svc("e", 5, "LoadBalancer");
        assert!(plan_load_balancers(&[&a, &b, &c, &d, &e], &pool()).is_empty());
    }

    #[test]
    fn releases_on_type_change_and_reuses_addresses() {
        let a = with_address(svc("a", 1, "ClusterIP"), "172.18.255.1");
        let b = svc("b", 2, "LoadBalancer");
        let plan = plan_load_balancers(&[&a, &b], &pool());
        assert_eq!(
            plan,
            vec![change("a", None), change("b", Some("172.18.255.1"))]
        );
        // Another provider's address is not ours to clear.
        let foreign = with_address(svc("f", 3, "ClusterIP"), "192.0.2.1");
        assert!(plan_load_balancers(&[&foreign], &pool()).is_empty());
    }

    #[test]
    fn duplicates_are_resolved_by_age() {
        let a = with_address(svc("a", 1, "LoadBalancer"), "172.18.255.2");
        let b = with_address(svc("b", 2, "LoadBalancer"), "172.18.255.2");
        let plan = plan_load_balancers(&[&b, &a], &pool());
        assert_eq!(plan, vec![change("b", Some("172.18.255.1"))]);
    }

    #[test]
    fn honours_load_balancer_ip_in_the_pool() {
        let mut a = svc("a", 1, "LoadBalancer");
        a.spec.as_mut().unwrap().load_balancer_ip = Some("172.18.255.3".into());
        let mut outside = svc("b", 2, "LoadBalancer");
        outside.spec.as_mut().unwrap().load_balancer_ip = Some("10.1.1.1".into());
        let plan = plan_load_balancers(&[&a, &outside], &pool());
        assert_eq!(plan, vec![change("a", Some("172.18.255.3"))]);
        // Changing the request moves the address.
        let mut moved = with_address(a, "172.18.255.3");
        moved.spec.as_mut().unwrap().load_balancer_ip = Some("172.18.255.2".into());
        assert_eq!(
            plan_load_balancers(&[&moved], &pool()),
            vec![change("a", Some("172.18.255.2"))]
        );
    }

    #[test]
    fn other_classes_are_left_alone() {
        let mut a = svc("a", 1, "LoadBalancer");
        a.spec.as_mut().unwrap().load_balancer_class = Some("example.com/other".into());
        assert!(plan_load_balancers(&[&a], &pool()).is_empty());
    }
}
