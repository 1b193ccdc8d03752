//! The thin adapter: a netfilter netlink socket opened inside the node's
//! network namespace; the ruleset generation read, one batch sent, the
//! kernel's answer read.

use super::batch::Finished;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

const NETLINK_NETFILTER: libc::c_int = 12;
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NFT_MSG_NEWGEN: u16 = (10 << 8) | 15;
const NFT_MSG_GETGEN: u16 = (10 << 8) | 16;
const NFTA_GEN_ID: u16 = 1;

/// A netlink socket bound inside one network namespace.
pub struct NftSocket {
    fd: OwnedFd,
}

impl NftSocket {
    pub fn open(netns_path: &Path) -> Result<NftSocket, String> {
        let fd = nodenet::run_in_netns(netns_path, || {
            // SAFETY: socket() has no memory effects; the fd is owned below.
            let fd = unsafe {
                libc::socket(
                    libc::AF_NETLINK,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    NETLINK_NETFILTER,
                )
            };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: fd is a fresh descriptor nobody else owns.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        })
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("netlink socket: {e}"))?;
        let raw = fd.as_raw_fd();
        setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 4 << 20)?;
        // Errors quote only the refused message's header, and carry the
        // kernel's reason as text where it gives one.
        setsockopt(raw, SOL_NETLINK, NETLINK_CAP_ACK, 1)?;
        setsockopt(raw, SOL_NETLINK, NETLINK_EXT_ACK, 1)?;
        let timeout = libc::timeval {
            tv_sec: 10,
            tv_usec: 0,
        };
        // SAFETY: a valid timeval of the right size for SO_RCVTIMEO.
        let rc = unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &timeout as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            return Err(format!("SO_RCVTIMEO: {e}"));
        }
        // SAFETY: sockaddr_nl is plain data; zeroed is a valid value (pid
        // 0: the kernel assigns one).
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: addr is a valid sockaddr_nl of the given size.
        let rc = unsafe {
            libc::bind(
                raw,
                &addr as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            return Err(format!("netlink bind: {e}"));
        }
        Ok(NftSocket { fd })
    }

    /// The namespace's ruleset generation: nf_tables adds one at every
    /// committed transaction, whoever sent it.
    pub fn generation(&self) -> Result<u32, String> {
        let mut req = Vec::with_capacity(20);
        req.extend_from_slice(&20u32.to_ne_bytes());
        req.extend_from_slice(&NFT_MSG_GETGEN.to_ne_bytes());
        req.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        req.extend_from_slice(&1u32.to_ne_bytes()); // seq
        req.extend_from_slice(&0u32.to_ne_bytes()); // port id
        req.extend_from_slice(&[0, 0, 0, 0]); // nfgenmsg: AF_UNSPEC, v0, res 0
        self.send(&req)?;
        let mut buf = vec![0u8; 4096];
        let n = self.recv(&mut buf)?;
        let b = &buf[..n];
        if b.len() >= 20 && u16::from_ne_bytes([b[4], b[5]]) == NFT_MSG_NEWGEN {
            let len = (u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize).min(b.len());
            let mut attrs = &b[20..len];
            while attrs.len() >= 8 {
                let alen = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
                let ty = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
                if alen < 4 || alen > attrs.len() {
                    break;
                }
                if ty == NFTA_GEN_ID && alen == 8 {
                    return Ok(u32::from_be_bytes(attrs[4..8].try_into().unwrap()));
                }
                attrs = &attrs[alen.next_multiple_of(4).min(attrs.len())..];
            }
        }
        match errors(b).first() {
            Some((errno, _, _)) if *errno != 0 => Err(format!(
                "reading the ruleset generation: {}",
                std::io::Error::from_raw_os_error(-errno)
            )),
            _ => Err("reading the ruleset generation: no answer".into()),
        }
    }

    /// Sends `batch` and waits for the kernel to commit it. The kernel
    /// processes a batch while `send` runs, so its answers are queued
    /// when `send` returns.
    pub fn send_batch(&self, batch: &Finished) -> Result<(), String> {
        if batch.bytes.is_empty() {
            return Ok(());
        }
        // The whole batch goes in one message, which must fit the send
        // buffer (a full sync of 1,000 Services is ~12 MB); FORCE needs
        // CAP_NET_ADMIN, which a process writing rules has.
        let sndbuf = (batch.bytes.len() + 65536).min(i32::MAX as usize) as libc::c_int;
        setsockopt(
            self.fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUFFORCE,
            sndbuf,
        )?;
        self.send(&batch.bytes)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.recv(&mut buf)?;
            for answer in errors(&buf[..n]) {
                match answer {
                    (0, seq, _) if seq == batch.ack_seq => return Ok(()),
                    (0, _, _) => {}
                    // The kernel aborted the whole batch; later errors, if
                    // any, go with the socket.
                    (errno, seq, text) => {
                        let text = text.map(|t| format!(" ({t})")).unwrap_or_default();
                        return Err(if -errno == libc::ERESTART {
                            "another program changed the rules since they were read; nothing was written".into()
                        } else {
                            format!(
                                "the kernel refused {}: {}{text}",
                                batch.describe(seq),
                                std::io::Error::from_raw_os_error(-errno)
                            )
                        });
                    }
                }
            }
        }
    }

    fn send(&self, bytes: &[u8]) -> Result<(), String> {
        // SAFETY: the buffer is valid for its length.
        let sent = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                bytes.as_ptr() as *const libc::c_void,
                bytes.len(),
                0,
            )
        };
        if sent < 0 {
            let e = std::io::Error::last_os_error();
            return Err(format!("sending {} bytes to nf_tables: {e}", bytes.len()));
        }
        Ok(())
    }

    fn recv(&self, buf: &mut [u8]) -> Result<usize, String> {
        // SAFETY: buf is valid for its length.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return Err(format!("waiting for nf_tables' answer: {e}"));
        }
        Ok(n as usize)
    }
}

fn setsockopt(
    fd: libc::c_int,
    level: libc::c_int,
    opt: libc::c_int,
    value: libc::c_int,
) -> Result<(), String> {
    // SAFETY: value is a c_int, as these options expect.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            &value as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("netlink socket option {opt}: {e}"));
    }
    Ok(())
}

/// (error, sequence number, kernel's message) of every NLMSG_ERROR in a
/// datagram; error 0 is an acknowledgement.
fn errors(mut b: &[u8]) -> Vec<(i32, u32, Option<String>)> {
    let mut out = Vec::new();
    while b.len() >= 16 {
        let len = u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize;
        let ty = u16::from_ne_bytes(b[4..6].try_into().unwrap());
        let flags = u16::from_ne_bytes(b[6..8].try_into().unwrap());
        if len < 16 || len > b.len() {
            break;
        }
        if ty == NLMSG_ERROR && len >= 36 {
            let error = i32::from_ne_bytes(b[16..20].try_into().unwrap());
            let seq = u32::from_ne_bytes(b[28..32].try_into().unwrap());
            let text = if flags & NLM_F_ACK_TLVS != 0 {
                message_attr(&b[36..len])
            } else {
                None
            };
            out.push((error, seq, text));
        }
        b = &b[len.next_multiple_of(4).min(b.len())..];
    }
    out
}

fn message_attr(mut b: &[u8]) -> Option<String> {
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        if ty == NLMSGERR_ATTR_MSG {
            let s = &b[4..len];
            let s = s.split(|c| *c == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(s).into_owned());
        }
        b = &b[len.next_multiple_of(4).min(b.len())..];
    }
    None
}
