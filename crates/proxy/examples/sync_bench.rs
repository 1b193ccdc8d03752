//! Measures kube-proxy syncs at scale inside a throw-away network namespace
//! (root): a full sync of N Services with M endpoints each, and a partial
//! sync after one endpoint changes. Run by `scripts/bench-proxy.sh`.
//!
//!     sync_bench [SERVICES] [ENDPOINTS] [RUNS]

use proxy::model::{Endpoint, ServicePort};
use proxy::plan::{plan_rules, NodeContext, RulePlanner};
use proxy::restore::{render_cleanup, render_full, render_partial};
use proxy::{IptablesInNetns, RuleWriter};
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Instant;

fn ports(services: usize, endpoints: usize, shift: usize) -> Vec<ServicePort> {
    (0..services)
        .map(|s| ServicePort {
            namespace: "bench".into(),
            name: format!("svc-{s}"),
            port_name: String::new(),
            protocol: "tcp".into(),
            cluster_ip: Some(Ipv4Addr::from(
                u32::from(Ipv4Addr::new(10, 96, 0, 0)) + 100 + s as u32,
            )),
            port: 80,
            node_port: None,
            external_ips: vec![],
            load_balancer_ips: vec![],
            affinity_timeout: None,
            endpoints: (0..endpoints)
                .map(|e| {
                    // `shift` moves one endpoint of service 0 (a Pod replaced).
                    let n = (s * endpoints + e + if s == 0 && e == 0 { shift } else { 0 }) as u32;
                    Endpoint {
                        ip: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 0, 0)) + 2 + n),
                        port: 8080,
                    }
                })
                .collect(),
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let services = *args.first().unwrap_or(&1000);
    let endpoints = *args.get(1).unwrap_or(&10);
    let runs = *args.get(2).unwrap_or(&5);
    let ns = format!("mkbench-{}", std::process::id());
    assert!(
        Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .unwrap()
            .success(),
        "ip netns add (needs root)"
    );
    let writer = IptablesInNetns {
        netns_path: format!("/run/netns/{ns}").into(),
        legacy: std::env::var("MINIK8S_IPTABLES").as_deref() == Ok("legacy"),
    };
    let node = NodeContext {
        cluster_cidr: "10.244.0.0/16".into(),
    };

    let (mut full_ms, mut plan_ms, mut partial_ms) = (vec![], vec![], vec![]);
    let mut planner = RulePlanner::default();
    for run in 0..runs {
        let base = ports(services, endpoints, 0);
        let t = Instant::now();
        let _ = plan_rules(&base, &node);
        plan_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let desired = planner.plan(&base, &node);
        // A full sync, as at start and every resync: replace the tables.
        let t = Instant::now();
        writer
            .restore(&render_full(&desired), true)
            .expect("full sync");
        full_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        // One endpoint replaced: plan incrementally, write what changed.
        let next = ports(services, endpoints, 1_000_000 + run);
        let t = Instant::now();
        let changed = planner.plan(&next, &node);
        let payload = render_partial(&desired, &changed).expect("a change");
        writer.restore(&payload, false).expect("partial sync");
        partial_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    writer.restore(&render_cleanup(), true).expect("cleanup");
    let rules: usize = plan_rules(&ports(services, endpoints, 0), &node)
        .nat
        .values()
        .map(Vec::len)
        .sum();
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    println!("services={services} endpoints/service={endpoints} nat_rules={rules} runs={runs}");
    println!(
        "plan (pure)               median {:8.1} ms",
        median(&mut plan_ms)
    );
    println!(
        "full sync                 median {:8.1} ms  (target < 1000 ms)",
        median(&mut full_ms)
    );
    println!(
        "one endpoint change       median {:8.1} ms  (target < 100 ms, plan + partial restore)",
        median(&mut partial_ms)
    );
}
