//! `minik8s service web --url` (like `minikube service --url`): the URLs
//! that reach a Service from this host, through the node's NodePort and
//! through a LoadBalancer address.

use crate::error::CtlError;
use crate::Context;
use api::registry::{NODES, SERVICES};
use client::ListParams;
use serde_json::Value;

/// Print the URLs that reach a NodePort or LoadBalancer Service from this host.
#[derive(clap::Args, Debug, Clone)]
pub struct ServiceArgs {
    /// Name of the Service.
    pub name: String,
    /// Print only the URLs (the only output form; accepted for minikube users).
    #[arg(long)]
    pub url: bool,
}

pub async fn run(ctx: &Context, args: ServiceArgs) -> Vec<CtlError> {
    match urls(ctx, &args.name).await {
        Ok(urls) => {
            for u in urls {
                println!("{u}");
            }
            Vec::new()
        }
        Err(e) => vec![e],
    }
}

async fn urls(ctx: &Context, name: &str) -> Result<Vec<String>, CtlError> {
    let svc = ctx
        .client
        .get(&SERVICES, Some(&ctx.namespace), name)
        .await?;
    let nodes = ctx
        .client
        .list(&NODES, None, &ListParams::default())
        .await?;
    let node_ip = node_internal_ip(&nodes);
    service_urls(&svc, node_ip.as_deref(), &ctx.namespace)
}

/// The InternalIP of the first node (by name).
pub fn node_internal_ip(nodes: &Value) -> Option<String> {
    let mut items: Vec<&Value> = nodes["items"].as_array()?.iter().collect();
    items.sort_by_key(|n| {
        n["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    items.iter().find_map(|n| {
        n["status"]["addresses"]
            .as_array()?
            .iter()
            .find(|a| a["type"] == "InternalIP")
            .and_then(|a| a["address"].as_str())
            .map(str::to_string)
    })
}

/// `http://<NodeIP>:<nodePort>` per port, then `http://<ingress>:<port>`
/// per LoadBalancer address and port.
pub fn service_urls(
    svc: &Value,
    node_ip: Option<&str>,
    namespace: &str,
) -> Result<Vec<String>, CtlError> {
    let name = svc["metadata"]["name"].as_str().unwrap_or_default();
    let ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
    let node_ports: Vec<u64> = ports
        .iter()
        .filter_map(|p| p["nodePort"].as_u64())
        .filter(|p| *p > 0)
        .collect();
    if node_ports.is_empty() {
        let kind = svc["spec"]["type"].as_str().unwrap_or("ClusterIP");
        return Err(CtlError::msg(format!(
            "service {namespace}/{name} has no node port (type {kind}); change its type to NodePort or LoadBalancer to reach it from this host"
        )));
    }
    let node_ip =
        node_ip.ok_or_else(|| CtlError::msg("no node with an InternalIP address is registered"))?;
    let mut out: Vec<String> = node_ports
        .iter()
        .map(|np| format!("http://{node_ip}:{np}"))
        .collect();
    for ingress in svc["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(host) = ingress["ip"].as_str().or(ingress["hostname"].as_str()) else {
            continue;
        };
        for p in &ports {
            if let Some(port) = p["port"].as_u64() {
                out.push(format!("http://{host}:{port}"));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nodeport_and_loadbalancer_urls() {
        let nodes = json!({"items": [{"metadata": {"name": "minik8s-node"},
            "status": {"addresses": [{"type": "Hostname", "address": "minik8s-node"}, {"type": "InternalIP", "address": "192.168.49.2"}]}}]});
        let ip = node_internal_ip(&nodes);
        assert_eq!(ip.as_deref(), Some("192.168.49.2"));
        let svc = json!({"metadata": {"name": "web"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "nodePort": 31523}]},
                         "status": {"loadBalancer": {"ingress": [{"ip": "172.18.255.1"}]}}});
        assert_eq!(
            service_urls(&svc, ip.as_deref(), "default").unwrap(),
            ["http://192.168.49.2:31523", "http://172.18.255.1:80"]
        );
    }

    #[test]
    fn cluster_ip_has_no_node_port() {
        let svc = json!({"metadata": {"name": "web"}, "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}});
        let e = service_urls(&svc, Some("192.168.49.2"), "default").unwrap_err();
        assert!(e
            .render()
            .starts_with("error: service default/web has no node port"));
    }
}
