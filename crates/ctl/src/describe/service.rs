//! `describe service` (kubectl's `describeService`).

use super::{describe_events, format_labels, print_annotations, print_labels, DescribeWriter};
use k8s_openapi::api::core::v1::{Event, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub fn describe_service(
    svc: &Service,
    slices: &[EndpointSlice],
    events: Option<&[Event]>,
    now: jiff::Timestamp,
) -> String {
    let mut w = DescribeWriter::new();
    let meta = &svc.metadata;
    let spec = svc.spec.clone().unwrap_or_default();
    w.name_and_namespace(meta);
    print_labels(&mut w, "Labels", meta.labels.as_ref());
    print_annotations(&mut w, "Annotations", meta.annotations.as_ref());
    w.write(
        0,
        &format!("Selector:\t{}\n", format_labels(spec.selector.as_ref())),
    );
    w.write(
        0,
        &format!("Type:\t{}\n", spec.type_.as_deref().unwrap_or_default()),
    );
    if let Some(p) = &spec.ip_family_policy {
        w.write(0, &format!("IP Family Policy:\t{p}\n"));
    }
    match spec.ip_families.as_ref().filter(|f| !f.is_empty()) {
        Some(f) => w.write(0, &format!("IP Families:\t{}\n", f.join(","))),
        None => w.write(0, "IP Families:\t<none>\n"),
    }
    w.write(
        0,
        &format!("IP:\t{}\n", spec.cluster_ip.as_deref().unwrap_or_default()),
    );
    match spec.cluster_ips.as_ref().filter(|f| !f.is_empty()) {
        Some(ips) => w.write(0, &format!("IPs:\t{}\n", ips.join(","))),
        None => w.write(0, "IPs:\t<none>\n"),
    }
    if let Some(ips) = spec.external_ips.as_ref().filter(|f| !f.is_empty()) {
        w.write(0, &format!("External IPs:\t{}\n", ips.join(",")));
    }
    if let Some(ip) = spec.load_balancer_ip.as_deref().filter(|s| !s.is_empty()) {
        w.write(0, &format!("Desired LoadBalancer IP:\t{ip}\n"));
    }
    if let Some(n) = spec.external_name.as_deref().filter(|s| !s.is_empty()) {
        w.write(0, &format!("External Name:\t{n}\n"));
    }
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default();
    if !ingress.is_empty() {
        let list: Vec<String> = ingress
            .iter()
            .map(|i| match i.ip.as_deref().filter(|s| !s.is_empty()) {
                Some(ip) => match &i.ip_mode {
                    Some(mode) => format!("{ip} ({mode})"),
                    None => ip.to_string(),
                },
                None => i.hostname.clone().unwrap_or_default(),
            })
            .collect();
        w.write(0, &format!("LoadBalancer Ingress:\t{}\n", list.join(", ")));
    }
    for sp in spec.ports.iter().flatten() {
        let name = sp
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or("<unset>");
        let proto = sp.protocol.as_deref().unwrap_or_default();
        w.write(0, &format!("Port:\t{name}\t{}/{proto}\n", sp.port));
        match &sp.target_port {
            Some(IntOrString::String(s)) => w.write(0, &format!("TargetPort:\t{s}/{proto}\n")),
            Some(IntOrString::Int(i)) => w.write(0, &format!("TargetPort:\t{i}/{proto}\n")),
            None => w.write(0, &format!("TargetPort:\t0/{proto}\n")),
        }
        if let Some(ap) = &sp.app_protocol {
            w.write(0, &format!("AppProtocol:\t{ap}\n"));
        }
        if let Some(np) = sp.node_port.filter(|p| *p != 0) {
            w.write(0, &format!("NodePort:\t{name}\t{np}/{proto}\n"));
        }
        let port_name = sp.name.clone().unwrap_or_default();
        w.write(
            0,
            &format!(
                "Endpoints:\t{}\n",
                format_endpoint_slices(slices, Some(&port_name))
            ),
        );
    }
    w.write(
        0,
        &format!(
            "Session Affinity:\t{}\n",
            spec.session_affinity.as_deref().unwrap_or_default()
        ),
    );
    if let Some(p) = spec
        .external_traffic_policy
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        w.write(0, &format!("External Traffic Policy:\t{p}\n"));
    }
    if let Some(p) = &spec.internal_traffic_policy {
        w.write(0, &format!("Internal Traffic Policy:\t{p}\n"));
    }
    if let Some(p) = spec.health_check_node_port.filter(|p| *p != 0) {
        w.write(0, &format!("HealthCheck NodePort:\t{p}\n"));
    }
    if let Some(r) = spec
        .load_balancer_source_ranges
        .as_ref()
        .filter(|r| !r.is_empty())
    {
        w.write(
            0,
            &format!("LoadBalancer Source Ranges:\t{}\n", r.join(",")),
        );
    }
    if let Some(t) = &spec.traffic_distribution {
        w.write(0, &format!("Traffic Distribution:\t{t}\n"));
    }
    describe_events(&mut w, events, now);
    w.finish()
}

/// Ready endpoints of the slices as `ip:port` for the port named
/// `port_name` (`None`: all ports), at most three, then `+ N more...`.
pub(crate) fn format_endpoint_slices(slices: &[EndpointSlice], port_name: Option<&str>) -> String {
    if slices.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    let ready = |e: &k8s_openapi::api::discovery::v1::Endpoint| {
        e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true)
    };
    for slice in slices {
        let ports = slice.ports.clone().unwrap_or_default();
        if ports.is_empty() {
            // Headless Services may have no ports: addresses only.
            for e in &slice.endpoints {
                if list.len() == MAX {
                    more = true;
                }
                if !ready(e) {
                    continue;
                }
                if !more {
                    list.push(e.addresses.first().cloned().unwrap_or_default());
                }
                count += 1;
            }
            continue;
        }
        for port in &ports {
            let name = port.name.as_deref().unwrap_or_default();
            if port_name.is_some_and(|n| n != name) {
                continue;
            }
            for e in &slice.endpoints {
                if list.len() == MAX {
                    more = true;
                }
                if !ready(e) {
                    continue;
                }
                if !more {
                    let addr = e.addresses.first().cloned().unwrap_or_default();
                    let p = port.port.unwrap_or(0);
                    list.push(if addr.contains(':') {
                        format!("[{addr}]:{p}")
                    } else {
                        format!("{addr}:{p}")
                    });
                }
                count += 1;
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - MAX)
    } else {
        ret
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn web_service() -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default",
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "ipFamilyPolicy": "SingleStack",
                     "ipFamilies": ["IPv4"], "clusterIP": "10.96.142.31", "clusterIPs": ["10.96.142.31"],
                     "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP", "nodePort": 30080}],
                     "sessionAffinity": "None", "externalTrafficPolicy": "Cluster",
                     "internalTrafficPolicy": "Cluster"}
        }))
        .unwrap()
    }

    fn slice(ips: &[&str]) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": "web-abc12"}, "addressType": "IPv4",
            "ports": [{"name": "", "port": 80, "protocol": "TCP"}],
            "endpoints": ips.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}})).collect::<Vec<_>>()
        }))
        .unwrap()
    }

    #[test]
    fn describes_a_nodeport_service_like_kubectl() {
        let out = describe_service(
            &web_service(),
            &[slice(&["10.244.0.5", "10.244.0.6", "10.244.0.7"])],
            Some(&[]),
            jiff::Timestamp::now(),
        );
        assert_eq!(
            out,
            "Name:                     web\n\
             Namespace:                default\n\
             Labels:                   <none>\n\
             Annotations:              <none>\n\
             Selector:                 app=web\n\
             Type:                     NodePort\n\
             IP Family Policy:         SingleStack\n\
             IP Families:              IPv4\n\
             IP:                       10.96.142.31\n\
             IPs:                      10.96.142.31\n\
             Port:                     <unset>  80/TCP\n\
             TargetPort:               80/TCP\n\
             NodePort:                 <unset>  30080/TCP\n\
             Endpoints:                10.244.0.5:80,10.244.0.6:80,10.244.0.7:80\n\
             Session Affinity:         None\n\
             External Traffic Policy:  Cluster\n\
             Internal Traffic Policy:  Cluster\n\
             Events:                   <none>\n"
        );
    }

    #[test]
    fn endpoints_are_cut_after_three() {
        let s = slice(&["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]);
        assert_eq!(
            format_endpoint_slices(&[s], Some("")),
            "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more..."
        );
        assert_eq!(format_endpoint_slices(&[], Some("")), "<none>");
    }
}
