//! Routes: the host sends the cluster CIDRs to the NodeIP; the node keeps
//! Service addresses on its bridge for its own processes.

use rtnetlink::packet_route::route::RouteProtocol;

use crate::config::host_route_dsts;
use crate::error::NodeNetError;
use crate::netlink::{Netlink, RouteSummary};
use crate::NodeNetConfig;

/// Inside the node: ClusterIPs and LoadBalancer addresses on the bridge, so
/// a process in the node netns can connect to a Service (routing happens
/// before kube-proxy's OUTPUT DNAT; with no default route the connect
/// would fail with ENETUNREACH). Such routes of an earlier configuration
/// are removed.
pub(crate) async fn ensure_node_routes(
    cfg: &NodeNetConfig,
    node: &Netlink,
    bridge_index: u32,
) -> Result<(), NodeNetError> {
    let existing = node.routes().await?;
    let mut dsts = vec![cfg.service_cidr.trunc()];
    dsts.extend(cfg.lb_pool.map(|p| p.trunc()));
    for route in &existing {
        let ours = route.oif == Some(bridge_index)
            && route.gateway.is_none()
            && route.protocol == RouteProtocol::Static;
        if ours && !dsts.contains(&route.dst) {
            node.delete_route(route.dst, None, bridge_index).await?;
        }
    }
    for dst in dsts {
        if existing.iter().any(|r| r.dst == dst) {
            continue;
        }
        node.add_route(dst, None, bridge_index).await?;
    }
    Ok(())
}

/// Host routes for the cluster CIDRs via the NodeIP. A route for one of
/// them via another interface is a conflict (another server, or the
/// host's own network), never replaced. Stale static routes via our veth
/// (an earlier configuration) are removed.
pub(crate) async fn ensure_host_routes(
    cfg: &NodeNetConfig,
    host: &Netlink,
    host_veth: &str,
    host_index: u32,
) -> Result<(), NodeNetError> {
    let wanted = host_route_dsts(cfg);
    let existing = host.routes().await?;
    check_host_routes_free(cfg, &existing, Some(host_index), host_veth)?;
    for route in &existing {
        let ours = route.oif == Some(host_index) && route.gateway == Some(cfg.node_ip);
        if ours && !wanted.contains(&route.dst) {
            host.delete_route(route.dst, route.gateway, host_index)
                .await?;
        }
    }
    for dst in wanted {
        if !existing.iter().any(|r| r.dst == dst) {
            host.add_route(dst, Some(cfg.node_ip), host_index).await?;
        }
    }
    Ok(())
}

/// A cluster CIDR already routed other than via the NodeIP on our veth is
/// a conflict.
pub(crate) fn check_host_routes_free(
    cfg: &NodeNetConfig,
    existing: &[RouteSummary],
    host_index: Option<u32>,
    host_veth: &str,
) -> Result<(), NodeNetError> {
    for dst in host_route_dsts(cfg) {
        let Some(r) = existing.iter().find(|r| r.dst == dst) else {
            continue;
        };
        if host_index.is_some() && r.oif == host_index && r.gateway == Some(cfg.node_ip) {
            continue;
        }
        return Err(NodeNetError::RouteConflict {
            dst,
            existing: format!(
                "{} dev #{}",
                r.gateway
                    .map(|g| g.to_string())
                    .unwrap_or_else(|| "direct".into()),
                r.oif.unwrap_or(0)
            ),
            wanted: format!("{} dev {host_veth}", cfg.node_ip),
        });
    }
    // The node subnet itself: a second connected route for it would send
    // traffic for the NodeIP to whichever interface the kernel prefers.
    let subnet = cfg.host_ip.trunc();
    if let Some(r) = existing
        .iter()
        .find(|r| r.dst == subnet && (host_index.is_none() || r.oif != host_index))
    {
        return Err(NodeNetError::RouteConflict {
            dst: subnet,
            existing: format!("dev #{}", r.oif.unwrap_or(0)),
            wanted: format!("dev {host_veth}"),
        });
    }
    Ok(())
}
