//! Named network namespaces, made the way `ip netns add` makes them (a file
//! under /run/netns with the namespace bind-mounted on it), and ways to run
//! code inside one.
//!
//! A thread's network namespace is per thread, so everything that enters a
//! namespace does it on a fresh OS thread that ends afterwards: tokio's
//! worker and blocking-pool threads are reused and must never change
//! namespace. Sockets keep the namespace they were created in, which is how
//! a netlink socket or a DNS listener opened on such a thread serves that
//! namespace from the tokio runtime.

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{statfs, NSFS_MAGIC};

use crate::error::NodeNetError;

/// Where named namespaces live, shared with iproute2.
pub const NETNS_DIR: &str = "/run/netns";

/// `/run/netns/<name>`.
pub fn named_netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// What a name under /run/netns currently is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NetnsState {
    Missing,
    /// A namespace is mounted on the file.
    Mounted,
    /// The file exists but nothing is mounted on it (a crash between
    /// creating the file and mounting): safe to remove and recreate.
    Unmounted,
}

pub(crate) fn netns_state(path: &Path) -> NetnsState {
    if !path.exists() {
        return NetnsState::Missing;
    }
    match statfs(path) {
        Ok(fs) if fs.filesystem_type() == NSFS_MAGIC => NetnsState::Mounted,
        _ => NetnsState::Unmounted,
    }
}

/// Names under /run/netns (what `ip netns list` shows).
pub(crate) fn list_named_netns() -> Vec<String> {
    let Ok(dir) = fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect()
}

/// Makes /run/netns a shared mount point, as `ip netns add` does, so a
/// namespace unmounted here is unmounted in every mount namespace that was
/// copied from this one (Pod mount namespaces), instead of being kept alive
/// by their copies.
pub(crate) fn prepare_netns_dir() -> Result<(), NodeNetError> {
    let dir = Path::new(NETNS_DIR);
    let io_err = |op: &'static str| {
        move |e: nix::Error| NodeNetError::Io {
            op,
            path: dir.to_path_buf(),
            source: io::Error::from(e),
        }
    };
    fs::create_dir_all(dir).map_err(|source| NodeNetError::Io {
        op: "create directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let make_shared = || {
        mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match make_shared() {
        Ok(()) => Ok(()),
        // EINVAL: not a mount point yet; bind it onto itself first.
        Err(nix::Error::EINVAL) => {
            mount(
                Some(dir),
                dir,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(io_err("bind mount"))?;
            make_shared().map_err(io_err("make shared"))
        }
        Err(e) => Err(io_err("make shared")(e)),
    }
}

/// Creates the named namespace and runs `inside` on the thread that is in
/// it (to open sockets there) before the thread ends. Blocking: call from a
/// dedicated thread (see `spawn_new_netns`).
fn create_named_netns_blocking<T>(
    name: &str,
    inside: impl FnOnce() -> T,
) -> Result<T, NodeNetError> {
    let path = named_netns_path(name);
    let netns_err = |op: &'static str| {
        let netns = name.to_string();
        move |e: nix::Error| NodeNetError::Netns {
            op,
            netns,
            source: io::Error::from(e),
        }
    };
    // O_EXCL: a name is never taken over silently; mode 0 like iproute2.
    match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(&path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(NodeNetError::NetnsExists {
                netns: name.to_string(),
            })
        }
        Err(source) => {
            return Err(NodeNetError::Netns {
                op: "create file",
                netns: name.to_string(),
                source,
            })
        }
    }
    let made = unshare(CloneFlags::CLONE_NEWNET)
        .map_err(netns_err("unshare"))
        .and_then(|()| {
            mount(
                Some("/proc/thread-self/ns/net"),
                &path,
                Some("none"),
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(netns_err("bind mount"))
        });
    if let Err(e) = made {
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    Ok(inside())
}

/// Removes a named namespace (umount + unlink, like `ip netns del`).
/// Missing is fine. The namespace itself goes away once nothing else
/// (a process, an open fd) holds it.
pub(crate) fn delete_named_netns(name: &str) -> Result<(), NodeNetError> {
    let path = named_netns_path(name);
    match umount2(&path, MntFlags::MNT_DETACH) {
        // EINVAL: not mounted (half-made); ENOENT: already gone.
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => {
            return Err(NodeNetError::Netns {
                op: "unmount",
                netns: name.to_string(),
                source: io::Error::from(e),
            })
        }
    }
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(NodeNetError::Netns {
            op: "remove file",
            netns: name.to_string(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn open_netns(netns_path: &Path) -> Result<File, NodeNetError> {
    File::open(netns_path).map_err(|source| NodeNetError::Netns {
        op: "open",
        netns: netns_path.display().to_string(),
        source,
    })
}

fn spawn_thread<F>(op: &'static str, f: F) -> Result<std::thread::JoinHandle<()>, NodeNetError>
where
    F: FnOnce() + Send + 'static,
{
    std::thread::Builder::new()
        .name("minik8s-netns".to_string())
        .spawn(f)
        .map_err(|e| NodeNetError::Thread {
            op,
            reason: e.to_string(),
        })
}

/// Runs `f` on a fresh OS thread that first enters the network namespace
/// at `netns_path`, and waits for it. Used to create sockets inside the
/// node netns (the DNS server's listeners) and to write its sysctls.
/// Blocks the caller for the thread's lifetime; a panic in `f` is resumed
/// on the caller.
pub fn run_in_netns<T: Send + 'static>(
    netns_path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NodeNetError> {
    let ns = open_netns(netns_path)?;
    let label = netns_path.display().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = spawn_thread("run_in_netns", move || {
        let result = setns(&ns, CloneFlags::CLONE_NEWNET)
            .map_err(|e| NodeNetError::Netns {
                op: "setns",
                netns: label,
                source: io::Error::from(e),
            })
            .map(|()| f());
        let _ = tx.send(result);
    })?;
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
    rx.recv().map_err(|e| NodeNetError::Thread {
        op: "run_in_netns",
        reason: e.to_string(),
    })?
}

/// Like `run_in_netns`, for async callers: the thread is awaited, not
/// joined, so no runtime worker blocks.
pub(crate) async fn spawn_in_netns<T: Send + 'static>(
    netns_path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NodeNetError> {
    let ns = open_netns(netns_path)?;
    let label = netns_path.display().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    spawn_thread("spawn_in_netns", move || {
        let result = setns(&ns, CloneFlags::CLONE_NEWNET)
            .map_err(|e| NodeNetError::Netns {
                op: "setns",
                netns: label,
                source: io::Error::from(e),
            })
            .map(|()| f());
        let _ = tx.send(result);
    })?;
    rx.await.map_err(|_| NodeNetError::Thread {
        op: "spawn_in_netns",
        reason: "thread panicked".to_string(),
    })?
}

/// Creates the named namespace on a fresh thread and runs `inside` there;
/// awaited without blocking the runtime.
pub(crate) async fn spawn_new_netns<T: Send + 'static>(
    name: &str,
    inside: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NodeNetError> {
    let name = name.to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    spawn_thread("create netns", move || {
        let _ = tx.send(create_named_netns_blocking(&name, inside));
    })?;
    rx.await.map_err(|_| NodeNetError::Thread {
        op: "create netns",
        reason: "thread panicked".to_string(),
    })?
}

/// A `Command` whose child enters the network namespace at `netns_path`
/// before exec, e.g. `iptables-restore` for the node's rules. A namespace
/// that cannot be entered makes `spawn`/`output` fail with that error.
pub fn command_in_netns(netns_path: &Path, program: &str) -> Command {
    let mut cmd = Command::new(program);
    let path = CString::new(netns_path.as_os_str().as_bytes());
    // SAFETY: the closure runs in the forked child before exec and only
    // calls async-signal-safe functions (open, setns, close) on data
    // prepared before the fork; it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(move || {
            let Ok(path) = path.as_ref() else {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            };
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let rc = libc::setns(fd, libc::CLONE_NEWNET);
            let err = io::Error::last_os_error();
            libc::close(fd);
            if rc < 0 {
                Err(err)
            } else {
                Ok(())
            }
        });
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_path_is_under_run_netns() {
        assert_eq!(
            named_netns_path("minik8s-node"),
            PathBuf::from("/run/netns/minik8s-node")
        );
    }

    #[test]
    fn missing_netns_is_reported_missing() {
        assert_eq!(
            netns_state(Path::new("/run/netns/minik8s-test-does-not-exist")),
            NetnsState::Missing
        );
    }

    #[test]
    fn command_fails_to_spawn_for_a_missing_netns() {
        let err = command_in_netns(Path::new("/nonexistent/netns"), "true")
            .status()
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn run_in_missing_netns_is_an_error() {
        let err = run_in_netns(Path::new("/nonexistent/netns"), || 1).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/netns"), "{err}");
    }
}
