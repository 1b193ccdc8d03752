//! What every cluster has from its first start: the system namespaces, the
//! `kubernetes` Service with its endpoints, and the `kube-dns` Service.
//! Idempotent: written straight to the store, only what is missing or
//! out of date.

use crate::admission::allocates;
use crate::allocator::{settled_write, Reservation};
use crate::delete::resume_namespace_terminations;
use crate::error::ApiError;
use crate::object_meta::stamp_created;
use crate::server::ApiServer;
use crate::storage::Write;
use api::registry::{ResourceInfo, ENDPOINTS, ENDPOINT_SLICES, NAMESPACES, SERVICES};
use serde_json::{json, Value};
use std::sync::Arc;
use store::StoreError;

const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Create the built-in objects that are missing, bring the `kubernetes`
/// endpoints up to date, and resume interrupted namespace deletions.
pub async fn bootstrap(server: &Arc<ApiServer>) -> Result<(), ApiError> {
    let config = &server.config;
    let (ip, port) = config.kubernetes_endpoint;
    let mut wanted: Vec<(&ResourceInfo, Value, bool)> = SYSTEM_NAMESPACES
        .iter()
        .map(|ns| {
            let obj = json!({
                "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            });
            (&NAMESPACES, obj, false)
        })
        .collect();
    wanted.extend([
        (
            &SERVICES,
            kubernetes_service(&config.kubernetes_service_ip().to_string()),
            false,
        ),
        (
            &SERVICES,
            dns_service(&config.dns_service_ip().to_string()),
            false,
        ),
        (
            &ENDPOINTS,
            kubernetes_endpoints(&ip.to_string(), port),
            true,
        ),
        (
            &ENDPOINT_SLICES,
            kubernetes_endpoint_slice(&ip.to_string(), port),
            true,
        ),
    ]);
    // Written straight to the store, none depends on another: all at once,
    // so a first start pays one or two group-committed flushes instead of
    // one per object.
    futures::future::try_join_all(
        wanted
            .into_iter()
            .map(|(res, obj, refresh)| ensure(server, res, obj, refresh)),
    )
    .await?;
    resume_namespace_terminations(server).await
}

/// Create `obj` when missing; with `refresh`, rewrite it when its content
/// (all but metadata) differs, e.g. after the API address changed.
async fn ensure(
    server: &ApiServer,
    res: &ResourceInfo,
    mut obj: Value,
    refresh: bool,
) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    let namespace = obj["metadata"]["namespace"].as_str().map(str::to_string);
    let key = res.key(namespace.as_deref(), &name);
    let storage = &server.storage;
    match storage.get(&key).await.map_err(ApiError::Storage)? {
        None => {
            stamp_created(&mut obj, &res.api_version(), res.kind);
            let reservation = reserve(server, res, &key, &obj, None).await?;
            match settled_write(storage, key, Write::Create(obj), reservation)
                .await
                .0
            {
                Ok(_) | Err(StoreError::AlreadyExists) => Ok(()),
                Err(e) => Err(ApiError::Storage(e)),
            }
        }
        Some(current) if refresh && content(&current) != content(&obj) => {
            let mut updated = obj;
            updated["metadata"] = current["metadata"].clone();
            updated["apiVersion"] = json!(res.api_version());
            updated["kind"] = json!(res.kind);
            let rv = crate::object_meta::resource_version(&current)
                .ok()
                .flatten();
            let reservation = reserve(server, res, &key, &updated, Some(&current)).await?;
            let write = Write::Update(updated, rv);
            match settled_write(storage, key, write, reservation).await.0 {
                // Someone else wrote it meanwhile; the next start checks again.
                Ok(_) | Err(StoreError::Conflict) => Ok(()),
                Err(e) => Err(ApiError::Storage(e)),
            }
        }
        Some(_) => Ok(()),
    }
}

/// The built-in Services are written as they are, not admitted, but what
/// they hold is reserved like any Service's.
async fn reserve(
    server: &ApiServer,
    res: &ResourceInfo,
    key: &str,
    obj: &Value,
    old: Option<&Value>,
) -> Result<Option<Reservation>, ApiError> {
    if !allocates(res) {
        return Ok(None);
    }
    let allocations = server
        .service_allocator
        .allocations(&server.storage)
        .await
        .map_err(ApiError::Storage)?;
    Ok(Some(allocations.reserve_as_is(key, obj, old)))
}

fn content(obj: &Value) -> Value {
    let mut c = obj.clone();
    if let Some(m) = c.as_object_mut() {
        for k in ["metadata", "kind", "apiVersion"] {
            m.remove(k);
        }
    }
    c
}

fn kubernetes_service(cluster_ip: &str) -> Value {
    json!({
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
            "sessionAffinity": "None",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
        },
        "status": {"loadBalancer": {}},
    })
}

fn dns_service(cluster_ip: &str) -> Value {
    json!({
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
            "sessionAffinity": "None",
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
            ],
        },
        "status": {"loadBalancer": {}},
    })
}

fn kubernetes_endpoints(ip: &str, port: u16) -> Value {
    json!({
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
        },
        "subsets": [{
            "addresses": [{"ip": ip}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }],
    })
}

fn kubernetes_endpoint_slice(ip: &str, port: u16) -> Value {
    json!({
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "kubernetes"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    })
}
