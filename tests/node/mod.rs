//! Node-level integration tests: a whole minik8s (node netns, Pods, proxy,
//! DNS) started from the built binary, driven only through its CLI and
//! through traffic to addresses inside the namespaces it created. They
//! need root and run one at a time (the harness takes a machine-wide lock).
//!
//! Every test ends with `Cluster::stop_clean`, which stops the server with
//! SIGTERM and fails when any namespace, link, route, mount or process of
//! it is left; when a test fails earlier, the server's Drop removes them.

mod dns;
mod pods;
mod services;
mod startup;

use crate::support::{pod_netns_of, require_root, Server, TempDir};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Output;
use std::time::{Duration, Instant};

/// How long Pods may take to become Ready on a busy 2-core machine.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// An upper bound for one CLI command (exec, logs, run).
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// A path under the repository's `examples/`.
pub fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A running node server with its data dir. Field order matters: the
/// server stops (and cleans up) before its data dir is removed.
pub struct Cluster {
    pub server: Server,
    pub dir: TempDir,
}

impl Cluster {
    pub fn start(tag: &str, extra: &[&str]) -> Cluster {
        require_root();
        let dir = TempDir::new(tag);
        let server = Server::with_node(&dir.path().join("data"), extra);
        Cluster { server, dir }
    }

    /// `minik8s ARGS`, which must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.server.ctl_within(CLI_TIMEOUT, args);
        assert!(
            out.status.success(),
            "minik8s {} failed ({}):\nstdout: {}\nstderr: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn apply(&self, file: &str) -> String {
        self.ok(&["apply", "-f", file])
    }

    /// Write `yaml` to a file in the test's dir and apply it.
    pub fn apply_yaml(&self, name: &str, yaml: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, yaml).expect("write manifest");
        self.apply(path.to_str().expect("utf-8 path"))
    }

    /// `minik8s get ARGS -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> Value {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("get -o json prints JSON")
    }

    /// The Pods matching a label selector.
    pub fn pods(&self, selector: &str) -> Vec<Value> {
        let list = self.get_json(&["pods", "-l", selector]);
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// Wait until exactly `n` Pods match `selector`, all Running and Ready
    /// with an IP; returns them sorted by name.
    pub fn ready_pods(&self, selector: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let pods = self.pods(selector);
            let live: Vec<&Value> = pods
                .iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .collect();
            if pods.len() == n && live.len() == n && live.iter().all(|p| is_ready(p)) {
                self.server.track();
                let mut pods = pods;
                pods.sort_by_key(|p| name_of(p).to_string());
                return pods;
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {READY_TIMEOUT:?} for {n} ready Pods with {selector}; now:\n{}\n{}",
                    self.ok(&["get", "pods", "-o", "wide"]),
                    serde_json::to_string_pretty(&pods).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `minik8s exec POD -- CMD...` (no stdin, no TTY).
    pub fn exec(&self, pod: &str, cmd: &[&str]) -> Output {
        let mut args = vec!["exec", pod, "--"];
        args.extend_from_slice(cmd);
        self.server.ctl_within(CLI_TIMEOUT, &args)
    }

    /// Like `exec`, but the command must exit 0; returns its stdout.
    pub fn exec_ok(&self, pod: &str, cmd: &[&str]) -> String {
        let out = self.exec(pod, cmd);
        assert!(
            out.status.success(),
            "minik8s exec {pod} -- {} failed ({}):\nstdout: {}\nstderr: {}",
            cmd.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A Pod that sleeps, for running commands in the cluster
    /// (`curlimages/curl`: curl, sh, nslookup, dig of the host).
    pub fn client_pod(&self, name: &str) -> Value {
        self.ok(&[
            "run",
            name,
            "--image=curlimages/curl",
            "--restart=Never",
            "--command",
            "--",
            "sleep",
            "3600",
        ]);
        self.ready_pods(&format!("run={name}"), 1).remove(0)
    }

    pub fn service(&self, name: &str) -> Value {
        self.get_json(&["svc", name])
    }

    pub fn cluster_ip(&self, name: &str) -> String {
        let svc = self.service(name);
        svc["spec"]["clusterIP"]
            .as_str()
            .unwrap_or_else(|| panic!("service {name} has no clusterIP: {svc}"))
            .to_string()
    }

    /// The ready addresses of `get endpoints NAME`, sorted.
    pub fn endpoint_ips(&self, name: &str) -> Vec<String> {
        let ep = self.get_json(&["endpoints", name]);
        let mut ips: Vec<String> = ep["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["ip"].as_str().map(str::to_string))
            .collect();
        ips.sort();
        ips
    }

    /// Wait until `get endpoints NAME` lists exactly `ips` (any order).
    pub fn wait_endpoints(&self, name: &str, ips: &[String], timeout: Duration) -> Duration {
        let mut want = ips.to_vec();
        want.sort();
        let start = Instant::now();
        loop {
            let now = self.endpoint_ips(name);
            if now == want {
                return start.elapsed();
            }
            if start.elapsed() > timeout {
                panic!("endpoints of {name} are {now:?} after {timeout:?}, want {want:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The ClusterIP of `kube-dns` (10.96.0.10 with the chapter's CIDR).
    pub fn dns_ip(&self) -> String {
        self.server.node.as_ref().expect("node").dns_ip()
    }

    /// The ClusterIP of `kubernetes` (10.96.0.1 with the chapter's CIDR).
    pub fn kubernetes_ip(&self) -> String {
        self.server.node.as_ref().expect("node").kubernetes_ip()
    }

    /// The node netns name (for `ip netns exec`).
    pub fn node_netns(&self) -> String {
        self.server.node_netns()
    }

    /// The `/NN` Pod CIDR of this node as a prefix string like `10.212.0.`.
    pub fn node_pod_prefix(&self) -> String {
        let cidr = &self.server.node.as_ref().expect("node").pod_cidr;
        let mut octets = cidr.split('/').next().unwrap_or("").split('.');
        format!(
            "{}.{}.0.",
            octets.next().unwrap_or(""),
            octets.next().unwrap_or("")
        )
    }

    /// `minik8s logs POD`.
    pub fn logs(&self, pod: &str) -> String {
        self.ok(&["logs", pod])
    }

    /// SIGTERM the server and require that nothing of it is left.
    pub fn stop_clean(mut self) {
        self.server.stop();
        let left = self.server.leftovers_all();
        assert!(
            left.is_empty(),
            "after SIGTERM the server left:\n  {}",
            left.join("\n  ")
        );
    }
}

pub fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn pod_ip(pod: &Value) -> String {
    pod["status"]["podIP"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Running, with the Ready condition True and an IP.
pub fn is_ready(pod: &Value) -> bool {
    let status = &pod["status"];
    status["phase"] == "Running"
        && status["podIP"].as_str().is_some_and(|ip| !ip.is_empty())
        && status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whitespace runs collapsed to one space, per line (nslookup pads with
/// tabs).
pub fn squash(text: &str) -> String {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The rows of a CLI table (header first), cells split on whitespace
/// (no cell of the tables used here holds a space).
pub fn table_rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Processes living in a Pod's sandbox netns whose command line contains
/// `needle`.
pub fn pod_processes(pod: &Value, needle: &str) -> Vec<i32> {
    let netns =
        pod_netns_of(pod).unwrap_or_else(|| panic!("no sandbox netns for {}", name_of(pod)));
    let inode = crate::support::named_netns_inode(&netns).expect("netns inode");
    let set = std::iter::once(inode).collect();
    crate::support::pids_in_netns(&set)
        .into_iter()
        .filter(|p| crate::support::proc_cmdline(*p).contains(needle))
        .collect()
}

/// `addr:port` parsed.
pub fn sock(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().expect("socket address")
}

/// Access-log lines of `logs` (nginx combined format) whose user agent
/// contains `agent`.
pub fn access_lines(logs: &str, agent: &str) -> usize {
    logs.lines()
        .filter(|l| l.contains("\"GET / HTTP/1.") && l.contains(agent))
        .count()
}
