//! Measures kube-proxy syncs at scale inside a throw-away network namespace
//! (root), through the code the proxy runs (`service_ports`, `RuleSync`):
//! a full sync of N Services with M endpoints each into empty tables (a
//! start), the same over the existing rules (the periodic resync), and a
//! partial sync after one endpoint of one Service is replaced. Each phase is
//! timed: model (Services and EndpointSlices to service ports), plan,
//! render, iptables-restore. Run by `scripts/bench-proxy.sh`.
//!
//!     sync_bench [SERVICES] [ENDPOINTS] [RUNS] [--restore | --legacy]
//!
//! By default rules go through minik8s' netlink writer, as in the proxy;
//! `--restore` writes with the system's iptables-restore (nf_tables on
//! Debian) and `--legacy` with iptables-legacy-restore, for comparison.

use k8s_openapi::api::core::v1::{Service, ServicePort as SpecPort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use proxy::model::service_ports;
use proxy::plan::NodeContext;
use proxy::{Backend, IptablesInNetns, RuleSync, SyncStats};
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn service(s: usize) -> Service {
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + 100 + s as u32);
    Service {
        metadata: ObjectMeta {
            namespace: Some("bench".into()),
            name: Some(format!("svc-{s}")),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some(ip.to_string()),
            ports: Some(vec![SpecPort {
                port: 80,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The slice of Service `s`; `generation` replaces its first endpoint
/// (a Pod replaced by another with a new IP).
fn slice(s: usize, endpoints: usize, generation: usize) -> EndpointSlice {
    let ip = |n: usize| Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 0, 0)) + 2 + n as u32);
    EndpointSlice {
        metadata: ObjectMeta {
            namespace: Some("bench".into()),
            name: Some(format!("svc-{s}-abcde")),
            labels: Some([("kubernetes.io/service-name".to_string(), format!("svc-{s}"))].into()),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints: (0..endpoints)
            .map(|e| {
                let n = if e == 0 && generation > 0 {
                    1_000_000 + generation
                } else {
                    s * endpoints + e
                };
                Endpoint {
                    addresses: vec![ip(n).to_string()],
                    conditions: Some(EndpointConditions {
                        ready: Some(true),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            })
            .collect(),
        ports: Some(vec![EndpointPort {
            port: Some(8080),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
    }
}

/// A named network namespace removed when dropped, even on a panic.
struct Netns(String);

impl Netns {
    fn create(name: String) -> Netns {
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip netns add {name} (needs root)");
        Netns(name)
    }
    fn path(&self) -> std::path::PathBuf {
        format!("/run/netns/{}", self.0).into()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// `-A` lines of the nat table in the namespace: checks that what the
/// benchmark timed really reached the kernel.
fn kernel_nat_rules(ns: &Netns, legacy: bool) -> usize {
    let save = if legacy {
        "iptables-legacy-save"
    } else {
        "iptables-save"
    };
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, save, "-t", "nat"])
        .output()
        .expect("iptables-save");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("-A "))
        .count()
}

/// CPU time (user + system) of this process and its waited-for children
/// so far: the kernel's work on the rules is system time of whoever sent
/// them (this process over netlink, or an iptables-restore child). On a
/// shared machine the wall time also counts waiting for a CPU.
fn cpu_so_far() -> Duration {
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let mut total = Duration::ZERO;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: getrusage fills the struct we pass and has no other effect.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut u) };
        total += tv(u.ru_utime) + tv(u.ru_stime);
    }
    total
}

#[derive(Default)]
struct Phases {
    model: Vec<f64>,
    plan: Vec<f64>,
    render: Vec<f64>,
    write: Vec<f64>,
    sync_cpu: Vec<f64>,
    total: Vec<f64>,
}

impl Phases {
    fn add(&mut self, model: Duration, s: &SyncStats, sync_cpu: Duration) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        self.model.push(ms(model));
        self.plan.push(ms(s.plan));
        self.render.push(ms(s.render));
        self.write.push(ms(s.write));
        self.sync_cpu.push(ms(sync_cpu));
        self.total.push(ms(model + s.total()));
    }
    fn print(&mut self, what: &str, target: &str) {
        println!(
            "{what:<34} median {:7.1} ms  (model {:.1} + plan {:.1} + render {:.1} + write {:.1}; CPU {:.1}; min {:.1} max {:.1}){target}",
            median(&mut self.total),
            median(&mut self.model),
            median(&mut self.plan),
            median(&mut self.render),
            median(&mut self.write),
            median(&mut self.sync_cpu),
            self.total.iter().cloned().fold(f64::MAX, f64::min),
            self.total.iter().cloned().fold(0.0, f64::max),
        );
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let legacy = args.iter().any(|a| a == "--legacy");
    let backend = if legacy {
        Backend::LegacyRestore
    } else if args.iter().any(|a| a == "--restore") {
        Backend::Restore
    } else {
        Backend::Netlink
    };
    let numbers: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let services = *numbers.first().unwrap_or(&1000);
    let endpoints = *numbers.get(1).unwrap_or(&10);
    let runs = *numbers.get(2).unwrap_or(&5);

    let ns = Netns::create(format!("mkbench-sync-{}", std::process::id()));
    let writer = Arc::new(IptablesInNetns::new(ns.path(), backend));
    let node = NodeContext {
        cluster_cidr: "10.244.0.0/16".into(),
    };
    let svcs: Vec<Service> = (0..services).map(service).collect();
    let mut slices: Vec<EndpointSlice> = (0..services).map(|s| slice(s, endpoints, 0)).collect();

    let (mut cold, mut resync, mut partial) =
        (Phases::default(), Phases::default(), Phases::default());
    let mut nat_rules = 0;
    let mut payload = (0, 0);
    let mut generation = 0;
    for _ in 0..runs {
        // A start: empty tables, a new syncer.
        let mut syncer = RuleSync::new(writer.clone(), node.clone());
        syncer.cleanup().expect("empty the tables");
        let t = Instant::now();
        let ports = service_ports(&svcs, &slices);
        let model = t.elapsed();
        let cpu = cpu_so_far();
        let stats = syncer.sync(ports).expect("full sync");
        assert!(stats.full);
        cold.add(model, &stats, cpu_so_far() - cpu);
        nat_rules = stats.nat_rules;
        payload.0 = stats.payload_bytes;

        // The periodic resync: every rule rewritten over the existing ones.
        syncer.invalidate();
        let t = Instant::now();
        let ports = service_ports(&svcs, &slices);
        let model = t.elapsed();
        let cpu = cpu_so_far();
        let stats = syncer.sync(ports).expect("full resync");
        assert!(stats.full);
        resync.add(model, &stats, cpu_so_far() - cpu);

        // One endpoint of one Service replaced, three times.
        for _ in 0..3 {
            generation += 1;
            slices[0] = slice(0, endpoints, generation);
            let t = Instant::now();
            let ports = service_ports(&svcs, &slices);
            let model = t.elapsed();
            let cpu = cpu_so_far();
            let stats = syncer.sync(ports).expect("partial sync");
            assert!(!stats.full && stats.payload_bytes > 0);
            partial.add(model, &stats, cpu_so_far() - cpu);
            payload.1 = stats.payload_bytes;
        }
    }
    let in_kernel = kernel_nat_rules(&ns, legacy);
    // 3 jumps from PREROUTING, OUTPUT and POSTROUTING besides minik8s' chains.
    assert_eq!(
        in_kernel,
        nat_rules + 3,
        "rules in the kernel after the last sync"
    );
    RuleSync::new(writer.clone(), node)
        .cleanup()
        .expect("cleanup");
    drop(ns);

    println!(
        "services={services} endpoints/service={endpoints} nat_rules={nat_rules} backend={} runs={runs} (partial: {} syncs)",
        match backend {
            Backend::Netlink => "minik8s netlink writer (nf_tables)",
            Backend::Restore => "iptables-restore (system default)",
            Backend::LegacyRestore => "iptables-legacy-restore",
        },
        partial.total.len()
    );
    cold.print(
        &format!("full sync, empty tables ({} KB)", payload.0 / 1024),
        "  target < 1000 ms",
    );
    resync.print("full resync, over existing rules", "");
    partial.print(
        &format!("one endpoint change ({} B)", payload.1),
        "  target < 100 ms",
    );
}
