//! The real kubectl against a `--no-node` server (no root): discovery,
//! client-side and server-side apply, the chapter's tables, describe,
//! errors and deletes, each next to minik8s' own CLI.

use super::compare::{deleted_line, same_error, same_tables, same_text};
use super::tools::Kubectl;
use crate::support::{get_json, Server, TempDir};

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A variant of an example manifest, written into `dir`.
fn variant(
    dir: &TempDir,
    example_name: &str,
    file: &str,
    edit: impl Fn(String) -> String,
) -> String {
    let path = dir.path().join(file);
    std::fs::write(
        &path,
        edit(std::fs::read_to_string(example(example_name)).unwrap()),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn discovery_names_the_chapters_resources_as_kubernetes_does() {
    let dir = TempDir::new("kc-discovery");
    let s = Server::control_plane(&dir.path().join("data"));
    let k = Kubectl::for_server(&s, dir.path());
    let out = k.ok(&["api-resources"]);
    let rows: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        rows[0], "NAME SHORTNAMES APIVERSION NAMESPACED KIND",
        "{out}"
    );
    for want in [
        "services svc v1 true Service",
        "endpoints ep v1 true Endpoints",
        "pods po v1 true Pod",
        "events ev v1 true Event",
        "namespaces ns v1 false Namespace",
        "deployments deploy apps/v1 true Deployment",
        "replicasets rs apps/v1 true ReplicaSet",
        "endpointslices discovery.k8s.io/v1 true EndpointSlice",
    ] {
        assert!(
            rows.iter().any(|r| r == want),
            "api-resources lacks {want:?}:\n{out}"
        );
    }
    // `all` is the category Kubernetes gives services, pods, deployments
    // and replicasets.
    let out = k.ok(&["get", "all"]);
    assert!(out.contains("service/kubernetes "), "{out}");
    let v = k.ok(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&v).expect("kubectl version -o json");
    assert_eq!(v["serverVersion"]["major"], "1", "{v}");
}

#[test]
fn apply_get_describe_delete_match_the_minik8s_cli() {
    let dir = TempDir::new("kc-api");
    let s = Server::control_plane(&dir.path().join("data"));
    let k = Kubectl::for_server(&s, dir.path());
    let (deploy, svc, nodeport) = (
        example("web-deploy.yaml"),
        example("web-svc.yaml"),
        example("web-svc-nodeport.yaml"),
    );

    // Client-side apply: created, then unchanged, whichever CLI applies;
    // each reads the other's last-applied-configuration.
    assert_eq!(
        k.ok(&["apply", "-f", &deploy]),
        "deployment.apps/web created\n"
    );
    assert_eq!(k.ok(&["apply", "-f", &svc]), "service/web created\n");
    assert_eq!(k.ok(&["apply", "-f", &svc]), "service/web unchanged\n");
    assert_eq!(s.ctl_ok(&["apply", "-f", &svc]), "service/web unchanged\n");
    let (_, t) = same_tables(
        &k,
        &s,
        &["get", "deploy"],
        "the Deployment's status written",
        |t| t[0].rows[0][2] == "3",
    );
    assert_eq!(
        t[0].header,
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(
        k.ok(&["apply", "-f", &deploy]),
        "deployment.apps/web unchanged\n"
    );

    // The chapter's tables, as both CLIs print them.
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
    assert_eq!(
        &t[0].rows[0][..5],
        ["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP"]
    );
    let cluster_ip = t[0].rows[1][2].clone();
    assert_eq!(
        &t[0].rows[1][..5],
        ["web", "ClusterIP", cluster_ip.as_str(), "<none>", "80/TCP"]
    );
    let (_, t) = same_tables(
        &k,
        &s,
        &["get", "endpoints", "web"],
        "the Endpoints of web",
        |_| true,
    );
    assert_eq!(t[0].header, ["NAME", "ENDPOINTS", "AGE"]);
    assert_eq!(&t[0].rows[0][..2], ["web", "<none>"]);
    let (_, t) = same_tables(
        &k,
        &s,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
        ],
        "the EndpointSlice of web",
        |t| t[0].rows.len() == 1,
    );
    assert_eq!(
        t[0].header,
        ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    );
    assert_eq!(&t[0].rows[0][1..4], ["IPv4", "<unset>", "<unset>"]);
    let (_, t) = same_tables(&k, &s, &["get", "pods", "--show-labels"], "3 pods", |t| {
        t[0].rows.len() == 3
    });
    assert_eq!(
        t[0].header,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "LABELS"]
    );
    for r in &t[0].rows {
        assert_eq!(&r[1..4], ["0/1", "Pending", "0"], "{r:?}");
        assert!(r[5].starts_with("app=web,pod-template-hash="), "{r:?}");
    }
    let (_, t) = same_tables(&k, &s, &["get", "svc,deploy,pods"], "three tables", |t| {
        t.len() == 3
    });
    assert_eq!(t[0].rows[1][0], "service/web");
    assert_eq!(t[1].rows[0][0], "deployment.apps/web");
    assert!(
        t[2].rows.iter().all(|r| r[0].starts_with("pod/web-")),
        "{t:?}"
    );
    let described = same_text(&k, &s, &["describe", "svc", "web"]);
    assert!(
        described.starts_with("Name:                     web\nNamespace:                default\n"),
        "{described}"
    );
    assert!(
        described.contains(&format!("\nIP:                       {cluster_ip}\n")),
        "{described}"
    );

    // Exercise 1: the type changes, applied by either CLI.
    assert_eq!(
        k.ok(&["apply", "-f", &nodeport]),
        "service/web configured\n"
    );
    let (_, t) = same_tables(&k, &s, &["get", "svc", "web"], "web as a NodePort", |_| {
        true
    });
    assert_eq!(
        &t[0].rows[0][..5],
        [
            "web",
            "NodePort",
            cluster_ip.as_str(),
            "<none>",
            "80:30080/TCP"
        ]
    );
    assert_eq!(s.ctl_ok(&["apply", "-f", &svc]), "service/web configured\n");
    assert_eq!(k.ok(&["apply", "-f", &svc]), "service/web unchanged\n");
    let (_, t) = same_tables(&k, &s, &["get", "svc", "web"], "web as a ClusterIP", |_| {
        true
    });
    assert_eq!(
        &t[0].rows[0][..5],
        ["web", "ClusterIP", cluster_ip.as_str(), "<none>", "80/TCP"]
    );

    // Errors, word for word.
    assert_eq!(
        same_error(&k, &s, &["get", "svc", "nope"]),
        "Error from server (NotFound): services \"nope\" not found\n"
    );
    assert_eq!(
        same_error(&k, &s, &["get", "foo"]),
        "error: the server doesn't have a resource type \"foo\"\n"
    );
    let bad = variant(&dir, "web-svc-nodeport.yaml", "bad.yaml", |t| {
        t.replace("nodePort: 30080", "nodePort: 80")
    });
    assert_eq!(
        same_error(&k, &s, &["apply", "-f", &bad]),
        "The Service \"web\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in \
         the valid range. The range of valid ports is 30000-32767\n"
    );
    // kubectl validates on the server (fieldValidation=Strict).
    let unknown = variant(&dir, "web-svc.yaml", "unknown.yaml", |t| {
        t.replace("name: web", "name: strict")
            .replace("type: ClusterIP", "type: ClusterIP\n  foo: bar")
    });
    let out = k.run(&["apply", "-f", &unknown]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "Error from server (BadRequest): error when creating \"{unknown}\": Service in version \"v1\" cannot be \
             handled as a Service: strict decoding error: unknown field \"spec.foo\"\n"
        )
    );

    // Server-side apply: creates, then merges (allocated ClusterIP and
    // NodePort stay) when the same manager applies again.
    let ssa = variant(&dir, "web-svc-nodeport.yaml", "ssa.yaml", |t| {
        t.replace("name: web", "name: ssa")
            .replace("      nodePort: 30080\n", "")
    });
    assert_eq!(
        k.ok(&["apply", "--server-side", "-f", &ssa]),
        "service/ssa serverside-applied\n"
    );
    let first = get_json(&s.url, "/api/v1/namespaces/default/services/ssa");
    let labelled = variant(&dir, "web-svc-nodeport.yaml", "ssa2.yaml", |t| {
        t.replace("name: web", "name: ssa\n  labels:\n    tier: front")
            .replace("      nodePort: 30080\n", "")
    });
    assert_eq!(
        k.ok(&["apply", "--server-side", "-f", &labelled]),
        "service/ssa serverside-applied\n"
    );
    let second = get_json(&s.url, "/api/v1/namespaces/default/services/ssa");
    assert_eq!(second["metadata"]["labels"]["tier"], "front", "{second}");
    assert_eq!(second["spec"]["type"], "NodePort", "{second}");
    assert_eq!(
        second["spec"]["clusterIP"], first["spec"]["clusterIP"],
        "{second}"
    );
    assert_eq!(
        second["spec"]["ports"][0]["nodePort"], first["spec"]["ports"][0]["nodePort"],
        "{second}"
    );
    deleted_line(&k.ok(&["delete", "svc", "ssa"]), "service \"ssa\" deleted");

    // The chapter's cleanup.
    deleted_line(&k.ok(&["delete", "-f", &svc]), "service \"web\" deleted");
    deleted_line(
        &k.ok(&["delete", "deploy", "web"]),
        "deployment.apps \"web\" deleted",
    );
    let (_, t) = same_tables(
        &k,
        &s,
        &["get", "svc,deploy,pods"],
        "only the kubernetes Service left",
        |t| t.len() == 1 && t[0].rows.len() == 1,
    );
    assert_eq!(t[0].rows[0][0], "service/kubernetes");
    assert_eq!(
        same_error(&k, &s, &["delete", "svc", "web"]),
        "Error from server (NotFound): services \"web\" not found\n"
    );
}
