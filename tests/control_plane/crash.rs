//! Durability: a write is acknowledged only once it survives `kill -9`.
//! Several clients create Services as fast as they can, the server is
//! SIGKILLed in the middle of the stream, restarted on the same data dir,
//! and every acknowledged create must be there with the uid and
//! resourceVersion its acknowledgement carried.

use crate::support::{get_json, http_request, Server, TempDir};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 6;
/// Kill once this many creates of the round were acknowledged.
const KILL_AFTER: usize = 150;

/// An acknowledged create: what the 201 answer said.
#[derive(Debug, Clone)]
struct Acked {
    name: String,
    uid: String,
    resource_version: String,
    cluster_ip: String,
}

/// Create Services from several threads until the server goes away; kill
/// it once `KILL_AFTER` creates were acknowledged. Returns the
/// acknowledged creates and how many requests got no answer.
fn stream_then_kill(s: &mut Server, round: usize) -> (Vec<Acked>, usize) {
    let acked = Arc::new(Mutex::new(Vec::<Acked>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let unanswered = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let url = s.url.clone();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (acked, count, unanswered, stop, url) = (
                acked.clone(),
                count.clone(),
                unanswered.clone(),
                stop.clone(),
                url.clone(),
            );
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let name = format!("crash-{round}-{t}-{i}");
                    i += 1;
                    let body = json!({
                        "apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": name, "labels": {"round": round.to_string()}},
                        "spec": {"ports": [{"port": 80}]},
                    });
                    let answer = http_request(
                        &url,
                        "POST",
                        "/api/v1/namespaces/default/services",
                        Some("application/json"),
                        Some("application/json"),
                        body.to_string().as_bytes(),
                    );
                    match answer {
                        Some(a) if a.code == 201 => {
                            let v = a.json();
                            // A 201 whose body was cut off by the kill was
                            // not a complete acknowledgement.
                            let (Some(uid), Some(rv)) = (
                                v["metadata"]["uid"].as_str(),
                                v["metadata"]["resourceVersion"].as_str(),
                            ) else {
                                unanswered.fetch_add(1, Ordering::SeqCst);
                                break;
                            };
                            acked.lock().unwrap().push(Acked {
                                name,
                                uid: uid.to_string(),
                                resource_version: rv.to_string(),
                                cluster_ip: v["spec"]["clusterIP"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_string(),
                            });
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        Some(a) => panic!("create {name} answered {}: {}", a.code, a.body),
                        None => {
                            // The server died under this request.
                            unanswered.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                    }
                }
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(120);
    while count.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "only {} creates acknowledged in 120 s",
            count.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    s.kill9();
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().expect("client thread");
    }
    let acked = acked.lock().unwrap().clone();
    (acked, unanswered.load(Ordering::SeqCst))
}

/// Every acknowledged create is stored as it was acknowledged.
fn check_survivors(s: &Server, acked: &[Acked]) {
    let mut missing = Vec::new();
    let mut changed = Vec::new();
    for a in acked {
        let got = http_request(
            &s.url,
            "GET",
            &format!("/api/v1/namespaces/default/services/{}", a.name),
            None,
            Some("application/json"),
            b"",
        )
        .expect("restarted server answers");
        if got.code != 200 {
            missing.push(format!("{} ({}: {})", a.name, got.code, got.body));
            continue;
        }
        let v = got.json();
        let (uid, rv) = (&v["metadata"]["uid"], &v["metadata"]["resourceVersion"]);
        if uid != a.uid.as_str() || rv != a.resource_version.as_str() {
            changed.push(format!(
                "{}: acknowledged uid {} rv {}, stored uid {uid} rv {rv}",
                a.name, a.uid, a.resource_version
            ));
        }
    }
    assert!(
        missing.is_empty() && changed.is_empty(),
        "{} of {} acknowledged creates lost after kill -9: {missing:#?}\nchanged: {changed:#?}",
        missing.len() + changed.len(),
        acked.len()
    );
}

fn rv_number(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("resourceVersion {v} is not a number"))
}

#[test]
fn acknowledged_creates_survive_kill_9() {
    let dir = TempDir::new("cp-crash");
    let mut s = Server::control_plane(&dir.path().join("data"));
    let mut all_acked = Vec::new();

    for round in 0..2 {
        let (acked, unanswered) = stream_then_kill(&mut s, round);
        eprintln!(
            "round {round}: {} creates acknowledged, {unanswered} cut off by the kill",
            acked.len()
        );
        assert!(acked.len() >= KILL_AFTER);
        all_acked.extend(acked);

        s.start();
        check_survivors(&s, &all_acked);

        // Nothing acknowledged twice, and the store's revision went on
        // from where it was: no resourceVersion or ClusterIP is handed out
        // again after the restart.
        let uids: HashSet<_> = all_acked.iter().map(|a| a.uid.clone()).collect();
        assert_eq!(uids.len(), all_acked.len(), "duplicate uids");
        let max_rv = all_acked
            .iter()
            .map(|a| a.resource_version.parse::<u64>().unwrap())
            .max()
            .unwrap();
        let list = get_json(&s.url, "/api/v1/services");
        assert!(
            rv_number(&list["metadata"]["resourceVersion"]) >= max_rv,
            "list revision {} below an acknowledged write's {max_rv}",
            list["metadata"]["resourceVersion"]
        );
        let fresh = http_request(
            &s.url,
            "POST",
            "/api/v1/namespaces/default/services",
            Some("application/json"),
            None,
            json!({"metadata": {"name": format!("after-{round}")}, "spec": {"ports": [{"port": 80}]}})
                .to_string()
                .as_bytes(),
        )
        .expect("restarted server answers");
        assert_eq!(fresh.code, 201, "{}", fresh.body);
        let fresh = fresh.json();
        assert!(
            rv_number(&fresh["metadata"]["resourceVersion"]) > max_rv,
            "create after restart got resourceVersion {} <= {max_rv}",
            fresh["metadata"]["resourceVersion"]
        );
        let ips: HashMap<String, String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| {
                Some((
                    i["spec"]["clusterIP"].as_str()?.to_string(),
                    i["metadata"]["name"].as_str()?.to_string(),
                ))
            })
            .collect();
        let fresh_ip = fresh["spec"]["clusterIP"].as_str().unwrap_or_default();
        assert!(
            !ips.contains_key(fresh_ip),
            "ClusterIP {fresh_ip} handed out again after restart (held by {:?})",
            ips.get(fresh_ip)
        );
        let acked_ips: HashSet<_> = all_acked.iter().map(|a| a.cluster_ip.clone()).collect();
        assert_eq!(
            acked_ips.len(),
            all_acked.len(),
            "two acknowledged Services share a ClusterIP"
        );
    }
}
