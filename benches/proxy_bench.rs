//! kube-proxy figures on a live node (root): network programming latency
//! (a Pod turns Ready or is deleted -> its DNAT rule is in / out of the
//! kernel) and requests/s through a ClusterIP versus straight to a Pod.
//! Run by `scripts/bench-proxy.sh`.
//!
//!     proxy_bench <minik8s binary> [SAMPLES]

use client::{Client, ListParams};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NODE: &str = "mkbench";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "target/release/minik8s".into());
    let samples: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(30);
    let data = std::env::temp_dir().join(format!("minik8s-proxy-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut server = start(&bin, &data);
    let url = read_url(&mut server);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(run(Client::new(url), samples))
    }));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&data);
    if result.is_err() {
        std::process::exit(1);
    }
}

fn start(bin: &str, data: &std::path::Path) -> Child {
    Command::new(bin)
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--dns-upstream",
            "none",
            "--node-name",
            NODE,
        ])
        .args([
            "--node-ip",
            "192.168.233.2/24",
            "--pod-cidr",
            "10.233.0.0/16",
            "--lb-pool",
            "172.31.233.0/24",
        ])
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start minik8s server")
}

fn read_url(child: &mut Child) -> String {
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let line = lines.next().expect("server printed its address").unwrap();
    std::thread::spawn(move || for _ in lines {});
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string()
}

/// Is a DNAT to `ip` in the node's nat table now?
fn rule_present(ip: &str) -> bool {
    let out = Command::new("ip")
        .args(["netns", "exec", NODE, "iptables-save", "-t", "nat"])
        .output()
        .expect("iptables-save");
    String::from_utf8_lossy(&out.stdout).contains(&format!("--to-destination {ip}:80"))
}

fn wait_rule(ip: &str, present: bool) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if rule_present(ip) == present {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "rule for {ip} never became {present}"
        );
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn run(c: Client, samples: usize) {
    use api::registry::{PODS, SERVICES};
    use futures::StreamExt;
    let svc = json!({"apiVersion":"v1","kind":"Service","metadata":{"name":"bench"},
        "spec":{"selector":{"app":"bench"},"ports":[{"port":80}]}});
    let svc = c.create(&SERVICES, Some("default"), &svc).await.unwrap();
    let cluster_ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();

    let (mut ready_ms, mut delete_ms) = (Vec::new(), Vec::new());
    for i in 0..samples {
        let name = format!("bench-{i}");
        let pod = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":name,"labels":{"app":"bench"}},
            "spec":{"containers":[{"name":"nginx","image":"nginx","ports":[{"containerPort":80}]}]}});
        let created = c.create(&PODS, Some("default"), &pod).await.unwrap();
        let rv = created["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        let params = ListParams::fields(format!("metadata.name={name}"));
        let mut watch = Box::pin(c.watch(&PODS, Some("default"), &params, &rv).await.unwrap());
        let (ready_at, ip) = loop {
            let ev = watch.next().await.unwrap().unwrap();
            let ready = ev.object["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c: &Value| c["type"] == "Ready" && c["status"] == "True");
            if ready {
                break (
                    Instant::now(),
                    ev.object["status"]["podIP"].as_str().unwrap().to_string(),
                );
            }
        };
        let ip2 = ip.clone();
        let in_kernel = tokio::task::spawn_blocking(move || wait_rule(&ip2, true))
            .await
            .unwrap();
        ready_ms.push(in_kernel.duration_since(ready_at).as_secs_f64() * 1000.0);
        if i + 1 < samples {
            let deleted_at = Instant::now();
            c.delete(&PODS, Some("default"), &name).await.unwrap();
            let ip2 = ip.clone();
            let gone = tokio::task::spawn_blocking(move || wait_rule(&ip2, false))
                .await
                .unwrap();
            delete_ms.push(gone.duration_since(deleted_at).as_secs_f64() * 1000.0);
        } else {
            // Keep the last Pod for the throughput comparison.
            let (cip, pip) = (cluster_ip.clone(), ip.clone());
            tokio::task::spawn_blocking(move || throughput(&cip, &pip))
                .await
                .unwrap();
        }
    }
    println!("network programming latency, Pod Ready -> DNAT rule in kernel ({samples} Pods):");
    println!(
        "  p50 {:6.1} ms   p99 {:6.1} ms   (target p50 < 20 ms, p99 < 100 ms)",
        pct(&mut ready_ms, 0.5),
        pct(&mut ready_ms, 0.99)
    );
    println!(
        "network programming latency, Pod deleted -> rule gone ({} Pods):",
        delete_ms.len()
    );
    println!(
        "  p50 {:6.1} ms   p99 {:6.1} ms",
        pct(&mut delete_ms, 0.5),
        pct(&mut delete_ms, 0.99)
    );
}

/// wrk from the host, alternating ClusterIP and Pod IP runs.
fn throughput(cluster_ip: &str, pod_ip: &str) {
    let rps = |ip: &str| -> f64 {
        let out = Command::new("wrk")
            .args(["-t1", "-c8", "-d3s", &format!("http://{ip}/")])
            .output()
            .expect("wrk (apt-get install wrk)");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("Requests/sec:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let (mut via_svc, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        via_svc.push(rps(cluster_ip));
        direct.push(rps(pod_ip));
    }
    let (s, d) = (pct(&mut via_svc, 0.5), pct(&mut direct, 0.5));
    println!("requests/s through ClusterIP {s:.0}, straight to the Pod {d:.0}: ratio {:.3} (target >= 0.9), medians of 5 alternating 3 s wrk runs", s / d);
}
