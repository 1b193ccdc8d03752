//! A minik8s server started from the built binary, for black-box tests.
//!
//! Control-plane tests run `--no-node` servers (no root, in parallel, each
//! on its own port and data dir). Tests that need the node (namespaces,
//! iptables) take a machine-wide lock and use their own names and CIDRs,
//! so they never touch a server a developer is running.

#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_minik8s");

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("minik8s-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The node settings of one test server: unique names, and CIDRs no
/// default server uses.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    pub node_name: String,
    pub node_ip: String,
    pub host_ip: String,
    pub pod_cidr: String,
    pub service_cidr: String,
    pub lb_pool: String,
}

impl NodeSettings {
    pub fn unique() -> NodeSettings {
        let id = (std::process::id() % 200) as u8 + 20;
        NodeSettings {
            node_name: format!("mkt{id}"),
            node_ip: format!("192.168.{id}.2/24"),
            host_ip: format!("192.168.{id}.1"),
            pod_cidr: format!("10.{}.0.0/16", id + 30),
            service_cidr: "10.96.0.0/12".to_string(),
            lb_pool: format!("172.31.{id}.0/24"),
        }
    }
}

pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub data_dir: PathBuf,
    pub node: Option<NodeSettings>,
    args: Vec<String>,
    log: PathBuf,
    _lock: Option<File>,
}

impl Server {
    /// An API + controllers server without a node (no root needed).
    pub fn control_plane(data_dir: &Path) -> Server {
        Server::spawn(data_dir, vec!["--no-node".into()], None, None)
    }

    /// A whole cluster: node network namespace, pods, proxy and DNS. Needs
    /// root; one at a time on a machine.
    pub fn with_node(data_dir: &Path, extra: &[&str]) -> Server {
        require_root();
        let lock = node_lock();
        let node = NodeSettings::unique();
        let mut args: Vec<String> = vec![
            "--node-name".into(),
            node.node_name.clone(),
            "--node-ip".into(),
            node.node_ip.clone(),
            "--pod-cidr".into(),
            node.pod_cidr.clone(),
            "--service-cidr".into(),
            node.service_cidr.clone(),
            "--lb-pool".into(),
            node.lb_pool.clone(),
            "--dns-upstream".into(),
            "none".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Server::spawn(data_dir, args, Some(node), Some(lock))
    }

    fn spawn(data_dir: &Path, args: Vec<String>, node: Option<NodeSettings>, lock: Option<File>) -> Server {
        let mut s = Server {
            child: None,
            url: String::new(),
            data_dir: data_dir.to_path_buf(),
            node,
            args,
            log: data_dir.with_extension("log"),
            _lock: lock,
        };
        s.start();
        s
    }

    /// Start (again) on the same data dir and settings.
    pub fn start(&mut self) {
        let log = File::create(&self.log).expect("server log");
        let mut child = Command::new(BIN)
            .arg("server")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start minik8s server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(url.to_string());
                    }
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "minik8s server did not report its address; its log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
        };
        self.url = url;
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if http_get(&self.url, "/readyz").is_some_and(|(code, _)| code == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server at {} never became ready", self.url);
    }

    /// Run a `minik8s` CLI command against this server.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("MINIK8S_SERVER", &self.url)
            .stdin(Stdio::null())
            .output()
            .expect("run minik8s CLI")
    }

    /// Like `ctl`, but fail the test with the CLI's output when it fails.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "minik8s {} failed:\nstdout: {}\nstderr: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn client(&self) -> client::Client {
        client::Client::new(self.url.clone())
    }

    /// SIGKILL: no cleanup at all, as after a crash.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid has no memory effects.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Names of network namespaces and links of this server still on the
    /// machine.
    pub fn leftovers(&self) -> Vec<String> {
        let Some(node) = &self.node else { return Vec::new() };
        leftovers_named(&node.node_name)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        // Even when a test failed half-way, leave nothing behind.
        if let Some(node) = &self.node {
            for ns in leftovers_named(&node.node_name) {
                let _ = Command::new("ip").args(["netns", "del", &ns]).status();
            }
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Network namespaces whose name contains `tag`.
pub fn leftovers_named(tag: &str) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output();
    let Ok(out) = out else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.contains(tag))
        .map(str::to_string)
        .collect()
}

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root (network namespaces, veths, iptables): run the tests with sudo"
    );
}

/// One node-level test at a time on a machine.
fn node_lock() -> File {
    let f = File::create(std::env::temp_dir().join("minik8s-node-tests.lock")).expect("lock file");
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock failed");
    f
}

/// Poll `f` until it returns Some, or panic with `what` after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A minimal blocking HTTP GET (status code, body), for probes that must
/// not depend on the code under test.
pub fn http_get(base: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((code, body))
}
