//! The node's own plumbing: its netns, the Pod bridge, forwarding inside
//! the node, and the host<->node veth. Each step adopts what exists.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use rtnetlink::packet_route::link::InfoKind;
use rtnetlink::LinkBridge;

use crate::error::NodeNetError;
use crate::names::{BRIDGE_IFNAME, POD_IFNAME};
use crate::netlink::{veth_message, Netlink};
use crate::netns::{
    delete_named_netns, named_netns_path, netns_state, spawn_in_netns, spawn_new_netns, NetnsState,
};
use crate::sandbox::mac_for;
use crate::NodeNetConfig;

/// Adopts a mounted node netns, recreates a half-made one, creates a
/// missing one.
pub(crate) async fn ensure_node_netns(name: &str, path: &Path) -> Result<(), NodeNetError> {
    match netns_state(path) {
        NetnsState::Mounted => Ok(()),
        NetnsState::Unmounted => {
            delete_named_netns(name)?;
            spawn_new_netns(name, || ()).await
        }
        NetnsState::Missing => spawn_new_netns(name, || ()).await,
    }
}

/// `lo` up and the bridge with its address, up; returns the bridge index.
pub(crate) async fn ensure_bridge(
    node: &Netlink,
    bridge_ip: Ipv4Addr,
    prefix_len: u8,
) -> Result<u32, NodeNetError> {
    node.set_up("lo").await?;
    match node.link(BRIDGE_IFNAME).await? {
        Some(link) if link.kind == Some(InfoKind::Bridge) => {}
        Some(_) => {
            // Something else took the name; the node's bridge must be a bridge.
            node.delete_link(BRIDGE_IFNAME).await?;
            create_bridge(node, bridge_ip).await?;
        }
        None => create_bridge(node, bridge_ip).await?,
    }
    let index = node.link_index(BRIDGE_IFNAME).await?;
    node.set_only_address(index, BRIDGE_IFNAME, bridge_ip, prefix_len)
        .await?;
    node.set_up(BRIDGE_IFNAME).await?;
    Ok(index)
}

async fn create_bridge(node: &Netlink, bridge_ip: Ipv4Addr) -> Result<(), NodeNetError> {
    // A fixed MAC: otherwise the bridge takes the lowest port MAC and
    // changes it as Pods come and go, leaving Pods with a stale gateway
    // ARP entry. nf_call_iptables on the bridge itself, so kube-proxy's
    // rules see bridged Pod-to-Pod traffic (Service hairpin) even where
    // the per-netns sysctl is missing.
    let msg = LinkBridge::new(BRIDGE_IFNAME)
        .nf_call_iptables(true)
        .address(mac_for(bridge_ip).to_vec())
        .build();
    node.add_link(msg, BRIDGE_IFNAME).await
}

/// ip_forward and bridge-nf-call-iptables inside the node netns only: both
/// are per network namespace on this kernel (bridge netfilter since 5.3),
/// written from a thread that entered the node netns, so the host's values
/// stay as they are.
pub(crate) async fn enable_forwarding(netns_path: &Path, netns: &str) -> Result<(), NodeNetError> {
    let label = netns.to_string();
    spawn_in_netns(netns_path, move || {
        let write = |path: &str| {
            std::fs::write(path, b"1").map_err(|source| NodeNetError::Io {
                op: "write sysctl in node netns",
                path: PathBuf::from(path),
                source,
            })
        };
        write("/proc/sys/net/ipv4/ip_forward")?;
        // Pod traffic to a ClusterIP enters and leaves the node on cni0, so
        // the node would send the Pod an ICMP redirect ("the ClusterIP is on
        // your link"); the redirect also spends the per-peer ICMP budget, so
        // a REJECTed connection (a Service without endpoints) timed out
        // instead of being refused at once. So: no redirects, and no ICMP
        // rate limit in the node, so that every connection to such a
        // Service is refused, not only the first in each second.
        let zero = |path: &str| {
            std::fs::write(path, b"0").map_err(|source| NodeNetError::Io {
                op: "write sysctl in node netns",
                path: PathBuf::from(path),
                source,
            })
        };
        for dev in ["all", "default", BRIDGE_IFNAME] {
            zero(&format!("/proc/sys/net/ipv4/conf/{dev}/send_redirects"))?;
        }
        zero("/proc/sys/net/ipv4/icmp_ratelimit")?;
        let bridge_nf = "/proc/sys/net/bridge/bridge-nf-call-iptables";
        if Path::new(bridge_nf).exists() {
            write(bridge_nf)?;
        } else {
            tracing::warn!(netns = %label, "br_netfilter is not loaded: Service traffic between Pods on the bridge bypasses iptables");
        }
        Ok(())
    })
    .await?
}

/// The host<->node veth: host side with `host_ip`, node side `eth0` with
/// the NodeIP. An existing pair is kept when both ends are there and
/// peered; a lone or foreign end is replaced. Returns the host side index.
pub(crate) async fn ensure_node_link(
    cfg: &NodeNetConfig,
    host: &Netlink,
    node: &Netlink,
    host_veth: &str,
) -> Result<u32, NodeNetError> {
    let host_end = host.link(host_veth).await?;
    let node_end = node.link(POD_IFNAME).await?;
    let node_nsid = host.nsid_of(&cfg.name).await?;
    let paired = match (&host_end, &node_end) {
        (Some(h), Some(n)) => {
            h.kind == Some(InfoKind::Veth)
                && n.kind == Some(InfoKind::Veth)
                && node_nsid.is_some()
                && h.peer_netnsid == node_nsid
        }
        _ => false,
    };
    if !paired {
        if host_end.is_some() {
            host.delete_link(host_veth).await?;
        }
        if node_end.is_some() {
            node.delete_link(POD_IFNAME).await?;
        }
        let netns_fd = std::fs::File::open(named_netns_path(&cfg.name)).map_err(|source| {
            NodeNetError::Netns {
                op: "open",
                netns: cfg.name.clone(),
                source,
            }
        })?;
        let msg = veth_message(
            host_veth,
            POD_IFNAME,
            netns_fd.as_raw_fd(),
            Some(mac_for(cfg.node_ip)),
            None,
        );
        host.add_link(msg, host_veth).await?;
    }
    let host_index = host.link_index(host_veth).await?;
    let node_index = node.link_index(POD_IFNAME).await?;
    let prefix_len = cfg.host_ip.prefix_len();
    host.set_only_address(host_index, host_veth, cfg.host_ip.addr(), prefix_len)
        .await?;
    node.set_only_address(node_index, POD_IFNAME, cfg.node_ip, prefix_len)
        .await?;
    host.set_up(host_veth).await?;
    node.set_up(POD_IFNAME).await?;
    Ok(host_index)
}
