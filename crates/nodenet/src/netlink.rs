//! A thin adapter over rtnetlink bound to one network namespace: the few
//! link, address and route operations the node needs, each idempotent where
//! the caller wants "make it so", with errors that name the object and the
//! namespace.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    BridgePortState, InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage, State,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
};
use rtnetlink::{Handle, LinkBridgePort, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};

use crate::error::{netlink_errno, NodeNetError};
use crate::netns::spawn_in_netns;

/// A netlink route socket of one namespace, driven on the tokio runtime.
pub(crate) struct Netlink {
    handle: Handle,
    /// For error messages: "host" or the namespace name.
    netns: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the node needs to know about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkInfoSummary {
    pub index: u32,
    pub name: String,
    pub kind: Option<InfoKind>,
    pub controller: Option<u32>,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Operationally up: the kernel has processed its carrier and it
    /// passes packets.
    pub oper_up: bool,
    /// For a veth: the nsid (in this namespace) of the peer's namespace.
    pub peer_netnsid: Option<i32>,
    /// For a bridge port: its forwarding state.
    pub port_state: Option<BridgePortState>,
}

/// A route as the node compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteSummary {
    pub dst: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
    pub oif: Option<u32>,
    pub protocol: RouteProtocol,
}

impl Netlink {
    /// A socket in the caller's own namespace (the host's, for the server).
    pub(crate) fn connect_here(label: &str) -> Result<Netlink, NodeNetError> {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|source| NodeNetError::Netns {
                op: "open netlink socket",
                netns: label.to_string(),
                source,
            })?;
        Ok(Netlink {
            handle,
            netns: label.to_string(),
            task: tokio::spawn(conn),
        })
    }

    /// A socket opened on a thread inside the namespace at `path`.
    pub(crate) async fn connect_in(path: &Path, label: &str) -> Result<Netlink, NodeNetError> {
        let opened = spawn_in_netns(path, open_socket_here(label)).await??;
        Ok(opened.start())
    }

    /// "host" or the namespace name, for error messages.
    pub(crate) fn netns(&self) -> &str {
        &self.netns
    }

    fn err(&self, op: &'static str, target: &str) -> impl FnOnce(rtnetlink::Error) -> NodeNetError {
        let target = target.to_string();
        let netns = self.netns.clone();
        move |source| NodeNetError::Netlink {
            op,
            target,
            netns,
            source: Box::new(source),
        }
    }

    pub(crate) async fn link(&self, name: &str) -> Result<Option<LinkInfoSummary>, NodeNetError> {
        let mut links = self.handle.link().get().match_name(name).execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(Some(summarize_link(&msg))),
            Ok(None) => Ok(None),
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(self.err("get link", name)(e)),
        }
    }

    pub(crate) async fn link_index(&self, name: &str) -> Result<u32, NodeNetError> {
        match self.link(name).await? {
            Some(link) => Ok(link.index),
            None => Err(NodeNetError::LinkNotFound {
                name: name.to_string(),
                netns: self.netns.clone(),
            }),
        }
    }

    pub(crate) async fn links(&self) -> Result<Vec<LinkInfoSummary>, NodeNetError> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(self.err("list links", "all"))?;
        Ok(msgs.iter().map(summarize_link).collect())
    }

    pub(crate) async fn add_link(&self, msg: LinkMessage, name: &str) -> Result<(), NodeNetError> {
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(self.err("create link", name))
    }

    /// Deletes a link by name; a missing link is fine.
    pub(crate) async fn delete_link(&self, name: &str) -> Result<(), NodeNetError> {
        let msg = LinkUnspec::new_with_name(name).build();
        match self.handle.link().del_with_message(msg).execute().await {
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(()),
            other => other.map_err(self.err("delete link", name)),
        }
    }

    pub(crate) async fn set_up(&self, name: &str) -> Result<(), NodeNetError> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_name(name).up().build())
            .execute()
            .await
            .map_err(self.err("set up", name))
    }

    /// Bridge port flags: hairpin mode lets a Pod reach itself through a
    /// Service (the DNAT'ed packet goes back out the port it came in on).
    pub(crate) async fn set_hairpin(&self, name: &str) -> Result<(), NodeNetError> {
        let msg = LinkMessageBuilder::<LinkBridgePort>::default()
            .name(name)
            .set_port_kind(rtnetlink::packet_route::link::InfoPortKind::Bridge)
            .hairpin(true)
            .build();
        self.handle
            .link()
            .set_port(msg)
            .execute()
            .await
            .map_err(self.err("set hairpin on", name))
    }

    /// Adds (or keeps) an address; NLM_F_REPLACE makes it idempotent.
    pub(crate) async fn add_address(
        &self,
        index: u32,
        name: &str,
        ip: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(), NodeNetError> {
        self.handle
            .address()
            .add(index, IpAddr::V4(ip), prefix_len)
            .replace()
            .execute()
            .await
            .map_err(self.err("add address to", name))
    }

    /// Makes `ip/prefix_len` the link's only IPv4 address: addresses of an
    /// earlier configuration would keep answering for it.
    pub(crate) async fn set_only_address(
        &self,
        index: u32,
        name: &str,
        ip: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(), NodeNetError> {
        let msgs: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(self.err("list addresses of", name))?;
        for msg in msgs.into_iter().filter(|m| m.header.index == index) {
            let current = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            });
            let stale = current.is_some_and(|c| c != ip || msg.header.prefix_len != prefix_len);
            if stale {
                self.handle
                    .address()
                    .del(msg)
                    .execute()
                    .await
                    .map_err(self.err("delete stale address of", name))?;
            }
        }
        self.add_address(index, name, ip, prefix_len).await
    }

    /// IPv4 addresses of a link.
    pub(crate) async fn addresses(
        &self,
        index: u32,
        name: &str,
    ) -> Result<Vec<Ipv4Net>, NodeNetError> {
        let msgs: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(self.err("list addresses of", name))?;
        Ok(msgs
            .iter()
            .filter(|m| m.header.index == index)
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(IpAddr::V4(ip))
                    | AddressAttribute::Address(IpAddr::V4(ip)) => {
                        Ipv4Net::new(*ip, m.header.prefix_len).ok()
                    }
                    _ => None,
                })
            })
            .collect())
    }

    /// IPv4 routes of the main table.
    pub(crate) async fn routes(&self) -> Result<Vec<RouteSummary>, NodeNetError> {
        let query = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let msgs: Vec<RouteMessage> = self
            .handle
            .route()
            .get(query)
            .execute()
            .try_collect()
            .await
            .map_err(self.err("list routes", "main table"))?;
        Ok(msgs
            .iter()
            .filter(|m| m.header.table == RouteHeader::RT_TABLE_MAIN)
            .filter_map(summarize_route)
            .collect())
    }

    /// `ip route add <dst> [via <gw>] dev <oif>`; EEXIST is returned to the
    /// caller, which decides whether the existing route is the same one.
    pub(crate) async fn add_route(
        &self,
        dst: Ipv4Net,
        gateway: Option<Ipv4Addr>,
        oif: u32,
    ) -> Result<(), NodeNetError> {
        self.handle
            .route()
            .add(route_message(dst, gateway, oif))
            .execute()
            .await
            .map_err(self.err("add route to", &dst.to_string()))
    }

    /// Deletes a route; a missing one is fine.
    pub(crate) async fn delete_route(
        &self,
        dst: Ipv4Net,
        gateway: Option<Ipv4Addr>,
        oif: u32,
    ) -> Result<(), NodeNetError> {
        match self
            .handle
            .route()
            .del(route_message(dst, gateway, oif))
            .execute()
            .await
        {
            Err(e) if matches!(netlink_errno(&e), Some(libc::ESRCH) | Some(libc::ENODEV)) => Ok(()),
            other => other.map_err(self.err("delete route to", &dst.to_string())),
        }
    }

    /// The nsid this namespace uses for the named namespace, if assigned.
    pub(crate) async fn nsid_of(&self, netns_name: &str) -> Result<Option<i32>, NodeNetError> {
        self.handle
            .link()
            .get_netns_id(netns_name)
            .execute()
            .await
            .map_err(self.err("get nsid of", netns_name))
    }
}

/// Opens a netlink socket in the calling thread's namespace; the result is
/// moved to the runtime and started there.
pub(crate) struct OpenedSocket {
    conn: rtnetlink::proto::Connection<rtnetlink::packet_route::RouteNetlinkMessage>,
    handle: Handle,
    netns: String,
}

impl OpenedSocket {
    pub(crate) fn start(self) -> Netlink {
        Netlink {
            handle: self.handle,
            netns: self.netns,
            task: tokio::spawn(self.conn),
        }
    }
}

/// A closure for a namespace thread: opens the socket there. The tokio
/// handle is captured now, on the runtime, because the socket registers
/// with the runtime's reactor when it is created.
pub(crate) fn open_socket_here(
    label: &str,
) -> impl FnOnce() -> Result<OpenedSocket, NodeNetError> + Send + 'static {
    let runtime = tokio::runtime::Handle::current();
    let label = label.to_string();
    move || {
        let _entered = runtime.enter();
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|source| NodeNetError::Netns {
                op: "open netlink socket in",
                netns: label.clone(),
                source,
            })?;
        Ok(OpenedSocket {
            conn,
            handle,
            netns: label,
        })
    }
}

/// A veth pair: `name` here, `peer` created directly inside the namespace
/// open as `peer_netns_fd` (so no temporary name ever appears on this side).
pub(crate) fn veth_message(
    name: &str,
    peer: &str,
    peer_netns_fd: i32,
    peer_mac: Option<[u8; 6]>,
    controller: Option<u32>,
) -> LinkMessage {
    let mut peer_msg = LinkUnspec::new_with_name(peer).setns_by_fd(peer_netns_fd);
    if let Some(mac) = peer_mac {
        peer_msg = peer_msg.address(mac.to_vec());
    }
    let mut builder = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
        .name(name)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())))
        .up();
    if let Some(index) = controller {
        builder = builder.controller(index);
    }
    builder.build()
}

fn route_message(dst: Ipv4Net, gateway: Option<Ipv4Addr>, oif: u32) -> RouteMessage {
    let mut builder = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(dst.network(), dst.prefix_len())
        .output_interface(oif);
    match gateway {
        Some(gw) => builder = builder.gateway(gw),
        None => builder = builder.scope(RouteScope::Link),
    }
    builder.build()
}

fn summarize_link(msg: &LinkMessage) -> LinkInfoSummary {
    let mut summary = LinkInfoSummary {
        index: msg.header.index,
        name: String::new(),
        kind: None,
        controller: None,
        up: msg.header.flags.contains(LinkFlags::Up),
        oper_up: false,
        peer_netnsid: None,
        port_state: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(name) => summary.name = name.clone(),
            LinkAttribute::Controller(index) => summary.controller = Some(*index),
            LinkAttribute::LinkNetNsId(id) => summary.peer_netnsid = Some(*id),
            LinkAttribute::OperState(state) => summary.oper_up = *state == State::Up,
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(kind) => summary.kind = Some(kind.clone()),
                        LinkInfo::PortData(InfoPortData::BridgePort(port)) => {
                            summary.port_state = port.iter().find_map(|p| match p {
                                InfoBridgePort::State(state) => Some(*state),
                                _ => None,
                            });
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    summary
}

fn summarize_route(msg: &RouteMessage) -> Option<RouteSummary> {
    let mut dst = Ipv4Addr::UNSPECIFIED;
    let mut gateway = None;
    let mut oif = None;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = *ip,
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => gateway = Some(*ip),
            RouteAttribute::Oif(index) => oif = Some(*index),
            _ => {}
        }
    }
    Some(RouteSummary {
        dst: Ipv4Net::new(dst, msg.header.destination_prefix_length).ok()?,
        gateway,
        oif,
        protocol: msg.header.protocol,
    })
}
