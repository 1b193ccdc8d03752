//! Starting processes inside a Pod: the thin adapter over fork/exec,
//! setns(2), unshare(2), mount(2) and ptys.
//!
//! Choice: fork/exec with a `pre_exec` hook rather than re-executing the
//! minik8s binary as a helper. The hook runs in the forked child of a
//! multi-threaded process, so it makes only async-signal-safe system calls
//! on data prepared before the fork (CStrings, opened namespace fds). This
//! saves an exec per container start (Pod start latency is measured) and
//! keeps the helper subcommand space of the binary for images only.

use nix::fcntl::OFlag;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
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

/// What the child does between fork and exec, prepared in the parent.
struct ChildSetup {
    /// (fd, CLONE_NEW* flag) to setns into, in order.
    join: Vec<(OwnedFd, libc::c_int)>,
    /// unshare(CLONE_NEWNS | CLONE_NEWUTS) and mount/hostname work.
    private: Option<(Vec<(CString, CString)>, Vec<u8>)>,
    tty: bool,
    working_dir: CString,
}

impl ChildSetup {
    /// Runs in the forked child: only system calls, no allocation.
    fn run(&self) -> std::io::Result<()> {
        let check = |r: libc::c_int| {
            if r < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        // SAFETY: plain system calls on fds and NUL-terminated strings that
        // outlive the call; no allocation or locking in the forked child.
        unsafe {
            for (fd, flag) in &self.join {
                check(libc::setns(fd.as_raw_fd(), *flag))?;
            }
            if let Some((binds, hostname)) = &self.private {
                check(libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWUTS))?;
                // Mounts made here must not propagate back to the host.
                check(libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_SLAVE,
                    std::ptr::null(),
                ))?;
                for (src, dst) in binds {
                    check(libc::mount(
                        src.as_ptr(),
                        dst.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    ))?;
                }
                check(libc::sethostname(hostname.as_ptr().cast(), hostname.len()))?;
            }
            // Own session and process group: the whole tree can be signalled
            // at once, and a tty can become the controlling terminal.
            check(libc::setsid())?;
            if self.tty {
                check(libc::ioctl(0, libc::TIOCSCTTY, 0))?;
            }
            if libc::chdir(self.working_dir.as_ptr()) < 0 {
                // Like runc, create a missing working directory.
                libc::mkdir(self.working_dir.as_ptr(), 0o755);
                check(libc::chdir(self.working_dir.as_ptr()))?;
            }
        }
        Ok(())
    }
}

/// Start a process as `spec` says.
pub(crate) fn spawn(spec: &ProcessSpec) -> Result<Spawned, SpawnError> {
    let mut join = Vec::new();
    let mut private = None;
    match &spec.namespaces {
        Namespaces::Container { netns, hostname, binds } => {
            join.push((open_ns(netns)?, libc::CLONE_NEWNET));
            let binds = binds
                .iter()
                .map(|(s, d)| Ok((cstring(s.as_os_str().as_bytes())?, cstring(d.as_os_str().as_bytes())?)))
                .collect::<Result<Vec<_>, SpawnError>>()?;
            private = Some((binds, hostname.as_bytes().to_vec()));
        }
        Namespaces::JoinProcess { pid } => {
            for (name, flag) in [
                ("net", libc::CLONE_NEWNET),
                ("uts", libc::CLONE_NEWUTS),
                ("mnt", libc::CLONE_NEWNS),
            ] {
                join.push((open_ns(Path::new(&format!("/proc/{pid}/ns/{name}")))?, flag));
            }
        }
        Namespaces::Host => {}
    }
    let tty = matches!(spec.stdio, StdioMode::Tty { .. });
    let setup = ChildSetup {
        join,
        private,
        tty,
        working_dir: cstring(if spec.working_dir.is_empty() { "/" } else { &spec.working_dir })?,
    };

    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(false);
    let mut master = None;
    match spec.stdio {
        StdioMode::Pipes { stdin } => {
            cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
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
            master = Some(m);
        }
    }
    // SAFETY: `ChildSetup::run` makes only async-signal-safe system calls.
    unsafe {
        cmd.pre_exec(move || setup.run());
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

use std::os::unix::fs::OpenOptionsExt;

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
/// `None` when the process is gone or a zombie.
pub(crate) fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start
    // after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
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
            env: vec![("PATH".into(), crate::container_env::DEFAULT_PATH.into()), ("X".into(), "42".into())],
            working_dir: "/tmp".into(),
            namespaces: Namespaces::Host,
            stdio,
        }
    }

    #[tokio::test]
    async fn pipes_carry_output_env_and_working_dir() {
        use tokio::io::AsyncReadExt;
        let mut p = spawn(&host_spec("sh", &["-c", "echo $X $(pwd); echo err >&2; exit 3"], StdioMode::Pipes { stdin: false })).unwrap();
        assert!(p.start_time > 0);
        let ProcessIo::Pipes { mut stdout, mut stderr, .. } = p.io else { panic!("pipes") };
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
        let p = spawn(&host_spec("sh", &["-c", "stty size; tty -s && echo istty"], StdioMode::Tty { cols: 100, rows: 30 })).unwrap();
        let ProcessIo::Tty { master } = p.io else { panic!("tty") };
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
        let err = spawn(&host_spec("no-such-program-xyz", &[], StdioMode::Pipes { stdin: false })).err().unwrap();
        assert_eq!(err.to_string(), "exec: \"no-such-program-xyz\": executable file not found in $PATH");
    }

    #[test]
    fn start_time_of_self_is_known_and_of_nothing_is_none() {
        assert!(process_start_time(std::process::id() as i32).is_some());
        assert!(process_start_time(i32::MAX).is_none());
    }
}
