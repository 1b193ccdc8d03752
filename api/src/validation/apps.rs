//! Deployment and ReplicaSet validation, after Kubernetes'
//! pkg/apis/apps/validation: replicas, the selector (required, matching
//! the template's labels, immutable in apps/v1), the Pod template and the
//! rollout strategy.

use serde_json::Value;

use super::access::{at, int_at, list_at, map_at, sorted_map_value, str_at, string_map};
use super::meta::{
    selector_matches, validate_label_selector, validate_object_meta, validate_object_meta_update,
    NameRule,
};
use super::names;
use super::pod::validate_pod_template;
use crate::field_error::FieldError;

/// Validate a Deployment (`is_deployment`) or ReplicaSet; `old` is the
/// stored object on update.
pub fn validate_workload(obj: &Value, old: Option<&Value>, is_deployment: bool) -> Vec<FieldError> {
    let mut errs = match old {
        Some(old) => validate_object_meta_update(obj, old),
        None => validate_object_meta(obj, true, NameRule::Subdomain),
    };
    let empty = Value::Null;
    let spec = obj.get("spec").unwrap_or(&empty);
    errs.extend(nonnegative(spec, "replicas", "spec.replicas"));
    errs.extend(nonnegative(spec, "minReadySeconds", "spec.minReadySeconds"));
    match at(spec, &["selector"]) {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(sel) => {
            errs.extend(validate_label_selector(sel, "spec.selector"));
            let n = map_at(sel, &["matchLabels"]).map_or(0, |m| m.len())
                + list_at(sel, &["matchExpressions"]).len();
            if n == 0 {
                // Kubernetes says "deployment" for ReplicaSets too.
                errs.push(FieldError::invalid(
                    "spec.selector",
                    sel.clone(),
                    "empty selector is invalid for deployment",
                ));
            }
        }
    }
    errs.extend(validate_template_for_selector(spec));
    if is_deployment {
        errs.extend(validate_strategy(spec));
        errs.extend(nonnegative(
            spec,
            "revisionHistoryLimit",
            "spec.revisionHistoryLimit",
        ));
        if let Some(pds) = int_at(spec, &["progressDeadlineSeconds"]) {
            errs.extend(nonnegative(
                spec,
                "progressDeadlineSeconds",
                "spec.progressDeadlineSeconds",
            ));
            if pds <= int_at(spec, &["minReadySeconds"]).unwrap_or(0) {
                errs.push(FieldError::invalid(
                    "spec.progressDeadlineSeconds",
                    pds,
                    "must be greater than minReadySeconds",
                ));
            }
        }
    }
    if let Some(old) = old {
        // apps/v1 does not let a selector change: the controller would lose
        // track of the Pods it made.
        let (n, o) = (
            at(obj, &["spec", "selector"]),
            at(old, &["spec", "selector"]),
        );
        if n != o {
            errs.push(FieldError::invalid(
                "spec.selector",
                n.cloned().unwrap_or(Value::Null),
                "field is immutable",
            ));
        }
    }
    errs
}

fn nonnegative(spec: &Value, key: &str, path: &str) -> Vec<FieldError> {
    match int_at(spec, &[key]) {
        Some(v) if v < 0 => vec![FieldError::invalid(
            path,
            v,
            "must be greater than or equal to 0",
        )],
        _ => Vec::new(),
    }
}

/// `ValidatePodTemplateSpecForReplicaSet`.
fn validate_template_for_selector(spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(template) = at(spec, &["template"]) else {
        errs.push(FieldError::required("spec.template", ""));
        return errs;
    };
    if let Some(sel) = at(spec, &["selector"]) {
        let labels = string_map(at(template, &["metadata", "labels"]));
        let empty = map_at(sel, &["matchLabels"]).is_none_or(|m| m.is_empty())
            && list_at(sel, &["matchExpressions"]).is_empty();
        if !empty && !selector_matches(sel, &labels) {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                sorted_map_value(&labels),
                "`selector` does not match template `labels`",
            ));
        }
    }
    errs.extend(validate_pod_template(template, "spec.template"));
    let restart = str_at(template, &["spec", "restartPolicy"]);
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            restart,
            &["Always"],
        ));
    }
    if let Some(ads) = int_at(template, &["spec", "activeDeadlineSeconds"]) {
        errs.push(FieldError::invalid(
            "spec.template.spec.activeDeadlineSeconds",
            ads,
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        ));
    }
    errs
}

/// `ValidateDeploymentStrategy`.
fn validate_strategy(spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let strategy = at(spec, &["strategy"]).cloned().unwrap_or(Value::Null);
    match str_at(&strategy, &["type"]) {
        "Recreate" => {
            if at(&strategy, &["rollingUpdate"]).is_some() {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match at(&strategy, &["rollingUpdate"]) {
            None => errs.push(FieldError::required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let path = "spec.strategy.rollingUpdate";
                let mu = ru.get("maxUnavailable");
                let ms = ru.get("maxSurge");
                errs.extend(int_or_percent(mu, &format!("{path}.maxUnavailable")));
                errs.extend(int_or_percent(ms, &format!("{path}.maxSurge")));
                if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                    errs.push(FieldError::invalid(
                        format!("{path}.maxUnavailable"),
                        mu.cloned().unwrap_or(Value::from(0)),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                if let Some(Value::String(s)) = mu {
                    if s.strip_suffix('%')
                        .and_then(|n| n.parse::<i64>().ok())
                        .is_some_and(|n| n > 100)
                    {
                        errs.push(FieldError::invalid(
                            format!("{path}.maxUnavailable"),
                            s.as_str(),
                            "must not be greater than 100%",
                        ));
                    }
                }
            }
        },
        _ => errs.push(FieldError::not_supported(
            "spec.strategy",
            strategy.clone(),
            &["Recreate", "RollingUpdate"],
        )),
    }
    errs
}

/// `ValidatePositiveIntOrPercent`.
fn int_or_percent(v: Option<&Value>, path: &str) -> Vec<FieldError> {
    match v {
        Some(Value::String(s)) => {
            let ok = s
                .strip_suffix('%')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if ok {
                Vec::new()
            } else {
                vec![FieldError::invalid(
                    path,
                    s.as_str(),
                    names::regex_error(
                        "a valid percent string must be a numeric string followed by an ending '%'",
                        "[0-9]+%",
                        &["1%", "93%"],
                    ),
                )]
            }
        }
        Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n < 0) => {
            vec![FieldError::invalid(
                path,
                n.clone(),
                "must be greater than or equal to 0",
            )]
        }
        _ => Vec::new(),
    }
}

fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) => s
            .strip_suffix('%')
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        Some(v) => v.as_i64().unwrap_or(0),
        None => 0,
    }
}
