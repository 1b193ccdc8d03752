//! Endpoints and EndpointSlice validation, after Kubernetes'
//! `ValidateEndpoints` (core) and `ValidateEndpointSlice` (discovery).

use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::Value;

use super::access::{at, int_at, list_at, str_at};
use super::meta::{
    validate_label_name, validate_object_meta, validate_object_meta_update, NameRule,
};
use super::names;
use super::service::{INVALID_IP, PROTOCOLS};
use crate::field_error::FieldError;

const MAX_SLICE_ENDPOINTS: usize = 1000;
const MAX_SLICE_PORTS: usize = 100;
const MAX_ENDPOINT_ADDRESSES: usize = 100;

fn meta(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    match old {
        Some(old) => validate_object_meta_update(obj, old),
        None => validate_object_meta(obj, true, NameRule::Subdomain),
    }
}

/// Validate an Endpoints object.
pub fn validate_endpoints(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = meta(obj, old);
    for (i, ss) in list_at(obj, &["subsets"]).iter().enumerate() {
        let sp = format!("subsets[{i}]");
        let addrs = list_at(ss, &["addresses"]);
        let not_ready = list_at(ss, &["notReadyAddresses"]);
        if addrs.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                sp.clone(),
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (key, list) in [("addresses", addrs), ("notReadyAddresses", not_ready)] {
            for (j, a) in list.iter().enumerate() {
                errs.extend(validate_endpoint_address(a, &format!("{sp}.{key}[{j}]")));
            }
        }
        let ports = list_at(ss, &["ports"]);
        for (j, p) in ports.iter().enumerate() {
            let pp = format!("{sp}.ports[{j}]");
            let name = str_at(p, &["name"]);
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(format!("{pp}.name"), ""));
            } else if !name.is_empty() {
                for msg in names::dns1123_label(name) {
                    errs.push(FieldError::invalid(format!("{pp}.name"), name, msg));
                }
            }
            let port = int_at(p, &["port"]).unwrap_or(0);
            for msg in names::port_num(port) {
                errs.push(FieldError::invalid(format!("{pp}.port"), port, msg));
            }
            errs.extend(protocol(
                str_at(p, &["protocol"]),
                &format!("{pp}.protocol"),
            ));
        }
    }
    errs
}

fn validate_endpoint_address(a: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ip = str_at(a, &["ip"]);
    if ip.parse::<IpAddr>().is_err() {
        errs.push(FieldError::invalid(format!("{path}.ip"), ip, INVALID_IP));
    }
    let host = str_at(a, &["hostname"]);
    if !host.is_empty() {
        for msg in names::dns1123_label(host) {
            errs.push(FieldError::invalid(format!("{path}.hostname"), host, msg));
        }
    }
    if let Some(node) = at(a, &["nodeName"]).and_then(Value::as_str) {
        for msg in names::dns1123_subdomain(node) {
            errs.push(FieldError::invalid(format!("{path}.nodeName"), node, msg));
        }
    }
    errs
}

fn protocol(p: &str, path: &str) -> Vec<FieldError> {
    if p.is_empty() {
        vec![FieldError::required(path, "")]
    } else if !PROTOCOLS.contains(&p) {
        vec![FieldError::not_supported(path, p, PROTOCOLS)]
    } else {
        Vec::new()
    }
}

/// Validate an EndpointSlice (its fields sit at the top level, so paths
/// have no `spec.`).
pub fn validate_endpoint_slice(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = meta(obj, old);
    let address_type = str_at(obj, &["addressType"]);
    match old {
        Some(old) if str_at(old, &["addressType"]) != address_type => {
            errs.push(FieldError::invalid(
                "addressType",
                address_type,
                "field is immutable",
            ));
        }
        Some(_) => {}
        None => {
            let valid = ["FQDN", "IPv4", "IPv6"];
            if address_type.is_empty() {
                errs.push(FieldError::required("addressType", ""));
            } else if !valid.contains(&address_type) {
                errs.push(FieldError::not_supported(
                    "addressType",
                    address_type,
                    &valid,
                ));
            }
        }
    }
    let endpoints = list_at(obj, &["endpoints"]);
    if endpoints.len() > MAX_SLICE_ENDPOINTS {
        errs.push(FieldError::too_many(
            "endpoints",
            endpoints.len(),
            MAX_SLICE_ENDPOINTS,
        ));
    }
    for (i, ep) in endpoints.iter().enumerate() {
        let ap = format!("endpoints[{i}].addresses");
        let addrs = list_at(ep, &["addresses"]);
        if addrs.is_empty() {
            errs.push(FieldError::required(
                ap.clone(),
                "must contain at least 1 address",
            ));
        } else if addrs.len() > MAX_ENDPOINT_ADDRESSES {
            errs.push(FieldError::too_many(
                ap.clone(),
                addrs.len(),
                MAX_ENDPOINT_ADDRESSES,
            ));
        }
        for (j, a) in addrs.iter().enumerate() {
            let a = a.as_str().unwrap_or("");
            let path = format!("{ap}[{j}]");
            match address_type {
                "IPv4" if a.parse::<std::net::Ipv4Addr>().is_err() => {
                    errs.push(FieldError::invalid(path, a, "must be a valid IPv4 address"))
                }
                "IPv6" if a.parse::<std::net::Ipv6Addr>().is_err() => {
                    errs.push(FieldError::invalid(path, a, "must be a valid IPv6 address"))
                }
                "FQDN" => {
                    for msg in names::dns1123_subdomain(a) {
                        errs.push(FieldError::invalid(path.clone(), a, msg));
                    }
                }
                _ => {}
            }
        }
        if let Some(node) = at(ep, &["nodeName"]).and_then(Value::as_str) {
            for msg in names::dns1123_subdomain(node) {
                errs.push(FieldError::invalid(
                    format!("endpoints[{i}].nodeName"),
                    node,
                    msg,
                ));
            }
        }
        if let Some(host) = at(ep, &["hostname"]).and_then(Value::as_str) {
            for msg in names::dns1123_label(host) {
                errs.push(FieldError::invalid(
                    format!("endpoints[{i}].hostname"),
                    host,
                    msg,
                ));
            }
        }
    }
    let ports = list_at(obj, &["ports"]);
    if ports.len() > MAX_SLICE_PORTS {
        errs.push(FieldError::too_many("ports", ports.len(), MAX_SLICE_PORTS));
    }
    let mut seen = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = format!("ports[{i}]");
        let name = str_at(p, &["name"]);
        if !name.is_empty() {
            for msg in names::dns1123_label(name) {
                errs.push(FieldError::invalid(format!("{pp}.name"), name, msg));
            }
        }
        if !seen.insert(name.to_string()) {
            errs.push(FieldError::duplicate(format!("{pp}.name"), name));
        }
        errs.extend(protocol(
            str_at(p, &["protocol"]),
            &format!("{pp}.protocol"),
        ));
        if let Some(app) = at(p, &["appProtocol"]).and_then(Value::as_str) {
            errs.extend(validate_label_name(app, &format!("{pp}.appProtocol")));
        }
        if let Some(port) = int_at(p, &["port"]) {
            if !(0..=65535).contains(&port) {
                errs.push(FieldError::invalid(
                    format!("{pp}.port"),
                    port,
                    names::inclusive_range_error(0, 65535),
                ));
            }
        }
    }
    errs
}
