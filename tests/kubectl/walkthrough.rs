//! Every kubectl command of the chapter (WALKTHROUGH.md), in the chapter's
//! order, typed with the real kubectl against a whole minik8s cluster
//! (node, Pods, proxy, DNS): each output compared with minik8s' own CLI
//! for the same command and with the chapter's shapes. `run -it` is driven
//! through a pseudo-terminal as a reader types it.

use super::compare::{deleted_line, same_tables, same_text, PrintedTable};
use super::pty::PtySession;
use super::tools::Kubectl;
use crate::support::{eventually, get_json, http_request, Server, TempDir, BIN};
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (base, bits) = cidr.split_once('/').expect("a CIDR");
    let (Ok(ip), Ok(base), Ok(bits)) = (
        ip.parse::<Ipv4Addr>(),
        base.parse::<Ipv4Addr>(),
        bits.parse::<u32>(),
    ) else {
        return false;
    };
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    u32::from(ip) & mask == u32::from(base) & mask
}

fn first_address(cidr: &str) -> String {
    let base: Ipv4Addr = cidr.split('/').next().unwrap().parse().expect("a CIDR");
    Ipv4Addr::from(u32::from(base) + 1).to_string()
}

/// Names and IPs of the web Deployment's running Pods.
fn web_pods(s: &Server) -> Vec<(String, String)> {
    let list = get_json(
        &s.url,
        "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb",
    );
    let mut pods: Vec<(String, String)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                p["status"]["podIP"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    pods.sort();
    pods
}

fn sorted_list(cell: &str) -> Vec<String> {
    let mut v: Vec<String> = cell.split(',').map(str::to_string).collect();
    v.sort();
    v
}

fn svc_row(t: &[PrintedTable]) -> Vec<String> {
    assert_eq!(
        t[0].header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    t[0].rows[0].clone()
}

/// `run tmp --rm -it --image=curlimages/curl -- sh` on a terminal: wait
/// for kubectl's hint, type `lines` (each must print the nginx page's
/// first line), then `exit`. Returns the transcript.
fn run_interactive(mut cmd: Command, what: &str, lines: &[String]) -> String {
    cmd.args([
        "run",
        "tmp",
        "--rm",
        "-it",
        "--image=curlimages/curl",
        "--",
        "sh",
    ]);
    let mut session = PtySession::spawn(cmd, what);
    session.expect(
        "If you don't see a command prompt, try pressing enter.",
        WAIT,
    );
    for line in lines {
        session.send(&format!("{line}\r"));
        // The echo of the command line first, then its output.
        session.expect_on_screen(line, WAIT);
        session.expect("<!DOCTYPE html>", WAIT);
    }
    session.send("exit\r");
    let status = session.wait(WAIT);
    let transcript = session.transcript();
    assert!(
        status.success(),
        "{what} exited with {status}; transcript:\n{transcript:?}"
    );
    transcript
}

#[test]
fn every_kubectl_command_of_the_chapter() {
    let dir = TempDir::new("kc-walk");
    let s = Server::with_node(&dir.path().join("data"), &[]);
    let node = s.node.clone().expect("a node server");
    let k = Kubectl::for_server(&s, dir.path());
    let (deploy, svc) = (example("web-deploy.yaml"), example("web-svc.yaml"));

    // 0. Chapter 4's state: three nginx Pods labelled app=web.
    assert_eq!(
        k.ok(&["apply", "-f", &deploy]),
        "deployment.apps/web created\n"
    );
    let (_, t) = same_tables(
        &k,
        &s,
        &["get", "pods", "--show-labels"],
        "3 Running web pods",
        |t| t[0].rows.len() == 3 && t[0].rows.iter().all(|r| r[1] == "1/1" && r[2] == "Running"),
    );
    assert_eq!(
        t[0].header,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "LABELS"]
    );
    let pods = web_pods(&s);
    for r in &t[0].rows {
        assert_eq!(r[3], "0", "{r:?}");
        let hash = r[5]
            .strip_prefix("app=web,pod-template-hash=")
            .unwrap_or_else(|| panic!("labels {r:?}"));
        assert!(r[0].starts_with(&format!("web-{hash}-")), "{r:?}");
        assert!(
            pods.iter().any(|(name, _)| name == &r[0]),
            "{r:?} not among {pods:?}"
        );
    }
    let ips: Vec<String> = pods.iter().map(|(_, ip)| ip.clone()).collect();
    for ip in &ips {
        assert!(
            in_cidr(ip, &node.pod_cidr),
            "pod IP {ip} outside {}",
            node.pod_cidr
        );
    }

    // 2. ClusterIP: created, unchanged (by either CLI).
    assert_eq!(k.ok(&["apply", "-f", &svc]), "service/web created\n");
    assert_eq!(k.ok(&["apply", "-f", &svc]), "service/web unchanged\n");
    assert_eq!(s.ctl_ok(&["apply", "-f", &svc]), "service/web unchanged\n");
    let (_, t) = same_tables(&k, &s, &["get", "svc"], "two Services", |t| {
        t[0].rows.len() == 2
    });
    assert_eq!(
        t[0].header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    // The API's own Service has the range's first address (10.96.0.1 by
    // default; the test server may use another range).
    let api_ip = first_address(&node.service_cidr);
    assert_eq!(
        &t[0].rows[0][..5],
        [
            "kubernetes",
            "ClusterIP",
            api_ip.as_str(),
            "<none>",
            "443/TCP"
        ]
    );
    let cluster_ip = t[0].rows[1][2].clone();
    assert_eq!(
        &t[0].rows[1][..5],
        ["web", "ClusterIP", cluster_ip.as_str(), "<none>", "80/TCP"]
    );
    assert!(
        in_cidr(&cluster_ip, &node.service_cidr),
        "ClusterIP {cluster_ip}"
    );

    // 1. Endpoints and the EndpointSlice: the three Pod IPs.
    let mut want_eps: Vec<String> = ips.iter().map(|ip| format!("{ip}:80")).collect();
    want_eps.sort();
    let (_, t) = same_tables(
        &k,
        &s,
        &["get", "endpoints", "web"],
        "the 3 Pods as endpoints",
        |t| sorted_list(&t[0].rows[0][1]) == want_eps,
    );
    assert_eq!(t[0].header, ["NAME", "ENDPOINTS", "AGE"]);
    assert_eq!(t[0].rows[0][0], "web");
    let mut want_ips = ips.clone();
    want_ips.sort();
    let (_, t) = same_tables(
        &k,
        &s,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
        ],
        "the 3 Pods in the slice",
        |t| t[0].rows.len() == 1 && sorted_list(&t[0].rows[0][3]) == want_ips,
    );
    assert_eq!(
        t[0].header,
        ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    );
    let slice = &t[0].rows[0];
    let suffix = slice[0]
        .strip_prefix("web-")
        .expect("slice named web-xxxxx");
    assert_eq!(suffix.len(), 5, "{slice:?}");
    assert_eq!(&slice[1..3], ["IPv4", "80"]);

    let described = same_text(&k, &s, &["describe", "svc", "web"]);
    assert!(
        described.contains(&format!("\nIP:                       {cluster_ip}\n")),
        "{described}"
    );
    assert!(
        described.contains("\nSelector:                 app=web\n"),
        "{described}"
    );
    let endpoints_line = described
        .lines()
        .find_map(|l| l.strip_prefix("Endpoints:"))
        .unwrap_or_else(|| panic!("no Endpoints line:\n{described}"));
    assert_eq!(sorted_list(endpoints_line.trim()), want_eps, "{described}");

    // 3. From inside the cluster: exec in a Pod, and an interactive Pod.
    let first_pod = pods[0].0.clone();
    let page = same_text(
        &k,
        &s,
        &["exec", &first_pod, "--", "curl", "-s", "http://web"],
    );
    assert!(page.starts_with("<!DOCTYPE html>\n"), "{page}");
    assert!(page.contains("Welcome to nginx!"), "{page}");
    let mut requests = 2;

    let lines = [
        "curl -s http://web | head -1".to_string(),
        "curl -s http://web.default.svc.cluster.local | head -1".to_string(),
        format!("curl -s http://{cluster_ip} | head -1"),
    ];
    let transcript = run_interactive(k.command(&[]), "kubectl run -it", &lines);
    requests += lines.len();
    assert!(
        transcript.contains("pod \"tmp\" deleted from default namespace"),
        "kubectl run --rm did not delete the pod:\n{transcript:?}"
    );
    eventually(WAIT, "pod tmp to be gone after kubectl run --rm", || {
        let a = http_request(
            &s.url,
            "GET",
            "/api/v1/namespaces/default/pods/tmp",
            None,
            None,
            b"",
        )?;
        (a.code == 404).then_some(())
    });
    // minik8s' own `run -it` on the same terminal shows the same.
    let mut own = Command::new(BIN);
    own.env("MINIK8S_SERVER", &s.url);
    let transcript = run_interactive(own, "minik8s run -it", &lines[..1]);
    requests += 1;
    assert!(transcript.contains("pod \"tmp\" deleted"), "{transcript:?}");
    eventually(WAIT, "pod tmp to be gone after minik8s run --rm", || {
        let a = http_request(
            &s.url,
            "GET",
            "/api/v1/namespaces/default/pods/tmp",
            None,
            None,
            b"",
        )?;
        (a.code == 404).then_some(())
    });

    // Each Pod's access log shows its share of those requests.
    let mut served = 0;
    for (pod, _) in &pods {
        let log = same_text(&k, &s, &["logs", pod]);
        served += log.matches("\"GET / HTTP/1.1\" 200 ").count();
    }
    assert_eq!(served, requests, "access-log lines over the 3 Pods");

    let (_, t) = same_tables(
        &k,
        &s,
        &["get", "svc,deploy,pods"],
        "Services, Deployment and Pods",
        |t| t.len() == 3 && t[2].rows.len() == 3,
    );
    assert_eq!(t[0].rows[1][0], "service/web");
    assert_eq!(&t[1].rows[0][..4], ["deployment.apps/web", "3/3", "3", "3"]);
    assert!(
        t[2].rows
            .iter()
            .all(|r| r[0].starts_with("pod/web-") && r[2] == "Running"),
        "{t:?}"
    );

    // 4, 5 and exercise 1: NodePort, LoadBalancer, back to ClusterIP;
    // the ClusterIP never changes.
    assert_eq!(
        k.ok(&["apply", "-f", &example("web-svc-nodeport.yaml")]),
        "service/web configured\n"
    );
    let (_, t) = same_tables(&k, &s, &["get", "svc", "web"], "web as a NodePort", |_| {
        true
    });
    assert_eq!(
        &svc_row(&t)[..5],
        [
            "web",
            "NodePort",
            cluster_ip.as_str(),
            "<none>",
            "80:30080/TCP"
        ]
    );
    assert_eq!(
        k.ok(&["apply", "-f", &example("web-svc-lb.yaml")]),
        "service/web configured\n"
    );
    let (_, t) = same_tables(
        &k,
        &s,
        &["get", "svc", "web"],
        "web's load-balancer address",
        |t| t[0].rows[0][3] != "<pending>",
    );
    let row = svc_row(&t);
    assert_eq!(&row[..3], ["web", "LoadBalancer", cluster_ip.as_str()]);
    assert!(
        in_cidr(&row[3], &node.lb_pool),
        "EXTERNAL-IP {} outside {}",
        row[3],
        node.lb_pool
    );
    let node_port: u16 = row[4]
        .strip_prefix("80:")
        .and_then(|p| p.strip_suffix("/TCP"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("PORT(S) {}", row[4]));
    assert!((30000..=32767).contains(&node_port), "{row:?}");
    assert_eq!(k.ok(&["apply", "-f", &svc]), "service/web configured\n");
    let (_, t) = same_tables(
        &k,
        &s,
        &["get", "svc", "web"],
        "web as a ClusterIP again",
        |_| true,
    );
    assert_eq!(
        &svc_row(&t)[..5],
        ["web", "ClusterIP", cluster_ip.as_str(), "<none>", "80/TCP"]
    );

    // 9. Cleanup.
    deleted_line(&k.ok(&["delete", "-f", &svc]), "service \"web\" deleted");
    deleted_line(
        &k.ok(&["delete", "deploy", "web"]),
        "deployment.apps \"web\" deleted",
    );
    let (_, t) = same_tables(
        &k,
        &s,
        &["get", "svc,deploy,pods"],
        "only service/kubernetes left",
        |t| t.len() == 1 && t[0].rows.len() == 1,
    );
    assert_eq!(t[0].rows[0][0], "service/kubernetes");
}
