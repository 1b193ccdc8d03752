//! The chapter's control-plane commands through the real CLI: apply the
//! Deployment and the Service, read them back as kubectl prints them, change
//! the Service's type, scale, delete, and the errors a reader runs into.

use super::table_text::{is_age, parse_table, parse_tables, PrintedTable};
use crate::support::{ctl_at, eventually, get_json, unused_local_url, Server, TempDir};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::process::Output;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// A manifest of the repository's `examples/`.
pub fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Stdout, stderr and exit code of a CLI run.
fn outputs(o: &Output) -> (String, String, i32) {
    (
        text(&o.stdout),
        text(&o.stderr),
        o.status.code().unwrap_or(-1),
    )
}

/// Run `args` until `check` accepts the output; fail with the last output.
fn eventually_ctl<T>(
    s: &Server,
    args: &[&str],
    what: &str,
    mut check: impl FnMut(&str) -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let o = s.ctl(args);
        let (out, err, _) = outputs(&o);
        if o.status.success() {
            // A half-updated table may not parse yet: only a panic-free
            // check counts.
            if let Ok(Some(v)) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&out)))
            {
                return v;
            }
        }
        if std::time::Instant::now() > deadline {
            let last = format!("stdout:\n{out}\nstderr:\n{err}");
            panic!(
                "timed out waiting for {what} (minik8s {}); last output:\n{last}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Pods of the `app=web` Deployment that are not being deleted.
fn live_web_pods(s: &Server) -> Vec<Value> {
    let list = get_json(
        &s.url,
        "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb",
    );
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn in_service_cidr(ip: &str) -> bool {
    let Ok(a) = ip.parse::<Ipv4Addr>() else {
        return false;
    };
    let n = u32::from(a);
    let base = u32::from(Ipv4Addr::new(10, 96, 0, 0));
    n & 0xfff0_0000 == base && ip != "10.96.0.1" && ip != "10.96.0.10" && ip != "10.96.0.0"
}

fn assert_svc_header(t: &PrintedTable) {
    assert_eq!(
        t.header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
}

#[test]
fn chapter_flow_through_the_cli() {
    let dir = TempDir::new("cp-chapter");
    let s = Server::control_plane(&dir.path().join("data"));

    // Chapter 4's state and the chapter's first Service.
    assert_eq!(
        s.ctl_ok(&["apply", "-f", &example("web-deploy.yaml")]),
        "deployment.apps/web created\n"
    );
    assert_eq!(
        s.ctl_ok(&["apply", "-f", &example("web-svc.yaml")]),
        "service/web created\n"
    );
    assert_eq!(
        s.ctl_ok(&["apply", "-f", &example("web-svc.yaml")]),
        "service/web unchanged\n"
    );

    // get svc: the `kubernetes` Service and web, as the chapter shows them.
    let t = parse_table(&s.ctl_ok(&["get", "svc"]));
    assert_svc_header(&t);
    assert_eq!(t.rows.len(), 2, "{t:?}");
    let k = t.row("kubernetes").expect("kubernetes row");
    assert_eq!(
        &k[..5],
        ["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP"]
    );
    assert!(is_age(&k[5]), "{k:?}");
    let web = t.row("web").expect("web row").clone();
    assert_eq!(t.cell(&web, "TYPE"), "ClusterIP");
    assert_eq!(t.cell(&web, "EXTERNAL-IP"), "<none>");
    assert_eq!(t.cell(&web, "PORT(S)"), "80/TCP");
    let cluster_ip = t.cell(&web, "CLUSTER-IP").to_string();
    assert!(
        in_service_cidr(&cluster_ip),
        "ClusterIP {cluster_ip} not allocated from 10.96.0.0/12"
    );
    let svc = get_json(&s.url, "/api/v1/namespaces/default/services/web");
    assert_eq!(svc["spec"]["clusterIP"], cluster_ip.as_str());
    assert_eq!(svc["spec"]["clusterIPs"], serde_json::json!([cluster_ip]));

    // Re-applying the Deployment after its controller wrote status and
    // annotations changes nothing.
    assert_eq!(
        s.ctl_ok(&["apply", "-f", &example("web-deploy.yaml")]),
        "deployment.apps/web unchanged\n"
    );

    // get deploy,rs,pods: three pods created by the ReplicaSet (Pending:
    // there is no node to run them).
    let tables = eventually_ctl(
        &s,
        &["get", "deploy,rs,pods"],
        "the Deployment's 3 pods",
        |out| {
            let tables = parse_tables(out);
            (tables.len() == 3 && tables[2].rows.len() == 3 && tables[0].rows[0][2] == "3")
                .then_some(tables)
        },
    );
    let (deploy, rs, pods) = (&tables[0], &tables[1], &tables[2]);
    assert_eq!(
        deploy.header,
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(deploy.rows.len(), 1);
    assert_eq!(
        &deploy.rows[0][..4],
        ["deployment.apps/web", "0/3", "3", "0"]
    );
    assert_eq!(rs.header, ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    assert_eq!(rs.rows.len(), 1);
    let rs_name = rs.rows[0][0]
        .strip_prefix("replicaset.apps/")
        .expect("replicaset.apps/ prefix")
        .to_string();
    let hash = rs_name
        .strip_prefix("web-")
        .expect("RS named web-<hash>")
        .to_string();
    assert!(
        !hash.is_empty() && hash.chars().all(|c| c.is_ascii_alphanumeric()),
        "{rs_name}"
    );
    assert_eq!(&rs.rows[0][1..3], ["3", "3"]);
    assert_eq!(pods.header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    for p in &pods.rows {
        let name = p[0].strip_prefix("pod/").expect("pod/ prefix");
        assert!(
            name.starts_with(&format!("{rs_name}-")),
            "pod {name} not named after {rs_name}"
        );
        assert_eq!(&p[1..4], ["0/1", "Pending", "0"], "{p:?}");
    }

    // --show-labels: the template's label and the ReplicaSet's hash.
    let t = parse_table(&s.ctl_ok(&["get", "pods", "--show-labels"]));
    assert_eq!(
        t.header,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "LABELS"]
    );
    assert_eq!(t.rows.len(), 3);
    for r in &t.rows {
        assert_eq!(r[5], format!("app=web,pod-template-hash={hash}"), "{r:?}");
    }

    // No pod runs, so the Endpoints have no addresses.
    let t = eventually_ctl(
        &s,
        &["get", "endpoints", "web"],
        "the Endpoints of web",
        |out| Some(parse_table(out)),
    );
    assert_eq!(t.header, ["NAME", "ENDPOINTS", "AGE"]);
    assert_eq!(&t.rows[0][..2], ["web", "<none>"]);
    let t = eventually_ctl(
        &s,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
        ],
        "the EndpointSlice of web",
        |out| Some(parse_table(out)),
    );
    assert_eq!(
        t.header,
        ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    );
    assert_eq!(t.rows.len(), 1, "{t:?}");
    let slice = &t.rows[0];
    let suffix = slice[0]
        .strip_prefix("web-")
        .expect("slice named web-<5 chars>");
    assert!(
        suffix.len() == 5
            && suffix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{slice:?}"
    );
    assert_eq!(&slice[1..4], ["IPv4", "<unset>", "<unset>"], "{slice:?}");

    // NodePort: same ClusterIP, port 80:30080.
    assert_eq!(
        s.ctl_ok(&["apply", "-f", &example("web-svc-nodeport.yaml")]),
        "service/web configured\n"
    );
    let t = parse_table(&s.ctl_ok(&["get", "svc", "web"]));
    assert_svc_header(&t);
    assert_eq!(t.rows.len(), 1);
    assert_eq!(
        &t.rows[0][..5],
        [
            "web",
            "NodePort",
            cluster_ip.as_str(),
            "<none>",
            "80:30080/TCP"
        ]
    );
    assert_eq!(
        s.ctl_ok(&["apply", "-f", &example("web-svc-nodeport.yaml")]),
        "service/web unchanged\n"
    );

    // Back to ClusterIP: the node port is released (another Service can
    // take it) and the ClusterIP still does not change.
    assert_eq!(
        s.ctl_ok(&["apply", "-f", &example("web-svc.yaml")]),
        "service/web configured\n"
    );
    let t = parse_table(&s.ctl_ok(&["get", "svc", "web"]));
    assert_eq!(
        &t.rows[0][..5],
        ["web", "ClusterIP", cluster_ip.as_str(), "<none>", "80/TCP"]
    );
    let other = dir.path().join("other.yaml");
    std::fs::write(
        &other,
        std::fs::read_to_string(example("web-svc-nodeport.yaml"))
            .unwrap()
            .replace("name: web", "name: other"),
    )
    .unwrap();
    assert_eq!(
        s.ctl_ok(&["apply", "-f", other.to_str().unwrap()]),
        "service/other created\n"
    );
    assert_eq!(
        s.ctl_ok(&["delete", "-f", other.to_str().unwrap()]),
        "service \"other\" deleted\n"
    );

    // Scale up and down.
    assert_eq!(
        s.ctl_ok(&["scale", "deploy", "web", "--replicas", "5"]),
        "deployment.apps/web scaled\n"
    );
    eventually(WAIT, "5 web pods", || {
        (live_web_pods(&s).len() == 5).then_some(())
    });
    assert_eq!(
        s.ctl_ok(&["scale", "deploy", "web", "--replicas", "2"]),
        "deployment.apps/web scaled\n"
    );
    eventually(WAIT, "2 web pods", || {
        (live_web_pods(&s).len() == 2).then_some(())
    });

    // Cleanup, as the chapter ends.
    assert_eq!(
        s.ctl_ok(&["delete", "-f", &example("web-svc.yaml")]),
        "service \"web\" deleted\n"
    );
    assert_eq!(
        s.ctl_ok(&["delete", "deploy", "web"]),
        "deployment.apps \"web\" deleted\n"
    );
    eventually(
        WAIT,
        "the ReplicaSet and pods of web to be collected",
        || {
            let rs = get_json(&s.url, "/apis/apps/v1/namespaces/default/replicasets");
            let pods = get_json(&s.url, "/api/v1/namespaces/default/pods");
            (rs["items"].as_array().unwrap().is_empty()
                && pods["items"].as_array().unwrap().is_empty())
            .then_some(())
        },
    );
    eventually(
        WAIT,
        "the Endpoints and EndpointSlices of web to go",
        || {
            let ep = crate::support::http_request(
                &s.url,
                "GET",
                "/api/v1/namespaces/default/endpoints/web",
                None,
                None,
                b"",
            )?;
            let slices = get_json(
            &s.url,
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dweb",
        );
            (ep.code == 404 && slices["items"].as_array().unwrap().is_empty()).then_some(())
        },
    );
    let tables = parse_tables(&s.ctl_ok(&["get", "svc,deploy,pods"]));
    assert_eq!(tables.len(), 1, "{tables:?}");
    assert_eq!(tables[0].rows.len(), 1);
    assert_eq!(tables[0].rows[0][0], "service/kubernetes");
}

/// The chapter's `get svc` text exactly, with the chapter's ClusterIP
/// requested so the column widths are the book's.
#[test]
fn get_svc_prints_the_chapters_table() {
    let dir = TempDir::new("cp-getsvc");
    let s = Server::control_plane(&dir.path().join("data"));
    let manifest = dir.path().join("web-svc.yaml");
    let text = std::fs::read_to_string(example("web-svc.yaml"))
        .unwrap()
        .replace(
            "type: ClusterIP",
            "type: ClusterIP\n  clusterIP: 10.96.142.31",
        );
    std::fs::write(&manifest, text).unwrap();
    assert_eq!(
        s.ctl_ok(&["apply", "-f", manifest.to_str().unwrap()]),
        "service/web created\n"
    );

    let out = s.ctl_ok(&["get", "svc"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(
        lines[0],
        "NAME         TYPE        CLUSTER-IP     EXTERNAL-IP   PORT(S)   AGE"
    );
    let age_of = |l: &str| l.rsplit(' ').next().unwrap().to_string();
    assert!(
        is_age(&age_of(lines[1])) && is_age(&age_of(lines[2])),
        "{out}"
    );
    assert_eq!(
        lines[1],
        format!(
            "kubernetes   ClusterIP   10.96.0.1      <none>        443/TCP   {}",
            age_of(lines[1])
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "web          ClusterIP   10.96.142.31   <none>        80/TCP    {}",
            age_of(lines[2])
        )
    );

    let nodeport = dir.path().join("web-svc-nodeport.yaml");
    let text = std::fs::read_to_string(example("web-svc-nodeport.yaml"))
        .unwrap()
        .replace(
            "type: NodePort",
            "type: NodePort\n  clusterIP: 10.96.142.31",
        );
    std::fs::write(&nodeport, text).unwrap();
    assert_eq!(
        s.ctl_ok(&["apply", "-f", nodeport.to_str().unwrap()]),
        "service/web configured\n"
    );
    let out = s.ctl_ok(&["get", "svc", "web"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0],
        "NAME   TYPE       CLUSTER-IP     EXTERNAL-IP   PORT(S)        AGE"
    );
    assert_eq!(
        lines[1],
        format!(
            "web    NodePort   10.96.142.31   <none>        80:30080/TCP   {}",
            age_of(lines[1])
        )
    );
}

#[test]
fn errors_print_as_kubectl_prints_them() {
    let dir = TempDir::new("cp-errors");
    let s = Server::control_plane(&dir.path().join("data"));
    let cases: &[(&[&str], &str)] = &[
        (
            &["get", "svc", "nope"],
            "Error from server (NotFound): services \"nope\" not found\n",
        ),
        (
            &["delete", "svc", "nope"],
            "Error from server (NotFound): services \"nope\" not found\n",
        ),
        (
            &["get", "deploy", "nope"],
            "Error from server (NotFound): deployments.apps \"nope\" not found\n",
        ),
        (
            &["get", "endpoints", "nope"],
            "Error from server (NotFound): endpoints \"nope\" not found\n",
        ),
        (
            &["get", "foo"],
            "error: the server doesn't have a resource type \"foo\"\n",
        ),
    ];
    for (args, want) in cases {
        let (out, err, code) = outputs(&s.ctl(args));
        assert_eq!(err, *want, "minik8s {}", args.join(" "));
        assert_eq!(code, 1, "minik8s {}", args.join(" "));
        assert_eq!(out, "", "minik8s {}", args.join(" "));
    }
    // An empty namespace is not an error; its message goes to stderr.
    let (out, err, code) = outputs(&s.ctl(&["get", "pods"]));
    assert_eq!(
        (out.as_str(), err.as_str(), code),
        ("", "No resources found in default namespace.\n", 0)
    );
}

#[test]
fn a_stopped_server_is_named_with_how_to_start_it() {
    let url = unused_local_url();
    for args in [
        &["get", "svc"][..],
        &["apply", "-f", &example("web-svc.yaml")][..],
    ] {
        let (out, err, code) = outputs(&ctl_at(&url, args));
        assert_ne!(
            code,
            0,
            "minik8s {} succeeded without a server",
            args.join(" ")
        );
        assert_eq!(out, "");
        assert!(
            err.contains(&format!("cannot reach the minik8s API at {url}"))
                && err.contains("minik8s server"),
            "minik8s {}: {err}",
            args.join(" ")
        );
    }
}
