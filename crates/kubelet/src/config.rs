//! The pod runner's settings.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of one pod runner (one node).
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// The Node object's name; Pods with `spec.nodeName` equal to it run here.
    pub node_name: String,
    /// Where Pod files live: `<data_dir>/pods/<uid>/...` (logs, the Pod's
    /// /etc files, the process list used after a crash).
    pub data_dir: PathBuf,
    /// The `nameserver` of Pods with dnsPolicy ClusterFirst (kube-dns).
    pub cluster_dns: Ipv4Addr,
    /// The cluster's DNS domain (`cluster.local`).
    pub cluster_domain: String,
    /// The minik8s binary: built-in images run as `<self_exe> __image <name>`.
    pub self_exe: PathBuf,
    /// How long the server's own shutdown waits for a Pod's processes after
    /// SIGTERM before SIGKILL. Shorter than a Pod's grace period on purpose:
    /// the Pods come back when the server starts again.
    pub shutdown_grace: Duration,
    /// How often the Node's heartbeat (Ready condition) is refreshed.
    pub heartbeat_interval: Duration,
}

impl KubeletConfig {
    /// The defaults of `minik8s server`, for the given node and data dir.
    pub fn new(
        node_name: impl Into<String>,
        data_dir: impl Into<PathBuf>,
        self_exe: impl Into<PathBuf>,
    ) -> Self {
        KubeletConfig {
            node_name: node_name.into(),
            data_dir: data_dir.into(),
            cluster_dns: Ipv4Addr::new(10, 96, 0, 10),
            cluster_domain: "cluster.local".to_string(),
            self_exe: self_exe.into(),
            shutdown_grace: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(10),
        }
    }

    pub(crate) fn pods_dir(&self) -> PathBuf {
        self.data_dir.join("pods")
    }

    pub(crate) fn pod_dir(&self, uid: &str) -> PathBuf {
        self.pods_dir().join(uid)
    }
}
