//! The thin adapter: a netfilter netlink socket opened inside the node's
//! network namespace, one batch sent, the kernel's answer read.

use super::batch::Finished;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

const NETLINK_NETFILTER: libc::c_int = 12;
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;
const NLMSG_ERROR: u16 = 2;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;

/// Sends `batch` through a socket of the namespace at `netns_path` and
/// waits for the kernel to commit it. The kernel processes the batch while
/// `send` runs, so its answers are queued when `send` returns.
pub fn send_batch(netns_path: &Path, batch: &Finished) -> Result<(), String> {
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
    // The whole batch goes in one message, which must fit the send
    // buffer (a full sync of 1,000 Services is ~12 MB); FORCE needs
    // CAP_NET_ADMIN, which a process writing rules has.
    let sndbuf = (batch.bytes.len() + 65536).min(i32::MAX as usize) as libc::c_int;
    setsockopt(raw, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, sndbuf)?;
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
        return Err(format!("SO_RCVTIMEO: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: sockaddr_nl is plain data; zeroed is a valid value (pid 0:
    // the kernel assigns one).
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
        return Err(format!("netlink bind: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: the buffer is valid for its length.
    let sent = unsafe {
        libc::send(
            raw,
            batch.bytes.as_ptr() as *const libc::c_void,
            batch.bytes.len(),
            0,
        )
    };
    if sent < 0 {
        return Err(format!(
            "sending {} bytes of rules: {}",
            batch.bytes.len(),
            std::io::Error::last_os_error()
        ));
    }
    read_answer(raw, batch)
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
        return Err(format!(
            "netlink socket option {opt}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Reads acknowledgements until the one that means "committed", or the
/// first error (the kernel then aborted the whole batch; later errors, if
/// any, are dropped with the socket).
fn read_answer(fd: libc::c_int, batch: &Finished) -> Result<(), String> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return Err(format!("waiting for the kernel's answer: {e}"));
        }
        for answer in errors(&buf[..n as usize]) {
            match answer {
                (0, seq, _) if seq == batch.ack_seq => return Ok(()),
                (0, _, _) => {}
                (errno, seq, text) => {
                    let reason = std::io::Error::from_raw_os_error(-errno);
                    let text = text.map(|t| format!(" ({t})")).unwrap_or_default();
                    return Err(format!(
                        "the kernel refused {}: {reason}{text}",
                        batch.describe(seq)
                    ));
                }
            }
        }
    }
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
