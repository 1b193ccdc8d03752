//! Pod figures on a live node (root), against a `minik8s server` this
//! bench starts (the test harness' node settings, so it never touches a
//! server someone else runs). Run by `scripts/bench-pods.sh`.
//!
//!     pod_bench [SINGLE] [BURST] [MANY]        (defaults 60 30 100)
//!
//! 1. Startup latency of one Pod, from the create request to the Ready
//!    condition seen on a watch: SINGLE Pods created one at a time (each
//!    deleted before the next), p50 / p99 / max.
//! 2. BURST Pods created at once: time until all are Ready on the watch;
//!    then all deleted at once: time until every Pod, sandbox and process
//!    is gone.
//! 3. MANY Pods running at once: what each sandbox costs, as the RSS and
//!    PSS of its processes, the server's own growth, and the machine's
//!    MemAvailable drop (noisy: the machine is shared).
//! 4. `kill -9` of the server with MANY Pods, a restart: time until every
//!    Pod answers again on its old IP, with one nginx per sandbox.
//! 5. SIGTERM: time to stop, and nothing left (netns, veth, routes,
//!    mounts, processes).
//!
//! Exits non-zero when a check fails.

#[path = "../tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use api::registry::PODS;
use client::{Client, ListParams};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::{descendants, pod_netns_of, require_root, Server, TempDir};
use tokio::sync::mpsc;

const LABEL: &str = "bench=pods";
const TIMEOUT: Duration = Duration::from_secs(120);

fn main() {
    require_root();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let single = args.first().copied().unwrap_or(60).max(1);
    let burst = args.get(1).copied().unwrap_or(30).max(1);
    let many = args.get(2).copied().unwrap_or(100).max(1);

    if std::env::var_os("MINIK8S_SERVER_LOG").is_none() {
        std::env::set_var("MINIK8S_SERVER_LOG", "warn");
    }
    let dir = TempDir::new("pod-bench");
    let mut server = Server::with_node(&dir.path().join("data"), &[]);
    println!("binary: {}", support::BIN);
    println!(
        "node {} (Pod CIDR {})",
        server.node_netns(),
        server.node.as_ref().expect("node").pod_cidr
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut failures = Vec::new();

    let c = server.client();
    rt.block_on(single_pods(&c, &server, single));
    rt.block_on(burst_pods(&c, &server, burst, &mut failures));
    let ips = rt.block_on(many_pods(&c, &server, many, &mut failures));
    crash_and_restart(&rt, &mut server, &ips, &mut failures);

    let t = Instant::now();
    server.stop();
    let stop = t.elapsed();
    let left = server.leftovers_all();
    println!("\n== SIGTERM with {many} Pods ==");
    println!("server stopped in {stop:?}");
    if left.is_empty() {
        println!("teardown: nothing left (netns, veth, routes, mounts, processes)");
    } else {
        failures.push(format!("after SIGTERM: {left:?}"));
    }

    if failures.is_empty() {
        println!("\nall checks passed");
    } else {
        println!("\nFAILED:");
        for f in &failures {
            println!("  {f}");
        }
        drop(server);
        std::process::exit(1);
    }
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "pods"}},
        "spec": {
            "containers": [{
                "name": "nginx",
                "image": "nginx:1.27",
                "ports": [{"containerPort": 80}]
            }]
        }
    })
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// What the watch saw, by Pod name, with the moment it was seen.
enum Seen {
    Ready(String, Instant),
    Deleted(String, Instant),
}

/// A watch on the bench's Pods from now on: every Pod's first Ready and
/// its deletion, as they arrive.
async fn watch(c: &Client) -> mpsc::UnboundedReceiver<Seen> {
    let params = ListParams::labels(LABEL);
    let mut stream = Box::pin(support::watch_from_now(c, &PODS, "default", &params).await);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut ready = BTreeSet::new();
        while let Some(ev) = stream.next().await {
            let now = Instant::now();
            let Ok(ev) = ev else { break };
            let name = ev.object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let seen = match ev.kind.as_str() {
                "DELETED" => Seen::Deleted(name, now),
                "ADDED" | "MODIFIED" if is_ready(&ev.object) && ready.insert(name.clone()) => {
                    Seen::Ready(name, now)
                }
                "ERROR" => panic!("watch error: {}", ev.object),
                _ => continue,
            };
            if tx.send(seen).is_err() {
                break;
            }
        }
    });
    rx
}

/// Wait for `names` to be Ready (or deleted, when `deleted`) on the watch;
/// returns when each was seen.
async fn wait_for(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    names: &BTreeSet<String>,
    deleted: bool,
) -> BTreeMap<String, Instant> {
    let mut seen = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while seen.len() < names.len() {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out: {} of {} Pods seen", seen.len(), names.len()))
            .expect("the watch ended");
        match ev {
            Seen::Ready(n, t) if !deleted && names.contains(&n) => {
                seen.entry(n).or_insert(t);
            }
            Seen::Deleted(n, t) if deleted && names.contains(&n) => {
                seen.entry(n).or_insert(t);
            }
            _ => {}
        }
    }
    seen
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    format!(
        "n={} p50 {}  p99 {}  max {}  mean {}",
        samples.len(),
        ms(percentile(samples, 0.50)),
        ms(percentile(samples, 0.99)),
        ms(*samples.last().expect("samples")),
        ms(mean)
    )
}

async fn delete_all(c: &Client, names: &BTreeSet<String>) {
    let deletes = names.iter().map(|n| c.delete(&PODS, Some("default"), n));
    for r in futures::future::join_all(deletes).await {
        r.expect("delete pod");
    }
}

async fn single_pods(c: &Client, server: &Server, n: usize) {
    println!("\n== one Pod at a time: create -> Ready on a watch ==");
    let mut rx = watch(c).await;
    let mut samples = Vec::new();
    // Three unmeasured Pods warm the page cache and the connection pool.
    for i in 0..n + 3 {
        let name = format!("single-{i}");
        let names: BTreeSet<String> = [name.clone()].into();
        let t0 = Instant::now();
        c.create(&PODS, Some("default"), &pod(&name))
            .await
            .expect("create pod");
        let ready = wait_for(&mut rx, &names, false).await[&name];
        if i >= 3 {
            samples.push(ready - t0);
        }
        // Outside the measured span: remember its sandbox for the final check.
        server.track();
        delete_all(c, &names).await;
        wait_for(&mut rx, &names, true).await;
    }
    println!("startup latency: {}", summary(&mut samples));
}

async fn burst_pods(c: &Client, server: &Server, n: usize, failures: &mut Vec<String>) {
    println!("\n== {n} Pods created at once ==");
    let mut rx = watch(c).await;
    let names: BTreeSet<String> = (0..n).map(|i| format!("burst-{i}")).collect();
    let t0 = Instant::now();
    let creates = names.iter().map(|name| async move {
        c.create(&PODS, Some("default"), &pod(name))
            .await
            .expect("create pod");
    });
    futures::future::join_all(creates).await;
    let created = t0.elapsed();
    let ready = wait_for(&mut rx, &names, false).await;
    let mut lat: Vec<Duration> = ready.values().map(|t| *t - t0).collect();
    let all = *lat.iter().max().expect("pods");
    println!(
        "all {n} Ready after {} (create requests took {})",
        ms(all),
        ms(created)
    );
    println!("per Pod from the first create: {}", summary(&mut lat));

    // Their sandboxes, to check they go.
    server.track();
    let list = c
        .list(&PODS, Some("default"), &ListParams::labels(LABEL))
        .await
        .expect("list");
    let pods: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
    let netns: Vec<String> = pods.iter().filter_map(pod_netns_of).collect();
    if netns.len() != n {
        failures.push(format!(
            "{n} Pods Ready but {} sandboxes found",
            netns.len()
        ));
    }
    let inodes: BTreeSet<u64> = netns
        .iter()
        .filter_map(|n| support::named_netns_inode(n))
        .collect();

    println!("\n== {n} Pods deleted at once ==");
    let t0 = Instant::now();
    delete_all(c, &names).await;
    wait_for(&mut rx, &names, true).await;
    let gone_api = t0.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let live = support::netns_names();
        let left_ns = netns.iter().filter(|n| live.contains(n)).count();
        let left_procs = support::pids_in_netns(&inodes).len();
        if left_ns == 0 && left_procs == 0 {
            println!(
                "gone from the API after {}, sandboxes and processes after {}",
                ms(gone_api),
                ms(t0.elapsed())
            );
            break;
        }
        if Instant::now() > deadline {
            failures.push(format!(
                "after deleting {n} Pods: {left_ns} netns and {left_procs} processes left"
            ));
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let veths = node_bridge_ports(server);
    if veths != 0 {
        failures.push(format!(
            "after deleting {n} Pods: {veths} veths still on the node's bridge"
        ));
    } else {
        println!("no veth left on the node's bridge");
    }
}

/// Pod veths still attached to the node's bridge.
fn node_bridge_ports(server: &Server) -> usize {
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &server.node_netns(),
            "ip",
            "-o",
            "link",
            "show",
            "master",
            "cni0",
        ])
        .output()
        .expect("ip link in the node");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn meminfo(field: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// kB of a `/proc/PID/<file>` field (`VmRSS` in status, `Pss` in
/// smaps_rollup).
fn proc_kb(pid: i32, file: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

async fn many_pods(
    c: &Client,
    server: &Server,
    n: usize,
    failures: &mut Vec<String>,
) -> BTreeMap<String, String> {
    println!("\n== {n} Pods running at once ==");
    let server_pid = server.pid().expect("server runs");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let avail0 = meminfo("MemAvailable");
    let slab0 = meminfo("Slab");
    let server_rss0 = proc_kb(server_pid, "status", "VmRSS");
    let mut rx = watch(c).await;
    let names: BTreeSet<String> = (0..n).map(|i| format!("many-{i}")).collect();
    let t0 = Instant::now();
    let creates = names.iter().map(|name| async move {
        c.create(&PODS, Some("default"), &pod(name))
            .await
            .expect("create pod");
    });
    futures::future::join_all(creates).await;
    let ready = wait_for(&mut rx, &names, false).await;
    let all = ready.values().map(|t| *t - t0).max().expect("pods");
    println!("all {n} Ready after {}", ms(all));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let list = c
        .list(&PODS, Some("default"), &ListParams::labels(LABEL))
        .await
        .expect("list");
    let pods: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
    let ips: BTreeMap<String, String> = pods
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p["status"]["podIP"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let distinct: BTreeSet<&String> = ips.values().collect();
    if distinct.len() != n {
        failures.push(format!("{n} Pods have {} distinct IPs", distinct.len()));
    }
    let answering = answering(&ips);
    println!("{answering} of {n} Pods answer HTTP on their IP from the host");
    if answering != n {
        failures.push(format!("only {answering} of {n} Pods answer"));
    }

    let procs = descendants(server_pid);
    let rss: u64 = procs.iter().map(|p| proc_kb(*p, "status", "VmRSS")).sum();
    let pss: u64 = procs
        .iter()
        .map(|p| proc_kb(*p, "smaps_rollup", "Pss"))
        .sum();
    let server_rss = proc_kb(server_pid, "status", "VmRSS");
    let avail = meminfo("MemAvailable");
    let slab = meminfo("Slab");
    let per = |kb: u64| format!("{:.0} kB", kb as f64 / n as f64);
    println!(
        "container processes: {} (RSS {} kB, PSS {} kB)",
        procs.len(),
        rss,
        pss
    );
    println!(
        "per Pod: RSS {}  PSS {}  (nginx is the minik8s binary: its text is shared)",
        per(rss),
        per(pss)
    );
    println!(
        "server RSS {} kB -> {} kB: {} per Pod",
        server_rss0,
        server_rss,
        per(server_rss.saturating_sub(server_rss0))
    );
    println!(
        "MemAvailable drop {} kB: {} per Pod (kernel Slab +{} kB: {} per Pod)",
        avail0.saturating_sub(avail),
        per(avail0.saturating_sub(avail)),
        slab.saturating_sub(slab0),
        per(slab.saturating_sub(slab0))
    );
    server.track();
    ips
}

/// How many Pods serve nginx's page on their IP, asked from the host.
fn answering(ips: &BTreeMap<String, String>) -> usize {
    ips.values()
        .filter(|ip| {
            let addr = format!("{ip}:80").parse().expect("addr");
            support::http_get_addr(addr, "/", Duration::from_secs(2))
                .is_ok_and(|(code, body)| code == 200 && body.contains("Welcome to nginx!"))
        })
        .count()
}

fn crash_and_restart(
    rt: &tokio::runtime::Runtime,
    server: &mut Server,
    ips: &BTreeMap<String, String>,
    failures: &mut Vec<String>,
) {
    let n = ips.len();
    println!("\n== kill -9 with {n} Pods, then a restart ==");
    server.kill9();
    let t0 = Instant::now();
    server.start();
    let api_up = t0.elapsed();
    let c = server.client();
    let deadline = Instant::now() + TIMEOUT;
    let mut pending: BTreeMap<String, String> = ips.clone();
    let mut lists = 0;
    while !pending.is_empty() && Instant::now() < deadline {
        // A Pod is back when its sandbox holds one nginx that answers.
        let list = rt
            .block_on(c.list(&PODS, Some("default"), &ListParams::labels(LABEL)))
            .expect("list");
        lists += 1;
        // One scan of /proc per poll: nginx processes by network namespace.
        let mut nginx_in: BTreeMap<u64, usize> = BTreeMap::new();
        for pid in support::all_pids() {
            if support::proc_cmdline(pid).contains("__image nginx") {
                if let Some(inode) = support::netns_inode_of_pid(pid) {
                    *nginx_in.entry(inode).or_default() += 1;
                }
            }
        }
        for p in list["items"].as_array().into_iter().flatten() {
            let name = p["metadata"]["name"].as_str().unwrap_or_default();
            let Some(ip) = pending.get(name).cloned() else {
                continue;
            };
            let Some(netns) = pod_netns_of(p) else {
                continue;
            };
            let Some(inode) = support::named_netns_inode(&netns) else {
                continue;
            };
            let nginx = nginx_in.get(&inode).copied().unwrap_or(0);
            if nginx > 1 {
                failures.push(format!("{nginx} nginx processes in the sandbox of {name}"));
            }
            let answers = nginx == 1
                && support::http_get_addr(
                    format!("{ip}:80").parse().expect("addr"),
                    "/",
                    Duration::from_millis(500),
                )
                .is_ok_and(|(code, _)| code == 200);
            if answers && p["status"]["podIP"].as_str() == Some(ip.as_str()) {
                pending.remove(name);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let back = t0.elapsed();
    if pending.is_empty() {
        println!(
            "API up after {}, all {n} Pods answering on their old IPs after {} ({lists} polls)",
            ms(api_up),
            ms(back)
        );
    } else {
        failures.push(format!(
            "after kill -9 and a restart, {} Pods never came back: {:?}",
            pending.len(),
            pending.keys().take(5).collect::<Vec<_>>()
        ));
    }
    server.track();
    let left = server.leftovers_all();
    let sandboxes = left.iter().filter(|l| l.starts_with("pod netns ")).count();
    let live_names: BTreeSet<String> = support::netns_names().into_iter().collect();
    println!(
        "sandboxes after the restart: {sandboxes} (of {} netns on the machine)",
        live_names.len()
    );
    if sandboxes != n {
        failures.push(format!("{sandboxes} sandboxes after the restart, want {n}"));
    }
}
