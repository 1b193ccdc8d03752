//! What Kubernetes' Service REST storage does to a Service before it is
//! stored: keep clusterIP/clusterIPs in step, keep values the server
//! allocated when an update leaves them out (as `kubectl apply` does), drop
//! fields a type change makes meaningless, fill the IP family fields, and
//! allocate the cluster IP and node ports.
//!
//! Pure: the caller (the API server) keeps track of what the other
//! Services hold and answers admission's questions through [`InUse`];
//! [`ServiceAllocations`] is the simple answer built from a list.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;

use rand::Rng;
use serde_json::{json, Map, Value};

use crate::field_error::FieldError;
use crate::validation::access::{at, int_at, list_at, map_at, obj_mut, str_at};
use crate::validation::service::{cluster_ips, needs_health_check};

/// Whether an address or port is held by another Service (never the
/// Service being written). Asked once per candidate, so an answer must be
/// cheap: a set lookup, not a scan.
pub trait InUse {
    fn cluster_ip_in_use(&self, ip: Ipv4Addr) -> bool;
    fn node_port_in_use(&self, port: u16) -> bool;
}

/// What one Service holds: its cluster IPs and node ports (health-check
/// port included). Ports that share a node port (53/UDP and 53/TCP) hold
/// it once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceHoldings {
    pub cluster_ips: BTreeSet<Ipv4Addr>,
    pub node_ports: BTreeSet<u16>,
}

impl ServiceHoldings {
    /// What the stored (or admitted) Service `svc` holds.
    pub fn of(svc: &Value) -> Self {
        let mut held = ServiceHoldings::default();
        for ip in cluster_ips(svc) {
            if let Ok(a) = ip.parse::<Ipv4Addr>() {
                held.cluster_ips.insert(a);
            }
        }
        for p in list_at(svc, &["spec", "ports"]) {
            if let Some(np) = int_at(p, &["nodePort"]).and_then(|n| u16::try_from(n).ok()) {
                if np != 0 {
                    held.node_ports.insert(np);
                }
            }
        }
        if let Some(hc) =
            int_at(svc, &["spec", "healthCheckNodePort"]).and_then(|n| u16::try_from(n).ok())
        {
            if hc != 0 {
                held.node_ports.insert(hc);
            }
        }
        held
    }

    pub fn is_empty(&self) -> bool {
        self.cluster_ips.is_empty() && self.node_ports.is_empty()
    }
}

/// Addresses and ports other Services hold (never the Service being
/// written), collected from a list of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAllocations {
    pub cluster_ips: BTreeSet<Ipv4Addr>,
    pub node_ports: BTreeSet<u16>,
}

impl ServiceAllocations {
    /// Collect what `services` hold, leaving out `exclude` (namespace,
    /// name): the Service being updated.
    pub fn from_services(services: &[Value], exclude: Option<(&str, &str)>) -> Self {
        let mut used = ServiceAllocations::default();
        for svc in services {
            let key = (
                str_at(svc, &["metadata", "namespace"]),
                str_at(svc, &["metadata", "name"]),
            );
            if Some(key) == exclude {
                continue;
            }
            let held = ServiceHoldings::of(svc);
            used.cluster_ips.extend(held.cluster_ips);
            used.node_ports.extend(held.node_ports);
        }
        used
    }
}

impl InUse for ServiceAllocations {
    fn cluster_ip_in_use(&self, ip: Ipv4Addr) -> bool {
        self.cluster_ips.contains(&ip)
    }

    fn node_port_in_use(&self, port: u16) -> bool {
        self.node_ports.contains(&port)
    }
}

/// Node ports taken while admitting one Service: those of other Services
/// plus the ones this Service claimed so far (two of its ports may not
/// ask for the same one).
struct PortsTaken<'a> {
    others: &'a dyn InUse,
    mine: BTreeSet<u16>,
}

impl PortsTaken<'_> {
    fn contains(&self, port: u16) -> bool {
        self.mine.contains(&port) || self.others.node_port_in_use(port)
    }

    /// False when the port was already taken.
    fn insert(&mut self, port: u16) -> bool {
        !self.others.node_port_in_use(port) && self.mine.insert(port)
    }
}

/// The Service address space of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNetwork {
    /// Network address and prefix length, e.g. `(10.96.0.0, 12)`.
    pub service_cidr: (Ipv4Addr, u8),
    pub node_port_range: RangeInclusive<u16>,
}

impl Default for ServiceNetwork {
    /// Kubernetes' defaults: 10.96.0.0/12 and ports 30000-32767.
    fn default() -> Self {
        ServiceNetwork {
            service_cidr: (Ipv4Addr::new(10, 96, 0, 0), 12),
            node_port_range: 30000..=32767,
        }
    }
}

impl ServiceNetwork {
    /// `10.96.0.0/12`, as allocation errors print it.
    pub fn cidr_string(&self) -> String {
        format!("{}/{}", self.network(), self.service_cidr.1)
    }

    fn network(&self) -> Ipv4Addr {
        let (addr, len) = self.service_cidr;
        let mask = if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len.min(32)))
        };
        Ipv4Addr::from(u32::from(addr) & mask)
    }

    /// The first and last address a Service may get: the network and
    /// broadcast addresses are never handed out.
    fn usable(&self) -> (u32, u32) {
        let base = u32::from(self.network());
        let size = 1u64 << (32 - u32::from(self.service_cidr.1.min(32)));
        if size <= 2 {
            (base, base + (size as u32) - 1)
        } else {
            (base + 1, base + (size as u32) - 2)
        }
    }

    /// The cluster IP of the `kubernetes` Service: the first usable one.
    pub fn kubernetes_service_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.usable().0)
    }

    /// The cluster IP kube-dns gets by convention (`.10`).
    pub fn dns_service_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) + 10)
    }

    fn range_string(&self) -> String {
        format!(
            "{}-{}",
            self.node_port_range.start(),
            self.node_port_range.end()
        )
    }
}

fn svc_type(svc: &Value) -> &str {
    str_at(svc, &["spec", "type"])
}

fn needs_cluster_ip(svc: &Value) -> bool {
    svc_type(svc) != "ExternalName"
}

fn needs_node_port(svc: &Value) -> bool {
    matches!(svc_type(svc), "NodePort" | "LoadBalancer")
}

/// A LoadBalancer may opt out of node ports with
/// `allocateLoadBalancerNodePorts: false`; requested ones are still kept.
fn should_allocate_node_ports(svc: &Value) -> bool {
    match svc_type(svc) {
        "LoadBalancer" => {
            at(svc, &["spec", "allocateLoadBalancerNodePorts"]).and_then(Value::as_bool)
                != Some(false)
        }
        "NodePort" => true,
        _ => false,
    }
}

fn spec_mut(svc: &mut Value) -> &mut Map<String, Value> {
    obj_mut(svc, &["spec"])
}

/// Kubernetes' `NormalizeClusterIPs`: a client may set only `clusterIP`
/// (older clients) or both; keep `clusterIPs` in step with it.
pub fn normalize_cluster_ips(new: &mut Value, old: Option<&Value>) {
    let new_ip = str_at(new, &["spec", "clusterIP"]).to_string();
    let new_ips = cluster_ips(new);
    let Some(old) = old else {
        if !new_ip.is_empty() && new_ips.is_empty() {
            spec_mut(new).insert("clusterIPs".into(), json!([new_ip]));
        }
        return;
    };
    let old_ip = str_at(old, &["spec", "clusterIP"]);
    let old_ips = cluster_ips(old);
    // An old client patched some other field and sent no clusterIPs.
    if !old_ips.is_empty() && new_ips.is_empty() && old_ip == new_ip {
        spec_mut(new).insert("clusterIPs".into(), json!(old_ips));
    }
    if old_ip != new_ip {
        let same_ips = cluster_ips(new) == old_ips;
        if !old_ip.is_empty() && new_ip.is_empty() && same_ips {
            // A client clearing clusterIP clears clusterIPs with it.
            spec_mut(new).remove("clusterIPs");
        }
        if !new_ip.is_empty() && same_ips {
            spec_mut(new).insert("clusterIPs".into(), json!([new_ip]));
        }
    }
}

/// What Kubernetes' Service strategy does to an update before it is
/// validated: keep allocated values the update left out, keep clusterIP
/// and clusterIPs in step, and drop fields the new type does not use.
/// Idempotent, so validation and admission may both apply it.
pub fn prepare_service_update(new: &mut Value, old: &Value) {
    patch_allocated_values(new, old);
    normalize_cluster_ips(new, Some(old));
    drop_type_dependent_fields(new, old);
}

/// Kubernetes' `patchAllocatedValues`: an update that leaves out values the
/// server allocated (clusterIP, nodePorts, healthCheckNodePort) keeps them,
/// so re-applying the same manifest succeeds.
fn patch_allocated_values(new: &mut Value, old: &Value) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        if str_at(new, &["spec", "clusterIP"]).is_empty() {
            if let Some(ip) = at(old, &["spec", "clusterIP"]).cloned() {
                spec_mut(new).insert("clusterIP".into(), ip);
            }
        }
        if cluster_ips(new).is_empty() && !cluster_ips(old).is_empty() {
            spec_mut(new).insert("clusterIPs".into(), json!(cluster_ips(old)));
        }
    }
    if needs_node_port(old) && needs_node_port(new) {
        let node_ports = |svc: &Value| -> BTreeSet<i64> {
            list_at(svc, &["spec", "ports"])
                .iter()
                .filter_map(|p| int_at(p, &["nodePort"]))
                .filter(|&n| n != 0)
                .collect()
        };
        // Ports both versions name explicitly cannot be patched in again.
        let kept: BTreeSet<i64> = node_ports(old)
            .intersection(&node_ports(new))
            .copied()
            .collect();
        // Matched by port name, as Kubernetes does: other properties of a
        // port may change in the same update.
        let by_name: BTreeMap<String, i64> = list_at(old, &["spec", "ports"])
            .iter()
            .map(|p| {
                (
                    str_at(p, &["name"]).to_string(),
                    int_at(p, &["nodePort"]).unwrap_or(0),
                )
            })
            .collect();
        if let Some(ports) = spec_mut(new).get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut() {
                if int_at(p, &["nodePort"]).unwrap_or(0) == 0 {
                    let old_np = by_name.get(str_at(p, &["name"])).copied().unwrap_or(0);
                    if old_np != 0 && !kept.contains(&old_np) {
                        if let Some(m) = p.as_object_mut() {
                            m.insert("nodePort".into(), json!(old_np));
                        }
                    }
                }
            }
        }
    }
    if needs_health_check(old)
        && needs_health_check(new)
        && int_at(new, &["spec", "healthCheckNodePort"]).unwrap_or(0) == 0
    {
        if let Some(hc) = at(old, &["spec", "healthCheckNodePort"]).cloned() {
            spec_mut(new).insert("healthCheckNodePort".into(), hc);
        }
    }
}

/// Kubernetes' `dropTypeDependentFields`: when the type changes to one that
/// does not use a field the server may have filled, and the update left the
/// field as it was, remove it (which releases a cluster IP or node port).
fn drop_type_dependent_fields(new: &mut Value, old: &Value) {
    let same = |new: &Value, path: &[&str]| at(new, path) == at(old, path);
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        if cluster_ips(new) == cluster_ips(old) && same(new, &["spec", "clusterIP"]) {
            spec_mut(new).remove("clusterIP");
            spec_mut(new).remove("clusterIPs");
        }
        if same(new, &["spec", "ipFamilies"]) {
            spec_mut(new).remove("ipFamilies");
        }
        if same(new, &["spec", "ipFamilyPolicy"]) {
            spec_mut(new).remove("ipFamilyPolicy");
        }
    }
    if needs_node_port(old) && !needs_node_port(new) {
        let node_ports = |svc: &Value| -> Vec<i64> {
            list_at(svc, &["spec", "ports"])
                .iter()
                .map(|p| int_at(p, &["nodePort"]).unwrap_or(0))
                .collect()
        };
        if node_ports(new) == node_ports(old) {
            if let Some(ports) = spec_mut(new).get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    p.remove("nodePort");
                }
            }
        }
    }
    if needs_health_check(old)
        && !needs_health_check(new)
        && same(new, &["spec", "healthCheckNodePort"])
    {
        spec_mut(new).remove("healthCheckNodePort");
    }
    if svc_type(old) == "LoadBalancer" && svc_type(new) != "LoadBalancer" {
        for key in ["allocateLoadBalancerNodePorts", "loadBalancerClass"] {
            if same(new, &["spec", key]) {
                spec_mut(new).remove(key);
            }
        }
    }
    if crate::validation::service::externally_accessible(old)
        && !crate::validation::service::externally_accessible(new)
        && same(new, &["spec", "externalTrafficPolicy"])
    {
        spec_mut(new).remove("externalTrafficPolicy");
    }
}

/// Fill `ipFamilyPolicy` and `ipFamilies` as Kubernetes' allocator does on a
/// single-stack IPv4 cluster.
fn init_ip_family_fields(svc: &mut Value) -> Result<(), Box<FieldError>> {
    if !needs_cluster_ip(svc) {
        return Ok(());
    }
    let ips = cluster_ips(svc);
    let headless = ips.first().map(String::as_str) == Some("None");
    let no_selector = map_at(svc, &["spec", "selector"]).is_none_or(|m| m.is_empty());
    let families = list_at(svc, &["spec", "ipFamilies"]).len();
    if at(svc, &["spec", "ipFamilyPolicy"]).is_none() {
        // Headless Services without selectors take every family the cluster
        // has, which Kubernetes spells RequireDualStack.
        let policy = if (headless && no_selector) || ips.len() == 2 || families == 2 {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        spec_mut(svc).insert("ipFamilyPolicy".into(), json!(policy));
    }
    let policy = str_at(svc, &["spec", "ipFamilyPolicy"]).to_string();
    if policy == "RequireDualStack" && !(headless && no_selector) {
        return Err(Box::new(FieldError::invalid(
            "spec.ipFamilyPolicy",
            policy,
            "this cluster is not configured for dual-stack services",
        )));
    }
    let mut fams: Vec<Value> = list_at(svc, &["spec", "ipFamilies"]).to_vec();
    for (i, ip) in ips.iter().enumerate() {
        if ip == "None" {
            break;
        }
        let family = match ip.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => "IPv6",
            _ => "IPv4",
        };
        if i >= fams.len() {
            fams.push(json!(family));
        }
    }
    if fams.is_empty() {
        fams.push(json!("IPv4"));
    }
    for f in &fams {
        if f.as_str() == Some("IPv6") {
            return Err(Box::new(FieldError::invalid(
                "spec.ipFamilies[0]",
                "IPv6",
                "not configured on this cluster",
            )));
        }
    }
    spec_mut(svc).insert("ipFamilies".into(), Value::Array(fams));
    Ok(())
}

/// Prepare a Service for storage as Kubernetes' Service REST storage does
/// (see the module doc). `old` is the stored Service on update. On error
/// nothing should be stored; the errors become a 422 `Invalid` Status.
pub fn admit_service<R: Rng + ?Sized>(
    new: &mut Value,
    old: Option<&Value>,
    used: &dyn InUse,
    net: &ServiceNetwork,
    rng: &mut R,
) -> Result<(), Vec<FieldError>> {
    if let Some(old) = old {
        prepare_service_update(new, old);
    } else {
        normalize_cluster_ips(new, None);
        // A new Service starts with an empty status.
        new.as_object_mut()
            .map(|o| o.insert("status".into(), json!({"loadBalancer": {}})));
    }
    if svc_type(new) != "LoadBalancer" {
        // Load-balancer status no longer applies (Kubernetes clears it too).
        if let Some(status) = new.get_mut("status").and_then(Value::as_object_mut) {
            status.insert("loadBalancer".into(), json!({}));
        }
    }
    init_ip_family_fields(new).map_err(|e| vec![*e])?;
    let fresh_cluster_ip = needs_cluster_ip(new) && old.is_none_or(|o| !needs_cluster_ip(o));
    if fresh_cluster_ip {
        allocate_cluster_ip(new, used, net, rng).map_err(|e| vec![*e])?;
    }
    let mut taken = PortsTaken {
        others: used,
        mine: BTreeSet::new(),
    };
    if needs_node_port(new) {
        allocate_node_ports(new, &mut taken, net, rng).map_err(|e| vec![*e])?;
    }
    if needs_health_check(new) {
        allocate_health_check_port(new, &mut taken, net, rng).map_err(|e| vec![*e])?;
    }
    Ok(())
}

fn allocate_cluster_ip<R: Rng + ?Sized>(
    svc: &mut Value,
    used: &dyn InUse,
    net: &ServiceNetwork,
    rng: &mut R,
) -> Result<(), Box<FieldError>> {
    let ips = cluster_ips(svc);
    if ips.first().map(String::as_str) == Some("None") {
        return Ok(());
    }
    let ip = match ips.first().filter(|s| !s.is_empty()) {
        Some(requested) => {
            let fail = |why: String| {
                FieldError::invalid(
                    "spec.clusterIPs",
                    json!(ips),
                    format!("failed to allocate IP {requested}: {why}"),
                )
            };
            let addr: Ipv4Addr = requested.parse().map_err(|_| {
                FieldError::internal(
                    "spec.clusterIPs",
                    format!("failed to parse service IP {requested:?}"),
                )
            })?;
            let (first, last) = net.usable();
            if !(first..=last).contains(&u32::from(addr)) {
                return Err(Box::new(fail(format!(
                    "the provided IP ({addr}) is not in the valid range. The range of valid IPs is {}",
                    net.cidr_string()
                ))));
            }
            if used.cluster_ip_in_use(addr) {
                return Err(Box::new(fail(
                    "provided IP is already allocated".to_string(),
                )));
            }
            addr
        }
        None => next_cluster_ip(used, net, rng).ok_or_else(|| {
            FieldError::internal(
                "spec.clusterIPs",
                "failed to allocate a serviceIP: range is full",
            )
        })?,
    };
    let spec = spec_mut(svc);
    spec.insert("clusterIP".into(), json!(ip.to_string()));
    spec.insert("clusterIPs".into(), json!([ip.to_string()]));
    Ok(())
}

/// A free address, chosen at random. As in Kubernetes, the lower part of
/// the range (up to 256 addresses) is only used once the rest is full, so
/// addresses picked by hand there (the `kubernetes` Service's `.1`,
/// kube-dns' `.10`) rarely collide; those two are never picked at all.
fn next_cluster_ip<R: Rng + ?Sized>(
    used: &dyn InUse,
    net: &ServiceNetwork,
    rng: &mut R,
) -> Option<Ipv4Addr> {
    let (first, last) = net.usable();
    let size = u64::from(last - first) + 1;
    let full_size = 1u64 << (32 - u32::from(net.service_cidr.1.min(32)));
    let offset = band_offset(full_size, 16, 256, 16);
    let reserved = [net.kubernetes_service_ip(), net.dns_service_ip()];
    let free = |i: u64| {
        let a = Ipv4Addr::from(first + i as u32);
        !used.cluster_ip_in_use(a) && !reserved.contains(&a)
    };
    pick_free(size, offset, free, rng).map(|i| Ipv4Addr::from(first + i as u32))
}

/// Kubernetes' `calculateRangeOffset`: `min(max(min, size/step), max)`,
/// or 0 for tiny ranges.
fn band_offset(size: u64, min: u64, max: u64, step: u64) -> u64 {
    if size <= min {
        return 0;
    }
    (size / step).clamp(min, max)
}

/// A random free index in `0..size`, preferring `offset..size` and falling
/// back to `0..offset`.
fn pick_free<R: Rng + ?Sized>(
    size: u64,
    offset: u64,
    free: impl Fn(u64) -> bool,
    rng: &mut R,
) -> Option<u64> {
    let offset = offset.min(size);
    for (lo, hi) in [(offset, size), (0, offset)] {
        if lo >= hi {
            continue;
        }
        let n = hi - lo;
        let start = rng.random_range(0..n);
        if let Some(i) = (0..n).map(|k| lo + (start + k) % n).find(|&i| free(i)) {
            return Some(i);
        }
    }
    None
}

fn next_node_port<R: Rng + ?Sized>(
    taken: &PortsTaken,
    net: &ServiceNetwork,
    rng: &mut R,
) -> Option<u16> {
    let (lo, hi) = (*net.node_port_range.start(), *net.node_port_range.end());
    if lo > hi {
        return None;
    }
    let size = u64::from(hi - lo) + 1;
    let offset = band_offset(size, 16, 128, 32);
    pick_free(size, offset, |i| !taken.contains(lo + i as u16), rng).map(|i| lo + i as u16)
}

/// Reserve a requested node port, with the allocator's messages.
fn claim_node_port(port: i64, taken: &mut PortsTaken, net: &ServiceNetwork) -> Result<u16, String> {
    let p = u16::try_from(port)
        .ok()
        .filter(|p| net.node_port_range.contains(p))
        .ok_or_else(|| {
            format!(
                "provided port is not in the valid range. The range of valid ports is {}",
                net.range_string()
            )
        })?;
    if !taken.insert(p) {
        return Err("provided port is already allocated".to_string());
    }
    Ok(p)
}

/// Kubernetes' `initNodePorts`: requested node ports are reserved, missing
/// ones allocated; ports with the same number (e.g. 53/UDP and 53/TCP)
/// share one node port.
fn allocate_node_ports<R: Rng + ?Sized>(
    svc: &mut Value,
    taken: &mut PortsTaken,
    net: &ServiceNetwork,
    rng: &mut R,
) -> Result<(), Box<FieldError>> {
    let allocate_new = should_allocate_node_ports(svc);
    let ports: Vec<Value> = list_at(svc, &["spec", "ports"]).to_vec();
    let mut by_port: BTreeMap<i64, i64> = BTreeMap::new();
    let mut result = ports.clone();
    for (i, p) in ports.iter().enumerate() {
        let port = int_at(p, &["port"]).unwrap_or(0);
        let node_port = int_at(p, &["nodePort"]).unwrap_or(0);
        if node_port == 0 && !allocate_new {
            continue;
        }
        let field = format!("spec.ports[{i}].nodePort");
        let assigned = match by_port.get(&port).copied() {
            None => {
                let requested = ports[i..]
                    .iter()
                    .filter(|q| int_at(q, &["port"]).unwrap_or(0) == port)
                    .filter_map(|q| int_at(q, &["nodePort"]))
                    .find(|&n| n != 0)
                    .unwrap_or(0);
                let np = if requested != 0 {
                    claim_node_port(requested, taken, net)
                        .map_err(|why| FieldError::invalid(&field, requested, why))?
                } else {
                    let np = next_node_port(taken, net, rng).ok_or_else(|| {
                        FieldError::internal(&field, "failed to allocate a nodePort: range is full")
                    })?;
                    taken.insert(np);
                    np
                };
                by_port.insert(port, i64::from(np));
                i64::from(np)
            }
            Some(shared) if node_port != 0 && node_port != shared => {
                claim_node_port(node_port, taken, net)
                    .map_err(|why| FieldError::invalid(&field, node_port, why))?;
                node_port
            }
            Some(shared) => shared,
        };
        if let Some(m) = result[i].as_object_mut() {
            m.insert("nodePort".into(), json!(assigned));
        }
    }
    spec_mut(svc).insert("ports".into(), Value::Array(result));
    Ok(())
}

fn allocate_health_check_port<R: Rng + ?Sized>(
    svc: &mut Value,
    taken: &mut PortsTaken,
    net: &ServiceNetwork,
    rng: &mut R,
) -> Result<(), Box<FieldError>> {
    let requested = int_at(svc, &["spec", "healthCheckNodePort"]).unwrap_or(0);
    let field = "spec.healthCheckNodePort";
    let port = if requested != 0 {
        claim_node_port(requested, taken, net).map_err(|why| {
            FieldError::internal(
                field,
                format!("failed to allocate requested HealthCheck NodePort {requested}: {why}"),
            )
        })?
    } else {
        let p = next_node_port(taken, net, rng).ok_or_else(|| {
            FieldError::internal(
                field,
                "failed to allocate a HealthCheck NodePort 0: range is full",
            )
        })?;
        taken.insert(p);
        p
    };
    spec_mut(svc).insert("healthCheckNodePort".into(), json!(port));
    Ok(())
}

// The whole create/update flow (defaults, admission, validation) is tested
// in validation/service/tests.rs; these cover the allocator's arithmetic.
#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn taken_by(used: &ServiceAllocations) -> PortsTaken<'_> {
        PortsTaken {
            others: used,
            mine: BTreeSet::new(),
        }
    }

    #[test]
    fn band_offsets_match_kubernetes() {
        // 10.96.0.0/12: 2^20 addresses, the lower band holds 256.
        assert_eq!(band_offset(1 << 20, 16, 256, 16), 256);
        // 30000-32767: 2768 ports, the lower band holds 86.
        assert_eq!(band_offset(2768, 16, 128, 32), 86);
        assert_eq!(band_offset(16, 16, 256, 16), 0);
    }

    #[test]
    fn dynamic_picks_prefer_the_upper_band() {
        let mut rng = StdRng::seed_from_u64(7);
        let net = ServiceNetwork::default();
        let used = ServiceAllocations::default();
        for _ in 0..50 {
            let ip = next_cluster_ip(&used, &net, &mut rng).unwrap();
            assert!(
                u32::from(ip) >= u32::from(Ipv4Addr::new(10, 96, 1, 1)),
                "{ip}"
            );
            assert!(
                u32::from(ip) <= u32::from(Ipv4Addr::new(10, 111, 255, 254)),
                "{ip}"
            );
            let p = next_node_port(&taken_by(&used), &net, &mut rng).unwrap();
            assert!((30086..=32767).contains(&p), "{p}");
        }
    }

    #[test]
    fn full_ranges_fall_back_then_fail() {
        let mut rng = StdRng::seed_from_u64(1);
        // 10.0.0.0/28: 14 usable addresses, no bands; .1 and .10 reserved.
        let net = ServiceNetwork {
            service_cidr: (Ipv4Addr::new(10, 0, 0, 0), 28),
            node_port_range: 30000..=30001,
        };
        let mut used = ServiceAllocations::default();
        for _ in 0..12 {
            let ip = next_cluster_ip(&used, &net, &mut rng).unwrap();
            assert!(ip != Ipv4Addr::new(10, 0, 0, 1) && ip != Ipv4Addr::new(10, 0, 0, 10));
            assert!(used.cluster_ips.insert(ip));
        }
        assert_eq!(next_cluster_ip(&used, &net, &mut rng), None);
        used.node_ports.extend([30000, 30001]);
        assert_eq!(next_node_port(&taken_by(&used), &net, &mut rng), None);
        assert_eq!(net.kubernetes_service_ip(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(
            ServiceNetwork::default().dns_service_ip(),
            Ipv4Addr::new(10, 96, 0, 10)
        );
        assert_eq!(ServiceNetwork::default().cidr_string(), "10.96.0.0/12");
    }

    #[test]
    fn allocations_collected_from_other_services() {
        let svcs = vec![
            json!({"metadata": {"namespace": "default", "name": "a"},
                   "spec": {"clusterIPs": ["10.96.0.20"], "ports": [{"port": 80, "nodePort": 30080}], "healthCheckNodePort": 31000}}),
            json!({"metadata": {"namespace": "default", "name": "b"},
                   "spec": {"clusterIPs": ["10.96.0.30"], "ports": [{"port": 80, "nodePort": 30081}]}}),
        ];
        let used = ServiceAllocations::from_services(&svcs, Some(("default", "b")));
        assert_eq!(
            used.cluster_ips,
            BTreeSet::from([Ipv4Addr::new(10, 96, 0, 20)])
        );
        assert_eq!(used.node_ports, BTreeSet::from([30080, 31000]));
    }

    #[test]
    fn holdings_count_a_shared_node_port_once() {
        let svc = json!({"spec": {"clusterIPs": ["10.96.0.10"], "healthCheckNodePort": 31000,
            "ports": [{"port": 53, "protocol": "UDP", "nodePort": 30053},
                      {"port": 53, "protocol": "TCP", "nodePort": 30053}]}});
        let held = ServiceHoldings::of(&svc);
        assert_eq!(
            held.cluster_ips,
            BTreeSet::from([Ipv4Addr::new(10, 96, 0, 10)])
        );
        assert_eq!(held.node_ports, BTreeSet::from([30053, 31000]));
        assert!(ServiceHoldings::of(
            &json!({"spec": {"clusterIP": "None", "clusterIPs": ["None"]}})
        )
        .is_empty());
    }

    #[test]
    fn ports_taken_by_others_or_by_this_service() {
        let used = ServiceAllocations {
            node_ports: BTreeSet::from([30000]),
            ..Default::default()
        };
        let mut taken = taken_by(&used);
        assert!(!taken.insert(30000), "held by another Service");
        assert!(taken.insert(30001));
        assert!(!taken.insert(30001), "claimed twice by this Service");
        assert!(taken.contains(30000) && taken.contains(30001) && !taken.contains(30002));
    }
}
