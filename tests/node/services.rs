//! Services carry traffic (issue 4): ClusterIP from a Pod and from the
//! host, spread over the Pods; NodePort; LoadBalancer with and without the
//! built-in provider; type changes (exercise 1); a broken selector
//! (exercise 2); the rules in the node's iptables, repaired after a flush
//! by hand.

use super::*;
use crate::support::{eventually, http_get_addr};
use std::collections::BTreeMap;
use std::process::Command;

/// `iptables-save` inside the node's network namespace.
fn node_iptables(c: &Cluster) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", &c.node_netns(), "iptables-save"])
        .output()
        .expect("run ip netns exec iptables-save");
    assert!(
        out.status.success(),
        "iptables-save in the node: {}",
        stderr(&out)
    );
    stdout(&out)
}

/// GET / on `addr` from the host; the welcome page's first line.
fn host_first_line(addr: SocketAddr) -> String {
    let (code, body) = http_get_addr(addr, "/", Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("GET http://{addr}/ from the host: {e}"));
    assert_eq!(code, 200, "GET http://{addr}/: {body}");
    body.lines().next().unwrap_or_default().to_string()
}

/// The row of `get svc NAME` as (TYPE, CLUSTER-IP, EXTERNAL-IP, PORT(S)).
fn svc_row(c: &Cluster, name: &str) -> (String, String, String, String) {
    let table = c.ok(&["get", "svc", name]);
    let rows = table_rows(&table);
    assert_eq!(
        rows[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ],
        "{table}"
    );
    let r = &rows[1];
    (r[1].clone(), r[2].clone(), r[3].clone(), r[4].clone())
}

fn start_web(tag: &str, extra: &[&str], svc: &str) -> (Cluster, Vec<Value>) {
    let c = Cluster::start(tag, extra);
    c.apply(&example("web-deploy.yaml"));
    c.apply(&example(svc));
    let pods = c.ready_pods("app=web", 3);
    let ips: Vec<String> = pods.iter().map(pod_ip).collect();
    c.wait_endpoints("web", &ips, Duration::from_secs(10));
    (c, pods)
}

#[test]
fn cluster_ip_answers_from_pods_and_host_and_spreads_over_all_pods() {
    let (c, pods) = start_web("clusterip", &[], "web-svc.yaml");
    let cip = c.cluster_ip("web");
    assert!(
        cip.starts_with("10.") && cip != c.kubernetes_ip(),
        "ClusterIP {cip}"
    );

    // From a Pod (the chapter's temp Pod) and from the host shell.
    let client = c.client_pod("tmp");
    let out = c.exec_ok(
        name_of(&client),
        &["sh", "-c", &format!("curl -s -m 5 http://{cip} | head -1")],
    );
    assert_eq!(out.trim(), "<!DOCTYPE html>");
    assert_eq!(host_first_line(sock(&cip, 80)), "<!DOCTYPE html>");
    // A Pod reaching itself through the Service works too (hairpin).
    for p in &pods {
        let out = c.exec_ok(
            name_of(p),
            &["sh", "-c", &format!("curl -s -m 5 http://{cip} | head -1")],
        );
        assert_eq!(out.trim(), "<!DOCTYPE html>", "from {}", name_of(p));
    }

    // 300 requests through the ClusterIP, counted in the access logs.
    let agent = "minik8s-test";
    let count = |pods: &[Value]| -> BTreeMap<String, usize> {
        pods.iter()
            .map(|p| {
                (
                    name_of(p).to_string(),
                    access_lines(&c.logs(name_of(p)), agent),
                )
            })
            .collect()
    };
    let before = count(&pods);
    for i in 0..300 {
        let (code, _) = http_get_addr(sock(&cip, 80), "/", Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("request {i} to {cip}: {e}"));
        assert_eq!(code, 200);
    }
    let after = eventually(Duration::from_secs(10), "300 access-log lines", || {
        let now = count(&pods);
        let total: usize = now.iter().map(|(k, v)| v - before[k]).sum();
        (total >= 300).then_some(now)
    });
    let shares: BTreeMap<&String, usize> = after.iter().map(|(k, v)| (k, v - before[k])).collect();
    assert_eq!(shares.values().sum::<usize>(), 300, "{shares:?}");
    for (pod, n) in &shares {
        assert!(
            (60..=141).contains(n),
            "{pod} got {n} of 300 requests (want 20%..47%): {shares:?}"
        );
    }
    eprintln!("requests per Pod through {cip}: {shares:?}");

    // The rules read like the chapter's picture, inside the node only.
    let rules = node_iptables(&c);
    for want in [
        "KUBE-SERVICES",
        "KUBE-SVC-",
        "KUBE-SEP-",
        "KUBE-MARK-MASQ",
        "KUBE-POSTROUTING",
        "default/web cluster IP",
    ] {
        assert!(
            rules.contains(want),
            "node iptables-save lacks {want:?}:\n{rules}"
        );
    }
    assert!(
        rules.contains("--mode random --probability 0.333"),
        "one statistic rule per endpoint:\n{rules}"
    );
    for p in &pods {
        assert!(
            rules.contains(&format!("--to-destination {}:80", pod_ip(p))),
            "no DNAT to {}:\n{rules}",
            pod_ip(p)
        );
    }
    let host = Command::new("iptables-save")
        .output()
        .expect("host iptables-save");
    let host = stdout(&host);
    assert!(
        !host.contains("default/web"),
        "Service rules leaked into the host's iptables:\n{host}"
    );

    c.stop_clean();
}

#[test]
fn node_port_answers_on_node_ip_from_host_and_pods() {
    let (c, _) = start_web("nodeport", &[], "web-svc-nodeport.yaml");
    let node_ip = c.server.node_ip();
    let (ty, _, external, ports) = svc_row(&c, "web");
    assert_eq!(
        (ty.as_str(), external.as_str(), ports.as_str()),
        ("NodePort", "<none>", "80:30080/TCP")
    );

    let urls = c.ok(&["service", "web", "--url"]);
    assert_eq!(urls.trim(), format!("http://{node_ip}:30080"));
    assert_eq!(host_first_line(sock(&node_ip, 30080)), "<!DOCTYPE html>");
    let client = c.client_pod("tmp");
    let out = c.exec_ok(
        name_of(&client),
        &[
            "sh",
            "-c",
            &format!("curl -s -m 5 http://{node_ip}:30080 | head -1"),
        ],
    );
    assert_eq!(out.trim(), "<!DOCTYPE html>");
    let rules = node_iptables(&c);
    assert!(rules.contains("KUBE-NODEPORTS"), "{rules}");
    assert!(rules.contains("--dport 30080"), "{rules}");

    // Someone flushes the proxy's chain by hand: the proxy sees the
    // ruleset changed under it at its next check (every 5 s) and
    // rewrites its rules.
    let flush = Command::new("ip")
        .args(["netns", "exec", &c.node_netns()])
        .args(["iptables", "-t", "nat", "-F", "KUBE-NODEPORTS"])
        .status()
        .expect("run iptables -F");
    assert!(flush.success());
    assert!(!node_iptables(&c).contains("--dport 30080"));
    eventually(
        Duration::from_secs(15),
        "the NodePort rule to be rewritten",
        || node_iptables(&c).contains("--dport 30080").then_some(()),
    );
    assert_eq!(host_first_line(sock(&node_ip, 30080)), "<!DOCTYPE html>");
    c.stop_clean();
}

#[test]
fn load_balancer_gets_an_address_from_the_pool() {
    let (c, _) = start_web("lb", &[], "web-svc-lb.yaml");
    let pool = c.server.node.as_ref().expect("node").lb_pool.clone();
    let pool_prefix = pool.trim_end_matches("0/24").to_string();
    let lb_ip = eventually(Duration::from_secs(10), "an EXTERNAL-IP", || {
        let svc = c.service("web");
        svc["status"]["loadBalancer"]["ingress"][0]["ip"]
            .as_str()
            .map(str::to_string)
    });
    assert!(
        lb_ip.starts_with(&pool_prefix),
        "{lb_ip} is not from the pool {pool}"
    );
    let (ty, _, external, ports) = svc_row(&c, "web");
    assert_eq!(ty, "LoadBalancer");
    assert_eq!(external, lb_ip);
    assert!(
        ports.starts_with("80:3") && ports.ends_with("/TCP"),
        "PORT(S) {ports}"
    );

    assert_eq!(host_first_line(sock(&lb_ip, 80)), "<!DOCTYPE html>");
    let urls = c.ok(&["service", "web", "--url"]);
    assert!(
        urls.lines().any(|u| u == format!("http://{lb_ip}:80")),
        "{urls}"
    );
    assert!(
        urls.lines()
            .any(|u| u.starts_with(&format!("http://{}:3", c.server.node_ip()))),
        "{urls}"
    );

    // Back to ClusterIP: the address is released and no longer answers.
    c.apply(&example("web-svc.yaml"));
    eventually(
        Duration::from_secs(10),
        "the LoadBalancer address to be released",
        || {
            c.service("web")["status"]["loadBalancer"]["ingress"]
                .is_null()
                .then_some(())
        },
    );
    eventually(
        Duration::from_secs(5),
        "the LoadBalancer address to stop answering",
        || {
            http_get_addr(sock(&lb_ip, 80), "/", Duration::from_millis(300))
                .is_err()
                .then_some(())
        },
    );
    c.stop_clean();
}

#[test]
fn load_balancer_stays_pending_without_the_provider() {
    let (c, _) = start_web("nolb", &["--disable-lb"], "web-svc-lb.yaml");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        let (ty, _, external, ports) = svc_row(&c, "web");
        assert_eq!(
            (ty.as_str(), external.as_str()),
            ("LoadBalancer", "<pending>")
        );
        assert!(
            ports.starts_with("80:3"),
            "a LoadBalancer has a NodePort: {ports}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Its NodePort works meanwhile.
    let svc = c.service("web");
    let node_port = svc["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .expect("nodePort") as u16;
    assert_eq!(
        host_first_line(sock(&c.server.node_ip(), node_port)),
        "<!DOCTYPE html>"
    );
    c.stop_clean();
}

#[test]
fn type_changes_keep_the_cluster_ip_and_node_port() {
    let (c, _) = start_web("types", &[], "web-svc.yaml");
    let mut steps = Vec::new();
    steps.push(svc_row(&c, "web"));
    c.apply(&example("web-svc-nodeport.yaml"));
    steps.push(svc_row(&c, "web"));
    c.apply(&example("web-svc-lb.yaml"));
    steps.push(eventually(
        Duration::from_secs(10),
        "an EXTERNAL-IP",
        || {
            let row = svc_row(&c, "web");
            (row.2 != "<pending>").then_some(row)
        },
    ));
    eprintln!("exercise 1 (TYPE, CLUSTER-IP, EXTERNAL-IP, PORT(S)): {steps:#?}");
    let cip = &steps[0].1;
    assert!(
        steps.iter().all(|s| &s.1 == cip),
        "the ClusterIP changed: {steps:?}"
    );
    assert_eq!(
        steps.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
        ["ClusterIP", "NodePort", "LoadBalancer"]
    );
    assert_eq!(steps[0].3, "80/TCP");
    assert_eq!(steps[1].3, "80:30080/TCP");
    assert_eq!(host_first_line(sock(cip, 80)), "<!DOCTYPE html>");

    // ClusterIP -> NodePort (port picked from the range) -> LoadBalancer,
    // changing only the type: the picked NodePort stays.
    c.ok(&["delete", "svc", "web"]);
    c.apply(&example("web-svc.yaml"));
    let cip = c.cluster_ip("web");
    let nodeport_yaml = std::fs::read_to_string(example("web-svc.yaml"))
        .expect("read web-svc.yaml")
        .replace("type: ClusterIP", "type: NodePort");
    c.apply_yaml("web-svc-np.yaml", &nodeport_yaml);
    let np = c.service("web")["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .expect("a picked nodePort");
    assert!((30000..=32767).contains(&np), "nodePort {np}");
    c.apply_yaml(
        "web-svc-lb2.yaml",
        &nodeport_yaml.replace("type: NodePort", "type: LoadBalancer"),
    );
    let svc = c.service("web");
    assert_eq!(svc["spec"]["type"], "LoadBalancer");
    assert_eq!(svc["spec"]["clusterIP"], cip.as_str());
    assert_eq!(
        svc["spec"]["ports"][0]["nodePort"].as_u64(),
        Some(np),
        "the NodePort changed: {svc}"
    );
    // The Service was made again above: its endpoints and rules follow
    // the API within milliseconds, so wait for them rather than race.
    let addr = sock(&c.server.node_ip(), np as u16);
    let first = eventually(Duration::from_secs(5), "the NodePort to answer", || {
        http_get_addr(addr, "/", Duration::from_secs(2))
            .ok()
            .filter(|(code, _)| *code == 200)
            .map(|(_, body)| body.lines().next().unwrap_or_default().to_string())
    });
    assert_eq!(first, "<!DOCTYPE html>");
    c.stop_clean();
}

#[test]
fn broken_selector_refuses_at_once_and_fixing_it_restores_traffic() {
    let (c, _) = start_web("selector", &[], "web-svc.yaml");
    let cip = c.cluster_ip("web");
    let client = c.client_pod("tmp");
    let broken = std::fs::read_to_string(example("web-svc.yaml"))
        .expect("read web-svc.yaml")
        .replace("app: web", "app: webb");
    assert!(broken.contains("app: webb"));
    c.apply_yaml("web-svc-broken.yaml", &broken);

    eventually(Duration::from_secs(5), "endpoints <none>", || {
        let table = c.ok(&["get", "endpoints", "web"]);
        let rows = table_rows(&table);
        (rows.len() == 2 && rows[1][0] == "web" && rows[1][1] == "<none>").then_some(())
    });
    // From the host: refused, not a timeout.
    eventually(
        Duration::from_secs(2),
        "the ClusterIP to refuse connections",
        || {
            let t = Instant::now();
            match http_get_addr(sock(&cip, 80), "/", Duration::from_secs(3)) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    assert!(
                        t.elapsed() < Duration::from_millis(500),
                        "refusal took {:?}",
                        t.elapsed()
                    );
                    Some(())
                }
                _ => None,
            }
        },
    );
    // From the temp Pod, by name as in the exercise: curl's exit 7.
    for url in [format!("http://{cip}"), "http://web".to_string()] {
        let t = Instant::now();
        // -v: curl's summary says "Couldn't connect"; the errno is in the trace.
        let out = c.exec(name_of(&client), &["curl", "-sSv", "-m", "10", &url]);
        let took = t.elapsed();
        assert_eq!(
            out.status.code(),
            Some(7),
            "curl {url}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("port 80 failed: Connection refused"),
            "curl {url}: {}",
            stderr(&out)
        );
        assert!(
            took < Duration::from_secs(3),
            "curl {url} took {took:?}: a refusal must be immediate"
        );
    }

    c.apply(&example("web-svc.yaml"));
    eventually(Duration::from_secs(5), "three endpoints again", || {
        (c.endpoint_ips("web").len() == 3).then_some(())
    });
    eventually(Duration::from_secs(5), "traffic to return", || {
        let out = c.exec(
            name_of(&client),
            &["sh", "-c", "curl -s -m 2 http://web | head -1"],
        );
        (stdout(&out).trim() == "<!DOCTYPE html>").then_some(())
    });
    assert_eq!(host_first_line(sock(&cip, 80)), "<!DOCTYPE html>");
    c.stop_clean();
}
