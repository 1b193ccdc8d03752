//! A catalogue of bad input, each answered with a Kubernetes-style error
//! and leaving the store exactly as it was: same objects, same global
//! resourceVersion. Inputs a reader types go through the CLI (`apply -f`,
//! `create -f`); the rest are sent as HTTP requests.

use super::chapter::example;
use crate::support::{get_json, http_request, HttpAnswer, Server, TempDir};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every list the control plane serves, all namespaces.
const LISTS: &[&str] = &[
    "/api/v1/namespaces",
    "/api/v1/services",
    "/api/v1/endpoints",
    "/api/v1/pods",
    "/api/v1/events",
    "/api/v1/nodes",
    "/apis/apps/v1/deployments",
    "/apis/apps/v1/replicasets",
    "/apis/discovery.k8s.io/v1/endpointslices",
];

/// Everything stored: the global revision and each object by list and
/// namespace/name.
#[derive(Debug, PartialEq)]
struct Snapshot {
    revision: String,
    objects: BTreeMap<String, Value>,
}

fn snapshot(url: &str) -> Snapshot {
    let mut objects = BTreeMap::new();
    let mut revision = String::new();
    for path in LISTS {
        let list = get_json(url, path);
        if revision.is_empty() {
            revision = list["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string();
        }
        for item in list["items"].as_array().cloned().unwrap_or_default() {
            let key = format!(
                "{path} {}/{}",
                item["metadata"]["namespace"].as_str().unwrap_or(""),
                item["metadata"]["name"].as_str().unwrap_or("")
            );
            objects.insert(key, item);
        }
    }
    Snapshot { revision, objects }
}

/// What changed between two snapshots, for the failure message.
fn diff(before: &Snapshot, after: &Snapshot) -> String {
    let mut out = format!("revision {} -> {}", before.revision, after.revision);
    for (k, v) in &after.objects {
        match before.objects.get(k) {
            None => out.push_str(&format!("\n  added {k}: {v}")),
            Some(old) if old != v => out.push_str(&format!("\n  changed {k}: {old}\n      -> {v}")),
            _ => {}
        }
    }
    for k in before.objects.keys() {
        if !after.objects.contains_key(k) {
            out.push_str(&format!("\n  removed {k}"));
        }
    }
    out
}

/// One failing check of a case: what was expected and what came.
type Check = Result<(), String>;

fn expect_eq(what: &str, got: &str, want: &str) -> Check {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}:\n   got: {got:?}\n  want: {want:?}"))
    }
}

fn expect(what: &str, ok: bool, detail: impl std::fmt::Display) -> Check {
    if ok {
        Ok(())
    } else {
        Err(format!("{what}: {detail}"))
    }
}

/// An exit status in words, naming the signal that killed the process.
fn exit_text(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(13)) => "killed by SIGPIPE".to_string(),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => "no exit status".to_string(),
    }
}

/// A CLI run that must fail with exit code 1, nothing on stdout, and
/// stderr accepted by `check`.
fn cli_fails(s: &Server, args: &[&str], check: impl Fn(&str) -> Check) -> Check {
    let o = s.ctl(args);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    expect(
        &format!("minik8s {} exit", args.join(" ")),
        o.status.code() == Some(1),
        format!("{} (stdout {out:?}, stderr {err:?})", exit_text(&o.status)),
    )?;
    expect_eq(&format!("minik8s {} stdout", args.join(" ")), &out, "")?;
    check(&err)
}

fn apply_fails(s: &Server, file: &Path, check: impl Fn(&str) -> Check) -> Check {
    cli_fails(s, &["apply", "-f", file.to_str().unwrap()], check)
}

fn stderr_is(want: String) -> impl Fn(&str) -> Check {
    move |err| expect_eq("stderr", err, &format!("{want}\n"))
}

/// An HTTP request that must be answered by a `kind: Status` failure with
/// this code and reason; returns the Status.
fn http_fails(
    s: &Server,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    code: u16,
    reason: &str,
) -> Result<Value, String> {
    let a: HttpAnswer = http_request(
        &s.url,
        method,
        path,
        Some(content_type),
        Some("application/json"),
        body,
    )
    .ok_or_else(|| format!("{method} {path}: no answer"))?;
    let v = a.json();
    let shown: String = if a.body.len() > 600 {
        format!("{}...", a.body.chars().take(600).collect::<String>())
    } else {
        a.body.clone()
    };
    expect(
        &format!("{method} {path} code"),
        a.code == code,
        format!("{} (want {code}): {shown}", a.code),
    )?;
    expect(
        &format!("{method} {path} kind"),
        v["kind"] == "Status" && v["status"] == "Failure",
        &shown,
    )?;
    expect_eq(
        &format!("{method} {path} reason"),
        v["reason"].as_str().unwrap_or(""),
        reason,
    )?;
    expect(
        &format!("{method} {path} code field"),
        v["code"] == code,
        &shown,
    )?;
    expect(
        &format!("{method} {path} message"),
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        &shown,
    )?;
    Ok(v)
}

fn post_svc(s: &Server, body: &Value, code: u16, reason: &str) -> Result<Value, String> {
    http_fails(
        s,
        "POST",
        "/api/v1/namespaces/default/services",
        "application/json",
        body.to_string().as_bytes(),
        code,
        reason,
    )
}

fn message_is(v: &Value, want: &str) -> Check {
    expect_eq("message", v["message"].as_str().unwrap_or(""), want)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn service_yaml(name: &str, spec: &str) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n{spec}")
}

const DNS1035: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

#[test]
fn bad_input_is_refused_and_nothing_is_stored() {
    let dir = TempDir::new("cp-bad");
    let d = dir.path();
    let s = Server::control_plane(&d.join("data"));

    // What the bad input runs into: a NodePort Service holding 30080, a
    // ClusterIP Service whose IP must not change, and the Deployment.
    let taken = write(
        d,
        "taken.yaml",
        &service_yaml(
            "taken",
            "  type: NodePort\n  ports:\n  - port: 80\n    nodePort: 30080\n",
        ),
    );
    assert_eq!(
        s.ctl_ok(&["apply", "-f", taken.to_str().unwrap()]),
        "service/taken created\n"
    );
    let fixed_yaml = service_yaml(
        "fixed",
        "  selector:\n    app: web\n  ports:\n  - port: 80\n",
    );
    let fixed = write(d, "fixed.yaml", &fixed_yaml);
    assert_eq!(
        s.ctl_ok(&["apply", "-f", fixed.to_str().unwrap()]),
        "service/fixed created\n"
    );
    assert_eq!(
        s.ctl_ok(&["apply", "-f", &example("web-deploy.yaml")]),
        "deployment.apps/web created\n"
    );
    let fixed_ip = get_json(&s.url, "/api/v1/namespaces/default/services/fixed")["spec"]
        ["clusterIP"]
        .as_str()
        .unwrap()
        .to_string();
    let other_ip = if fixed_ip == "10.96.200.200" {
        "10.96.200.201"
    } else {
        "10.96.200.200"
    };

    // Let the controllers finish (ReplicaSet, pods, endpoints) so that any
    // later write is the bad input's doing.
    let mut last = snapshot(&s.url);
    crate::support::eventually(Duration::from_secs(60), "a quiet control plane", || {
        std::thread::sleep(Duration::from_millis(700));
        let now = snapshot(&s.url);
        let quiet = now == last
            && now
                .objects
                .keys()
                .filter(|k| k.starts_with("/api/v1/pods "))
                .count()
                == 3;
        last = now;
        quiet.then_some(())
    });

    let broken_yaml = "apiVersion: v1\nkind: Service\nmetadata:\n  name: broken\nspec:\n  ports:\n  - port: 80\n   targetPort: 80\n";
    let big_annotation = "x".repeat(3 * 1024 * 1024 + 1024);

    type Case<'a> = (&'a str, Box<dyn Fn() -> Check + 'a>);
    let cases: Vec<Case> = vec![
        (
            "malformed YAML (CLI)",
            Box::new(|| {
                let f = write(d, "broken.yaml", broken_yaml);
                let prefix = format!(
                    "error: error parsing {}: error converting YAML to JSON: yaml: line ",
                    f.display()
                );
                apply_fails(&s, &f, |err| {
                    expect(
                        "stderr",
                        err.starts_with(&prefix),
                        format!("{err:?} does not start with {prefix:?}"),
                    )
                })
            }),
        ),
        (
            "malformed YAML (HTTP)",
            Box::new(|| {
                http_fails(
                    &s,
                    "POST",
                    "/api/v1/namespaces/default/services",
                    "application/yaml",
                    broken_yaml.as_bytes(),
                    400,
                    "BadRequest",
                )
                .map(|_| ())
            }),
        ),
        (
            "malformed JSON (HTTP)",
            Box::new(|| {
                http_fails(
                    &s,
                    "POST",
                    "/api/v1/namespaces/default/services",
                    "application/json",
                    br#"{"metadata": {"name": "broken""#,
                    400,
                    "BadRequest",
                )
                .map(|_| ())
            }),
        ),
        (
            "unknown kind (CLI)",
            Box::new(|| {
                let f = write(
                    d,
                    "kind.yaml",
                    &service_yaml("web", "  ports:\n  - port: 80\n")
                        .replace("kind: Service", "kind: Servic"),
                );
                apply_fails(&s, &f, stderr_is(format!(
                "error: resource mapping not found for name: \"web\" namespace: \"\" from \"{}\": no matches for kind \"Servic\" in version \"v1\"\nensure CRDs are installed first",
                f.display()
            )))
            }),
        ),
        (
            "unknown resource (HTTP)",
            Box::new(|| {
                let v = http_fails(
                    &s,
                    "POST",
                    "/api/v1/namespaces/default/servics",
                    "application/json",
                    br#"{"metadata":{"name":"web"}}"#,
                    404,
                    "NotFound",
                )?;
                message_is(&v, "the server could not find the requested resource")
            }),
        ),
        (
            "kind in the body is not the path's (HTTP)",
            Box::new(|| {
                post_svc(&s, &json!({"apiVersion": "v1", "kind": "Servic", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}), 400, "BadRequest").map(|_| ())
            }),
        ),
        (
            "unknown apiVersion (CLI)",
            Box::new(|| {
                let f = write(
                    d,
                    "version.yaml",
                    &service_yaml("web", "  ports:\n  - port: 80\n")
                        .replace("apiVersion: v1", "apiVersion: v9"),
                );
                apply_fails(&s, &f, stderr_is(format!(
                "error: resource mapping not found for name: \"web\" namespace: \"\" from \"{}\": no matches for kind \"Service\" in version \"v9\"\nensure CRDs are installed first",
                f.display()
            )))
            }),
        ),
        (
            "unknown apiVersion of a Deployment (CLI)",
            Box::new(|| {
                let text = std::fs::read_to_string(example("web-deploy.yaml"))
                    .unwrap()
                    .replace("apps/v1", "apps/v1beta1");
                let f = write(d, "deploy-version.yaml", &text);
                apply_fails(&s, &f, stderr_is(format!(
                "error: resource mapping not found for name: \"web\" namespace: \"\" from \"{}\": no matches for kind \"Deployment\" in version \"apps/v1beta1\"\nensure CRDs are installed first",
                f.display()
            )))
            }),
        ),
        (
            "unknown apiVersion (HTTP path)",
            Box::new(|| {
                http_fails(
                    &s,
                    "POST",
                    "/api/v9/namespaces/default/services",
                    "application/json",
                    br#"{"metadata":{"name":"web"}}"#,
                    404,
                    "NotFound",
                )
                .map(|_| ())
            }),
        ),
        (
            "apiVersion in the body is not the path's (HTTP)",
            Box::new(|| {
                post_svc(&s, &json!({"apiVersion": "v9", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}), 400, "BadRequest").map(|_| ())
            }),
        ),
        (
            "missing name (CLI apply)",
            Box::new(|| {
                let f = write(d, "noname.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  labels:\n    app: web\nspec:\n  ports:\n  - port: 80\n");
                apply_fails(&s, &f, |err| {
                    expect(
                        "stderr",
                        err.starts_with("error: ")
                            && err.contains("resource name may not be empty"),
                        err,
                    )
                })
            }),
        ),
        (
            "missing name (CLI create)",
            Box::new(|| {
                let f = write(d, "noname2.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  labels:\n    app: web\nspec:\n  ports:\n  - port: 80\n");
                cli_fails(&s, &["create", "-f", f.to_str().unwrap()], stderr_is(
                "The Service \"\" is invalid: metadata.name: Required value: name or generateName is required".into(),
            ))
            }),
        ),
        (
            "missing name (HTTP)",
            Box::new(|| {
                let v = post_svc(
                    &s,
                    &json!({"metadata": {"labels": {"app": "web"}}, "spec": {"ports": [{"port": 80}]}}),
                    422,
                    "Invalid",
                )?;
                message_is(&v, "Service \"\" is invalid: metadata.name: Required value: name or generateName is required")
            }),
        ),
        (
            "duplicate port (CLI)",
            Box::new(|| {
                let f = write(
                    d,
                    "dup.yaml",
                    &service_yaml(
                        "dup",
                        "  ports:\n  - name: a\n    port: 80\n  - name: b\n    port: 80\n",
                    ),
                );
                apply_fails(&s, &f, |err| {
                    let prefix = "The Service \"dup\" is invalid: spec.ports[1]: Duplicate value: ";
                    expect(
                        "stderr",
                        err.starts_with(prefix) && err.lines().count() == 1,
                        format!("{err:?} is not one line starting {prefix:?}"),
                    )
                })
            }),
        ),
        (
            "duplicate port (HTTP)",
            Box::new(|| {
                let v = post_svc(
                    &s,
                    &json!({"metadata": {"name": "dup"}, "spec": {"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}}),
                    422,
                    "Invalid",
                )?;
                let cause = &v["details"]["causes"][0];
                expect(
                    "cause",
                    cause["field"] == "spec.ports[1]" && cause["reason"] == "FieldValueDuplicate",
                    &v,
                )
            }),
        ),
        (
            "duplicate port name (CLI)",
            Box::new(|| {
                let f = write(
                    d,
                    "dupname.yaml",
                    &service_yaml(
                        "dup",
                        "  ports:\n  - name: http\n    port: 80\n  - name: http\n    port: 81\n",
                    ),
                );
                apply_fails(&s, &f, stderr_is("The Service \"dup\" is invalid: spec.ports[1].name: Duplicate value: \"http\"".into()))
            }),
        ),
        (
            "nodePort out of range (CLI)",
            Box::new(|| {
                let f = write(d, "range.yaml", &service_yaml("web", "  type: NodePort\n  selector:\n    app: web\n  ports:\n  - port: 80\n    nodePort: 80\n"));
                apply_fails(&s, &f, stderr_is(
                "The Service \"web\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767".into(),
            ))
            }),
        ),
        (
            "nodePort out of range (HTTP)",
            Box::new(|| {
                let v = post_svc(
                    &s,
                    &json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 32768}]}}),
                    422,
                    "Invalid",
                )?;
                message_is(&v, "Service \"web\" is invalid: spec.ports[0].nodePort: Invalid value: 32768: provided port is not in the valid range. The range of valid ports is 30000-32767")?;
                let cause = &v["details"]["causes"][0];
                expect(
                    "details",
                    v["details"]["name"] == "web"
                        && v["details"]["kind"] == "Service"
                        && cause["field"] == "spec.ports[0].nodePort"
                        && cause["reason"] == "FieldValueInvalid",
                    &v,
                )
            }),
        ),
        (
            "nodePort already allocated (CLI)",
            Box::new(|| {
                let f = write(
                    d,
                    "taken2.yaml",
                    &service_yaml(
                        "web",
                        "  type: NodePort\n  ports:\n  - port: 80\n    nodePort: 30080\n",
                    ),
                );
                apply_fails(&s, &f, stderr_is(
                "The Service \"web\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated".into(),
            ))
            }),
        ),
        (
            "nodePort already allocated, on update (HTTP)",
            Box::new(|| {
                let patch = json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}});
                let v = http_fails(
                    &s,
                    "PATCH",
                    "/api/v1/namespaces/default/services/fixed",
                    "application/merge-patch+json",
                    patch.to_string().as_bytes(),
                    422,
                    "Invalid",
                )?;
                message_is(&v, "Service \"fixed\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated")
            }),
        ),
        (
            "changed clusterIP (CLI)",
            Box::new(|| {
                let f = write(
                    d,
                    "fixed2.yaml",
                    &fixed_yaml.replace("spec:\n", &format!("spec:\n  clusterIP: {other_ip}\n")),
                );
                apply_fails(&s, &f, |err| {
                    let ok = err.starts_with("The Service \"fixed\" is invalid: ")
                        && err.contains("spec.clusterIPs[0]: Invalid value: ")
                        && err.contains(other_ip)
                        && err.contains("may not change once set");
                    expect("stderr", ok, err)
                })
            }),
        ),
        (
            "changed clusterIP (HTTP PUT)",
            Box::new(|| {
                let mut svc = get_json(&s.url, "/api/v1/namespaces/default/services/fixed");
                svc["spec"]["clusterIP"] = json!(other_ip);
                svc["spec"]["clusterIPs"] = json!([other_ip]);
                let v = http_fails(
                    &s,
                    "PUT",
                    "/api/v1/namespaces/default/services/fixed",
                    "application/json",
                    svc.to_string().as_bytes(),
                    422,
                    "Invalid",
                )?;
                let msg = v["message"].as_str().unwrap_or("");
                expect(
                    "message",
                    msg.starts_with("Service \"fixed\" is invalid: ")
                        && msg.contains("may not change once set"),
                    msg,
                )
            }),
        ),
        (
            "clusterIP already allocated (HTTP)",
            Box::new(|| {
                let v = post_svc(
                    &s,
                    &json!({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 80}]}}),
                    422,
                    "Invalid",
                )?;
                let msg = v["message"].as_str().unwrap_or("");
                expect(
                    "message",
                    msg.contains("provided IP is already allocated"),
                    msg,
                )
            }),
        ),
        (
            "clusterIP out of range (HTTP)",
            Box::new(|| {
                let v = post_svc(
                    &s,
                    &json!({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.0.0.5", "ports": [{"port": 80}]}}),
                    422,
                    "Invalid",
                )?;
                let msg = v["message"].as_str().unwrap_or("");
                expect(
                    "message",
                    msg.starts_with("Service \"web\" is invalid: ") && msg.contains("10.96.0.0/12"),
                    msg,
                )
            }),
        ),
        (
            "invalid Service name Web_1 (CLI)",
            Box::new(|| {
                let f = write(
                    d,
                    "name.yaml",
                    &service_yaml("Web_1", "  ports:\n  - port: 80\n"),
                );
                apply_fails(&s, &f, stderr_is(format!(
                "The Service \"Web_1\" is invalid: metadata.name: Invalid value: \"Web_1\": {DNS1035}"
            )))
            }),
        ),
        (
            "invalid Deployment name Web_1 (CLI)",
            Box::new(|| {
                let text = std::fs::read_to_string(example("web-deploy.yaml"))
                    .unwrap()
                    .replace("name: web\n", "name: Web_1\n");
                let f = write(d, "deploy-name.yaml", &text);
                apply_fails(&s, &f, stderr_is(format!(
                "The Deployment \"Web_1\" is invalid: metadata.name: Invalid value: \"Web_1\": {DNS1123_SUBDOMAIN}"
            )))
            }),
        ),
        (
            "invalid Pod name Web_1 (HTTP)",
            Box::new(|| {
                let pod = json!({"metadata": {"name": "Web_1"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
                let v = http_fails(
                    &s,
                    "POST",
                    "/api/v1/namespaces/default/pods",
                    "application/json",
                    pod.to_string().as_bytes(),
                    422,
                    "Invalid",
                )?;
                message_is(&v, &format!("Pod \"Web_1\" is invalid: metadata.name: Invalid value: \"Web_1\": {DNS1123_SUBDOMAIN}"))
            }),
        ),
        (
            "Deployment selector not matching its template (CLI)",
            Box::new(|| {
                let text = std::fs::read_to_string(example("web-deploy.yaml"))
                    .unwrap()
                    .replace("name: web\n", "name: web2\n")
                    .replace(
                        "matchLabels:\n      app: web",
                        "matchLabels:\n      app: other",
                    );
                assert!(text.contains("app: other"), "web-deploy.yaml changed shape");
                let f = write(d, "selector.yaml", &text);
                apply_fails(&s, &f, |err| {
                    let ok = err.starts_with("The Deployment \"web2\" is invalid: ")
                        && err.contains("spec.template.metadata.labels: Invalid value: ")
                        && err.contains("`selector` does not match template `labels`");
                    expect("stderr", ok, err)
                })
            }),
        ),
        (
            "unknown field with fieldValidation=Strict (HTTP)",
            Box::new(|| {
                let body = json!({"metadata": {"name": "web"}, "spec": {"foo": 1, "ports": [{"port": 80}]}});
                let v = http_fails(
                    &s,
                    "POST",
                    "/api/v1/namespaces/default/services?fieldValidation=Strict",
                    "application/json",
                    body.to_string().as_bytes(),
                    400,
                    "BadRequest",
                )?;
                message_is(
                    &v,
                    "Service in version \"v1\" cannot be handled as a Service: strict decoding error: unknown field \"spec.foo\"",
                )
            }),
        ),
        (
            "body over 3 MiB (HTTP)",
            Box::new(|| {
                let body = json!({"metadata": {"name": "big", "annotations": {"a": big_annotation}}, "spec": {"ports": [{"port": 80}]}});
                let v = post_svc(&s, &body, 413, "RequestEntityTooLarge")?;
                message_is(&v, "Request entity too large: limit is 3145728")
            }),
        ),
        (
            "body over 3 MiB (CLI create)",
            Box::new(|| {
                let f = write(d, "big-create.yaml", &format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: big\n  annotations:\n    a: {big_annotation}\nspec:\n  ports:\n  - port: 80\n"
            ));
                cli_fails(&s, &["create", "-f", f.to_str().unwrap()], stderr_is(format!(
                "Error from server (RequestEntityTooLarge): error when creating \"{}\": Request entity too large: limit is 3145728",
                f.display()
            )))
            }),
        ),
        (
            "body over 3 MiB (CLI apply)",
            Box::new(|| {
                let f = write(d, "big.yaml", &format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: big\n  annotations:\n    a: {big_annotation}\nspec:\n  ports:\n  - port: 80\n"
            ));
                apply_fails(&s, &f, stderr_is(format!(
                "Error from server (RequestEntityTooLarge): error when creating \"{}\": Request entity too large: limit is 3145728",
                f.display()
            )))
            }),
        ),
    ];

    let mut failures = Vec::new();
    for (name, case) in &cases {
        let before = snapshot(&s.url);
        let result = case();
        let after = snapshot(&s.url);
        if let Err(e) = result {
            failures.push(format!("[{name}] {e}"));
        }
        if before != after {
            failures.push(format!(
                "[{name}] something was stored: {}",
                diff(&before, &after)
            ));
        }
    }
    for name in ["web", "broken", "dup", "Web_1", "big"] {
        let a = http_request(
            &s.url,
            "GET",
            &format!("/api/v1/namespaces/default/services/{name}"),
            None,
            None,
            b"",
        )
        .unwrap();
        if a.code != 404 {
            failures.push(format!("[afterwards] service {name} exists: {}", a.body));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad-input checks failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
