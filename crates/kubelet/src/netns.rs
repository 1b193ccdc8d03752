//! Sockets inside a Pod's network namespace, for probes. A socket belongs
//! to the namespace of the thread that creates it, so a short-lived thread
//! enters the namespace, creates the socket and exits; the runtime's own
//! threads never change namespace.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A non-blocking TCP socket (not yet connected) in the namespace at `netns`.
pub(crate) async fn tcp_socket_in(netns: &Path) -> std::io::Result<tokio::net::TcpSocket> {
    let netns: PathBuf = netns.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netns-socket".into())
        .spawn(move || {
            let _ = tx.send(create_in(&netns));
        })?;
    let fd = rx
        .await
        .map_err(|_| std::io::Error::other("socket thread ended without an answer"))??;
    // SAFETY: `fd` is a fresh TCP socket we own.
    Ok(unsafe {
        <tokio::net::TcpSocket as FromRawFd>::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd))
    })
}

fn create_in(netns: &Path) -> std::io::Result<OwnedFd> {
    let ns = std::fs::File::open(netns)?;
    // SAFETY: setns(2) on this thread only (it exits right after) and
    // socket(2); both plain system calls.
    unsafe {
        if libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}
