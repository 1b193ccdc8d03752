//! The Service environment variables a container starts with
//! (`WEB_SERVICE_HOST`, `WEB_PORT_80_TCP_ADDR`, ... and the `KUBERNETES_*`
//! ones), from a cache of Services kept by a watch so a container start
//! never waits on the API.

use api::registry::SERVICES;
use client::{Client, ListParams, WatcherEvent};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use tokio_util::sync::CancellationToken;

/// Services by (namespace, name).
#[derive(Default)]
pub(crate) struct ServiceCache {
    services: RwLock<BTreeMap<(String, String), Service>>,
}

impl ServiceCache {
    /// Keep the cache current until shutdown.
    pub(crate) async fn run(self: Arc<Self>, client: Client, shutdown: CancellationToken) {
        let events = client::watcher(client, &SERVICES, None, ListParams::default());
        futures::pin_mut!(events);
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                e = events.next() => match e { Some(e) => e, None => return },
            };
            let mut map = self.services.write().expect("service cache lock");
            let key_of = |s: &Service| {
                (
                    s.metadata.namespace.clone().unwrap_or_default(),
                    s.metadata.name.clone().unwrap_or_default(),
                )
            };
            match event {
                WatcherEvent::Restarted(items) => {
                    map.clear();
                    for s in items
                        .into_iter()
                        .filter_map(|v| client::typed::<Service>(v).ok())
                    {
                        map.insert(key_of(&s), s);
                    }
                }
                WatcherEvent::Applied(v) => {
                    if let Ok(s) = client::typed::<Service>(v) {
                        map.insert(key_of(&s), s);
                    }
                }
                WatcherEvent::Deleted(v) => {
                    if let Ok(s) = client::typed::<Service>(v) {
                        map.remove(&key_of(&s));
                    }
                }
            }
        }
    }

    /// The variables for a container in `namespace`: that namespace's
    /// Services when `service_links`, and always the API's own.
    pub(crate) fn env_for(&self, namespace: &str, service_links: bool) -> Vec<(String, String)> {
        let map = self.services.read().expect("service cache lock");
        let mut chosen: Vec<&Service> = Vec::new();
        if service_links {
            chosen.extend(
                map.range((namespace.to_string(), String::new())..)
                    .take_while(|((ns, _), _)| ns == namespace)
                    .map(|(_, s)| s),
            );
        }
        if namespace != "default" || !service_links {
            if let Some(k) = map.get(&("default".to_string(), "kubernetes".to_string())) {
                chosen.push(k);
            }
        }
        service_env(&chosen)
    }
}

/// Docker-links style variables for `services`, as the kubelet makes them.
pub(crate) fn service_env(services: &[&Service]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        let ip = match spec.cluster_ip.as_deref() {
            Some(ip) if !ip.is_empty() && ip != "None" => ip,
            _ => continue,
        };
        let ports = spec.ports.clone().unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        let name = svc
            .metadata
            .name
            .clone()
            .unwrap_or_default()
            .to_uppercase()
            .replace('-', "_");
        out.push((format!("{name}_SERVICE_HOST"), ip.to_string()));
        out.push((format!("{name}_SERVICE_PORT"), first.port.to_string()));
        for p in &ports {
            if let Some(pn) = p.name.as_deref().filter(|n| !n.is_empty()) {
                out.push((
                    format!(
                        "{name}_SERVICE_PORT_{}",
                        pn.to_uppercase().replace('-', "_")
                    ),
                    p.port.to_string(),
                ));
            }
        }
        let proto = |p: &k8s_openapi::api::core::v1::ServicePort| {
            p.protocol
                .clone()
                .unwrap_or_else(|| "TCP".into())
                .to_lowercase()
        };
        out.push((
            format!("{name}_PORT"),
            format!("{}://{ip}:{}", proto(first), first.port),
        ));
        for p in &ports {
            let pr = proto(p);
            let prefix = format!("{name}_PORT_{}_{}", p.port, pr.to_uppercase());
            out.push((prefix.clone(), format!("{pr}://{ip}:{}", p.port)));
            out.push((format!("{prefix}_PROTO"), pr.clone()));
            out.push((format!("{prefix}_PORT"), p.port.to_string()));
            out.push((format!("{prefix}_ADDR"), ip.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(ns: &str, name: &str, ip: &str, ports: serde_json::Value) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "ports": ports}
        }))
        .unwrap()
    }

    #[test]
    fn variables_follow_docker_links_names() {
        let web = svc(
            "default",
            "web-svc",
            "10.96.142.31",
            serde_json::json!([{"name": "http", "port": 80}]),
        );
        let env = service_env(&[&web]);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("WEB_SVC_SERVICE_HOST"), Some("10.96.142.31"));
        assert_eq!(get("WEB_SVC_SERVICE_PORT"), Some("80"));
        assert_eq!(get("WEB_SVC_SERVICE_PORT_HTTP"), Some("80"));
        assert_eq!(get("WEB_SVC_PORT"), Some("tcp://10.96.142.31:80"));
        assert_eq!(get("WEB_SVC_PORT_80_TCP_PROTO"), Some("tcp"));
        assert_eq!(get("WEB_SVC_PORT_80_TCP_ADDR"), Some("10.96.142.31"));
    }

    #[test]
    fn headless_services_have_none_and_kubernetes_is_always_there() {
        let cache = ServiceCache::default();
        {
            let mut m = cache.services.write().unwrap();
            m.insert(
                ("default".into(), "kubernetes".into()),
                svc(
                    "default",
                    "kubernetes",
                    "10.96.0.1",
                    serde_json::json!([{"name": "https", "port": 443}]),
                ),
            );
            m.insert(
                ("team".into(), "db".into()),
                svc("team", "db", "None", serde_json::json!([{"port": 5432}])),
            );
            m.insert(
                ("team".into(), "api".into()),
                svc(
                    "team",
                    "api",
                    "10.96.5.5",
                    serde_json::json!([{"port": 8080}]),
                ),
            );
        }
        let env = cache.env_for("team", true);
        let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"API_SERVICE_HOST"));
        assert!(names.contains(&"KUBERNETES_SERVICE_HOST"));
        assert!(!names.iter().any(|n| n.starts_with("DB_")));
        let env = cache.env_for("team", false);
        assert!(env.iter().all(|(n, _)| n.starts_with("KUBERNETES_")));
    }
}
