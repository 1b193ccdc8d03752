//! `kill -9` at any moment loses no acknowledged write, and revisions handed
//! out before the kill are never handed out again. The test re-runs this
//! test binary as a child writer, kills it with SIGKILL mid-stream, and
//! checks every write the child reported as acknowledged.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::tests::{rv, svc, Scratch};
use super::*;

const CHILD_DIR_ENV: &str = "MINIK8S_STORE_CRASH_CHILD_DIR";
const CHILD_ROUND_ENV: &str = "MINIK8S_STORE_CRASH_CHILD_ROUND";
const ACK: &str = "ACK ";

/// The child side: a no-op unless started by `kill_9_loses_no_acknowledged_write`.
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let round = std::env::var(CHILD_ROUND_ENV).unwrap();
    let store = Arc::new(SledStore::open(dir).unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (store, round) = (store.clone(), round.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    if Instant::now() > deadline {
                        return; // the parent is gone; don't run forever
                    }
                    let key = format!("/registry/crash/r{round}-t{t}-{i}");
                    let created = store.create(&key, svc("x")).unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{ACK}{key} {}", rv(&created)).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    let dir = Scratch::new("crash");
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sled_store::crash_tests::crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, dir.path())
            .env(CHILD_ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let before = acked.len();
        let previous_max = acked.values().copied().max().unwrap_or(0);
        let record = |acked: &mut BTreeMap<String, u64>, line: String| {
            if let Some(ack) = line.strip_prefix(ACK) {
                let (key, rev) = ack.split_once(' ').unwrap();
                let rev: u64 = rev.parse().unwrap();
                assert!(rev > previous_max, "revision {rev} reused after a crash");
                acked.insert(key.to_string(), rev);
            }
        };
        // Let the writers get going, then kill them mid-write.
        for line in lines.by_ref() {
            record(&mut acked, line.unwrap());
            if acked.len() >= before + 50 + 37 * round {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
                               // Acks already in the pipe were given before the kill: they count.
        for line in lines {
            record(&mut acked, line.unwrap());
        }
        child.wait().unwrap();

        let store = SledStore::open(dir.path()).unwrap();
        let max_acked = acked.values().copied().max().unwrap();
        assert!(store.current_revision() >= max_acked);
        for (key, rev) in &acked {
            let stored = store.get(key).unwrap().unwrap_or_else(|| {
                panic!("acknowledged write {key} (revision {rev}) lost by kill -9")
            });
            assert_eq!(rv(&stored), *rev);
        }
    }
}
