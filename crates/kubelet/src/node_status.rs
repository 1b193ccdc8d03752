//! The Node object: what this node is (addresses, capacity, versions) and
//! its heartbeat. Building the object is pure; `register` and `heartbeat`
//! write it through the API.

use api::registry::NODES;
use client::{Client, PatchType};
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) const KUBELET_VERSION: &str = "v1.35.0-minik8s";
pub(crate) const RUNTIME_VERSION: &str = "minik8s://0.1";

/// Facts about the machine that the Node reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeFacts {
    pub name: String,
    pub node_ip: Ipv4Addr,
    pub pod_cidr: String,
    pub cpus: u64,
    pub memory_kib: u64,
    pub ephemeral_storage_kib: u64,
    pub kernel_version: String,
    pub os_image: String,
    pub machine_id: String,
    pub boot_id: String,
    pub architecture: String,
}

impl NodeFacts {
    /// Read the facts from /proc and /etc.
    pub(crate) fn gather(
        name: &str,
        node_ip: Ipv4Addr,
        pod_cidr: String,
        data_dir: &std::path::Path,
    ) -> NodeFacts {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let meminfo = read("/proc/meminfo");
        let memory_kib = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let os_release = read("/etc/os-release");
        let os_image = os_release
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "Linux".into());
        NodeFacts {
            name: name.to_string(),
            node_ip,
            pod_cidr,
            cpus: std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(1),
            memory_kib,
            ephemeral_storage_kib: disk_kib(data_dir),
            kernel_version: read("/proc/sys/kernel/osrelease"),
            os_image,
            machine_id: read("/etc/machine-id"),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            architecture: go_arch(std::env::consts::ARCH).to_string(),
        }
    }
}

/// Go's names for architectures, which Kubernetes uses.
fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn disk_kib(path: &std::path::Path) -> u64 {
    let dir = if path.exists() {
        path
    } else {
        std::path::Path::new("/")
    };
    match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => s.blocks() * s.fragment_size() / 1024,
        Err(_) => 0,
    }
}

fn labels(f: &NodeFacts) -> Value {
    json!({
        "beta.kubernetes.io/arch": f.architecture,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": f.architecture,
        "kubernetes.io/hostname": f.name,
        "kubernetes.io/os": "linux",
        "node-role.kubernetes.io/control-plane": "",
    })
}

fn resources(f: &NodeFacts) -> Value {
    json!({
        "cpu": f.cpus.to_string(),
        "ephemeral-storage": format!("{}Ki", f.ephemeral_storage_kib),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": format!("{}Ki", f.memory_kib),
        "pods": "110",
    })
}

/// The four node conditions of a healthy node.
pub(crate) fn conditions(heartbeat: &str, transition: &str) -> Value {
    let c = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": type_,
            "status": status,
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": transition,
            "reason": reason,
            "message": message,
        })
    };
    json!([
        c(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        c(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        c(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        c(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status"
        ),
    ])
}

/// The Node's status.
pub(crate) fn node_status(f: &NodeFacts, heartbeat: &str, transition: &str) -> Value {
    json!({
        "capacity": resources(f),
        "allocatable": resources(f),
        "conditions": conditions(heartbeat, transition),
        "addresses": [
            {"type": "InternalIP", "address": f.node_ip.to_string()},
            {"type": "Hostname", "address": f.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": f.machine_id,
            "systemUUID": f.machine_id,
            "bootID": f.boot_id,
            "kernelVersion": f.kernel_version,
            "osImage": f.os_image,
            "containerRuntimeVersion": RUNTIME_VERSION,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": f.architecture,
        },
    })
}

/// A new Node object.
pub(crate) fn node_object(f: &NodeFacts, now: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": f.name, "labels": labels(f)},
        "spec": {"podCIDR": f.pod_cidr, "podCIDRs": [f.pod_cidr]},
        "status": node_status(f, now, now),
    })
}

fn now_string() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Create the Node, or bring an existing one up to date. Returns the Ready
/// condition's transition time to keep in heartbeats.
pub(crate) async fn register(
    client: &Client,
    f: &NodeFacts,
) -> Result<String, client::ClientError> {
    let now = now_string();
    let mut transition = now.clone();
    match client.get(&NODES, None, &f.name).await {
        Err(e) if e.is_not_found() => {
            match client.create(&NODES, None, &node_object(f, &now)).await {
                Ok(_) => {}
                Err(e) if e.is_already_exists() => {}
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
        Ok(existing) => {
            let ready = existing["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
            if let Some(c) = ready.filter(|c| c["status"] == "True") {
                if let Some(t) = c["lastTransitionTime"].as_str() {
                    transition = t.to_string();
                }
            }
            let patch = json!({
                "metadata": {"labels": labels(f)},
                "spec": {"podCIDR": f.pod_cidr, "podCIDRs": [f.pod_cidr]},
            });
            client
                .patch(&NODES, None, &f.name, PatchType::Merge, &patch)
                .await?;
        }
    }
    client
        .patch_status(
            &NODES,
            None,
            &f.name,
            PatchType::Merge,
            &json!({"status": node_status(f, &now, &transition)}),
        )
        .await?;
    Ok(transition)
}

/// Register (retrying until the API answers), then refresh the
/// heartbeat every `interval` until shutdown.
pub(crate) async fn run_node_status(
    client: Client,
    facts: NodeFacts,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut delay = Duration::from_millis(100);
    let transition = loop {
        match register(&client, &facts).await {
            Ok(t) => break t,
            Err(e) => {
                tracing::debug!(error = %e, node = %facts.name, "node registration retries");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    };
    tracing::info!(node = %facts.name, ip = %facts.node_ip, "node registered");
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
        let patch = json!({"status": {"conditions": conditions(&now_string(), &transition)}});
        if let Err(e) = client
            .patch_status(&NODES, None, &facts.name, PatchType::Merge, &patch)
            .await
        {
            if e.is_not_found() {
                // Someone deleted the Node: register it again.
                let _ = register(&client, &facts).await;
            } else {
                tracing::debug!(error = %e, "node heartbeat failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> NodeFacts {
        NodeFacts {
            name: "minik8s-node".into(),
            node_ip: Ipv4Addr::new(192, 168, 49, 2),
            pod_cidr: "10.244.0.0/24".into(),
            cpus: 2,
            memory_kib: 16_000_000,
            ephemeral_storage_kib: 100_000_000,
            kernel_version: "6.18.44".into(),
            os_image: "Debian GNU/Linux 12 (bookworm)".into(),
            machine_id: "abc".into(),
            boot_id: "def".into(),
            architecture: "amd64".into(),
        }
    }

    #[test]
    fn node_object_reports_what_kubectl_shows() {
        let n = node_object(&facts(), "2026-11-26T10:00:00Z");
        assert_eq!(n["spec"]["podCIDR"], "10.244.0.0/24");
        assert_eq!(
            n["metadata"]["labels"]["kubernetes.io/hostname"],
            "minik8s-node"
        );
        assert_eq!(
            n["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
            ""
        );
        let s = &n["status"];
        assert_eq!(
            s["addresses"][0],
            json!({"type": "InternalIP", "address": "192.168.49.2"})
        );
        assert_eq!(s["capacity"]["pods"], "110");
        assert_eq!(s["capacity"]["memory"], "16000000Ki");
        assert_eq!(s["allocatable"]["cpu"], "2");
        assert_eq!(s["nodeInfo"]["kubeletVersion"], "v1.35.0-minik8s");
        assert_eq!(s["nodeInfo"]["containerRuntimeVersion"], "minik8s://0.1");
        let ready = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("True"), Some("KubeletReady"))
        );
    }

    #[test]
    fn gathered_facts_are_plausible() {
        let f = NodeFacts::gather(
            "n",
            Ipv4Addr::LOCALHOST,
            "10.244.0.0/24".into(),
            std::path::Path::new("/"),
        );
        assert!(f.cpus >= 1);
        assert!(f.memory_kib > 0);
        assert!(!f.kernel_version.is_empty());
    }
}
