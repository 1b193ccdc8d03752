//! A Pod sandbox in the kernel: a named netns whose `eth0` is one end of a
//! veth pair, the other end a hairpin port of the node's bridge.
//!
//! The costs that matter are process and round-trip counts, so creation is
//! one thread (unshare + bind mount + a netlink socket opened inside) and a
//! handful of netlink requests, the independent ones in flight together.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use rtnetlink::packet_route::link::BridgePortState;

use crate::error::NodeNetError;
use crate::names::{pod_host_veth_name, sandbox_netns_name, BRIDGE_IFNAME, POD_IFNAME};
use crate::netlink::{open_socket_here, veth_message, Netlink};
use crate::netns::{
    delete_named_netns, named_netns_path, netns_state, spawn_new_netns, NetnsState,
};
use crate::Sandbox;

/// Names and addresses of a sandbox, decided before anything is created
/// (and persisted first, so a crash leaves nothing unaccounted for).
pub(crate) fn plan_sandbox(
    netns_prefix: &str,
    pod_uid: &str,
    namespace: &str,
    pod_name: &str,
    ip: Ipv4Addr,
    pod_cidr: Ipv4Net,
    gateway: Ipv4Addr,
) -> Sandbox {
    let netns_name = sandbox_netns_name(netns_prefix, namespace, pod_name, pod_uid);
    Sandbox {
        pod_uid: pod_uid.to_string(),
        netns_path: named_netns_path(&netns_name),
        netns_name,
        ip,
        prefix_len: pod_cidr.prefix_len(),
        gateway,
        host_veth: pod_host_veth_name(pod_uid),
    }
}

/// A locally administered MAC derived from an IPv4 address (0a:58:a.b.c.d,
/// the scheme OVN-Kubernetes uses): a Pod IP keeps one MAC, so a reused
/// address does not leave peers with a stale ARP entry for long, and the
/// bridge keeps its MAC when ports come and go.
pub(crate) fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x0a, 0x58, a, b, c, d]
}

/// Creates the sandbox's netns, veth pair, address and default route.
/// On error the caller removes whatever was made with `destroy_sandbox`.
pub(crate) async fn build_sandbox(
    node: &Netlink,
    bridge_index: u32,
    sandbox: &Sandbox,
) -> Result<(), NodeNetError> {
    let open_socket = open_socket_here(&sandbox.netns_name);
    let netns_label = sandbox.netns_name.clone();
    let (opened, netns_fd) = spawn_new_netns(&sandbox.netns_name, move || {
        let socket = open_socket()?;
        let fd = File::open("/proc/thread-self/ns/net").map_err(|source| NodeNetError::Netns {
            op: "open",
            netns: netns_label,
            source,
        })?;
        Ok::<_, NodeNetError>((socket, fd))
    })
    .await??;
    let pod = opened.start();

    // The peer is created directly inside the Pod netns as eth0; `lo` can
    // come up meanwhile.
    let veth = veth_message(
        &sandbox.host_veth,
        POD_IFNAME,
        netns_fd.as_raw_fd(),
        Some(mac_for(sandbox.ip)),
        Some(bridge_index),
    );
    let (made, lo_up) = tokio::join!(node.add_link(veth, &sandbox.host_veth), pod.set_up("lo"));
    drop(netns_fd);
    made?;
    lo_up?;

    let (hairpin, eth0) = tokio::join!(
        node.set_hairpin(&sandbox.host_veth),
        pod.link_index(POD_IFNAME)
    );
    hairpin?;
    let eth0 = eth0?;
    let (addr, up) = tokio::join!(
        pod.add_address(eth0, POD_IFNAME, sandbox.ip, sandbox.prefix_len),
        pod.set_up(POD_IFNAME)
    );
    addr?;
    up?;
    // After the link is up: the kernel refuses a gateway on a down device.
    pod.add_route(Ipv4Net::default(), Some(sandbox.gateway), eth0)
        .await?;
    wait_port_forwarding(node, &sandbox.host_veth).await
}

/// How long the kernel may take to bring a new bridge port up.
const PORT_FORWARDING_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits until the Pod's bridge port forwards and the bridge itself is
/// operationally up. The kernel processes carrier changes asynchronously
/// (link watch, later still on a busy machine): a new port is disabled,
/// and a bridge that had no port left has its transmit queue stopped, until
/// then. A Pod started before that loses its first packets, e.g. its first
/// DNS query, which costs a 5 s resolver timeout. Usually the first check
/// succeeds.
async fn wait_port_forwarding(node: &Netlink, host_veth: &str) -> Result<(), NodeNetError> {
    let start = Instant::now();
    loop {
        let (port, bridge) = tokio::join!(node.link(host_veth), node.link(BRIDGE_IFNAME));
        let forwarding = port?.and_then(|l| l.port_state) == Some(BridgePortState::Forwarding);
        if forwarding && bridge?.is_some_and(|b| b.oper_up) {
            return Ok(());
        }
        if start.elapsed() > PORT_FORWARDING_TIMEOUT {
            return Err(NodeNetError::PortNotForwarding {
                link: host_veth.to_string(),
                netns: node.netns().to_string(),
                waited: start.elapsed(),
            });
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Removes the sandbox's kernel objects; missing ones are fine. The veth is
/// deleted explicitly (both ends go at once) because a namespace is
/// destroyed asynchronously, later than its unmount.
pub(crate) async fn destroy_sandbox(node: &Netlink, sandbox: &Sandbox) -> Result<(), NodeNetError> {
    let veth = node.delete_link(&sandbox.host_veth).await;
    let netns = delete_named_netns(&sandbox.netns_name);
    veth.and(netns)
}

/// Whether a recorded sandbox is intact: mounted netns, host veth on the
/// bridge and up, eth0 up with the Pod IP, default route via the bridge.
pub(crate) async fn sandbox_is_intact(
    node: &Netlink,
    bridge_index: u32,
    sandbox: &Sandbox,
) -> Result<bool, NodeNetError> {
    if netns_state(&sandbox.netns_path) != NetnsState::Mounted {
        return Ok(false);
    }
    match node.link(&sandbox.host_veth).await? {
        Some(link)
            if link.controller == Some(bridge_index)
                && link.up
                && link.port_state == Some(BridgePortState::Forwarding) => {}
        _ => return Ok(false),
    }
    let pod = Netlink::connect_in(&sandbox.netns_path, &sandbox.netns_name).await?;
    let Some(eth0) = pod.link(POD_IFNAME).await? else {
        return Ok(false);
    };
    if !eth0.up {
        return Ok(false);
    }
    let want = Ipv4Net::new(sandbox.ip, sandbox.prefix_len)
        .map_err(|e| NodeNetError::InvalidConfig(format!("sandbox {}: {e}", sandbox.netns_name)))?;
    if !pod.addresses(eth0.index, POD_IFNAME).await?.contains(&want) {
        return Ok(false);
    }
    let has_default = pod.routes().await?.iter().any(|r| {
        r.dst == Ipv4Net::default()
            && r.gateway == Some(sandbox.gateway)
            && r.oif == Some(eth0.index)
    });
    Ok(has_default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_derives_names_and_gateway() {
        let sb = plan_sandbox(
            "minik8s",
            "1a2b3c4d-0000-4000-8000-000000000000",
            "default",
            "web-abc12",
            "10.244.0.5".parse().unwrap(),
            "10.244.0.0/24".parse().unwrap(),
            "10.244.0.1".parse().unwrap(),
        );
        assert_eq!(sb.netns_name, "minik8s-default-web-abc12-1a2b3c4d");
        assert_eq!(
            sb.netns_path,
            std::path::PathBuf::from("/run/netns/minik8s-default-web-abc12-1a2b3c4d")
        );
        assert_eq!(sb.host_veth, "veth1a2b3c4d");
        assert_eq!(sb.prefix_len, 24);
        assert_eq!(sb.gateway.to_string(), "10.244.0.1");
    }

    #[test]
    fn mac_is_locally_administered_unicast_and_encodes_ip() {
        let mac = mac_for("10.244.0.7".parse().unwrap());
        assert_eq!(mac, [0x0a, 0x58, 10, 244, 0, 7]);
        assert_eq!(mac[0] & 0x01, 0, "unicast");
        assert_eq!(mac[0] & 0x02, 0x02, "locally administered");
    }
}
