//! The control plane's figures, measured against the release `minik8s`
//! binary from outside, as a user meets them:
//!
//! (a) `minik8s server --no-node` start until /readyz answers 200, median
//!     over fresh data dirs;
//! (b) durable Service create latency, one client, p50/p99;
//! (c) Service creates per second with 16 concurrent clients;
//! (d) a server-side printed Table LIST of 1,000 Services, median;
//! (e) resident memory (VmRSS) of an idle server, after start and after
//!     the 1,000 Services.
//!
//! Run through `scripts/bench-api.sh`. Takes `--bin PATH` (the minik8s
//! binary) and optional `--starts N --creates N --clients N
//! --parallel-creates N --lists N`; `--bench` (added by cargo) is ignored.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

struct Options {
    bin: PathBuf,
    starts: usize,
    creates: usize,
    clients: usize,
    parallel_creates: usize,
    lists: usize,
}

fn options() -> Options {
    let mut o = Options {
        bin: PathBuf::from("target/release/minik8s"),
        starts: 15,
        creates: 1000,
        clients: 16,
        parallel_creates: 2000,
        lists: 30,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |what: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what} needs a number"))
        };
        match a.as_str() {
            "--bin" => o.bin = PathBuf::from(args.next().expect("--bin needs a path")),
            "--starts" => o.starts = num("--starts"),
            "--creates" => o.creates = num("--creates"),
            "--clients" => o.clients = num("--clients"),
            "--parallel-creates" => o.parallel_creates = num("--parallel-creates"),
            "--lists" => o.lists = num("--lists"),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(o.bin.exists(), "no minik8s binary at {}", o.bin.display());
    o
}

/// A server process on a fresh data dir and port; killed and its dir
/// removed on drop.
struct Server {
    child: Child,
    dir: PathBuf,
    url: String,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().unwrap().port()
}

fn fresh_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("minik8s-bench-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

impl Server {
    /// Start a server; returns it once /readyz answered, with the time
    /// from spawn to that answer.
    fn start(bin: &Path, tag: &str) -> (Server, Duration) {
        let dir = fresh_dir(tag);
        let port = free_port();
        let t0 = Instant::now();
        let child = Command::new(bin)
            .args(["server", "--no-node", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn minik8s server");
        let url = format!("127.0.0.1:{port}");
        let mut server = Server { child, dir, url };
        loop {
            if readyz(&server.url) {
                return (server, t0.elapsed());
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("minik8s server exited with {status} before /readyz answered");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "no /readyz after 60 s"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.url)
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One raw GET /readyz; true on a 200.
fn readyz(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if write!(
        s,
        "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 16];
    let mut got = 0;
    while got < 12 {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    buf.starts_with(b"HTTP/1.1 200")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    assert!(!sorted.is_empty());
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .build()
        .unwrap()
}

fn service(name: &str) -> Value {
    // The chapter's Service shape: a selector, so the endpoints
    // controllers do their share of work for every create.
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": {"bench": "api"}},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    })
}

async fn create_namespace(c: &reqwest::Client, base: &str, ns: &str) {
    let r = c
        .post(format!("{base}/api/v1/namespaces"))
        .json(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        .send()
        .await
        .expect("create namespace");
    assert!(
        r.status().is_success(),
        "create namespace {ns}: {}",
        r.status()
    );
}

/// Create one Service and time it (request sent to answer read).
async fn timed_create(c: &reqwest::Client, base: &str, ns: &str, name: &str) -> Duration {
    let body = service(name).to_string();
    let t = Instant::now();
    let r = c
        .post(format!("{base}/api/v1/namespaces/{ns}/services"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("create request");
    let code = r.status();
    let bytes = r.bytes().await.expect("create answer");
    let d = t.elapsed();
    assert_eq!(
        code.as_u16(),
        201,
        "create {ns}/{name}: {}",
        String::from_utf8_lossy(&bytes)
    );
    d
}

struct Row {
    figure: String,
    value: String,
    target: String,
    verdict: &'static str,
}

fn row(figure: impl Into<String>, value: impl Into<String>, target: &str, ok: Option<bool>) -> Row {
    Row {
        figure: figure.into(),
        value: value.into(),
        target: target.into(),
        verdict: match ok {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        },
    }
}

fn main() {
    let o = options();
    let mut rows = Vec::new();
    eprintln!(
        "minik8s API benchmark: {} ({} CPUs, load average {})",
        o.bin.display(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );

    // (a) start until /readyz.
    let mut starts = Vec::new();
    for _ in 0..o.starts {
        let (server, took) = Server::start(&o.bin, "start");
        starts.push(took);
        drop(server);
    }
    starts.sort();
    let start_median = percentile(&starts, 50.0);
    eprintln!(
        "(a) start -> /readyz, ms: {:?}",
        starts
            .iter()
            .map(|d| format!("{:.1}", ms(*d)))
            .collect::<Vec<_>>()
    );
    rows.push(row(
        format!(
            "(a) start -> /readyz, median of {} (min {:.1}, max {:.1})",
            starts.len(),
            ms(starts[0]),
            ms(*starts.last().unwrap())
        ),
        format!("{:.1} ms", ms(start_median)),
        "< 50 ms",
        Some(ms(start_median) < 50.0),
    ));

    let (server, _) = Server::start(&o.bin, "load");
    let base = server.base();
    // Let the controllers finish their first lists and the bootstrap's
    // writes before the idle figure.
    std::thread::sleep(Duration::from_secs(2));
    let idle_rss = server.rss_kib();
    rows.push(row(
        "(e) RSS of the idle server after start + bootstrap",
        format!("{:.1} MB", idle_rss as f64 / 1024.0),
        "< 30 MB",
        Some((idle_rss as f64 / 1024.0) < 30.0),
    ));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // (b) one client, one connection, creates one after another.
    let seq = rt.block_on(async {
        let c = http();
        create_namespace(&c, &base, "bench-seq").await;
        // Warm the connection.
        timed_create(&c, &base, "bench-seq", "warmup").await;
        let r = c
            .delete(format!(
                "{base}/api/v1/namespaces/bench-seq/services/warmup"
            ))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let mut lat = Vec::with_capacity(o.creates);
        for i in 0..o.creates {
            lat.push(timed_create(&c, &base, "bench-seq", &format!("svc-{i:05}")).await);
        }
        lat
    });
    let total: Duration = seq.iter().sum();
    let mut seq_sorted = seq.clone();
    seq_sorted.sort();
    let (p50, p99) = (percentile(&seq_sorted, 50.0), percentile(&seq_sorted, 99.0));
    rows.push(row(
        format!("(b) durable create, 1 client, p50 of {}", seq.len()),
        format!("{:.2} ms", ms(p50)),
        "< 5 ms",
        Some(ms(p50) < 5.0),
    ));
    rows.push(row(
        format!("(b) durable create, 1 client, p99 of {}", seq.len()),
        format!("{:.2} ms", ms(p99)),
        "< 20 ms",
        Some(ms(p99) < 20.0),
    ));
    rows.push(row(
        "(b) durable create, 1 client, max / throughput",
        format!(
            "{:.1} ms / {:.0}/s",
            ms(*seq_sorted.last().unwrap()),
            seq.len() as f64 / total.as_secs_f64()
        ),
        "",
        None,
    ));

    // Whether a create costs more as the Services add up.
    if seq.len() >= 200 {
        let p50_of = |part: &[Duration]| {
            let mut v = part.to_vec();
            v.sort();
            ms(percentile(&v, 50.0))
        };
        rows.push(row(
            "(b) p50 of the first 100 / the last 100 creates",
            format!(
                "{:.2} / {:.2} ms",
                p50_of(&seq[..100]),
                p50_of(&seq[seq.len() - 100..])
            ),
            "",
            None,
        ));
    }

    std::thread::sleep(Duration::from_secs(1));
    let rss_1000 = server.rss_kib();

    // (d) Table LIST of the 1,000 Services of bench-seq.
    let lists = rt.block_on(async {
        let c = http();
        let url = format!("{base}/api/v1/namespaces/bench-seq/services");
        let first = c
            .get(&url)
            .header("accept", TABLE_ACCEPT)
            .send()
            .await
            .unwrap();
        let table: Value = first.json().await.unwrap();
        assert_eq!(
            table["kind"],
            "Table",
            "not a Table: {}",
            &table.to_string()[..200.min(table.to_string().len())]
        );
        let rows = table["rows"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(rows, o.creates, "Table rows");
        let mut lat = Vec::new();
        for _ in 0..o.lists {
            let t = Instant::now();
            let r = c
                .get(&url)
                .header("accept", TABLE_ACCEPT)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
            let body = r.bytes().await.unwrap();
            lat.push(t.elapsed());
            assert!(body.len() > 1000);
        }
        lat
    });
    let mut lists_sorted = lists.clone();
    lists_sorted.sort();
    let list_median = percentile(&lists_sorted, 50.0);
    rows.push(row(
        format!(
            "(d) Table LIST of {} Services, median of {} (min {:.1}, max {:.1})",
            o.creates,
            lists.len(),
            ms(lists_sorted[0]),
            ms(*lists_sorted.last().unwrap())
        ),
        format!("{:.1} ms", ms(list_median)),
        "< 20 ms",
        Some(ms(list_median) < 20.0),
    ));
    rows.push(row(
        format!("(e) RSS after {} Services", o.creates),
        format!("{:.1} MB", rss_1000 as f64 / 1024.0),
        "",
        None,
    ));

    // (c) concurrent clients, each with its own connection.
    let (elapsed, par) = rt.block_on(async {
        let c0 = http();
        create_namespace(&c0, &base, "bench-par").await;
        let per_client = o.parallel_creates / o.clients;
        let t = Instant::now();
        let tasks: Vec<_> = (0..o.clients)
            .map(|k| {
                let base = base.clone();
                tokio::spawn(async move {
                    let c = http();
                    let mut lat = Vec::with_capacity(per_client);
                    for i in 0..per_client {
                        lat.push(
                            timed_create(&c, &base, "bench-par", &format!("c{k:02}-{i:05}")).await,
                        );
                    }
                    lat
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        (t.elapsed(), all)
    });
    let mut par_sorted = par.clone();
    par_sorted.sort();
    rows.push(row(
        format!(
            "(c) creates/s with {} concurrent clients ({} creates)",
            o.clients,
            par.len()
        ),
        format!("{:.0}/s", par.len() as f64 / elapsed.as_secs_f64()),
        "",
        None,
    ));
    rows.push(row(
        format!("(c) latency under {} clients, p50 / p99", o.clients),
        format!(
            "{:.1} / {:.1} ms",
            ms(percentile(&par_sorted, 50.0)),
            ms(percentile(&par_sorted, 99.0))
        ),
        "",
        None,
    ));
    std::thread::sleep(Duration::from_secs(1));
    rows.push(row(
        format!("(e) RSS after {} Services", o.creates + par.len()),
        format!("{:.1} MB", server.rss_kib() as f64 / 1024.0),
        "",
        None,
    ));
    drop(server);

    let w0 = rows.iter().map(|r| r.figure.len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.value.len()).max().unwrap_or(0).max(5);
    let w2 = rows
        .iter()
        .map(|r| r.target.len())
        .max()
        .unwrap_or(0)
        .max(6);
    println!(
        "{:w0$}   {:>w1$}   {:w2$}   {}",
        "FIGURE", "VALUE", "TARGET", ""
    );
    for r in &rows {
        println!(
            "{:w0$}   {:>w1$}   {:w2$}   {}",
            r.figure, r.value, r.target, r.verdict
        );
    }
}
