//! The pod runner's view of the node network: a Pod sandbox is a network
//! namespace with an address on the node's bridge. The real implementation
//! is `nodenet::NodeNetwork`; tests pass a fake.

use futures::future::BoxFuture;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// One Pod's network sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSandbox {
    pub pod_uid: String,
    /// `/run/netns/<name>`: what a container process joins with setns(2).
    pub netns_path: PathBuf,
    pub ip: Ipv4Addr,
}

/// What the pod runner needs from the node network.
pub trait SandboxNetwork: Send + Sync + 'static {
    /// The node's InternalIP (the Pods' `hostIP`).
    fn node_ip(&self) -> Ipv4Addr;
    /// The node's Pod CIDR, e.g. `10.244.0.0/24` (the Node's `spec.podCIDR`).
    fn pod_cidr(&self) -> String;
    /// Create the sandbox of a Pod, or return the existing one of the same
    /// uid (a sandbox that survived a restart keeps its address).
    fn create_sandbox<'a>(
        &'a self,
        pod_uid: &'a str,
        namespace: &'a str,
        pod_name: &'a str,
    ) -> BoxFuture<'a, Result<PodSandbox, String>>;
    /// Remove a Pod's sandbox; removing one that does not exist succeeds.
    fn remove_sandbox<'a>(&'a self, pod_uid: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// Every sandbox that exists now, including those adopted from a
    /// previous run of the server.
    fn sandboxes(&self) -> Vec<PodSandbox>;
}

/// `nodenet`'s node network as the pod runner's `SandboxNetwork` (the
/// caller keeps its own `Arc` for `teardown`).
pub fn node_network(
    net: std::sync::Arc<nodenet::NodeNetwork>,
) -> std::sync::Arc<dyn SandboxNetwork> {
    net
}

/// The node network of `nodenet` as the pod runner uses it.
impl SandboxNetwork for nodenet::NodeNetwork {
    fn node_ip(&self) -> Ipv4Addr {
        nodenet::NodeNetwork::node_ip(self)
    }

    fn pod_cidr(&self) -> String {
        self.config().pod_cidr.to_string()
    }

    fn create_sandbox<'a>(
        &'a self,
        pod_uid: &'a str,
        namespace: &'a str,
        pod_name: &'a str,
    ) -> BoxFuture<'a, Result<PodSandbox, String>> {
        Box::pin(async move {
            nodenet::NodeNetwork::create_sandbox(self, pod_uid, namespace, pod_name)
                .await
                .map(from_nodenet)
                .map_err(|e| e.to_string())
        })
    }

    fn remove_sandbox<'a>(&'a self, pod_uid: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            nodenet::NodeNetwork::remove_sandbox(self, pod_uid)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn sandboxes(&self) -> Vec<PodSandbox> {
        nodenet::NodeNetwork::sandboxes(self)
            .into_iter()
            .map(from_nodenet)
            .collect()
    }
}

fn from_nodenet(s: nodenet::Sandbox) -> PodSandbox {
    PodSandbox {
        pod_uid: s.pod_uid,
        netns_path: s.netns_path,
        ip: s.ip,
    }
}
