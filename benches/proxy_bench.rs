//! kube-proxy figures on a live node (root), against a `minik8s server`
//! this bench starts with the test harness' node settings (so it never
//! touches a server someone else runs). Run by `scripts/bench-proxy.sh`.
//!
//!     proxy_bench [SAMPLES]        (default 50; SETTLE_MS=100 between changes)
//!
//! 1. Network programming latency: a Pod of a Service turns Ready (seen on
//!    a watch of the Pod) -> its DNAT rule is in the node's kernel; and a
//!    Pod is deleted (the DELETE request) -> its rule is gone. "In the
//!    kernel" is observed, not polled: `xtables-monitor` in the node netns
//!    prints every committed rule change, and the moment its commit line
//!    (NEWGEN) is read is the moment the rule is live. The split through
//!    the EndpointSlice (seen on a watch) shows which part is the
//!    controllers' and which the proxy's.
//! 2. Requests/s through the ClusterIP / requests/s straight to the Pod
//!    IP, same client (wrk on the host, keep-alive connections), same run,
//!    alternating runs; medians.
//!
//! Exits non-zero when a check fails.

#[path = "../tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use api::registry::{ENDPOINT_SLICES, PODS, SERVICES};
use client::{Client, ListParams};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{require_root, Server, TempDir};

const TIMEOUT: Duration = Duration::from_secs(30);

fn main() {
    require_root();
    let samples: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50)
        .max(2);
    for tool in ["xtables-monitor", "wrk", "stdbuf"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "{tool} is needed (scripts/bench-proxy.sh installs it)"
        );
    }
    if std::env::var_os("MINIK8S_SERVER_LOG").is_none() {
        // The proxy's per-sync timings, summarised at the end.
        std::env::set_var("MINIK8S_SERVER_LOG", "warn,proxy=debug");
    }
    let dir = TempDir::new("proxy-bench");
    let server = Server::with_node(&dir.path().join("data"), &[]);
    println!("binary: {}", support::BIN);
    println!(
        "node {} (Pod CIDR {})",
        server.node_netns(),
        server.node.as_ref().expect("node").pod_cidr
    );
    let monitor = RuleMonitor::start(&server.node_netns());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let ok = rt.block_on(run(server.client(), &server, &monitor, samples));
    drop(monitor);
    drop(server);
    if !ok {
        std::process::exit(1);
    }
}

/// One committed nf_tables generation: the DNAT destinations (`ip:port`)
/// it added and removed, and when its commit was read.
struct Generation {
    at: Instant,
    added: BTreeSet<String>,
    removed: BTreeSet<String>,
}

/// `xtables-monitor -e` in the node netns, its output folded into
/// generations by a reader thread.
struct RuleMonitor {
    child: Child,
    log: Arc<Mutex<Vec<Generation>>>,
}

impl RuleMonitor {
    fn start(netns: &str) -> RuleMonitor {
        // stdbuf: a line as soon as it is printed, not a pipe buffer later.
        let mut child = Command::new("ip")
            .args(["netns", "exec", netns, "stdbuf", "-oL"])
            .args(["xtables-monitor", "-e", "-4"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start xtables-monitor");
        let out = child.stdout.take().expect("piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            let (mut added, mut removed) = (BTreeSet::new(), BTreeSet::new());
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.starts_with("NEWGEN") {
                    sink.lock().unwrap().push(Generation {
                        at: Instant::now(),
                        added: std::mem::take(&mut added),
                        removed: std::mem::take(&mut removed),
                    });
                    continue;
                }
                let Some(dest) = line
                    .split_once("--to-destination ")
                    .map(|(_, d)| d.split_whitespace().next().unwrap_or("").to_string())
                else {
                    continue;
                };
                if line.contains(" -A ") {
                    removed.remove(&dest);
                    added.insert(dest);
                } else if line.contains(" -D ") {
                    // Deleted and written again in one transaction (a full
                    // resync) is no change.
                    if !added.remove(&dest) {
                        removed.insert(dest);
                    }
                }
            }
        });
        // Give it time to subscribe before anything is measured.
        std::thread::sleep(Duration::from_millis(300));
        RuleMonitor { child, log }
    }

    /// When the first generation from `from` on that added (or removed)
    /// `dest` was committed.
    fn wait(&self, dest: &str, added: bool, from: usize) -> Option<(Instant, usize)> {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            {
                let log = self.log.lock().unwrap();
                for (i, g) in log.iter().enumerate().skip(from) {
                    let set = if added { &g.added } else { &g.removed };
                    if set.contains(dest) {
                        return Some((g.at, i + 1));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }

    fn generations(&self) -> usize {
        self.log.lock().unwrap().len()
    }
}

impl Drop for RuleMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// EndpointSlice updates of one Service: when each was seen and its ready
/// addresses.
type SliceLog = Arc<Mutex<Vec<(Instant, BTreeSet<String>)>>>;

async fn watch_slices(c: Client, service: &str) -> SliceLog {
    let log: SliceLog = Arc::default();
    let params = ListParams::labels(format!("kubernetes.io/service-name={service}"));
    let mut events =
        Box::pin(support::watch_from_now(&c, &ENDPOINT_SLICES, "default", &params).await);
    let sink = log.clone();
    tokio::spawn(async move {
        while let Some(Ok(ev)) = events.next().await {
            let ready: BTreeSet<String> = ev.object["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["conditions"]["ready"] != false)
                .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect();
            sink.lock().unwrap().push((Instant::now(), ready));
        }
    });
    log
}

/// When the slice log first showed `ip` ready (`present`) or not, from
/// entry `from` on.
async fn slice_moment(log: &SliceLog, ip: &str, present: bool, from: usize) -> Option<Instant> {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if let Some(at) = log
            .lock()
            .unwrap()
            .iter()
            .skip(from)
            .find(|(_, ips)| ips.contains(ip) == present)
            .map(|(at, _)| *at)
        {
            return Some(at);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

/// The pause between a change and the next (SETTLE_MS, default 100).
fn settle() -> Duration {
    let ms = std::env::var("SETTLE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    Duration::from_millis(ms)
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn ms(from: Instant, to: Instant) -> f64 {
    // Signed: a rule seen before the bench's own watch delivered Ready
    // shows up as a (small) negative latency rather than being hidden.
    if to >= from {
        to.duration_since(from).as_secs_f64() * 1000.0
    } else {
        -(from.duration_since(to).as_secs_f64() * 1000.0)
    }
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(what: &str, v: &[f64]) {
    println!(
        "  {what:<38} p50 {:7.1} ms   p90 {:7.1} ms   p99 {:7.1} ms   max {:7.1} ms",
        pct(v, 0.5),
        pct(v, 0.9),
        pct(v, 0.99),
        pct(v, 1.0)
    );
}

/// Pod events of the bench's Pods: when each was seen, the Pod's name,
/// whether it was Ready, and its IP.
type PodLog = Arc<Mutex<Vec<(Instant, String, bool, String)>>>;

/// One watch for the whole run, opened before the first Pod exists: a
/// watch opened per Pod after its creation could connect after the Pod
/// turned Ready and replay that event late, which would make the latency
/// look smaller than it is.
async fn watch_pods(c: Client, selector: &str) -> PodLog {
    let log: PodLog = Arc::default();
    let params = ListParams::labels(selector);
    let mut events = Box::pin(support::watch_from_now(&c, &PODS, "default", &params).await);
    let sink = log.clone();
    tokio::spawn(async move {
        while let Some(Ok(ev)) = events.next().await {
            let at = Instant::now();
            let o = &ev.object;
            let name = o["metadata"]["name"].as_str().unwrap_or("").to_string();
            let ip = o["status"]["podIP"].as_str().unwrap_or("").to_string();
            sink.lock().unwrap().push((at, name, is_ready(o), ip));
        }
    });
    log
}

/// When the watch first saw Pod `name` Ready, and its IP.
async fn wait_ready(pods: &PodLog, name: &str) -> (Instant, String) {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if let Some((at, _, _, ip)) = pods
            .lock()
            .unwrap()
            .iter()
            .find(|(_, n, ready, _)| n == name && *ready)
        {
            return (*at, ip.clone());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("Pod {name} never became Ready");
}

async fn wait_gone(c: &Client, name: &str) {
    let until = Instant::now() + TIMEOUT;
    while Instant::now() < until {
        match c.get(&PODS, Some("default"), name).await {
            Err(e) if e.is_not_found() => return,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    panic!("Pod {name} was never removed");
}

async fn run(c: Client, server: &Server, monitor: &RuleMonitor, samples: usize) -> bool {
    let mut failures = Vec::new();
    let svc = json!({"apiVersion":"v1","kind":"Service","metadata":{"name":"bench"},
        "spec":{"selector":{"app":"bench"},"ports":[{"port":80}]}});
    let svc = c
        .create(&SERVICES, Some("default"), &svc)
        .await
        .expect("create Service");
    let cluster_ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
    let slices = watch_slices(c.clone(), "bench").await;
    let pods = watch_pods(c.clone(), "app=bench").await;

    let (mut ready_total, mut ready_slice, mut ready_proxy) = (vec![], vec![], vec![]);
    let (mut delete_total, mut delete_slice, mut delete_proxy) = (vec![], vec![], vec![]);
    let mut last_ip = String::new();
    for i in 0..samples {
        let name = format!("bench-{i}");
        let pod = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":name,"labels":{"app":"bench"}},
            "spec":{"containers":[{"name":"nginx","image":"nginx","ports":[{"containerPort":80}]}]}});
        let gen_from = monitor.generations();
        let slice_from = slices.lock().unwrap().len();
        c.create(&PODS, Some("default"), &pod)
            .await
            .expect("create Pod");
        let (ready_at, ip) = wait_ready(&pods, &name).await;
        let dest = format!("{ip}:80");
        let Some((in_kernel, _)) =
            tokio::task::block_in_place(|| monitor.wait(&dest, true, gen_from))
        else {
            failures.push(format!("the DNAT rule to {dest} never appeared"));
            break;
        };
        let slice_at = slice_moment(&slices, &ip, true, slice_from).await;
        ready_total.push(ms(ready_at, in_kernel));
        if let Some(s) = slice_at {
            ready_slice.push(ms(ready_at, s));
            ready_proxy.push(ms(s, in_kernel));
        }
        last_ip = ip.clone();
        if i + 1 == samples {
            break; // the last Pod serves the throughput runs
        }

        // Let the proxy finish the sync that added the rule: the
        // iptables-restore that committed it exits only after the kernel's
        // RCU grace period (~10-15 ms, holding nf_tables' commit lock), and
        // a deletion right behind it would measure that queue, not the
        // deletion. (Run with SETTLE_MS=0 to measure back-to-back changes.)
        tokio::time::sleep(settle()).await;
        let gen_from = monitor.generations();
        let slice_from = slices.lock().unwrap().len();
        let deleted_at = Instant::now();
        c.delete(&PODS, Some("default"), &name)
            .await
            .expect("delete Pod");
        let Some((gone, _)) = tokio::task::block_in_place(|| monitor.wait(&dest, false, gen_from))
        else {
            failures.push(format!("the DNAT rule to {dest} was never removed"));
            break;
        };
        let slice_at = slice_moment(&slices, &ip, false, slice_from).await;
        delete_total.push(ms(deleted_at, gone));
        if let Some(s) = slice_at {
            delete_slice.push(ms(deleted_at, s));
            delete_proxy.push(ms(s, gone));
        }
        wait_gone(&c, &name).await;
    }

    // The monitor's view checked once against iptables-save.
    let saved = Command::new("ip")
        .args([
            "netns",
            "exec",
            &server.node_netns(),
            "iptables-save",
            "-t",
            "nat",
        ])
        .output()
        .expect("iptables-save");
    if !String::from_utf8_lossy(&saved.stdout).contains(&format!("--to-destination {last_ip}:80")) {
        failures.push(format!("iptables-save lacks the DNAT to {last_ip}:80"));
    }

    if !ready_total.is_empty() {
        println!(
            "\n== network programming latency, Pod Ready -> DNAT rule in the kernel ({} Pods) ==",
            ready_total.len()
        );
        summary("Ready -> rule (target p50<20, p99<100)", &ready_total);
        summary("  Ready -> EndpointSlice updated", &ready_slice);
        summary("  EndpointSlice -> rule (the proxy)", &ready_proxy);
    }
    if !delete_total.is_empty() {
        println!(
            "== network programming latency, Pod deleted -> DNAT rule gone ({} Pods) ==",
            delete_total.len()
        );
        summary("DELETE -> rule gone", &delete_total);
        summary("  DELETE -> EndpointSlice updated", &delete_slice);
        summary("  EndpointSlice -> rule gone (the proxy)", &delete_proxy);
    }
    proxy_phases(&server.log());
    if failures.is_empty() {
        let (cip, pip) = (cluster_ip.clone(), last_ip.clone());
        if let Err(e) = tokio::task::spawn_blocking(move || throughput(&cip, &pip))
            .await
            .expect("throughput task")
        {
            failures.push(e);
        }
    }
    if failures.is_empty() {
        println!("\nall checks passed");
        true
    } else {
        println!("\nFAILED:");
        for f in &failures {
            println!("  {f}");
        }
        false
    }
}

/// The proxy's own account of its partial syncs (its debug log): where
/// its share of the latency goes.
fn proxy_phases(log: &str) {
    let field = |line: &str, key: &str| -> Option<f64> {
        let rest = line.split_once(&format!("{key}="))?.1;
        rest.split_whitespace().next()?.parse().ok()
    };
    let log = strip_ansi(log);
    let partial: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("proxy sync") && l.contains("full=false"))
        .filter(|l| field(l, "bytes").is_some_and(|b| b > 0.0))
        .collect();
    if partial.is_empty() {
        return;
    }
    let phase = |key: &str| -> Vec<f64> { partial.iter().filter_map(|l| field(l, key)).collect() };
    println!(
        "  the proxy's partial syncs ({}), from its log:",
        partial.len()
    );
    for key in ["model_ms", "plan_ms", "render_ms", "write_ms"] {
        let v = phase(key);
        if !v.is_empty() {
            summary(&format!("  {}", key.trim_end_matches("_ms")), &v);
        }
    }
}

/// The log without terminal colour codes (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Requests/s of one wrk run against http://ip/, or why it failed.
fn wrk(ip: &str, seconds: u32) -> Result<f64, String> {
    let out = Command::new("wrk")
        .args([
            "-t1",
            "-c8",
            &format!("-d{seconds}s"),
            &format!("http://{ip}/"),
        ])
        .output()
        .map_err(|e| format!("wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if let Some(errors) = text
        .lines()
        .find(|l| l.contains("Socket errors") || l.contains("Non-2xx"))
    {
        return Err(format!("wrk against {ip}: {}", errors.trim()));
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .filter(|r: &f64| *r > 0.0)
        .ok_or_else(|| format!("wrk against {ip} printed no rate:\n{text}"))
}

/// wrk from the host, alternating ClusterIP and Pod IP runs.
fn throughput(cluster_ip: &str, pod_ip: &str) -> Result<(), String> {
    const RUNS: usize = 9;
    // Warm both paths (connections, conntrack, caches) before measuring.
    wrk(cluster_ip, 1)?;
    wrk(pod_ip, 1)?;
    let (mut via_svc, mut direct, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..RUNS {
        // Alternate which goes first, so a drift in the machine's load
        // does not favour one.
        let (s, d) = if i % 2 == 0 {
            let s = wrk(cluster_ip, 3)?;
            (s, wrk(pod_ip, 3)?)
        } else {
            let d = wrk(pod_ip, 3)?;
            (wrk(cluster_ip, 3)?, d)
        };
        via_svc.push(s);
        direct.push(d);
        ratios.push(s / d);
    }
    let (s, d) = (pct(&via_svc, 0.5), pct(&direct, 0.5));
    println!("\n== requests/s through the ClusterIP vs straight to the Pod (wrk -t1 -c8, {RUNS} alternating pairs of 3 s runs, from the host) ==");
    println!("  ClusterIP {cluster_ip}: median {s:.0} req/s  (runs {via_svc:.0?})");
    println!("  Pod IP {pod_ip}: median {d:.0} req/s  (runs {direct:.0?})");
    println!(
        "  ratio of medians {:.3}, median of per-pair ratios {:.3} (target >= 0.9)",
        s / d,
        pct(&ratios, 0.5)
    );
    Ok(())
}
