//! Pod and Pod template validation, after Kubernetes' `ValidatePodSpec`,
//! `validateContainers` and `ValidatePodUpdate`: the rules a Pod of the
//! chapter can break (containers, names, images, ports, probes, volumes,
//! policies), with Kubernetes' paths and messages.

use std::collections::HashSet;

use serde_json::Value;

use super::access::{at, int_at, list_at, str_at};
use super::meta::{
    validate_annotations, validate_labels, validate_object_meta, validate_object_meta_update,
    NameRule,
};
use super::names;
use super::service::{validate_port_num_or_name, PROTOCOLS};
use crate::field_error::FieldError;

const VOLUME_SOURCES: &[&str] = &[
    "emptyDir",
    "hostPath",
    "configMap",
    "secret",
    "downwardAPI",
    "projected",
    "persistentVolumeClaim",
    "nfs",
    "csi",
    "ephemeral",
    "image",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "azureDisk",
    "vsphereVolume",
    "quobyte",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
];

/// Validate a Pod; `old` is the stored Pod on update.
pub fn validate_pod(pod: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let empty = Value::Null;
    let spec = pod.get("spec").unwrap_or(&empty);
    let mut errs = match old {
        Some(old) => validate_object_meta_update(pod, old),
        None => validate_object_meta(pod, true, NameRule::Subdomain),
    };
    errs.extend(validate_pod_spec(spec, "spec"));
    if let Some(old) = old {
        errs.extend(super::pod_update::validate_pod_update(pod, old));
    }
    errs
}

/// `ValidatePodTemplateSpec`: labels and annotations of the template (at
/// `<path>.labels`, as Kubernetes reports them) and its Pod spec.
pub fn validate_pod_template(template: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = validate_labels(
        at(template, &["metadata", "labels"]),
        &format!("{path}.labels"),
    );
    errs.extend(validate_annotations(
        at(template, &["metadata", "annotations"]),
        &format!("{path}.annotations"),
    ));
    let empty = Value::Null;
    errs.extend(validate_pod_spec(
        template.get("spec").unwrap_or(&empty),
        &format!("{path}.spec"),
    ));
    if !list_at(template, &["spec", "ephemeralContainers"]).is_empty() {
        errs.push(FieldError::forbidden(
            format!("{path}.spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// `ValidatePodSpec` (the parts minik8s' Pods use).
pub fn validate_pod_spec(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let volumes = validate_volumes(
        list_at(spec, &["volumes"]),
        &format!("{path}.volumes"),
        &mut errs,
    );
    let containers = list_at(spec, &["containers"]);
    if containers.is_empty() {
        errs.push(FieldError::required(format!("{path}.containers"), ""));
    }
    let mut all_names = HashSet::new();
    for (i, c) in list_at(spec, &["initContainers"]).iter().enumerate() {
        let cp = format!("{path}.initContainers[{i}]");
        errs.extend(validate_container(c, &volumes, &cp));
        let name = str_at(c, &["name"]);
        if !all_names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(format!("{cp}.name"), name));
        }
    }
    let init_names = all_names.clone();
    let mut names_seen = HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        let cp = format!("{path}.containers[{i}]");
        errs.extend(validate_container(c, &volumes, &cp));
        let name = str_at(c, &["name"]);
        if !names_seen.insert(name.to_string()) || init_names.contains(name) {
            errs.push(FieldError::duplicate(format!("{cp}.name"), name));
        }
        for probe in ["livenessProbe", "startupProbe"] {
            if let Some(t) = at(c, &[probe, "successThreshold"]).and_then(Value::as_i64) {
                if t != 1 {
                    errs.push(FieldError::invalid(
                        format!("{cp}.{probe}.successThreshold"),
                        t,
                        "must be 1",
                    ));
                }
            }
        }
    }

    let restart = str_at(spec, &["restartPolicy"]);
    errs.extend(one_of(
        restart,
        &format!("{path}.restartPolicy"),
        &["Always", "OnFailure", "Never"],
    ));
    let dns = str_at(spec, &["dnsPolicy"]);
    errs.extend(one_of(
        dns,
        &format!("{path}.dnsPolicy"),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    ));
    errs.extend(validate_labels(
        at(spec, &["nodeSelector"]),
        &format!("{path}.nodeSelector"),
    ));

    for key in ["serviceAccountName", "nodeName"] {
        let v = str_at(spec, &[key]);
        if !v.is_empty() {
            for msg in names::dns1123_subdomain(v) {
                errs.push(FieldError::invalid(format!("{path}.{key}"), v, msg));
            }
        }
    }
    if let Some(v) = int_at(spec, &["activeDeadlineSeconds"]) {
        if !(1..=i64::from(i32::MAX)).contains(&v) {
            errs.push(FieldError::invalid(
                format!("{path}.activeDeadlineSeconds"),
                v,
                names::inclusive_range_error(1, i64::from(i32::MAX)),
            ));
        }
    }
    if let Some(v) = int_at(spec, &["terminationGracePeriodSeconds"]) {
        if v < 0 {
            errs.push(FieldError::invalid(
                format!("{path}.terminationGracePeriodSeconds"),
                v,
                "must be greater than or equal to 0",
            ));
        }
    }
    for key in ["hostname", "subdomain"] {
        let v = str_at(spec, &[key]);
        if !v.is_empty() {
            for msg in names::dns1123_label(v) {
                errs.push(FieldError::invalid(format!("{path}.{key}"), v, msg));
            }
        }
    }
    for (i, gate) in list_at(spec, &["readinessGates"]).iter().enumerate() {
        let t = str_at(gate, &["conditionType"]);
        for msg in names::qualified_name(t) {
            errs.push(FieldError::invalid(
                format!("{path}.readinessGates[{i}].conditionType"),
                t,
                msg,
            ));
        }
    }
    errs
}

/// A Go enum field: required, and one of `valid`.
fn one_of(value: &str, path: &str, valid: &[&str]) -> Vec<FieldError> {
    if value.is_empty() {
        vec![FieldError::required(path, "")]
    } else if !valid.contains(&value) {
        vec![FieldError::not_supported(path, value, valid)]
    } else {
        Vec::new()
    }
}

/// `ValidateVolumes`; returns the names of the valid volumes.
fn validate_volumes(volumes: &[Value], path: &str, errs: &mut Vec<FieldError>) -> HashSet<String> {
    let mut seen = HashSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let vp = format!("{path}[{i}]");
        let name = str_at(v, &["name"]);
        let mut ok = true;
        if name.is_empty() {
            errs.push(FieldError::required(format!("{vp}.name"), ""));
            ok = false;
        } else {
            for msg in names::dns1123_label(name) {
                errs.push(FieldError::invalid(format!("{vp}.name"), name, msg));
                ok = false;
            }
        }
        let sources = VOLUME_SOURCES
            .iter()
            .filter(|s| at(v, &[s]).is_some())
            .count();
        if sources == 0 {
            errs.push(FieldError::required(
                vp.clone(),
                "must specify a volume type",
            ));
            ok = false;
        } else if sources > 1 {
            errs.push(FieldError::forbidden(
                vp.clone(),
                "may not specify more than 1 volume type",
            ));
            ok = false;
        }
        if ok && !seen.insert(name.to_string()) {
            errs.push(FieldError::duplicate(format!("{vp}.name"), name));
        }
    }
    seen
}

/// `validateContainerCommon` plus probes and lifecycle handlers.
fn validate_container(c: &Value, volumes: &HashSet<String>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = str_at(c, &["name"]);
    if name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else {
        for msg in names::dns1123_label(name) {
            errs.push(FieldError::invalid(format!("{path}.name"), name, msg));
        }
    }
    if str_at(c, &["image"]).is_empty() {
        errs.push(FieldError::required(format!("{path}.image"), ""));
    }
    errs.extend(one_of(
        str_at(c, &["terminationMessagePolicy"]),
        &format!("{path}.terminationMessagePolicy"),
        &["File", "FallbackToLogsOnError"],
    ));
    errs.extend(validate_container_ports(
        list_at(c, &["ports"]),
        &format!("{path}.ports"),
    ));
    errs.extend(validate_env(list_at(c, &["env"]), &format!("{path}.env")));
    errs.extend(validate_volume_mounts(
        list_at(c, &["volumeMounts"]),
        volumes,
        &format!("{path}.volumeMounts"),
    ));
    errs.extend(one_of(
        str_at(c, &["imagePullPolicy"]),
        &format!("{path}.imagePullPolicy"),
        &["Always", "IfNotPresent", "Never"],
    ));
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = at(c, &[probe]) {
            errs.extend(validate_probe(p, &format!("{path}.{probe}")));
        }
    }
    for hook in ["postStart", "preStop"] {
        if let Some(h) = at(c, &["lifecycle", hook]) {
            errs.extend(validate_handler(h, &format!("{path}.lifecycle.{hook}")));
        }
    }
    errs
}

fn validate_container_ports(ports: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = format!("{path}[{i}]");
        let name = str_at(p, &["name"]);
        if !name.is_empty() {
            let msgs = names::port_name(name);
            if !msgs.is_empty() {
                for msg in msgs {
                    errs.push(FieldError::invalid(format!("{pp}.name"), name, msg));
                }
            } else if !seen.insert(name.to_string()) {
                errs.push(FieldError::duplicate(format!("{pp}.name"), name));
            }
        }
        let cport = int_at(p, &["containerPort"]).unwrap_or(0);
        if cport == 0 {
            errs.push(FieldError::required(format!("{pp}.containerPort"), ""));
        } else {
            for msg in names::port_num(cport) {
                errs.push(FieldError::invalid(
                    format!("{pp}.containerPort"),
                    cport,
                    msg,
                ));
            }
        }
        let hport = int_at(p, &["hostPort"]).unwrap_or(0);
        if hport != 0 {
            for msg in names::port_num(hport) {
                errs.push(FieldError::invalid(format!("{pp}.hostPort"), hport, msg));
            }
        }
        errs.extend(one_of(
            str_at(p, &["protocol"]),
            &format!("{pp}.protocol"),
            PROTOCOLS,
        ));
    }
    errs
}

fn validate_env(env: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, e) in env.iter().enumerate() {
        let ep = format!("{path}[{i}]");
        let name = str_at(e, &["name"]);
        if name.is_empty() {
            errs.push(FieldError::required(format!("{ep}.name"), ""));
        } else {
            for msg in names::env_var_name(name) {
                errs.push(FieldError::invalid(format!("{ep}.name"), name, msg));
            }
        }
        if at(e, &["valueFrom"]).is_some() && !str_at(e, &["value"]).is_empty() {
            errs.push(FieldError::invalid(
                format!("{ep}.valueFrom"),
                "",
                "may not be specified when `value` is not empty",
            ));
        }
    }
    errs
}

fn validate_volume_mounts(
    mounts: &[Value],
    volumes: &HashSet<String>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut paths = HashSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let mp = format!("{path}[{i}]");
        let name = str_at(m, &["name"]);
        if name.is_empty() {
            errs.push(FieldError::required(format!("{mp}.name"), ""));
        } else if !volumes.contains(name) {
            errs.push(FieldError::not_found(format!("{mp}.name"), name));
        }
        let mount_path = str_at(m, &["mountPath"]);
        if mount_path.is_empty() {
            errs.push(FieldError::required(format!("{mp}.mountPath"), ""));
        } else if !paths.insert(mount_path.to_string()) {
            errs.push(FieldError::invalid(
                format!("{mp}.mountPath"),
                mount_path,
                "must be unique",
            ));
        }
    }
    errs
}

fn validate_probe(p: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = validate_handler(p, path);
    for key in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        if let Some(v) = int_at(p, &[key]) {
            if v < 0 {
                errs.push(FieldError::invalid(
                    format!("{path}.{key}"),
                    v,
                    "must be greater than or equal to 0",
                ));
            }
        }
    }
    if let Some(v) = int_at(p, &["terminationGracePeriodSeconds"]) {
        if v <= 0 {
            errs.push(FieldError::invalid(
                format!("{path}.terminationGracePeriodSeconds"),
                v,
                "must be greater than 0",
            ));
        }
    }
    errs
}

/// Exactly one handler (`exec`, `httpGet`, `tcpSocket`, `grpc`, `sleep`).
fn validate_handler(h: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut count = 0;
    for kind in ["exec", "httpGet", "tcpSocket", "grpc", "sleep"] {
        let Some(action) = at(h, &[kind]) else {
            continue;
        };
        let ap = format!("{path}.{kind}");
        if count > 0 {
            errs.push(FieldError::forbidden(
                ap,
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        count += 1;
        match kind {
            "exec" if list_at(action, &["command"]).is_empty() => {
                errs.push(FieldError::required(format!("{ap}.command"), ""));
            }
            "httpGet" => {
                if str_at(action, &["path"]).is_empty() {
                    errs.push(FieldError::required(format!("{ap}.path"), ""));
                }
                errs.extend(validate_port_num_or_name(
                    action.get("port"),
                    &format!("{ap}.port"),
                ));
                let scheme = str_at(action, &["scheme"]);
                if !["HTTP", "HTTPS"].contains(&scheme) {
                    errs.push(FieldError::not_supported(
                        format!("{ap}.scheme"),
                        scheme,
                        &["HTTP", "HTTPS"],
                    ));
                }
            }
            "tcpSocket" => errs.extend(validate_port_num_or_name(
                action.get("port"),
                &format!("{ap}.port"),
            )),
            "grpc" => {
                let port = int_at(action, &["port"]).unwrap_or(0);
                for msg in names::port_num(port) {
                    errs.push(FieldError::invalid(format!("{ap}.port"), port, msg));
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}
