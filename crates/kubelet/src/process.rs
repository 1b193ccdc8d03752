//! Starting processes inside a Pod: the thin adapter over setns(2),
//! unshare(2), mount(2), posix_spawn and ptys.
//!
//! Choice: a short-lived thread enters the Pod's namespaces (network, its
//! own mount and UTS namespace with the Pod's /etc files and hostname, or
//! an existing container's namespaces for exec) and starts the process
//! from there with posix_spawn, which the child inherits. No fork of the
//! server's address space (posix_spawn is a vfork: a Pod start is timed
//! and a fork+exec of a large process costs milliseconds), no helper
//! binary, and the namespace work runs in a normal thread rather than in a
//! forked child where only async-signal-safe calls are allowed. Only a
//! process on a terminal needs a hook between fork and exec (setsid and
//! TIOCSCTTY); it makes nothing but those system calls.

use nix::fcntl::OFlag;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Which namespaces a new process lives in.
#[derive(Debug, Clone)]
pub(crate) enum Namespaces {
    /// A container's main process: the Pod's network namespace, and its own
    /// mount and UTS namespaces where the Pod's /etc files are bind-mounted
    /// and the hostname is the Pod's.
    Container {
        netns: PathBuf,
        hostname: String,
        /// (source file, target path)
        binds: Vec<(PathBuf, PathBuf)>,
    },
    /// Beside a running process (exec, exec probes): join its network,
    /// UTS and mount namespaces.
    JoinProcess { pid: i32 },
    /// The caller's own namespaces (tests without root).
    Host,
}

/// How the process' standard streams are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StdioMode {
    /// Pipes for stdout and stderr; a pipe for stdin when `stdin`, else
    /// /dev/null.
    Pipes { stdin: bool },
    /// A pseudo-terminal as controlling terminal and all three streams.
    Tty { cols: u16, rows: u16 },
}

#[derive(Debug, Clone)]
pub(crate) struct ProcessSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: String,
    pub namespaces: Namespaces,
    pub stdio: StdioMode,
}

/// The parent's ends of the new process' streams.
pub(crate) enum ProcessIo {
    Pipes {
        stdin: Option<tokio::process::ChildStdin>,
        stdout: tokio::process::ChildStdout,
        stderr: tokio::process::ChildStderr,
    },
    /// The pty's master side (non-blocking, close-on-exec).
    Tty { master: OwnedFd },
}

pub(crate) struct Spawned {
    pub child: tokio::process::Child,
    pub pid: i32,
    /// From /proc/<pid>/stat: tells this process from a later one that
    /// reuses its pid.
    pub start_time: u64,
    pub io: ProcessIo,
}

/// Why a process did not start. The message reads like a container
/// runtime's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpawnError {
    /// exec: "foo": executable file not found in $PATH
    #[error("exec: \"{0}\": executable file not found in $PATH")]
    NotFound(String),
    /// exec: "foo": permission denied
    #[error("exec: \"{0}\": permission denied")]
    PermissionDenied(String),
    #[error("{context}: {source}")]
    Os {
        context: String,
        source: std::io::Error,
    },
}

fn cstring(s: impl AsRef<[u8]>) -> Result<CString, SpawnError> {
    CString::new(s.as_ref().to_vec()).map_err(|_| SpawnError::Os {
        context: "argument contains a NUL byte".into(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })
}

fn open_ns(path: &Path) -> Result<OwnedFd, SpawnError> {
    let f = std::fs::File::open(path).map_err(|source| SpawnError::Os {
        context: format!("open {}", path.display()),
        source,
    })?;
    Ok(OwnedFd::from(f))
}

fn os_err(context: impl Into<String>) -> SpawnError {
    SpawnError::Os {
        context: context.into(),
        source: std::io::Error::last_os_error(),
    }
}

/// Move the calling thread into the namespaces `ns` asks for. Runs on a
/// thread of its own that ends right after the spawn.
fn enter_namespaces(ns: &Namespaces) -> Result<(), SpawnError> {
    match ns {
        Namespaces::Host => Ok(()),
        Namespaces::Container {
            netns,
            hostname,
            binds,
        } => {
            let net = open_ns(netns)?;
            let binds = binds
                .iter()
                .map(|(s, d)| {
                    Ok((
                        cstring(s.as_os_str().as_bytes())?,
                        cstring(d.as_os_str().as_bytes())?,
                    ))
                })
                .collect::<Result<Vec<_>, SpawnError>>()?;
            // SAFETY: namespace and mount system calls on this thread, with
            // fds and NUL-terminated strings that outlive each call.
            unsafe {
                if libc::setns(net.as_raw_fd(), libc::CLONE_NEWNET) < 0 {
                    return Err(os_err(format!(
                        "join network namespace {}",
                        netns.display()
                    )));
                }
                // A mount namespace needs a private fs context (CLONE_FS).
                if libc::unshare(libc::CLONE_FS | libc::CLONE_NEWNS | libc::CLONE_NEWUTS) < 0 {
                    return Err(os_err("create the container's mount and UTS namespaces"));
                }
                // Mounts made here must not propagate back to the host.
                if libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_SLAVE,
                    std::ptr::null(),
                ) < 0
                {
                    return Err(os_err("make the container's mounts private"));
                }
                for (src, dst) in &binds {
                    if libc::mount(
                        src.as_ptr(),
                        dst.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    ) < 0
                    {
                        // A host without the file (no /etc/hostname, a
                        // dangling /etc/resolv.conf link): nothing to cover,
                        // and creating it would create it on the host.
                        if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT) {
                            continue;
                        }
                        return Err(os_err(format!("bind-mount {:?} on {:?}", src, dst)));
                    }
                }
                if libc::sethostname(hostname.as_ptr().cast(), hostname.len()) < 0 {
                    return Err(os_err("set the hostname"));
                }
            }
            Ok(())
        }
        Namespaces::JoinProcess { pid } => {
            let fds = [
                ("net", libc::CLONE_NEWNET),
                ("uts", libc::CLONE_NEWUTS),
                ("mnt", libc::CLONE_NEWNS),
            ]
            .into_iter()
            .map(|(name, flag)| Ok((open_ns(Path::new(&format!("/proc/{pid}/ns/{name}")))?, flag)))
            .collect::<Result<Vec<_>, SpawnError>>()?;
            // SAFETY: as above.
            unsafe {
                if libc::unshare(libc::CLONE_FS) < 0 {
                    return Err(os_err("unshare the fs context"));
                }
                for (fd, flag) in &fds {
                    if libc::setns(fd.as_raw_fd(), *flag) < 0 {
                        return Err(os_err(format!("join the namespaces of process {pid}")));
                    }
                }
            }
            Ok(())
        }
    }
}

/// `name` as an absolute path, looked up on the PATH of the new process'
/// environment (in the namespaces the thread is in).
fn resolve_program(name: &str, env: &[(String, String)]) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or(crate::container_env::DEFAULT_PATH);
    path.split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(name))
        .find(|p| crate::images::is_command_on_path(&p.to_string_lossy(), ""))
}

/// Start a process as `spec` says.
pub(crate) async fn spawn(spec: &ProcessSpec) -> Result<Spawned, SpawnError> {
    if matches!(spec.namespaces, Namespaces::Host) {
        return spawn_here(spec);
    }
    let spec = spec.clone();
    let handle = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("pod-spawn".into())
        .spawn(move || {
            // The child's pipes register with the runtime's reactor.
            let _runtime = handle.enter();
            let result = enter_namespaces(&spec.namespaces).and_then(|_| spawn_here(&spec));
            let _ = tx.send(result);
        })
        .map_err(|source| SpawnError::Os {
            context: "start a thread".into(),
            source,
        })?;
    rx.await.map_err(|_| SpawnError::Os {
        context: "spawn thread ended without an answer".into(),
        source: std::io::Error::from(std::io::ErrorKind::Interrupted),
    })?
}

/// Spawn from the calling thread's namespaces.
fn spawn_here(spec: &ProcessSpec) -> Result<Spawned, SpawnError> {
    // An absolute program keeps std on its posix_spawn path (a relative
    // one with a changed PATH makes it fork).
    let program = resolve_program(&spec.program, &spec.env)
        .ok_or_else(|| SpawnError::NotFound(spec.program.clone()))?;
    let working_dir = if spec.working_dir.is_empty() {
        "/"
    } else {
        spec.working_dir.as_str()
    };
    if !matches!(spec.namespaces, Namespaces::JoinProcess { .. }) {
        // Like runc, create a missing working directory.
        let _ = std::fs::create_dir_all(working_dir);
    }
    let mut cmd = tokio::process::Command::new(&program);
    cmd.arg0(&spec.program)
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(working_dir)
        .kill_on_drop(false);
    let mut master = None;
    match spec.stdio {
        StdioMode::Pipes { stdin } => {
            cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                // Own process group: the whole tree is signalled at once.
                .process_group(0);
        }
        StdioMode::Tty { cols, rows } => {
            let (m, slave) = open_pty().map_err(|source| SpawnError::Os {
                context: "open a pseudo-terminal".into(),
                source,
            })?;
            set_window_size(&m, cols, rows);
            let dup = |fd: &OwnedFd| {
                fd.try_clone().map_err(|source| SpawnError::Os {
                    context: "duplicate the terminal".into(),
                    source,
                })
            };
            cmd.stdin(Stdio::from(dup(&slave)?))
                .stdout(Stdio::from(dup(&slave)?))
                .stderr(Stdio::from(slave));
            // SAFETY: setsid(2) and ioctl(2) only: async-signal-safe.
            unsafe {
                cmd.pre_exec(|| {
                    // A new session (and process group) whose controlling
                    // terminal is the pty on fd 0.
                    if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            master = Some(m);
        }
    }
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => SpawnError::NotFound(spec.program.clone()),
        std::io::ErrorKind::PermissionDenied if e.raw_os_error() == Some(libc::EACCES) => {
            SpawnError::PermissionDenied(spec.program.clone())
        }
        _ => SpawnError::Os {
            context: format!("start {:?} in the Pod's namespaces", spec.program),
            source: e,
        },
    })?;
    // The Command (and with it the parent's copy of the pty slave) is
    // dropped here, so the master sees EOF once the process tree exits.
    drop(cmd);
    let pid = child.id().map(|p| p as i32).unwrap_or(0);
    let start_time = process_start_time(pid).unwrap_or(0);
    let io = match master {
        Some(master) => ProcessIo::Tty { master },
        None => ProcessIo::Pipes {
            stdin: child.stdin.take(),
            stdout: child.stdout.take().expect("stdout is piped"),
            stderr: child.stderr.take().expect("stderr is piped"),
        },
    };
    Ok(Spawned {
        child,
        pid,
        start_time,
        io,
    })
}

/// A pty pair, both ends close-on-exec; the master non-blocking.
fn open_pty() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let name = nix::pty::ptsname_r(&master)?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(name)?;
    // SAFETY: `master` owns this fd; it moves into the OwnedFd.
    let master = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(master)) };
    set_nonblocking(&master)?;
    Ok((master, OwnedFd::from(slave)))
}

fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Tell the terminal (and so the program on it) its size.
pub(crate) fn set_window_size(master: &OwnedFd, cols: u16, rows: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct that lives across the call.
    unsafe {
        libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
    }
}

/// Send `signal` to the process group led by `pid` (every process of the
/// container that did not leave it) and to `pid` itself.
pub(crate) fn signal_tree(pid: i32, signal: libc::c_int) {
    if pid <= 1 {
        return;
    }
    // SAFETY: kill(2) has no memory effects.
    unsafe {
        libc::kill(-pid, signal);
        libc::kill(pid, signal);
    }
}

/// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot);
/// `None` when the process is gone. A zombie still has one.
pub(crate) fn process_start_time(pid: i32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Whether the process started at `start_time` still runs (exists and is
/// not a zombie waiting to be reaped).
pub(crate) fn process_running(pid: i32, start_time: u64) -> bool {
    match stat_fields(pid) {
        Some(f) => {
            f.first().map(String::as_str) != Some("Z")
                && f.get(19).and_then(|s| s.parse().ok()) == Some(start_time)
        }
        None => false,
    }
}

/// The fields of /proc/<pid>/stat after the command name (state first).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start
    // after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Exit code as Kubernetes reports it: the code, or 128 + signal.
pub(crate) fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        _ => 255,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_spec(program: &str, args: &[&str], stdio: StdioMode) -> ProcessSpec {
        ProcessSpec {
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![
                ("PATH".into(), crate::container_env::DEFAULT_PATH.into()),
                ("X".into(), "42".into()),
            ],
            working_dir: "/tmp".into(),
            namespaces: Namespaces::Host,
            stdio,
        }
    }

    #[tokio::test]
    async fn pipes_carry_output_env_and_working_dir() {
        use tokio::io::AsyncReadExt;
        let mut p = spawn(&host_spec(
            "sh",
            &["-c", "echo $X $(pwd); echo err >&2; exit 3"],
            StdioMode::Pipes { stdin: false },
        ))
        .await
        .unwrap();
        assert!(p.start_time > 0);
        let ProcessIo::Pipes {
            mut stdout,
            mut stderr,
            ..
        } = p.io
        else {
            panic!("pipes")
        };
        let mut out = String::new();
        stdout.read_to_string(&mut out).await.unwrap();
        let mut err = String::new();
        stderr.read_to_string(&mut err).await.unwrap();
        assert_eq!(out, "42 /tmp\n");
        assert_eq!(err, "err\n");
        assert_eq!(exit_code(p.child.wait().await.unwrap()), 3);
    }

    #[tokio::test]
    async fn a_tty_is_the_controlling_terminal_with_the_given_size() {
        let p = spawn(&host_spec(
            "sh",
            &["-c", "stty size; tty -s && echo istty"],
            StdioMode::Tty {
                cols: 100,
                rows: 30,
            },
        ))
        .await
        .unwrap();
        let ProcessIo::Tty { master } = p.io else {
            panic!("tty")
        };
        let pty = crate::pty::PtyMaster::new(master).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            match pty.read(&mut buf).await {
                Ok(0) | Err(_) => break, // every slave closed
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("30 100"), "{text}");
        assert!(text.contains("istty"), "{text}");
    }

    #[tokio::test]
    async fn missing_programs_are_reported_like_a_runtime() {
        let err = spawn(&host_spec(
            "no-such-program-xyz",
            &[],
            StdioMode::Pipes { stdin: false },
        ))
        .await
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "exec: \"no-such-program-xyz\": executable file not found in $PATH"
        );
    }

    #[test]
    fn start_time_of_self_is_known_and_of_nothing_is_none() {
        assert!(process_start_time(std::process::id() as i32).is_some());
        assert!(process_start_time(i32::MAX).is_none());
    }

    /// Root only: creates a network namespace with ip(8).
    #[tokio::test]
    #[ignore = "needs root (network namespaces, mounts): cargo test -p kubelet -- --ignored"]
    async fn containers_get_the_pods_namespaces_and_files_and_exec_joins_them() {
        assert_eq!(unsafe { libc::geteuid() }, 0, "this test needs root");
        use tokio::io::AsyncReadExt;
        let ns = format!("kubelet-test-{}", std::process::id());
        /// Removes the namespace and files even when an assertion fails.
        struct Cleanup(String);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                let _ = std::process::Command::new("ip")
                    .args(["netns", "del", &self.0])
                    .status();
                let _ = std::fs::remove_dir_all(std::env::temp_dir().join(&self.0));
            }
        }
        let _cleanup = Cleanup(ns.clone());
        assert!(std::process::Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .unwrap()
            .success());
        let dir = std::env::temp_dir().join(&ns);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hosts"), "10.244.0.9\tpod-x\n").unwrap();
        std::fs::write(dir.join("resolv.conf"), "nameserver 10.96.0.10\n").unwrap();
        std::fs::write(dir.join("hostname"), "pod-x\n").unwrap();
        let spec = ProcessSpec {
            program: "sh".into(),
            args: vec!["-c".into(), "hostname; cat /etc/hosts /etc/resolv.conf; ip -o link | cut -d: -f2 | tr -d ' '; sleep 30".into()],
            env: vec![("PATH".into(), crate::container_env::DEFAULT_PATH.into())],
            working_dir: "/".into(),
            namespaces: Namespaces::Container {
                netns: PathBuf::from(format!("/run/netns/{ns}")),
                hostname: "pod-x".into(),
                binds: crate::pod_files::bind_mounts(&dir),
            },
            stdio: StdioMode::Pipes { stdin: false },
        };
        let p = spawn(&spec).await.unwrap();
        let ProcessIo::Pipes { stdout, .. } = p.io else {
            panic!("pipes")
        };
        let mut out = String::new();
        let mut lines = stdout.take(4096);
        // Read until the listing of interfaces has arrived.
        while !out.contains("lo\n") {
            let mut buf = [0u8; 512];
            let n = lines.read(&mut buf).await.unwrap();
            assert!(n > 0, "output ended early: {out}");
            out.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert_eq!(out, "pod-x\n10.244.0.9\tpod-x\nnameserver 10.96.0.10\nlo\n");
        // The host keeps its own files and name.
        assert_ne!(
            std::fs::read_to_string("/etc/hosts").unwrap(),
            "10.244.0.9\tpod-x\n"
        );
        let exec = ProcessSpec {
            program: "cat".into(),
            args: vec!["/etc/hostname".into()],
            namespaces: Namespaces::JoinProcess { pid: p.pid },
            ..spec.clone()
        };
        let e = spawn(&exec).await.unwrap();
        let ProcessIo::Pipes { mut stdout, .. } = e.io else {
            panic!("pipes")
        };
        let mut seen = String::new();
        stdout.read_to_string(&mut seen).await.unwrap();
        assert_eq!(seen, "pod-x\n");
        signal_tree(p.pid, libc::SIGKILL);
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &ns])
            .status();
        let _ = std::fs::remove_dir_all(dir);
    }
}
