//! Chapter 4's state on a real node (issue 3): the 3-replica Deployment
//! runs, Pods reach each other by IP, a killed container restarts, a
//! deleted Pod is replaced and the Endpoints follow; `run` without a TTY;
//! an unknown image; and nothing is left after SIGTERM or after `kill -9`
//! and a restart.

use super::*;
use crate::support::{http_get_addr, netns_names, ProcId};
use std::collections::BTreeSet;

#[test]
fn deployment_pods_run_reach_each_other_and_heal() {
    let c = Cluster::start("pods", &[]);
    c.apply(&example("web-deploy.yaml"));
    c.apply(&example("web-svc.yaml"));
    let pods = c.ready_pods("app=web", 3);

    // Distinct IPs from the node's Pod CIDR, and the table agrees.
    let ips: BTreeSet<String> = pods.iter().map(pod_ip).collect();
    assert_eq!(ips.len(), 3, "Pod IPs are not distinct: {ips:?}");
    let prefix = c.node_pod_prefix();
    for ip in &ips {
        assert!(
            ip.starts_with(&prefix),
            "Pod IP {ip} is outside the node's Pod CIDR ({prefix}0/24)"
        );
    }
    let wide = c.ok(&["get", "pods", "-l", "app=web", "-o", "wide"]);
    let rows = table_rows(&wide);
    assert_eq!(
        rows[0][..8],
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED"
        ],
        "{wide}"
    );
    assert_eq!(rows.len(), 4, "{wide}");
    for row in &rows[1..] {
        let pod = pods
            .iter()
            .find(|p| name_of(p) == row[0])
            .expect("row names a Pod");
        assert_eq!(row[1], "1/1", "{wide}");
        assert_eq!(row[2], "Running", "{wide}");
        assert_eq!(row[3], "0", "{wide}");
        assert_eq!(row[5], pod_ip(pod), "{wide}");
        assert_eq!(row[6], c.node_netns(), "NODE column: {wide}");
    }

    // Every Pod reaches every other by IP; each request is in the
    // receiver's access log with the caller's address.
    for a in &pods {
        for b in pods.iter().filter(|b| name_of(b) != name_of(a)) {
            let page = c.exec_ok(
                name_of(a),
                &["curl", "-s", "-m", "5", &format!("http://{}", pod_ip(b))],
            );
            assert!(
                page.contains("Welcome to nginx!"),
                "{} -> {}: {page}",
                name_of(a),
                name_of(b)
            );
        }
    }
    for b in &pods {
        let logs = c.logs(name_of(b));
        for a in pods.iter().filter(|a| name_of(a) != name_of(b)) {
            let line = format!("{} - - [", pod_ip(a));
            assert!(
                logs.lines()
                    .any(|l| l.starts_with(&line) && l.contains("\"GET / HTTP/1.1\" 200 ")),
                "no access-log line from {} in the logs of {}:\n{logs}",
                pod_ip(a),
                name_of(b)
            );
        }
    }

    // Killing the container's process restarts it in the same sandbox.
    let victim = &pods[0];
    let nginx = pod_processes(victim, "nginx");
    assert!(
        !nginx.is_empty(),
        "no nginx process in the sandbox of {}",
        name_of(victim)
    );
    let before: Vec<ProcId> = nginx.iter().filter_map(|p| ProcId::of(*p)).collect();
    for p in &nginx {
        // SAFETY: kill(2) on a process of this test's own cluster.
        unsafe {
            libc::kill(*p, libc::SIGKILL);
        }
    }
    let restarted =
        crate::support::eventually(READY_TIMEOUT, "the killed container to restart", || {
            let pod = c.get_json(&["pod", name_of(victim)]);
            let count = pod["status"]["containerStatuses"][0]["restartCount"].as_i64();
            (count == Some(1) && is_ready(&pod)).then_some(pod)
        });
    assert_eq!(
        pod_ip(&restarted),
        pod_ip(victim),
        "a restarted container keeps its Pod's IP"
    );
    assert!(
        before.iter().all(|p| !p.alive()),
        "the killed process is still there"
    );
    let table = c.ok(&["get", "pod", name_of(victim)]);
    let row = &table_rows(&table)[1];
    assert_eq!(
        (row[1].as_str(), row[2].as_str(), row[3].as_str()),
        ("1/1", "Running", "1"),
        "{table}"
    );
    let page = c.exec_ok(
        name_of(&pods[1]),
        &[
            "curl",
            "-s",
            "-m",
            "5",
            &format!("http://{}", pod_ip(victim)),
        ],
    );
    assert!(
        page.contains("Welcome to nginx!"),
        "restarted nginx does not answer: {page}"
    );

    // Deleting a Pod: a replacement with a new IP; the Endpoints follow.
    c.wait_endpoints(
        "web",
        &ips.iter().cloned().collect::<Vec<_>>(),
        Duration::from_secs(5),
    );
    let gone = &pods[2];
    let gone_ip = pod_ip(gone);
    c.ok(&["delete", "pod", name_of(gone)]);
    let deleted_at = Instant::now();
    let after = c.ready_pods("app=web", 3);
    let seen_ready = Instant::now();
    let fresh = after
        .iter()
        .find(|p| !pods.iter().any(|q| name_of(q) == name_of(p)))
        .unwrap_or_else(|| panic!("no replacement Pod: {after:?}"));
    assert_ne!(
        pod_ip(fresh),
        gone_ip,
        "the replacement reuses the deleted Pod's IP"
    );
    assert!(pod_ip(fresh).starts_with(&prefix));
    let want: Vec<String> = after.iter().map(pod_ip).collect();
    let lag = c.wait_endpoints("web", &want, Duration::from_secs(5));
    assert!(
        lag <= Duration::from_secs(1),
        "endpoints took {lag:?} after the replacement was Ready (deleted {:?} before)",
        seen_ready - deleted_at
    );
    let page = c.exec_ok(
        name_of(&after[0]),
        &[
            "curl",
            "-s",
            "-m",
            "5",
            &format!("http://{}", pod_ip(fresh)),
        ],
    );
    assert!(page.contains("Welcome to nginx!"));

    c.stop_clean();
}

#[test]
fn run_without_tty_prints_and_removes_its_pod() {
    let c = Cluster::start("run", &[]);
    let before: BTreeSet<String> = netns_names().into_iter().collect();

    // Like the chapter's `run tmp --rm -it ... -- sh`, from a script.
    let out = c.server.ctl_input_within(
        CLI_TIMEOUT,
        &[
            "run",
            "tmp",
            "--rm",
            "-i",
            "--image=curlimages/curl",
            "--restart=Never",
            "--",
            "sh",
            "-c",
            "cat /etc/resolv.conf; hostname",
        ],
        Some(""),
    );
    let text = stdout(&out);
    assert!(out.status.success(), "run failed: {text}\n{}", stderr(&out));
    assert!(
        text.contains(&format!("nameserver {}\n", c.dns_ip())),
        "{text}"
    );
    assert!(
        text.contains("search default.svc.cluster.local svc.cluster.local cluster.local\n"),
        "{text}"
    );
    assert!(text.contains("options ndots:5"), "{text}");
    assert!(
        text.lines().any(|l| l == "tmp"),
        "the Pod's hostname is its name: {text}"
    );
    assert!(text.contains("pod \"tmp\" deleted"), "{text}");

    // The shell's commands from a pipe.
    let out = c.server.ctl_input_within(
        CLI_TIMEOUT,
        &[
            "run",
            "tmp2",
            "--rm",
            "-i",
            "--image=busybox",
            "--restart=Never",
            "--",
            "sh",
        ],
        Some("echo piped-$((20+22))\nexit\n"),
    );
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "run with piped stdin failed: {text}\n{}",
        stderr(&out)
    );
    assert!(text.contains("piped-42"), "{text}");

    // Both Pods and their sandboxes are gone.
    let pods = c.get_json(&["pods"]);
    assert_eq!(pods["items"].as_array().map(Vec::len), Some(0), "{pods}");
    let gone = c.server.ctl(&["get", "pod", "tmp"]);
    assert!(!gone.status.success());
    assert!(
        stderr(&gone).contains("pods \"tmp\" not found"),
        "{}",
        stderr(&gone)
    );
    crate::support::eventually(
        Duration::from_secs(10),
        "the run Pods' sandboxes to go",
        || {
            let new: Vec<String> = netns_names()
                .into_iter()
                .filter(|n| !before.contains(n) && (n.contains("-tmp-") || n.contains("-tmp2-")))
                .collect();
            new.is_empty().then_some(())
        },
    );

    c.stop_clean();
}

#[test]
fn unknown_image_without_command_is_err_image_pull() {
    let c = Cluster::start("image", &[]);
    c.ok(&[
        "run",
        "nope",
        "--image=registry.example/team/no-such-image:1.0",
        "--restart=Always",
    ]);
    let reasons = ["ErrImagePull", "ImagePullBackOff"];
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.contains("ImagePullBackOff") && Instant::now() < deadline {
        let pod = c.get_json(&["pod", "nope"]);
        let status = &pod["status"];
        assert!(
            !is_ready(&pod),
            "a Pod without an image must not be Ready: {status}"
        );
        if let Some(r) = status["containerStatuses"][0]["state"]["waiting"]["reason"].as_str() {
            assert!(reasons.contains(&r), "waiting reason {r}: {status}");
            assert_eq!(status["containerStatuses"][0]["ready"], false);
            seen.insert(r.to_string());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        seen.contains("ImagePullBackOff"),
        "never ImagePullBackOff; saw {seen:?}"
    );
    let table = c.ok(&["get", "pod", "nope"]);
    let row = &table_rows(&table)[1];
    assert_eq!(row[1], "0/1", "{table}");
    assert!(reasons.contains(&row[2].as_str()), "{table}");
    let pod = c.get_json(&["pod", "nope"]);
    let ready = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .cloned();
    assert_eq!(ready.map(|r| r["status"].clone()), Some("False".into()));
    c.stop_clean();
}

#[test]
fn sigterm_removes_namespaces_links_routes_and_processes() {
    let c = Cluster::start("term", &[]);
    c.apply(&example("web-deploy.yaml"));
    let pods = c.ready_pods("app=web", 3);
    // The check below must be able to fail: it knows the sandboxes, the
    // host veth, the routes and the processes while they exist.
    let during = c.server.leftovers_all();
    let sandboxes = during
        .iter()
        .filter(|l| l.starts_with("pod netns "))
        .count();
    assert_eq!(sandboxes, 3, "sandboxes seen while running: {during:?}");
    assert!(during.iter().any(|l| l.starts_with("link ")), "{during:?}");
    assert!(during.iter().any(|l| l.starts_with("route ")), "{during:?}");
    assert!(
        during.iter().filter(|l| l.starts_with("process ")).count() >= 3,
        "{during:?}"
    );
    for p in &pods {
        assert_eq!(
            pod_processes(p, "nginx").len(),
            1,
            "one nginx in {}",
            name_of(p)
        );
    }
    c.stop_clean();
}

#[test]
fn kill9_then_restart_runs_pods_again_and_leaves_nothing() {
    let mut c = Cluster::start("crash", &[]);
    c.apply(&example("web-deploy.yaml"));
    let pods = c.ready_pods("app=web", 3);
    let ips: Vec<(String, String)> = pods
        .iter()
        .map(|p| (name_of(p).to_string(), pod_ip(p)))
        .collect();

    c.server.kill9();
    c.server.start();

    // The same Pods (they are in the store) run again, on their old IPs.
    let again = c.ready_pods("app=web", 3);
    let now: Vec<(String, String)> = again
        .iter()
        .map(|p| (name_of(p).to_string(), pod_ip(p)))
        .collect();
    assert_eq!(
        now, ips,
        "after kill -9 and a restart the Pods keep their names and IPs"
    );
    // The status in the store is the crashed server's until the new one
    // has looked; what counts is that each sandbox runs its nginx again.
    for p in &again {
        crate::support::eventually(READY_TIMEOUT, "nginx to run again", || {
            let n = pod_processes(p, "nginx").len();
            assert!(
                n <= 1,
                "{n} nginx processes in the sandbox of {}",
                name_of(p)
            );
            let answer = http_get_addr(sock(&pod_ip(p), 80), "/", Duration::from_secs(2));
            (n == 1
                && answer
                    .is_ok_and(|(code, body)| code == 200 && body.contains("Welcome to nginx!")))
            .then_some(())
        });
    }
    let again = c.ready_pods("app=web", 3);
    let now: Vec<(String, String)> = again
        .iter()
        .map(|p| (name_of(p).to_string(), pod_ip(p)))
        .collect();
    assert_eq!(now, ips);
    let left = c.server.leftovers_all();
    let sandboxes = left.iter().filter(|l| l.starts_with("pod netns ")).count();
    assert_eq!(
        sandboxes, 3,
        "one sandbox per Pod after the restart: {left:?}"
    );

    // The processes of the crashed server are tracked too: none may remain.
    c.stop_clean();
}
