//! Many datagrams per system call: `recvmmsg` takes every question
//! already waiting on a socket, `sendmmsg` sends all their answers. Under
//! load this divides the cost of the two system calls per question by the
//! batch size. All `unsafe` of the fast path is here.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams per call at most.
pub const BATCH: usize = 64;
/// Largest question read whole; longer ones are cut (MSG_TRUNC) and
/// dropped. DNS questions are far smaller (a name is at most 255 bytes).
pub const MAX_PACKET: usize = 4096;

/// Buffers and headers for one batch, reused for every call.
pub struct Batch {
    bufs: Box<[[u8; MAX_PACKET]]>,
    addrs: Box<[libc::sockaddr_storage]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    /// Length of each sender's address, kept apart from `hdrs`, which
    /// `send` reuses.
    addr_lens: [libc::socklen_t; BATCH],
    /// Datagrams in the batch after `recv`.
    len: usize,
}

// SAFETY: the raw pointers in `iovs` and `hdrs` only ever point into the
// batch's own boxed buffers; the batch moves between threads as a whole.
unsafe impl Send for Batch {}

impl Batch {
    pub fn new() -> Batch {
        // SAFETY: all-zero is a valid value of these plain C structs.
        let zero_addr: libc::sockaddr_storage = unsafe { zeroed() };
        let zero_iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        let zero_hdr: libc::mmsghdr = unsafe { zeroed() };
        Batch {
            bufs: vec![[0u8; MAX_PACKET]; BATCH].into_boxed_slice(),
            addrs: vec![zero_addr; BATCH].into_boxed_slice(),
            iovs: vec![zero_iov; BATCH].into_boxed_slice(),
            hdrs: vec![zero_hdr; BATCH].into_boxed_slice(),
            addr_lens: [0; BATCH],
            len: 0,
        }
    }

    /// Point header `i` at buffer `i` (length `len`) and address `i`.
    fn aim(&mut self, i: usize, len: usize, addr_len: libc::socklen_t) {
        self.iovs[i] = libc::iovec {
            iov_base: self.bufs[i].as_mut_ptr().cast(),
            iov_len: len,
        };
        // SAFETY: all-zero is a valid msghdr (no control data, no flags).
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = addr_len;
        msg.msg_iov = &mut self.iovs[i];
        msg.msg_iovlen = 1;
        self.hdrs[i] = libc::mmsghdr {
            msg_hdr: msg,
            msg_len: 0,
        };
    }

    /// Wait for at least one datagram on `fd` (up to the socket's receive
    /// timeout), then take all that are waiting, up to `BATCH`.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for i in 0..BATCH {
            self.aim(i, MAX_PACKET, size_of::<libc::sockaddr_storage>() as _);
        }
        // SAFETY: every header points at live buffers of the stated sizes,
        // owned by `self` and not moved during the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as _,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            self.len = 0;
            return Err(io::Error::last_os_error());
        }
        self.len = n as usize;
        for i in 0..self.len {
            self.addr_lens[i] = self.hdrs[i].msg_hdr.msg_namelen;
        }
        Ok(self.len)
    }

    /// Datagram `i` of the last `recv` and who sent it; None when it was
    /// cut short or came from an address family we do not speak.
    pub fn packet(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let hdr = self.hdrs.get(i).filter(|_| i < self.len)?;
        if hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            return None;
        }
        let len = (hdr.msg_len as usize).min(MAX_PACKET);
        Some((&self.bufs[i][..len], to_socket_addr(&self.addrs[i])?))
    }

    /// Buffer `i` to write an answer in (its question is then gone).
    pub fn take_buffer(&mut self, i: usize) -> &mut [u8; MAX_PACKET] {
        &mut self.bufs[i]
    }

    /// Send `answers` (index of the datagram answered, answer length, in
    /// that datagram's buffer) back to their senders. A datagram the
    /// kernel refuses is skipped; the client asks again.
    pub fn send(&mut self, fd: RawFd, answers: &[(usize, usize)]) {
        for (slot, &(i, len)) in answers.iter().enumerate() {
            // The outgoing headers take slots 0.., pointing at buffer i.
            self.iovs[slot] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: len,
            };
            // SAFETY: as in `aim`.
            let mut msg: libc::msghdr = unsafe { zeroed() };
            msg.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            msg.msg_namelen = self.addr_lens[i];
            msg.msg_iov = &mut self.iovs[slot];
            msg.msg_iovlen = 1;
            self.hdrs[slot] = libc::mmsghdr {
                msg_hdr: msg,
                msg_len: 0,
            };
        }
        let mut sent = 0;
        while sent < answers.len() {
            // SAFETY: headers 0..answers.len() point at live buffers and
            // addresses owned by `self`.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    self.hdrs[sent..].as_mut_ptr(),
                    (answers.len() - sent) as _,
                    0,
                )
            };
            if n > 0 {
                sent += n as usize;
                continue;
            }
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            tracing::debug!(error = %err, "cannot send a DNS answer");
            // The first datagram failed: skip it, send the rest.
            sent += 1;
        }
    }
}

fn to_socket_addr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                u32::from_be(a.sin_addr.s_addr).into(),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                a.sin6_addr.s6_addr.into(),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    #[test]
    fn a_batch_is_received_and_answered_in_one_call_each() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        for i in 0..3u8 {
            client
                .send_to(&[i; 20], server.local_addr().unwrap())
                .unwrap();
        }
        let mut batch = Batch::new();
        let mut got = 0;
        while got < 3 {
            let n = batch.recv(server.as_raw_fd()).unwrap();
            let mut answers = Vec::new();
            for i in 0..n {
                let (packet, from) = batch.packet(i).unwrap();
                assert_eq!(from, client.local_addr().unwrap());
                assert_eq!(packet.len(), 20);
                let first = packet[0];
                batch.take_buffer(i)[..2].copy_from_slice(&[first, 0xaa]);
                answers.push((i, 2));
            }
            batch.send(server.as_raw_fd(), &answers);
            got += n;
        }
        let mut seen = Vec::new();
        for _ in 0..3 {
            let mut buf = [0u8; 16];
            let n = client.recv(&mut buf).unwrap();
            assert_eq!(n, 2);
            assert_eq!(buf[1], 0xaa);
            seen.push(buf[0]);
        }
        seen.sort();
        assert_eq!(seen, [0, 1, 2]);
    }
}
