//! The listening sockets. They are plain std sockets so they can be made
//! on a thread that entered the node's network namespace and then handed
//! to the runtime: a socket stays in the namespace it was made in.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage,
};

use crate::DnsError;

/// Most UDP sockets opened on the one port.
const MAX_UDP_SOCKETS: usize = 4;

pub struct Listeners {
    /// Several sockets on one port (SO_REUSEPORT): the kernel spreads
    /// clients over them, and each is read by its own task, so answering
    /// uses every core instead of queuing behind one receive loop.
    pub udp: Vec<UdpSocket>,
    pub tcp: TcpListener,
    pub local_addr: SocketAddr,
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::ReusePort, &true)?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    Ok(UdpSocket::from(fd))
}

fn udp_socket_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_UDP_SOCKETS)
}

/// UDP and TCP on the same address. With port 0 the UDP port is chosen
/// first; should TCP find it taken, another port is tried.
pub fn open_listeners(listen: SocketAddr) -> Result<Listeners, DnsError> {
    let attempts = if listen.port() == 0 { 8 } else { 1 };
    let bind_err = |proto, source| DnsError::Bind {
        addr: listen,
        proto,
        source,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let first = bind_udp(listen).map_err(|e| bind_err("udp", e))?;
        let local_addr = first.local_addr().map_err(|e| bind_err("udp", e))?;
        let mut udp = vec![first];
        for _ in 1..udp_socket_count() {
            udp.push(bind_udp(local_addr).map_err(|e| bind_err("udp", e))?);
        }
        match TcpListener::bind(local_addr) {
            Ok(tcp) => {
                return Ok(Listeners {
                    udp,
                    tcp,
                    local_addr,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempt < attempts => continue,
            Err(e) => return Err(bind_err("tcp", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_gives_one_port_for_udp_and_tcp() {
        let l = open_listeners("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(l.local_addr.port(), 0);
        assert_eq!(l.tcp.local_addr().unwrap(), l.local_addr);
        for s in &l.udp {
            assert_eq!(s.local_addr().unwrap(), l.local_addr);
        }
    }
}
