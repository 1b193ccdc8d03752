//! Async reads and writes on the master side of a pseudo-terminal.

use std::os::fd::{AsRawFd, OwnedFd};
use tokio::io::unix::AsyncFd;

/// A pty master registered with the runtime. Reads end (`Ok(0)`) when
/// every process holding the terminal has closed it.
pub(crate) struct PtyMaster {
    fd: AsyncFd<OwnedFd>,
}

impl PtyMaster {
    /// `fd` must be non-blocking (as `process::spawn` makes it).
    pub(crate) fn new(fd: OwnedFd) -> std::io::Result<PtyMaster> {
        // SAFETY: an OwnedFd's raw fd is valid and stays the same until the
        // AsyncFd (which owns it) is dropped.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(std::io::Error::from)?;
        Ok(PtyMaster { fd })
    }

    pub(crate) async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|f| {
                // SAFETY: reads into a live buffer of the given length.
                let n = unsafe { libc::read(f.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            }) {
                Ok(Ok(n)) => return Ok(n),
                // EIO: the slave side is closed for good; that is the end.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    pub(crate) async fn write_all(&self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|f| {
                // SAFETY: writes from a live buffer of the given length.
                let n = unsafe { libc::write(f.as_raw_fd(), data.as_ptr().cast(), data.len()) };
                if n < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            }) {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    pub(crate) fn resize(&self, cols: u16, rows: u16) {
        crate::process::set_window_size(self.fd.get_ref(), cols, rows);
    }
}
