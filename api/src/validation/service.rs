//! Service validation, as Kubernetes' `ValidateService` and
//! `ValidateServiceUpdate` (pkg/apis/core/validation), with the same field
//! paths and messages.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use serde_json::{json, Value};

use super::access::{at, int_at, list_at, str_at};
use super::meta::{
    validate_label_name, validate_labels, validate_object_meta, validate_object_meta_update,
    NameRule,
};
use super::names;
use super::service_update;
use crate::field_error::FieldError;
use crate::service_admission::{normalize_cluster_ips, prepare_service_update};

pub(crate) const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const KUBELET_PORT: i64 = 10250;
const MAX_CLIENT_IP_AFFINITY_SECONDS: i64 = 86400;
pub(crate) const INVALID_IP: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

/// `spec.clusterIPs` (strings only).
pub(crate) fn cluster_ips(svc: &Value) -> Vec<String> {
    list_at(svc, &["spec", "clusterIPs"])
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}

/// A headless Service: exactly one clusterIP, and it is `None`.
pub(crate) fn is_headless(svc: &Value) -> bool {
    cluster_ips(svc) == ["None"]
}

pub(crate) fn svc_type(svc: &Value) -> &str {
    str_at(svc, &["spec", "type"])
}

/// NodePort, LoadBalancer, or ClusterIP with external IPs: the Service is
/// reachable from outside the cluster.
pub(crate) fn externally_accessible(svc: &Value) -> bool {
    match svc_type(svc) {
        "LoadBalancer" | "NodePort" => true,
        "ClusterIP" => !list_at(svc, &["spec", "externalIPs"]).is_empty(),
        _ => false,
    }
}

/// A LoadBalancer with `externalTrafficPolicy: Local` needs a health check
/// node port.
pub(crate) fn needs_health_check(svc: &Value) -> bool {
    svc_type(svc) == "LoadBalancer" && str_at(svc, &["spec", "externalTrafficPolicy"]) == "Local"
}

/// Validate a Service; `old` is the stored object on update.
pub fn validate_service(svc: &Value, old: Option<&Value>) -> Vec<FieldError> {
    // Kubernetes prepares a Service before validating it (clusterIP and
    // clusterIPs kept in step; on update, allocated values the update left
    // out kept and fields the new type does not use dropped). Do the same
    // on a copy, so the result does not depend on whether the caller ran
    // admission first.
    let mut svc = svc.clone();
    match old {
        Some(old) => prepare_service_update(&mut svc, old),
        None => normalize_cluster_ips(&mut svc, None),
    }
    let mut errs = Vec::new();
    if let Some(old) = old {
        errs.extend(validate_object_meta_update(&svc, old));
        errs.extend(service_update::validate_cluster_ips_update(old, &svc));
        errs.extend(service_update::validate_ip_families_update(old, &svc));
        errs.extend(service_update::validate_load_balancer_class_update(
            old, &svc,
        ));
        if needs_health_check(old) && needs_health_check(&svc) {
            let (n, o) = (
                int_at(&svc, &["spec", "healthCheckNodePort"]),
                int_at(old, &["spec", "healthCheckNodePort"]),
            );
            if n != o {
                errs.push(FieldError::forbidden(
                    "spec.healthCheckNodePort",
                    "field is immutable",
                ));
            }
        }
    } else {
        errs.extend(validate_object_meta(&svc, true, NameRule::Dns1035));
    }
    errs.extend(validate_spec(&svc));
    errs
}

fn validate_spec(svc: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ty = svc_type(svc);
    let ports = list_at(svc, &["spec", "ports"]);
    let headless = is_headless(svc);
    let ips = cluster_ips(svc);

    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    match ty {
        "LoadBalancer" => {
            for (i, p) in ports.iter().enumerate() {
                if int_at(p, &["port"]) == Some(KUBELET_PORT) {
                    errs.push(FieldError::invalid(
                        format!("spec.ports[{i}]"),
                        KUBELET_PORT,
                        format!("may not expose port {KUBELET_PORT} externally since it is used by kubelet"),
                    ));
                }
            }
            if headless {
                errs.push(FieldError::invalid(
                    "spec.clusterIPs[0]",
                    "None",
                    "may not be set to 'None' for LoadBalancer services",
                ));
            }
        }
        "NodePort" if headless => {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                "None",
                "may not be set to 'None' for NodePort services",
            ));
        }
        "ExternalName" => {
            if !ips.is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if !list_at(svc, &["spec", "ipFamilies"]).is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if at(svc, &["spec", "ipFamilyPolicy"]).is_some() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            // The value (a CNAME) may end in a dot to mark it fully qualified.
            let name = str_at(svc, &["spec", "externalName"]);
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                for msg in names::dns1123_subdomain(cname) {
                    errs.push(FieldError::invalid("spec.externalName", cname, msg));
                }
            }
        }
        _ => {}
    }

    let mut port_names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        errs.extend(validate_service_port(
            p,
            ports.len() > 1,
            &mut port_names,
            &format!("spec.ports[{i}]"),
        ));
    }

    if let Some(sel) = at(svc, &["spec", "selector"]) {
        errs.extend(validate_labels(Some(sel), "spec.selector"));
    }

    errs.extend(validate_session_affinity(svc));
    errs.extend(validate_cluster_ips_related(svc));

    for (i, ip) in list_at(svc, &["spec", "externalIPs"]).iter().enumerate() {
        let ip = ip.as_str().unwrap_or("");
        let path = format!("spec.externalIPs[{i}]");
        match ip.parse::<IpAddr>() {
            Err(_) => errs.push(FieldError::invalid(path, ip, INVALID_IP)),
            Ok(addr) => errs.extend(validate_non_special_ip(addr, ip, &path)),
        }
    }

    if ty.is_empty() {
        errs.push(FieldError::required("spec.type", ""));
    } else if !SERVICE_TYPES.contains(&ty) {
        errs.push(FieldError::not_supported("spec.type", ty, SERVICE_TYPES));
    }

    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if int_at(p, &["nodePort"]).unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }

    // Duplicate node ports and duplicate ports, each keyed by protocol.
    let mut node_ports = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let np = int_at(p, &["nodePort"]).unwrap_or(0);
        if np != 0 && !node_ports.insert((str_at(p, &["protocol"]).to_string(), np)) {
            errs.push(FieldError::duplicate(
                format!("spec.ports[{i}].nodePort"),
                np,
            ));
        }
    }
    let mut seen_ports = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let protocol = str_at(p, &["protocol"]);
        let port = int_at(p, &["port"]).unwrap_or(0);
        if !seen_ports.insert((protocol.to_string(), port)) {
            // Kubernetes reports the internal ServicePort it used as the
            // key, which Go's JSON encoder prints with its field names.
            let key = json!({"Name": "", "Protocol": protocol, "AppProtocol": null,
                             "Port": port, "TargetPort": 0, "NodePort": 0});
            errs.push(FieldError::duplicate(format!("spec.ports[{i}]"), key));
        }
    }

    if !list_at(svc, &["spec", "loadBalancerSourceRanges"]).is_empty() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.LoadBalancerSourceRanges",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    let allocate_lb = at(svc, &["spec", "allocateLoadBalancerNodePorts"]);
    if allocate_lb.is_some() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if ty == "LoadBalancer" && allocate_lb.is_none() {
        // Kubernetes' path here lacks the `spec.` prefix; kept for fidelity.
        errs.push(FieldError::required("allocateLoadBalancerNodePorts", ""));
    }
    if let Some(class) = at(svc, &["spec", "loadBalancerClass"]).and_then(Value::as_str) {
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                "spec.loadBalancerClass",
                "may only be used when `type` is 'LoadBalancer'",
            ));
        } else {
            errs.extend(validate_label_name(class, "spec.loadBalancerClass"));
        }
    }
    errs.extend(validate_traffic_policies(svc));
    errs
}

fn validate_service_port(
    p: &Value,
    require_name: bool,
    names_seen: &mut HashSet<String>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = str_at(p, &["name"]);
    if require_name && name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else if !name.is_empty() {
        for msg in names::dns1123_label(name) {
            errs.push(FieldError::invalid(format!("{path}.name"), name, msg));
        }
        if !names_seen.insert(name.to_string()) {
            errs.push(FieldError::duplicate(format!("{path}.name"), name));
        }
    }
    let port = int_at(p, &["port"]).unwrap_or(0);
    for msg in names::port_num(port) {
        errs.push(FieldError::invalid(format!("{path}.port"), port, msg));
    }
    let protocol = str_at(p, &["protocol"]);
    if protocol.is_empty() {
        errs.push(FieldError::required(format!("{path}.protocol"), ""));
    } else if !PROTOCOLS.contains(&protocol) {
        errs.push(FieldError::not_supported(
            format!("{path}.protocol"),
            protocol,
            PROTOCOLS,
        ));
    }
    errs.extend(validate_port_num_or_name(
        p.get("targetPort"),
        &format!("{path}.targetPort"),
    ));
    if let Some(app) = at(p, &["appProtocol"]).and_then(Value::as_str) {
        errs.extend(validate_label_name(app, &format!("{path}.appProtocol")));
    }
    errs
}

/// `ValidatePortNumOrName` for an int-or-string port.
pub(crate) fn validate_port_num_or_name(v: Option<&Value>, path: &str) -> Vec<FieldError> {
    match v {
        Some(Value::String(s)) => names::port_name(s)
            .into_iter()
            .map(|msg| FieldError::invalid(path, s.as_str(), msg))
            .collect(),
        other => {
            let n = other.and_then(Value::as_i64).unwrap_or(0);
            names::port_num(n)
                .into_iter()
                .map(|msg| FieldError::invalid(path, n, msg))
                .collect()
        }
    }
}

fn validate_session_affinity(svc: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let affinity = str_at(svc, &["spec", "sessionAffinity"]);
    let config = at(svc, &["spec", "sessionAffinityConfig"]);
    match affinity {
        "" => errs.push(FieldError::required("spec.sessionAffinity", "")),
        "None" => {
            if config.is_some() {
                errs.push(FieldError::forbidden(
                    "spec.sessionAffinityConfig",
                    "must not be set when session affinity is None",
                ));
            }
        }
        "ClientIP" => {
            let why = "when session affinity type is ClientIP";
            let path = "spec.sessionAffinityConfig";
            match config.and_then(|c| at(c, &["clientIP"])) {
                None if config.is_none() => errs.push(FieldError::required(path, why)),
                None => errs.push(FieldError::required(format!("{path}.clientIP"), why)),
                Some(ip) => match at(ip, &["timeoutSeconds"]).and_then(Value::as_i64) {
                    None => errs.push(FieldError::required(format!("{path}.clientIP.timeoutSeconds"), why)),
                    Some(t) if t <= 0 || t > MAX_CLIENT_IP_AFFINITY_SECONDS => {
                        errs.push(FieldError::invalid(
                            format!("{path}.clientIP.timeoutSeconds"),
                            t,
                            format!("must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}"),
                        ))
                    }
                    Some(_) => {}
                },
            }
        }
        other => errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            other,
            &["ClientIP", "None"],
        )),
    }
    errs
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn validate_cluster_ips_related(svc: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if svc_type(svc) == "ExternalName" {
        return errs;
    }
    let ips = cluster_ips(svc);
    let ips_value = || json!(ips);
    let cluster_ip = str_at(svc, &["spec", "clusterIP"]);
    if !cluster_ip.is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required("spec.clusterIPs", ""));
        } else if ips[0] != cluster_ip {
            errs.push(FieldError::invalid(
                "spec.clusterIPs",
                ips_value(),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            "spec.clusterIPs",
            ips_value(),
            "must be empty when `clusterIP` is not specified",
        ));
    }

    let families: Vec<&str> = list_at(svc, &["spec", "ipFamilies"])
        .iter()
        .map(|f| f.as_str().unwrap_or(""))
        .collect();
    let mut seen = BTreeSet::new();
    for (i, f) in families.iter().enumerate() {
        if !["IPv4", "IPv6"].contains(f) {
            errs.push(FieldError::not_supported(
                format!("spec.ipFamilies[{i}]"),
                *f,
                &["IPv4", "IPv6"],
            ));
        }
        if !seen.insert(*f) {
            errs.push(FieldError::duplicate(format!("spec.ipFamilies[{i}]"), *f));
        }
    }
    if let Some(policy) = at(svc, &["spec", "ipFamilyPolicy"]) {
        let p = policy.as_str().unwrap_or("");
        let valid = ["PreferDualStack", "RequireDualStack", "SingleStack"];
        if !valid.contains(&p) {
            errs.push(FieldError::not_supported("spec.ipFamilyPolicy", p, &valid));
        }
    }

    let mut has_invalid = false;
    let mut parsed = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                has_invalid = true;
                errs.push(FieldError::invalid(
                    "spec.clusterIPs",
                    ips_value(),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        match ip.parse::<IpAddr>() {
            Ok(a) => parsed.push(a),
            Err(_) => {
                has_invalid = true;
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    ip.as_str(),
                    INVALID_IP,
                ));
            }
        }
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            "spec.clusterIPs",
            ips_value(),
            "may only hold up to 2 values",
        ));
    }
    if has_invalid {
        return errs;
    }
    if ips.len() > 1 && !(parsed.len() == 2 && parsed[0].is_ipv4() != parsed[1].is_ipv4()) {
        errs.push(FieldError::invalid(
            "spec.clusterIPs",
            ips_value(),
            "may specify no more than one IP for each IP family",
        ));
    }
    if !is_headless(svc) {
        for (i, (ip, fam)) in ips.iter().zip(families.iter()).enumerate() {
            let v6 = ip.parse::<IpAddr>().is_ok_and(|a| a.is_ipv6());
            if *fam == "IPv4" && v6 {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    ip.as_str(),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if *fam == "IPv6" && !v6 {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    ip.as_str(),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

/// `ValidateNonSpecialIP`: external IPs may not be addresses every node
/// already answers for.
fn validate_non_special_ip(addr: IpAddr, ip: &str, path: &str) -> Vec<FieldError> {
    let msg = if addr.is_unspecified() {
        Some("may not be unspecified (0.0.0.0, ::)")
    } else if addr.is_loopback() {
        Some("may not be in the loopback range (127.0.0.0/8, ::1/128)")
    } else if match addr {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    } {
        Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
    } else if match addr {
        IpAddr::V4(a) => a.octets()[..3] == [224, 0, 0],
        IpAddr::V6(a) => (a.segments()[0] & 0xff0f) == 0xff02,
    } {
        Some("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
    } else {
        None
    };
    msg.map(|m| FieldError::invalid(path, ip, m))
        .into_iter()
        .collect()
}

fn validate_traffic_policies(svc: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let etp = str_at(svc, &["spec", "externalTrafficPolicy"]);
    if !externally_accessible(svc) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required("spec.externalTrafficPolicy", ""));
    } else if !["Cluster", "Local"].contains(&etp) {
        errs.push(FieldError::not_supported(
            "spec.externalTrafficPolicy",
            etp,
            &["Cluster", "Local"],
        ));
    }
    let hc = int_at(svc, &["spec", "healthCheckNodePort"]).unwrap_or(0);
    if !needs_health_check(svc) {
        if hc != 0 {
            errs.push(FieldError::invalid(
                "spec.healthCheckNodePort",
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc != 0 {
        // Kubernetes also requires a non-zero port here, but it allocates
        // one before validating; admission allocates it here, possibly
        // after validation, so a missing one is not an error.
        for msg in names::port_num(hc) {
            errs.push(FieldError::invalid("spec.healthCheckNodePort", hc, msg));
        }
    }
    let itp = at(svc, &["spec", "internalTrafficPolicy"]);
    match itp.and_then(Value::as_str) {
        None if matches!(svc_type(svc), "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(FieldError::required("spec.internalTrafficPolicy", ""))
        }
        Some(p) if !["Cluster", "Local"].contains(&p) => errs.push(FieldError::not_supported(
            "spec.internalTrafficPolicy",
            p,
            &["Cluster", "Local"],
        )),
        _ => {}
    }
    errs
}

#[cfg(test)]
mod tests;
