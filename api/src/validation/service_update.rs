//! The Service update rules: cluster IPs and IP families do not change once
//! set (except to or from ExternalName), nor a LoadBalancer's class.

use serde_json::{json, Value};

use super::access::{at, list_at, str_at};
use super::service::{cluster_ips, is_headless, svc_type};
use crate::field_error::FieldError;

/// `validateUpgradeDowngradeClusterIPs`: the cluster IPs of a Service do
/// not change, except to or from ExternalName.
pub(crate) fn validate_cluster_ips_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if svc_type(new) == "ExternalName" || svc_type(old) == "ExternalName" {
        return errs;
    }
    if is_headless(old) && is_headless(new) {
        return errs;
    }
    let (o, n) = (cluster_ips(old), cluster_ips(new));
    let n_value = json!(n);
    if o.len() == n.len() {
        for (i, ip) in o.iter().enumerate() {
            if *ip != n[i] {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    n_value.clone(),
                    "may not change once set",
                ));
            }
        }
    } else if o.len() > n.len() {
        if n.is_empty() {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                n_value.clone(),
                "primary clusterIP can not be unset",
            ));
        }
        if !o.is_empty() && !n.is_empty() && n[0] != o[0] {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                n_value.clone(),
                "may not change once set",
            ));
        }
        if n.len() == 1 && str_at(new, &["spec", "ipFamilyPolicy"]) != "SingleStack" {
            let policy = at(new, &["spec", "ipFamilyPolicy"])
                .cloned()
                .unwrap_or(Value::Null);
            errs.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                policy,
                "must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !o.is_empty() && n[0] != o[0] {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            n_value,
            "may not change once set",
        ));
    }
    errs
}

/// `validateUpgradeDowngradeIPFamilies` (single-stack part): the primary
/// family does not change.
pub(crate) fn validate_ip_families_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if svc_type(new) == "ExternalName" || svc_type(old) == "ExternalName" {
        return errs;
    }
    if is_headless(old) || is_headless(new) {
        return errs;
    }
    let fam = |s: &Value| -> Vec<String> {
        list_at(s, &["spec", "ipFamilies"])
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    };
    let (o, n) = (fam(old), fam(new));
    if o.len() == n.len() && o != n {
        errs.push(FieldError::invalid(
            "spec.ipFamilies[0]",
            json!(n),
            "may not change once set",
        ));
    } else if o.len() > n.len() && !n.is_empty() && n[0] != o[0] {
        errs.push(FieldError::invalid(
            "spec.ipFamilies[0]",
            json!(cluster_ips(new)),
            "may not change once set",
        ));
    }
    errs
}

/// `validateLoadBalancerClassField` on update: set once, it stays while the
/// Service remains a LoadBalancer.
pub(crate) fn validate_load_balancer_class_update(old: &Value, new: &Value) -> Vec<FieldError> {
    let o = at(old, &["spec", "loadBalancerClass"]);
    let n = at(new, &["spec", "loadBalancerClass"]);
    if svc_type(old) == "LoadBalancer" && svc_type(new) == "LoadBalancer" && o != n {
        return vec![FieldError::invalid(
            "spec.loadBalancerClass",
            n.cloned().unwrap_or(Value::Null),
            "may not change once set",
        )];
    }
    Vec::new()
}
