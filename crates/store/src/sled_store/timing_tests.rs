//! Latency and throughput of durable writes, printed rather than asserted
//! (the numbers depend on the disk). Run with:
//! `cargo test -p store -- --ignored --nocapture create_timings`

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::tests::{svc, Scratch};
use super::*;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(name: &str, mut latencies: Vec<Duration>, wall: Duration) {
    latencies.sort_unstable();
    println!(
        "{name}: {} creates in {:.0?}: p50 {:.2?}, p99 {:.2?}, max {:.2?}, {:.0} creates/s",
        latencies.len(),
        wall,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().unwrap(),
        latencies.len() as f64 / wall.as_secs_f64()
    );
}

#[test]
#[ignore = "timing report; run explicitly"]
fn create_timings() {
    let dir = Scratch::new("timing");
    let store = Arc::new(SledStore::open(dir.path()).unwrap());

    let start = Instant::now();
    let single: Vec<Duration> = (0..500)
        .map(|i| {
            let t = Instant::now();
            store
                .create(&format!("/registry/core/pods/single/p{i}"), svc("p"))
                .unwrap();
            t.elapsed()
        })
        .collect();
    summary("1 thread", single, start.elapsed());

    for threads in [4, 16, 64] {
        let start = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..3200 / threads)
                        .map(|i| {
                            let at = Instant::now();
                            store
                                .create(
                                    &format!("/registry/core/pods/c{threads}/t{t}-{i}"),
                                    svc("p"),
                                )
                                .unwrap();
                            at.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let all: Vec<Duration> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        summary(&format!("{threads} threads"), all, start.elapsed());
    }

    let start = Instant::now();
    let reads: Vec<Duration> = (0..500)
        .map(|i| {
            let t = Instant::now();
            store
                .get(&format!("/registry/core/pods/single/p{i}"))
                .unwrap()
                .unwrap();
            t.elapsed()
        })
        .collect();
    let mut reads = reads;
    reads.sort_unstable();
    println!(
        "get: p50 {:.2?}, p99 {:.2?} ({:.0?} total)",
        percentile(&reads, 0.5),
        percentile(&reads, 0.99),
        start.elapsed()
    );
    let t = Instant::now();
    let (items, _) = store.list("/registry/core/pods/").unwrap();
    println!("list of {} objects: {:.2?}", items.len(), t.elapsed());
}
