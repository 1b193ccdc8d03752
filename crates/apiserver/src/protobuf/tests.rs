//! Bodies captured from kubectl 1.35 (`testdata/*.pb`):
//! `kubectl create ns team`,
//! `kubectl create deployment web --image=nginx:1.27 --replicas=0 --port=80`,
//! `kubectl create service nodeport web --tcp=80:8080 --node-port=30080`.

use super::*;

#[test]
fn namespace_from_kubectl_create() {
    let ns = decode("Namespace", include_bytes!("testdata/namespace.pb")).unwrap();
    assert_eq!(ns["apiVersion"], "v1");
    assert_eq!(ns["kind"], "Namespace");
    assert_eq!(ns["metadata"], json!({"name": "team"}));
}

#[test]
fn deployment_keeps_zero_replicas_and_drops_empty_fields() {
    let d = decode("Deployment", include_bytes!("testdata/deployment.pb")).unwrap();
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(d["metadata"]["name"], "web");
    assert_eq!(d["metadata"]["labels"], json!({"app": "web"}));
    assert!(d["metadata"].get("namespace").is_none(), "{d}");
    // A pointer field: zero is kept.
    assert_eq!(d["spec"]["replicas"], 0);
    assert_eq!(
        d["spec"]["selector"],
        json!({"matchLabels": {"app": "web"}})
    );
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["name"], "nginx");
    assert_eq!(c["image"], "nginx:1.27");
    assert_eq!(c["ports"], json!([{"containerPort": 80}]));
    assert_eq!(c["resources"], json!({}));
    assert!(c.get("imagePullPolicy").is_none(), "{c}");
}

#[test]
fn service_ports_with_int_or_string() {
    let s = decode("Service", include_bytes!("testdata/service.pb")).unwrap();
    assert_eq!(s["spec"]["type"], "NodePort");
    let port = &s["spec"]["ports"][0];
    assert_eq!(port["port"], 80);
    assert_eq!(port["targetPort"], 8080);
    assert_eq!(port["nodePort"], 30080);
    assert_eq!(port["name"], "80-8080");
    assert_eq!(port["protocol"], "TCP");
    assert_eq!(s["spec"]["selector"], json!({"app": "web"}));
}

#[test]
fn malformed_bodies_are_errors() {
    assert!(decode("Namespace", b"{}").is_err());
    assert!(decode("Namespace", b"k8s\0\x12\x05ab").is_err());
    assert!(decode("Widget", b"k8s\0").is_err());
}
