//! `describe endpoints` (kubectl's `describeEndpoints`).

use super::{describe_events, print_annotations, print_labels, DescribeWriter};
use k8s_openapi::api::core::v1::{Endpoints, Event};
use k8s_openapi::api::discovery::v1::EndpointSlice;

pub fn describe_endpoints(
    ep: &Endpoints,
    events: Option<&[Event]>,
    now: jiff::Timestamp,
) -> String {
    let mut w = DescribeWriter::new();
    let meta = &ep.metadata;
    w.name_and_namespace(meta);
    print_labels(&mut w, "Labels", meta.labels.as_ref());
    print_annotations(&mut w, "Annotations", meta.annotations.as_ref());
    w.write(0, "Subsets:\n");
    for subset in ep.subsets.iter().flatten() {
        let join = |addrs: &Option<Vec<k8s_openapi::api::core::v1::EndpointAddress>>| {
            let s = addrs
                .iter()
                .flatten()
                .map(|a| a.ip.clone())
                .collect::<Vec<_>>()
                .join(",");
            if s.is_empty() {
                "<none>".to_string()
            } else {
                s
            }
        };
        w.write(1, &format!("Addresses:\t{}\n", join(&subset.addresses)));
        w.write(
            1,
            &format!(
                "NotReadyAddresses:\t{}\n",
                join(&subset.not_ready_addresses)
            ),
        );
        let ports = subset.ports.clone().unwrap_or_default();
        if !ports.is_empty() {
            w.write(1, "Ports:\n");
            w.write(2, "Name\tPort\tProtocol\n");
            w.write(2, "----\t----\t--------\n");
            for p in ports {
                let name = p
                    .name
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "<unset>".into());
                w.write(
                    2,
                    &format!("{name}\t{}\t{}\n", p.port, p.protocol.unwrap_or_default()),
                );
            }
        }
        w.write(0, "\n");
    }
    describe_events(&mut w, events, now);
    w.finish()
}

/// `describe endpointslice` (kubectl's `describeEndpointSliceV1`).
pub fn describe_endpoint_slice(
    eps: &EndpointSlice,
    events: Option<&[Event]>,
    now: jiff::Timestamp,
) -> String {
    let mut w = DescribeWriter::new();
    let meta = &eps.metadata;
    w.name_and_namespace(meta);
    print_labels(&mut w, "Labels", meta.labels.as_ref());
    print_annotations(&mut w, "Annotations", meta.annotations.as_ref());
    w.write(0, &format!("AddressType:\t{}\n", eps.address_type));
    let ports = eps.ports.clone().unwrap_or_default();
    if ports.is_empty() {
        w.write(0, "Ports: <unset>\n");
    } else {
        w.write(0, "Ports:\n");
        w.write(1, "Name\tPort\tProtocol\n");
        w.write(1, "----\t----\t--------\n");
        for p in ports {
            let name = p
                .name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "<unset>".into());
            let port = p
                .port
                .map(|n| n.to_string())
                .unwrap_or_else(|| "<unset>".into());
            w.write(
                1,
                &format!("{name}\t{port}\t{}\n", p.protocol.unwrap_or_default()),
            );
        }
    }
    if eps.endpoints.is_empty() {
        w.write(0, "Endpoints: <none>\n");
    } else {
        w.write(0, "Endpoints:\n");
        let unset = || "<unset>".to_string();
        for e in &eps.endpoints {
            let addresses = if e.addresses.is_empty() {
                "<none>".to_string()
            } else {
                e.addresses.join(", ")
            };
            w.write(1, &format!("- Addresses:\t{addresses}\n"));
            w.write(2, "Conditions:\n");
            let ready = e
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .map(|r| r.to_string())
                .unwrap_or_else(unset);
            w.write(3, &format!("Ready:\t{ready}\n"));
            w.write(
                2,
                &format!("Hostname:\t{}\n", e.hostname.clone().unwrap_or_else(unset)),
            );
            if let Some(t) = &e.target_ref {
                w.write(
                    2,
                    &format!(
                        "TargetRef:\t{}/{}\n",
                        t.kind.as_deref().unwrap_or_default(),
                        t.name.as_deref().unwrap_or_default()
                    ),
                );
            }
            w.write(
                2,
                &format!("NodeName:\t{}\n", e.node_name.clone().unwrap_or_else(unset)),
            );
            w.write(
                2,
                &format!("Zone:\t{}\n", e.zone.clone().unwrap_or_else(unset)),
            );
        }
    }
    describe_events(&mut w, events, now);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_subsets() {
        let ep: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "subsets": [{"addresses": [{"ip": "10.244.0.5"}, {"ip": "10.244.0.6"}],
                         "ports": [{"port": 80, "protocol": "TCP"}]}]
        }))
        .unwrap();
        let out = describe_endpoints(&ep, Some(&[]), jiff::Timestamp::now());
        assert_eq!(
            out,
            "Name:         web\n\
             Namespace:    default\n\
             Labels:       app=web\n\
             Annotations:  <none>\n\
             Subsets:\n  \
               Addresses:          10.244.0.5,10.244.0.6\n  \
               NotReadyAddresses:  <none>\n  \
               Ports:\n    \
                 Name     Port  Protocol\n    \
                 ----     ----  --------\n    \
                 <unset>  80    TCP\n\
             \n\
             Events:  <none>\n"
        );
    }
}
