//! The CLI writing into a pipe its reader already closed (`minik8s ... |
//! head -1`) ends quietly, like kubectl, instead of panicking.

use crate::support::BIN;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // A pipe whose read end is closed before the CLI writes.
    let mut fds = [0; 2];
    // SAFETY: pipe() fills the two descriptors we pass.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fds[0] is ours and used nowhere else.
    unsafe { libc::close(fds[0]) };
    // SAFETY: fds[1] is an open descriptor owned from here on by Stdio.
    let stdout = unsafe { <Stdio as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
    let out = Command::new(BIN)
        .args(["kubeconfig"])
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("run minik8s kubeconfig");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "ended by SIGPIPE, as kubectl would: {:?} {stderr}",
        out.status
    );
}
