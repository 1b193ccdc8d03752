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

/// Receive buffer of the UDP socket (the kernel doubles it for its
/// bookkeeping), as NSD asks for: a burst of a thousand questions while
/// the reading threads wait for a core must queue, not be dropped, or
/// each dropped one costs its client a timeout.
const UDP_RECEIVE_BUFFER: usize = 1 << 20;

pub struct Listeners {
    /// One socket, read by several threads (`udp_fast`): whichever is on
    /// a core takes the next batch. (One SO_REUSEPORT socket per thread
    /// measured slower and uneven: the kernel hashes each client to one
    /// socket, so a few busy clients can load one thread and idle another.)
    pub udp: UdpSocket,
    pub tcp: TcpListener,
    pub local_addr: SocketAddr,
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    // Beyond net.core.rmem_max only with CAP_NET_ADMIN; else as much as
    // the limit allows.
    if setsockopt(&fd, sockopt::RcvBufForce, &UDP_RECEIVE_BUFFER).is_err() {
        setsockopt(&fd, sockopt::RcvBuf, &UDP_RECEIVE_BUFFER)?;
    }
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    Ok(UdpSocket::from(fd))
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
        let udp = bind_udp(listen).map_err(|e| bind_err("udp", e))?;
        let local_addr = udp.local_addr().map_err(|e| bind_err("udp", e))?;
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
        assert_eq!(l.udp.local_addr().unwrap(), l.local_addr);
    }
}
