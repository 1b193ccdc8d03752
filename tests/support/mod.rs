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
    /// Settings whose CIDRs no route on this machine overlaps yet. Pod
    /// CIDRs come from 10.200-10.249, so they never overlap the chapter's
    /// Service CIDR 10.96.0.0/12, which is used whenever it is free (then
    /// `kubernetes` is 10.96.0.1 and `kube-dns` 10.96.0.10, as in the
    /// chapter); while another server routes it, a /16 of its own is used.
    pub fn unique() -> NodeSettings {
        let routed = host_route_dsts();
        let free = |cidr: &str| !routed.iter().any(|r| cidrs_overlap(r, cidr));
        let base = std::process::id() % 50;
        for k in 0..50 {
            let id = ((base + k) % 50) as u8;
            let chapter = "10.96.0.0/12".to_string();
            let service_cidr = if free(&chapter) {
                chapter
            } else {
                format!("10.{}.0.0/16", 150 + id)
            };
            let s = NodeSettings {
                node_name: format!("mkt{id}"),
                node_ip: format!("192.168.{}.2/24", 150 + id),
                host_ip: format!("192.168.{}.1", 150 + id),
                pod_cidr: format!("10.{}.0.0/16", 200 + id),
                service_cidr,
                lb_pool: format!("172.31.{id}.0/24"),
            };
            let node_subnet = format!("192.168.{}.0/24", 150 + id);
            if [&s.pod_cidr, &s.service_cidr, &s.lb_pool, &node_subnet]
                .iter()
                .all(|c| free(c))
                && !leftovers_named("").contains(&s.node_name)
            {
                return s;
            }
        }
        panic!("no free node settings: every candidate CIDR is routed already ({routed:?})");
    }

    /// The `minik8s server` flags for this node (and no DNS upstream:
    /// tests never depend on outside names).
    pub fn server_args(&self) -> Vec<String> {
        [
            ("--node-name", &self.node_name),
            ("--node-ip", &self.node_ip),
            ("--pod-cidr", &self.pod_cidr),
            ("--service-cidr", &self.service_cidr),
            ("--lb-pool", &self.lb_pool),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value.clone()])
        .chain(["--dns-upstream".to_string(), "none".to_string()])
        .collect()
    }

    /// The `n`-th address of the Service CIDR (1: `kubernetes`, 10:
    /// `kube-dns`).
    pub fn service_ip(&self, n: u32) -> String {
        let (net, _) = parse_cidr(&self.service_cidr).expect("valid Service CIDR");
        std::net::Ipv4Addr::from(net + n).to_string()
    }

    /// The ClusterIP of the `kube-dns` Service (the Pods' nameserver).
    pub fn dns_ip(&self) -> String {
        self.service_ip(10)
    }

    /// The ClusterIP of the `kubernetes` Service.
    pub fn kubernetes_ip(&self) -> String {
        self.service_ip(1)
    }
}

/// (network address, prefix length) of `a.b.c.d/n`.
fn parse_cidr(cidr: &str) -> Option<(u32, u32)> {
    let (ip, len) = cidr.split_once('/').unwrap_or((cidr, "32"));
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((u32::from(ip) & mask, len))
}

fn cidrs_overlap(a: &str, b: &str) -> bool {
    let (Some((na, la)), Some((nb, lb))) = (parse_cidr(a), parse_cidr(b)) else {
        return false;
    };
    let len = la.min(lb);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    na & mask == nb & mask
}

/// Destinations of the host's IPv4 routes, except the default route.
fn host_route_dsts() -> Vec<String> {
    let Ok(out) = Command::new("ip").args(["-4", "route", "show"]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|d| *d != "default")
        .map(str::to_string)
        .collect()
}

pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub data_dir: PathBuf,
    pub node: Option<NodeSettings>,
    args: Vec<String>,
    log: PathBuf,
    /// What this node server created on the machine (see `track`), so a
    /// test can check that all of it is gone and Drop can remove it.
    tracked: std::sync::Mutex<Tracked>,
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
        let mut args = node.server_args();
        args.extend(extra.iter().map(|s| s.to_string()));
        Server::spawn(data_dir, args, Some(node), Some(lock))
    }

    fn spawn(
        data_dir: &Path,
        args: Vec<String>,
        node: Option<NodeSettings>,
        lock: Option<File>,
    ) -> Server {
        let mut s = Server {
            child: None,
            url: String::new(),
            data_dir: data_dir.to_path_buf(),
            node,
            args,
            log: data_dir.with_extension("log"),
            tracked: std::sync::Mutex::new(Tracked::default()),
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
            // MINIK8S_SERVER_LOG: a quieter filter for benchmarks.
            .env(
                "RUST_LOG",
                std::env::var("MINIK8S_SERVER_LOG").unwrap_or_else(|_| "info".into()),
            )
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
        self.track();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        self.track();
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
        let Some(node) = &self.node else {
            return Vec::new();
        };
        leftovers_named(&node.node_name)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        // Even when a test failed half-way, leave nothing behind.
        if let Some(node) = &self.node {
            self.remove_tracked();
            for ns in leftovers_named(&node.node_name) {
                let _ = Command::new("ip").args(["netns", "del", &ns]).status();
            }
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!(
                "--- last lines of the minik8s server log ({}) ---",
                self.data_dir.display()
            );
            for l in tail.iter().rev() {
                eprintln!("{l}");
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
pub fn node_lock() -> File {
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
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// Run a `minik8s` CLI command against the API at `url` (which may be a
/// server that is not running).
pub fn ctl_at(url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("MINIK8S_SERVER", url)
        .stdin(Stdio::null())
        .output()
        .expect("run minik8s CLI")
}

/// A loopback address on which nothing listens (a port just released).
pub fn unused_local_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = l.local_addr().expect("local addr").port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// One HTTP answer of `http_request`.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub code: u16,
    pub body: String,
}

impl HttpAnswer {
    /// The body as JSON (Null when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A minimal blocking HTTP/1.1 request on a fresh connection (`Connection:
/// close`), independent of the code under test. `None` when the
/// connection fails or breaks before a status line arrives. Chunked
/// answers are decoded.
pub fn http_request(
    base: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: &[u8],
) -> Option<HttpAnswer> {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if let Some(a) = accept {
        head.push_str(&format!("Accept: {a}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).ok()?;
    // A server may answer (413) and close before reading a large body:
    // a failed write is not the end, the answer may be waiting.
    let _ = s.write_all(body);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) if !buf.is_empty() => break,
            Err(_) => return None,
        }
    }
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let raw_body = &buf[split + 4..];
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        decode_chunked(raw_body)
    } else {
        raw_body.to_vec()
    };
    Some(HttpAnswer {
        code,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The payload of a `Transfer-Encoding: chunked` body (as far as it goes).
fn decode_chunked(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            break;
        };
        let size_text = String::from_utf8_lossy(&raw[..eol]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        raw = &raw[eol + 2..];
        if size == 0 || raw.len() < size {
            out.extend_from_slice(&raw[..size.min(raw.len())]);
            break;
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or(&[]);
    }
    out
}

/// GET `path` as JSON through `http_request`, failing the test on
/// anything but 200.
pub fn get_json(base: &str, path: &str) -> serde_json::Value {
    let a = http_request(base, "GET", path, None, Some("application/json"), b"")
        .unwrap_or_else(|| panic!("GET {path}: no answer from {base}"));
    assert_eq!(a.code, 200, "GET {path}: {}", a.body);
    a.json()
}

// ---------------------------------------------------------------------------
// What a node server leaves on the machine.
//
// Pod sandboxes are named after the Pod (`minik8s-<ns>-<pod>-<uid8>`), not
// after the node, and container processes are children of the server until
// it dies; so the harness records, while the server runs, the sandboxes of
// its Pods (by uid), the network namespaces' inodes, and the server's
// descendant processes. After a stop (or a crash and a restart) every one
// of them must be gone; Drop removes whatever is not.

/// A process, told apart from a later one that reuses its pid by its start
/// time (field 22 of /proc/PID/stat).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcId {
    pub pid: i32,
    pub start_time: u64,
}

impl ProcId {
    pub fn of(pid: i32) -> Option<ProcId> {
        Some(ProcId {
            pid,
            start_time: proc_stat_field(pid, 22)?,
        })
    }
    pub fn alive(&self) -> bool {
        proc_stat_field(self.pid, 22) == Some(self.start_time) && !proc_is_zombie(self.pid)
    }
}

#[derive(Default, Debug)]
pub struct Tracked {
    /// Sandbox netns names of this server's Pods.
    pub pod_netns: std::collections::BTreeSet<String>,
    /// Inodes of the node's and the Pods' network namespaces.
    pub netns_inodes: std::collections::BTreeSet<u64>,
    /// Every descendant of the server seen.
    pub processes: std::collections::BTreeSet<ProcId>,
}

/// Field `n` (1-based, as in proc(5)) of /proc/PID/stat.
fn proc_stat_field(pid: i32, n: usize) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(n - 3)?.parse().ok()
}

fn proc_is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z')))
        .unwrap_or(false)
}

/// The command line of a process, arguments joined by spaces.
pub fn proc_cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

pub fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Every live descendant of `root` (not `root` itself).
pub fn descendants(root: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = all_pids()
        .into_iter()
        .filter_map(|p| Some((p, proc_stat_field(p, 4)? as i32)))
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// The inode of a process' network namespace.
pub fn netns_inode_of_pid(pid: i32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    let s = link.to_str()?;
    s.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// The inode of a named network namespace (`ip netns add NAME`).
pub fn named_netns_inode(name: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/run/netns/{name}"))
        .ok()
        .map(|m| m.ino())
}

/// Processes whose network namespace is one of `inodes`.
pub fn pids_in_netns(inodes: &std::collections::BTreeSet<u64>) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|p| netns_inode_of_pid(*p).is_some_and(|i| inodes.contains(&i)))
        .filter(|p| !proc_is_zombie(*p))
        .collect()
}

/// Names in `ip netns list`.
pub fn netns_names() -> Vec<String> {
    leftovers_named("")
}

/// The eight hex characters of a Pod uid that end its sandbox netns name.
pub fn uid8(uid: &str) -> String {
    uid.chars()
        .filter(|c| *c != '-')
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The sandbox netns of a Pod (from its uid), if it exists.
pub fn pod_netns_of(pod: &serde_json::Value) -> Option<String> {
    let uid = pod["metadata"]["uid"].as_str()?;
    let suffix = format!("-{}", uid8(uid));
    netns_names().into_iter().find(|n| n.ends_with(&suffix))
}

/// GET over HTTP/1.0 (no chunked bodies), for the harness' own bookkeeping.
pub fn http_get_body(base: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let sock: std::net::SocketAddr = addr.parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Some(dechunk(body));
    }
    Some(body.to_string())
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

impl Server {
    /// The server's pid while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// The node's network namespace (named after the node).
    pub fn node_netns(&self) -> String {
        self.node.as_ref().expect("a node server").node_name.clone()
    }

    /// NodeIP without its prefix length.
    pub fn node_ip(&self) -> String {
        let ip = &self.node.as_ref().expect("a node server").node_ip;
        ip.split('/').next().unwrap_or(ip).to_string()
    }

    /// The host side of the host<->node veth: `mk-<node>-h`.
    pub fn host_veth(&self) -> String {
        format!("mk-{}-h", self.node_netns())
    }

    /// Record what the running server has created: its Pods' sandboxes,
    /// the namespaces' inodes and its descendant processes. Called by
    /// `stop` and `kill9`; tests call it too after Pods came and went.
    pub fn track(&self) {
        let Some(node) = &self.node else { return };
        let Some(pid) = self.pid() else { return };
        let mut t = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        for p in descendants(pid) {
            if let Some(id) = ProcId::of(p) {
                t.processes.insert(id);
            }
        }
        let names = netns_names();
        if let Some(i) = named_netns_inode(&node.node_name) {
            t.netns_inodes.insert(i);
        }
        let pods = http_get_body(&self.url, "/api/v1/pods")
            .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok());
        let uids: Vec<String> = pods
            .as_ref()
            .and_then(|l| l["items"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|p| p["metadata"]["uid"].as_str().map(uid8))
            .collect();
        for n in names {
            if uids
                .iter()
                .any(|u| n.starts_with("minik8s-") && n.ends_with(&format!("-{u}")))
            {
                if let Some(i) = named_netns_inode(&n) {
                    t.netns_inodes.insert(i);
                }
                t.pod_netns.insert(n);
            }
        }
    }

    /// Everything of this node server still on the machine: network
    /// namespaces (node and Pods), the host veth, host routes via NodeIP,
    /// netns mounts, and processes (descendants seen, or anything in one of
    /// its namespaces). Empty when the server cleaned up after itself.
    pub fn leftovers_all(&self) -> Vec<String> {
        if self.node.is_none() {
            return Vec::new();
        }
        let mut out: Vec<String> = self
            .leftovers()
            .into_iter()
            .map(|n| format!("netns {n}"))
            .collect();
        let t = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        let live = netns_names();
        out.extend(
            t.pod_netns
                .iter()
                .filter(|n| live.contains(n))
                .map(|n| format!("pod netns {n}")),
        );
        let veth = self.host_veth();
        let links = Command::new("ip").args(["-o", "link", "show"]).output();
        if let Ok(links) = links {
            for l in String::from_utf8_lossy(&links.stdout).lines() {
                let name = l.split(':').nth(1).unwrap_or("").trim();
                let name = name.split('@').next().unwrap_or(name);
                if name == veth {
                    out.push(format!("link {name}"));
                }
            }
        }
        let via = format!(" via {} ", self.node_ip());
        let dev = format!("dev {veth} ");
        if let Ok(r) = Command::new("ip").args(["-4", "route", "show"]).output() {
            for l in String::from_utf8_lossy(&r.stdout).lines() {
                let l2 = format!("{l} ");
                if l2.contains(&via) || l2.contains(&dev) {
                    out.push(format!("route {l}"));
                }
            }
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for n in t
            .pod_netns
            .iter()
            .chain(std::iter::once(&self.node_netns()))
        {
            let needle = format!("/run/netns/{n} ");
            if mountinfo.lines().any(|l| l.contains(&needle)) {
                out.push(format!("mount /run/netns/{n}"));
            }
        }
        for p in t.processes.iter().filter(|p| p.alive()) {
            out.push(format!("process {} {}", p.pid, proc_cmdline(p.pid)));
        }
        for p in pids_in_netns(&t.netns_inodes) {
            if !t.processes.iter().any(|q| q.pid == p) {
                out.push(format!(
                    "process {p} {} (in a node/Pod netns)",
                    proc_cmdline(p)
                ));
            }
        }
        out
    }

    /// Kill what the server left and remove its Pods' namespaces (Drop).
    fn remove_tracked(&self) {
        let (procs, inodes, pod_netns) = {
            let t = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
            (
                t.processes.clone(),
                t.netns_inodes.clone(),
                t.pod_netns.clone(),
            )
        };
        for p in procs.iter().filter(|p| p.alive()) {
            // SAFETY: kill(2) has no memory effects; the start time check
            // above makes sure the pid is still the process we saw.
            unsafe {
                libc::kill(p.pid, libc::SIGKILL);
            }
        }
        for p in pids_in_netns(&inodes) {
            // SAFETY: as above; these processes live in this server's namespaces.
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
        let live = netns_names();
        for n in pod_netns.iter().filter(|n| live.contains(n)) {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }

    /// Run a CLI command, killing it when it takes longer than `timeout`
    /// (a hung stream must fail the test, not hang it).
    pub fn ctl_within(&self, timeout: Duration, args: &[&str]) -> Output {
        self.ctl_input_within(timeout, args, None)
    }

    /// Like `ctl_within`, with `input` on the CLI's stdin (a pipe, no TTY).
    pub fn ctl_input_within(
        &self,
        timeout: Duration,
        args: &[&str],
        input: Option<&str>,
    ) -> Output {
        use std::io::Write;
        let mut child = Command::new(BIN)
            .args(args)
            .env("MINIK8S_SERVER", &self.url)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run minik8s CLI");
        if let Some(input) = input {
            let mut stdin = child.stdin.take().expect("piped stdin");
            let input = input.to_string();
            std::thread::spawn(move || {
                let _ = stdin.write_all(input.as_bytes());
            });
        }
        let pid = child.id() as i32;
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if rx.recv_timeout(timeout).is_err() {
                // SAFETY: kill(2) on our own child that has not been waited for.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
                return true;
            }
            false
        });
        let out = child.wait_with_output().expect("wait for minik8s CLI");
        let _ = tx.send(());
        let killed = watchdog.join().unwrap_or(false);
        assert!(
            !killed,
            "minik8s {} did not finish within {timeout:?}; stdout so far: {}; stderr: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// A GET to `addr` with connect and read timeouts; the error says whether
/// the connection was refused or timed out.
pub fn http_get_addr(
    addr: std::net::SocketAddr,
    path: &str,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: minik8s-test\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// A watch of `res` in `namespace` from now on: a list gives the current
/// resourceVersion, the watch starts after it (the benchmarks time what
/// happens next).
pub async fn watch_from_now(
    c: &client::Client,
    res: &api::registry::ResourceInfo,
    namespace: &str,
    params: &client::ListParams,
) -> impl futures::Stream<Item = Result<client::WatchEvent, client::ClientError>> + Send + 'static {
    let list = c
        .list(res, Some(namespace), params)
        .await
        .unwrap_or_else(|e| panic!("list {}: {e}", res.plural));
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    c.watch(res, Some(namespace), params, &rv)
        .await
        .unwrap_or_else(|e| panic!("watch {}: {e}", res.plural))
}
