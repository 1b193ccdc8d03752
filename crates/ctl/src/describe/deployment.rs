//! `describe deployment` (kubectl's `describeDeployment`).

use super::pod::{describe_containers, describe_tolerations, describe_volumes};
use super::{
    describe_conditions, describe_events, print_annotations, print_labels, rfc1123z, DescribeWriter,
};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// `old` and `new` are the ReplicaSets the Deployment owns, split by
/// whether their pod template is the Deployment's current one.
pub fn describe_deployment(
    d: &Deployment,
    old: &[ReplicaSet],
    new: &[ReplicaSet],
    events: Option<&[Event]>,
    now: jiff::Timestamp,
) -> String {
    let mut w = DescribeWriter::new();
    let meta = &d.metadata;
    let spec = d.spec.clone().unwrap_or_default();
    let status = d.status.clone().unwrap_or_default();
    w.name_and_namespace(meta);
    let created = meta
        .creation_timestamp
        .as_ref()
        .map(rfc1123z)
        .unwrap_or_default();
    w.write(0, &format!("CreationTimestamp:\t{created}\n"));
    print_labels(&mut w, "Labels", meta.labels.as_ref());
    print_annotations(&mut w, "Annotations", meta.annotations.as_ref());
    w.write(
        0,
        &format!("Selector:\t{}\n", selector_string(&spec.selector)),
    );
    w.write(
        0,
        &format!(
            "Replicas:\t{} desired | {} updated | {} total | {} available | {} unavailable\n",
            spec.replicas.unwrap_or(1),
            status.updated_replicas.unwrap_or(0),
            status.replicas.unwrap_or(0),
            status.available_replicas.unwrap_or(0),
            status.unavailable_replicas.unwrap_or(0)
        ),
    );
    let strategy = spec.strategy.clone().unwrap_or_default();
    w.write(
        0,
        &format!(
            "StrategyType:\t{}\n",
            strategy.type_.as_deref().unwrap_or_default()
        ),
    );
    w.write(
        0,
        &format!(
            "MinReadySeconds:\t{}\n",
            spec.min_ready_seconds.unwrap_or(0)
        ),
    );
    if let Some(ru) = &strategy.rolling_update {
        w.write(
            0,
            &format!(
                "RollingUpdateStrategy:\t{} max unavailable, {} max surge\n",
                int_or_string(&ru.max_unavailable),
                int_or_string(&ru.max_surge)
            ),
        );
    }
    describe_pod_template(&mut w, Some(&spec.template));
    let conditions = status.conditions.iter().flatten();
    describe_conditions(
        &mut w,
        conditions.map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_deref())),
    );
    if !old.is_empty() || !new.is_empty() {
        w.write(0, &format!("OldReplicaSets:\t{}\n", replica_sets(old)));
        w.write(0, &format!("NewReplicaSet:\t{}\n", replica_sets(new)));
    }
    describe_events(&mut w, events, now);
    w.finish()
}

/// kubectl's `DescribePodTemplate`.
pub(crate) fn describe_pod_template(w: &mut DescribeWriter, template: Option<&PodTemplateSpec>) {
    w.write(0, "Pod Template:\n");
    let Some(template) = template else {
        w.write(1, "<unset>");
        return;
    };
    let tmeta = template.metadata.clone().unwrap_or_default();
    print_labels(w, "  Labels", tmeta.labels.as_ref());
    if tmeta.annotations.as_ref().is_some_and(|a| !a.is_empty()) {
        print_annotations(w, "  Annotations", tmeta.annotations.as_ref());
    }
    let tspec = template.spec.clone().unwrap_or_default();
    if let Some(sa) = tspec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        w.write(1, &format!("Service Account:\t{sa}\n"));
    }
    if let Some(init) = tspec.init_containers.as_ref().filter(|c| !c.is_empty()) {
        describe_containers(w, "Init Containers", init, None, "  ");
    }
    describe_containers(w, "Containers", &tspec.containers, None, "  ");
    describe_volumes(w, tspec.volumes.as_deref(), "  ");
    if let Some(p) = tspec
        .priority_class_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        w.write(1, &format!("Priority Class Name:\t{p}\n"));
    }
    print_labels(w, "  Node-Selectors", tspec.node_selector.as_ref());
    describe_tolerations(w, "  Tolerations", &tspec);
}

fn replica_sets(list: &[ReplicaSet]) -> String {
    if list.is_empty() {
        return "<none>".into();
    }
    list.iter()
        .map(|rs| {
            format!(
                "{} ({}/{} replicas created)",
                rs.metadata.name.as_deref().unwrap_or_default(),
                rs.status.as_ref().map(|s| s.replicas).unwrap_or(0),
                rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn int_or_string(v: &Option<IntOrString>) -> String {
    match v {
        Some(IntOrString::Int(i)) => i.to_string(),
        Some(IntOrString::String(s)) => s.clone(),
        None => "0".into(),
    }
}

/// `metav1.LabelSelectorAsSelector(...).String()`: `k=v` terms, then
/// expressions, sorted by key.
pub(crate) fn selector_string(sel: &LabelSelector) -> String {
    let mut terms: Vec<(String, String)> = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        terms.push((k.clone(), format!("{k}={v}")));
    }
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default();
        let text = match e.operator.as_str() {
            "In" => format!("{} in ({})", e.key, values.join(",")),
            "NotIn" => format!("{} notin ({})", e.key, values.join(",")),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => format!("{} {other} ({})", e.key, values.join(",")),
        };
        terms.push((e.key.clone(), text));
    }
    terms.sort();
    if terms.is_empty() {
        return "<none>".into();
    }
    terms
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn describes_the_chapters_deployment() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]}}},
            "status": {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3, "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}
        }))
        .unwrap();
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "web-abc"}, "spec": {"replicas": 3, "selector": {}}, "status": {"replicas": 3}
        }))
        .unwrap();
        let out = describe_deployment(&d, &[], &[rs], Some(&[]), jiff::Timestamp::now());
        assert!(out.contains("Selector:               app=web\n"), "{out}");
        assert!(out.contains("Replicas:               3 desired | 3 updated | 3 total | 3 available | 0 unavailable\n"));
        assert!(out.contains("RollingUpdateStrategy:  25% max unavailable, 25% max surge\n"));
        assert!(out.contains("   nginx:\n"));
        assert!(
            out.ends_with(
                "Conditions:\n  Type           Status  Reason\n  ----           ------  ------\n  \
                 Available      True    MinimumReplicasAvailable\n  Progressing    True    NewReplicaSetAvailable\n\
                 OldReplicaSets:  <none>\nNewReplicaSet:   web-abc (3/3 replicas created)\nEvents:          <none>\n"
            ),
            "{out}"
        );
    }
}
