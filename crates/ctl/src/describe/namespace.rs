//! `describe namespace` (kubectl's `describeNamespace`; minik8s serves no
//! ResourceQuotas or LimitRanges, so those sections are absent, as kubectl
//! leaves them out when the server has none).

use super::{print_annotations, print_labels, rfc1123z, DescribeWriter};
use k8s_openapi::api::core::v1::Namespace;

pub fn describe_namespace(ns: &Namespace) -> String {
    let mut w = DescribeWriter::new();
    let meta = &ns.metadata;
    let status = ns.status.clone().unwrap_or_default();
    w.write(
        0,
        &format!("Name:\t{}\n", meta.name.as_deref().unwrap_or_default()),
    );
    print_labels(&mut w, "Labels", meta.labels.as_ref());
    print_annotations(&mut w, "Annotations", meta.annotations.as_ref());
    w.write(
        0,
        &format!("Status:\t{}\n", status.phase.as_deref().unwrap_or_default()),
    );
    if let Some(conds) = status.conditions.as_ref().filter(|c| !c.is_empty()) {
        w.write(0, "Conditions:\n");
        w.write(1, "Type\tStatus\tLastTransitionTime\tReason\tMessage\n");
        w.write(1, "----\t------\t------------------\t------\t-------\n");
        for c in conds {
            w.write(
                1,
                &format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    c.type_,
                    c.status,
                    c.last_transition_time
                        .as_ref()
                        .map(rfc1123z)
                        .unwrap_or_default(),
                    c.reason.as_deref().unwrap_or_default(),
                    c.message.as_deref().unwrap_or_default()
                ),
            );
        }
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn describes_an_active_namespace() {
        let ns: Namespace = serde_json::from_value(
            json!({"metadata": {"name": "dev"}, "status": {"phase": "Active"}}),
        )
        .unwrap();
        assert_eq!(
            describe_namespace(&ns),
            "Name:         dev\nLabels:       <none>\nAnnotations:  <none>\nStatus:       Active\n"
        );
    }
}
