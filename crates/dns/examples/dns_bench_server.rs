//! Benchmark harness of the cluster DNS: N synthetic Services loaded into
//! the table without an API server, served on loopback until SIGTERM or
//! SIGINT. Also writes the query list for dnsperf and the same records as
//! a zone file, so another DNS server can be measured on the same data.
//!
//!     dns_bench_server --services 10000 --listen 127.0.0.1:0 \
//!         --queries-out q.txt --zone-out cluster.local.zone
//!
//! Prints `listening <addr>` once it answers.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use dns::objects::{ClusterState, ServiceAddress, ServiceInfo};
use dns::records::Rdata;
use dns::{build_table, DnsConfig, DnsServer, Upstream};
use tokio_util::sync::CancellationToken;

struct Args {
    services: usize,
    listen: SocketAddr,
    queries_out: Option<String>,
    zone_out: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        services: 10_000,
        listen: "127.0.0.1:0".parse().expect("valid address"),
        queries_out: None,
        zone_out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--services" => args.services = value.parse().expect("--services N"),
            "--listen" => args.listen = value.parse().expect("--listen IP:PORT"),
            "--queries-out" => args.queries_out = Some(value),
            "--zone-out" => args.zone_out = Some(value),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

/// `n` Services spread over 20 namespaces, each with a ClusterIP from
/// 10.96.0.0/12 and one named port, like a busy cluster's.
fn synthetic_cluster(n: usize) -> ClusterState {
    let mut state = ClusterState::default();
    for i in 0..n {
        let ns = format!("team-{}", i % 20);
        let name = format!("svc-{i}");
        // Skip .0 .. .10 of 10.96.0.0: the API's and DNS' own addresses.
        let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + 11 + i as u32);
        state.services.insert(
            format!("{ns}/{name}"),
            ServiceInfo::http(
                &ns,
                &name,
                ServiceAddress::ClusterIps(vec![IpAddr::V4(ip)].into()),
            ),
        );
    }
    state
}

/// The forward zone in RFC 1035 master-file syntax.
fn zone_file(table: &dns::Table) -> String {
    let zone = table.zone();
    let mut out = String::new();
    let _ = writeln!(out, "$ORIGIN {}.\n$TTL {}", zone.domain, zone.ttl);
    let _ = writeln!(out, "{}", table.zone_soa());
    let suffix = format!(".{}", zone.domain);
    let mut names: Vec<(&str, &dns::records::Entry)> = table
        .iter()
        .filter(|(n, _)| *n == zone.domain || n.ends_with(&suffix))
        .collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    for (name, entry) in names {
        for r in entry.records() {
            let data = match r {
                Rdata::A(ip) => format!("A {ip}"),
                Rdata::Aaaa(ip) => format!("AAAA {ip}"),
                Rdata::Cname(t) => format!("CNAME {t}."),
                Rdata::Srv {
                    priority,
                    weight,
                    port,
                    target,
                } => format!("SRV {priority} {weight} {port} {target}."),
                Rdata::Ptr(t) => format!("PTR {t}."),
                Rdata::Ns(t) => format!("NS {t}."),
                Rdata::Txt(t) => format!("TXT \"{t}\""),
            };
            let _ = writeln!(out, "{name}. {} IN {data}", zone.ttl);
        }
    }
    out
}

/// CPU time of the calling thread, in milliseconds.
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1e6
}

fn main() {
    let args = parse_args();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async move {
        let config = DnsConfig {
            listen: args.listen,
            upstream: Upstream::Refuse,
            publish_endpoints: false,
            ..DnsConfig::default()
        };
        let server = DnsServer::bind(config).expect("bind");
        let state = synthetic_cluster(args.services);
        // A rebuild is what a watch event costs: time a few, keep the best
        // (CPU time of this thread, so other load on the machine counts less).
        let mut best_cpu = f64::MAX;
        let mut best_wall = f64::MAX;
        for _ in 0..3 {
            let (wall, cpu) = (Instant::now(), thread_cpu_ms());
            drop(build_table(&state, server.zone(), 1));
            best_cpu = best_cpu.min(thread_cpu_ms() - cpu);
            best_wall = best_wall.min(wall.elapsed().as_secs_f64() * 1000.0);
        }
        let table = build_table(&state, server.zone(), 1);
        eprintln!(
            "table: {} services, {} names, rebuilt in {best_wall:.1} ms ({best_cpu:.1} ms CPU)",
            args.services,
            table.len(),
        );
        if let Some(path) = &args.zone_out {
            std::fs::write(path, zone_file(&table)).expect("write zone file");
        }
        if let Some(path) = &args.queries_out {
            let mut q = String::new();
            for svc in state.services.values() {
                let _ = writeln!(q, "{}.{}.svc.cluster.local. A", svc.name, svc.namespace);
            }
            std::fs::write(path, q).expect("write query file");
        }
        server.table().store(table);
        drop(state);
        println!("listening {}", server.local_addr());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            stop.cancel();
        });
        server.serve(shutdown).await.expect("serve");
    });
}
