//! Root-only tests of the node network against the real kernel.
//!
//! NEEDS ROOT (network namespaces, veths, host routes) and `ping`
//! (iputils-ping). Each test uses its own prefix, netns names and address
//! ranges (node subnet 192.168.1xx.0/24, Pod CIDR 10.1xx.0.0/24, Services
//! and LoadBalancer pool from 198.18.0.0/15, the benchmarking range), so
//! tests run in parallel with each other and with a default minik8s server.
//! A guard removes whatever a test left, even when it fails.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nodenet::{command_in_netns, run_in_netns, NodeNetConfig, NodeNetwork, Sandbox};

fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        panic!("this test needs root (network namespaces, links, host routes); euid is {euid}");
    }
    if Command::new("ping").arg("-V").output().is_err() {
        panic!("this test needs ping (apt-get install iputils-ping)");
    }
}

fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A configuration no other test or server uses: within this process each
/// call gets the next subnet number after a random start; across processes
/// the start is random and subnets the host already routes are skipped.
fn unique_config(tag: &str) -> NodeNetConfig {
    static START: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let start = *START.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        nanos ^ (std::process::id() << 8)
    });
    let seed = start.wrapping_add(COUNTER.fetch_add(1, Ordering::SeqCst) * 7);
    let taken = sh("ip", &["-4", "route", "show", "table", "all"]);
    // Pick a node subnet and ranges the host does not route yet.
    let mut n = seed % 100;
    for _ in 0..100 {
        let subnet = format!("192.168.{}.", 100 + n);
        let pods = format!("10.{}.", 100 + n);
        let svc = format!("198.18.{}.", 100 + n);
        if !taken.contains(&subnet) && !taken.contains(&pods) && !taken.contains(&svc) {
            break;
        }
        n = (n + 1) % 100;
    }
    let id = seed % 100_000;
    let prefix = format!("mkt{id}");
    let octet = 100 + n;
    NodeNetConfig {
        name: format!("{prefix}-{tag}"),
        prefix: prefix.clone(),
        netns_prefix: prefix,
        host_ip: format!("192.168.{octet}.1/24").parse().unwrap(),
        node_ip: format!("192.168.{octet}.2").parse().unwrap(),
        pod_cidr: format!("10.{octet}.0.0/24").parse().unwrap(),
        cluster_pod_cidr: format!("10.{octet}.0.0/16").parse().unwrap(),
        service_cidr: format!("198.18.{octet}.0/24").parse().unwrap(),
        lb_pool: Some(format!("198.19.{octet}.0/24").parse().unwrap()),
        state_dir: std::env::temp_dir().join(format!("nodenet-test-{id}-{tag}")),
    }
}

/// Removes every trace of a test configuration with ip(8), whatever state
/// the test died in.
struct Cleanup {
    cfg: NodeNetConfig,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in netns_with_prefix(&self.cfg.netns_prefix) {
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
        let host_veth = nodenet::names::node_host_veth_name(&self.cfg.prefix, &self.cfg.name);
        let _ = Command::new("ip")
            .args(["link", "del", &host_veth])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.cfg.state_dir);
    }
}

fn first_host_veth(cfg: &NodeNetConfig) -> String {
    nodenet::names::node_host_veth_name(&cfg.prefix, &cfg.name)
}

fn netns_with_prefix(prefix: &str) -> Vec<String> {
    sh("ip", &["netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .map(str::to_string)
        .collect()
}

fn ping_once(netns: Option<&str>, ip: Ipv4Addr) -> bool {
    let ip = ip.to_string();
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "ping"]);
            c
        }
        None => Command::new("ping"),
    };
    cmd.args(["-c1", "-W1", &ip])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// The first echo must come back: a sandbox is only returned once its
/// bridge port forwards, so there is no warm-up to wait for.
fn ping(netns: Option<&str>, ip: Ipv4Addr) -> bool {
    ping_once(netns, ip)
}

fn ping_from(netns: &str, ip: Ipv4Addr) -> bool {
    ping(Some(netns), ip)
}

fn ping_from_host(ip: Ipv4Addr) -> bool {
    ping(None, ip)
}

fn assert_no_trace(cfg: &NodeNetConfig) {
    let netns = netns_with_prefix(&cfg.netns_prefix);
    assert!(netns.is_empty(), "netns left behind: {netns:?}");
    let host_veth = nodenet::names::node_host_veth_name(&cfg.prefix, &cfg.name);
    let links = sh("ip", &["-o", "link"]);
    assert!(
        !links.contains(&host_veth),
        "link {host_veth} left behind:\n{links}"
    );
    let routes = sh("ip", &["-4", "route", "show", "table", "all"]);
    for cidr in [
        cfg.cluster_pod_cidr.to_string(),
        cfg.service_cidr.to_string(),
        cfg.lb_pool.unwrap().to_string(),
        cfg.host_ip.trunc().to_string(),
    ] {
        assert!(
            !routes.contains(&cidr),
            "route {cidr} left behind:\n{routes}"
        );
    }
    assert!(
        !cfg.state_dir.join("sandboxes.json").exists(),
        "state file left behind"
    );
}

fn uid(i: usize) -> String {
    format!("{i:08x}-aaaa-4bbb-8ccc-{:012x}", i * 31 + 7)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_sandboxes_end_to_end() {
    require_root();
    let cfg = unique_config("node");
    let _cleanup = Cleanup { cfg: cfg.clone() };
    let host_ip_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_brnf_before =
        std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables").ok();

    let net = NodeNetwork::setup(cfg.clone()).await.expect("setup");
    assert_eq!(net.node_ip(), cfg.node_ip);
    assert_eq!(
        net.bridge_ip(),
        Ipv4Addr::new(10, cfg.host_ip.addr().octets()[2], 0, 1)
    );
    assert_eq!(
        net.netns_path(),
        PathBuf::from(format!("/run/netns/{}", cfg.name))
    );
    assert!(netns_with_prefix(&cfg.netns_prefix).contains(&cfg.name));

    // Sysctls are on inside the node netns, the host's are untouched.
    let forwarding = run_in_netns(&net.netns_path(), || {
        (
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
            std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables").ok(),
        )
    })
    .unwrap();
    assert_eq!(forwarding.0.trim(), "1");
    if let Some(v) = &forwarding.1 {
        assert_eq!(v.trim(), "1");
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_ip_before
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables").ok(),
        host_brnf_before
    );

    // command_in_netns runs a program inside the node netns.
    let out = command_in_netns(&net.netns_path(), "ip")
        .args(["-o", "-4", "addr"])
        .output()
        .unwrap();
    let addrs = String::from_utf8_lossy(&out.stdout);
    let has = |dev: &str, ip: Ipv4Addr| {
        addrs.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.get(1) == Some(&dev) && words.contains(&format!("{ip}/24").as_str())
        })
    };
    assert!(has("eth0", cfg.node_ip), "{addrs}");
    assert!(has("cni0", net.bridge_ip()), "{addrs}");
    let node_routes = sh("ip", &["-n", &cfg.name, "-4", "route"]);
    assert!(
        !node_routes.contains("default"),
        "node has a default route:\n{node_routes}"
    );

    // Host routes for the cluster CIDRs go via the NodeIP on our veth.
    let host_veth = nodenet::names::node_host_veth_name(&cfg.prefix, &cfg.name);
    let routes = sh("ip", &["-4", "route"]);
    for cidr in [cfg.cluster_pod_cidr, cfg.service_cidr, cfg.lb_pool.unwrap()] {
        let want = format!("{cidr} via {} dev {host_veth}", cfg.node_ip);
        assert!(routes.contains(&want), "missing `{want}` in:\n{routes}");
    }

    // Three Pods.
    let mut pods: Vec<Sandbox> = Vec::new();
    for (i, name) in ["web-a", "web-b", "client"].iter().enumerate() {
        let sb = net
            .create_sandbox(&uid(i), "default", name)
            .await
            .expect("create sandbox");
        assert!(cfg.pod_cidr.contains(&sb.ip));
        assert_eq!(sb.gateway, net.bridge_ip());
        assert_eq!(sb.prefix_len, 24);
        assert!(sb
            .netns_name
            .starts_with(&format!("{}-default-{name}-", cfg.netns_prefix)));
        assert!(netns_with_prefix(&cfg.netns_prefix).contains(&sb.netns_name));
        pods.push(sb);
    }
    let mut ips: Vec<_> = pods.iter().map(|p| p.ip).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 3, "distinct IPs");
    // Creating again for the same uid returns the same sandbox.
    assert_eq!(
        net.create_sandbox(&uid(0), "default", "web-a")
            .await
            .unwrap(),
        pods[0]
    );
    assert_eq!(net.sandboxes().len(), 3);

    // Hairpin is on for each Pod's bridge port.
    let bridge_links = sh(
        "ip",
        &["-n", &cfg.name, "-d", "link", "show", "master", "cni0"],
    );
    for p in &pods {
        assert!(bridge_links.contains(&p.host_veth), "{bridge_links}");
    }
    assert_eq!(
        bridge_links.matches("hairpin on").count(),
        3,
        "{bridge_links}"
    );

    // Pod <-> Pod, host -> Pod, Pod -> node and host addresses.
    for a in &pods {
        for b in &pods {
            if a.pod_uid != b.pod_uid {
                assert!(
                    ping_from(&a.netns_name, b.ip),
                    "{} -> {}",
                    a.netns_name,
                    b.ip
                );
            }
        }
        assert!(ping_from_host(a.ip), "host -> {}", a.ip);
        assert!(
            ping_from(&a.netns_name, cfg.node_ip),
            "{} -> node",
            a.netns_name
        );
        assert!(
            ping_from(&a.netns_name, cfg.host_ip.addr()),
            "{} -> host",
            a.netns_name
        );
    }
    assert!(ping_from_host(cfg.node_ip));

    // A socket opened with run_in_netns serves inside the Pod netns.
    let listener = run_in_netns(&pods[0].netns_path, || TcpListener::bind("0.0.0.0:8080"))
        .unwrap()
        .unwrap();
    let target = (pods[0].ip, 8080);
    let connected = run_in_netns(&pods[2].netns_path, move || {
        TcpStream::connect_timeout(&target.into(), Duration::from_secs(2)).is_ok()
    })
    .unwrap();
    assert!(connected, "TCP client pod -> web-a:8080");
    drop(listener);

    // Remove one: netns and veth gone, address released, others still fine.
    net.remove_sandbox(&pods[1].pod_uid).await.unwrap();
    net.remove_sandbox(&pods[1].pod_uid).await.unwrap();
    assert!(!netns_with_prefix(&cfg.netns_prefix).contains(&pods[1].netns_name));
    let node_links = sh("ip", &["-n", &cfg.name, "-o", "link"]);
    assert!(!node_links.contains(&pods[1].host_veth), "{node_links}");
    assert_eq!(net.sandboxes().len(), 2);
    assert!(ping_from(&pods[0].netns_name, pods[2].ip));

    // Concurrent creations get distinct addresses.
    let batch: Vec<_> = (200..206).map(uid).collect();
    let made =
        futures::future::join_all(batch.iter().map(|u| net.create_sandbox(u, "batch", "p"))).await;
    let mut batch_ips: Vec<Ipv4Addr> = made.into_iter().map(|r| r.unwrap().ip).collect();
    batch_ips.extend(pods.iter().map(|p| p.ip));
    batch_ips.sort();
    batch_ips.dedup();
    assert_eq!(batch_ips.len(), 6 + 3);
    for u in &batch {
        net.remove_sandbox(u).await.unwrap();
    }

    // Cost of a sandbox: median of 30.
    let mut times = Vec::new();
    for i in 100..130 {
        let start = Instant::now();
        net.create_sandbox(&uid(i), "bench", &format!("pod-{i}"))
            .await
            .unwrap();
        times.push(start.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "create_sandbox: median {:.2} ms, min {:.2} ms, max {:.2} ms (n=30)",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
    let mut removal = Vec::new();
    for i in 100..130 {
        let start = Instant::now();
        net.remove_sandbox(&uid(i)).await.unwrap();
        removal.push(start.elapsed());
    }
    removal.sort();
    println!(
        "remove_sandbox: median {:.2} ms (n=30)",
        removal[15].as_secs_f64() * 1e3
    );
    assert!(
        median < Duration::from_millis(50),
        "create_sandbox median {median:?}"
    );

    net.teardown().await.expect("teardown");
    assert_no_trace(&cfg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_adopts_what_a_crashed_server_left() {
    require_root();
    let cfg = unique_config("crash");
    let _cleanup = Cleanup { cfg: cfg.clone() };

    let net = NodeNetwork::setup(cfg.clone()).await.expect("first setup");
    let kept = net
        .create_sandbox(&uid(1), "default", "kept")
        .await
        .unwrap();
    let broken = net
        .create_sandbox(&uid(2), "default", "broken")
        .await
        .unwrap();
    let unrecorded = net
        .create_sandbox(&uid(3), "default", "unrecorded")
        .await
        .unwrap();
    // "kill -9": the value goes away without teardown; kernel objects stay.
    drop(net);

    // Damage: one sandbox loses its veth, one is missing from the state
    // file, and a stray shell with a sandbox-shaped name appears.
    let status = Command::new("ip")
        .args(["-n", &cfg.name, "link", "del", &broken.host_veth])
        .status()
        .unwrap();
    assert!(status.success());
    let state_path = cfg.state_dir.join("sandboxes.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["sandboxes"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["pod_uid"] != unrecorded.pod_uid.as_str());
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
    let shell = format!("{}-default-orphan-deadbeef", cfg.netns_prefix);
    assert!(Command::new("ip")
        .args(["netns", "add", &shell])
        .status()
        .unwrap()
        .success());

    // Same config again.
    let net = NodeNetwork::setup(cfg.clone()).await.expect("second setup");
    let mut adopted = net.sandboxes();
    adopted.sort_by(|a, b| a.pod_uid.cmp(&b.pod_uid));
    assert_eq!(
        adopted,
        vec![kept.clone(), broken.clone()],
        "kept and repaired, same IPs"
    );
    let present = netns_with_prefix(&cfg.netns_prefix);
    assert!(present.contains(&kept.netns_name), "{present:?}");
    assert!(present.contains(&broken.netns_name), "{present:?}");
    assert!(
        !present.contains(&unrecorded.netns_name),
        "unrecorded sandbox removed: {present:?}"
    );
    assert!(
        !present.contains(&shell),
        "empty shell removed: {present:?}"
    );
    let node_links = sh("ip", &["-n", &cfg.name, "-o", "link"]);
    assert!(!node_links.contains(&unrecorded.host_veth), "{node_links}");

    // Both work, and a new Pod gets an address neither holds.
    assert!(ping_from(&kept.netns_name, broken.ip));
    assert!(ping_from(&broken.netns_name, kept.ip));
    assert!(ping_from_host(broken.ip));
    let fresh = net
        .create_sandbox(&uid(4), "default", "fresh")
        .await
        .unwrap();
    assert!(fresh.ip != kept.ip && fresh.ip != broken.ip);
    assert!(ping_from(&fresh.netns_name, kept.ip));
    // The same uid keeps its address across a restart.
    assert_eq!(
        net.create_sandbox(&uid(1), "default", "kept")
            .await
            .unwrap(),
        kept
    );

    net.teardown().await.expect("teardown");
    assert_no_trace(&cfg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_twice_is_idempotent_and_conflicts_are_refused() {
    require_root();
    let cfg = unique_config("idem");
    let _cleanup = Cleanup { cfg: cfg.clone() };

    let first = NodeNetwork::setup(cfg.clone()).await.expect("setup");
    let sb = first.create_sandbox(&uid(9), "default", "p").await.unwrap();
    let link_ids = || {
        let host = sh(
            "ip",
            &["-o", "link", "show", first_host_veth(&cfg).as_str()],
        );
        let node = sh("ip", &["-n", &cfg.name, "-o", "link"]);
        (host.split(':').next().unwrap().to_string(), node)
    };
    let before = link_ids();
    drop(first);
    // Nothing broken: everything is adopted as is.
    let second = NodeNetwork::setup(cfg.clone()).await.expect("setup again");
    assert_eq!(second.sandboxes(), vec![sb.clone()]);
    // Same links (same ifindexes): adopted, not recreated.
    assert_eq!(link_ids(), before);
    assert!(ping_from_host(sb.ip));

    // Another node whose routed CIDRs are already routed elsewhere is refused.
    let mut other = unique_config("other");
    other.cluster_pod_cidr = cfg.cluster_pod_cidr;
    other.pod_cidr = ipnet::Ipv4Net::new(
        Ipv4Addr::new(10, cfg.cluster_pod_cidr.addr().octets()[1], 9, 0),
        24,
    )
    .unwrap();
    let _other_cleanup = Cleanup { cfg: other.clone() };
    let err = NodeNetwork::setup(other.clone())
        .await
        .err()
        .expect("conflict");
    assert!(err.to_string().contains("already exists via"), "{err}");
    // Refused before anything was created.
    assert!(netns_with_prefix(&other.netns_prefix).is_empty());

    second.teardown().await.expect("teardown");
    assert_no_trace(&cfg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_with_changed_ranges_replaces_stale_ones() {
    require_root();
    let cfg = unique_config("change");
    let _cleanup = Cleanup { cfg: cfg.clone() };
    let net = NodeNetwork::setup(cfg.clone()).await.expect("setup");
    let old = net.create_sandbox(&uid(1), "default", "old").await.unwrap();
    drop(net);

    // Same names, another Pod CIDR of the cluster range and no LB pool.
    let octet = cfg.cluster_pod_cidr.addr().octets()[1];
    let changed = NodeNetConfig {
        pod_cidr: format!("10.{octet}.7.0/24").parse().unwrap(),
        lb_pool: None,
        ..cfg.clone()
    };
    let net = NodeNetwork::setup(changed.clone())
        .await
        .expect("setup changed");
    assert!(
        net.sandboxes().is_empty(),
        "sandbox outside the new Pod CIDR is removed"
    );
    assert!(!netns_with_prefix(&cfg.netns_prefix).contains(&old.netns_name));
    let bridge = sh("ip", &["-n", &cfg.name, "-4", "-o", "addr", "show", "cni0"]);
    assert!(bridge.contains(&format!("10.{octet}.7.1/24")), "{bridge}");
    assert!(
        !bridge.contains(&format!("10.{octet}.0.1/24")),
        "stale bridge address: {bridge}"
    );
    let node_routes = sh("ip", &["-n", &cfg.name, "-4", "route"]);
    assert!(
        !node_routes.contains(&cfg.lb_pool.unwrap().to_string()),
        "{node_routes}"
    );
    let host_routes = sh("ip", &["-4", "route"]);
    assert!(
        !host_routes.contains(&cfg.lb_pool.unwrap().to_string()),
        "{host_routes}"
    );
    let fresh = net
        .create_sandbox(&uid(2), "default", "fresh")
        .await
        .unwrap();
    assert!(changed.pod_cidr.contains(&fresh.ip));
    assert!(ping_from_host(fresh.ip));

    net.teardown().await.expect("teardown");
    assert_no_trace(&cfg);
}
