//! The kube-dns Service has no selector; the DNS server itself says where
//! it listens, in the Service's Endpoints and in an EndpointSlice, so that
//! kube-proxy sends 10.96.0.10:53 here. Written on every start (they are
//! kept across restarts), only when they differ from what they should be.

use std::net::SocketAddr;
use std::time::Duration;

use api::registry::{ENDPOINTS, ENDPOINT_SLICES, SERVICES};
use client::{Client, ClientError, ListParams};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::DnsError;

pub const NAMESPACE: &str = "kube-system";
pub const SERVICE: &str = "kube-dns";
/// `endpointslice.kubernetes.io/managed-by` of our slice, so the
/// EndpointSlice controller leaves it alone.
pub const MANAGED_BY: &str = "minik8s-dns";

fn ports(port: u16) -> Value {
    json!([
        {"name": "dns", "port": port, "protocol": "UDP"},
        {"name": "dns-tcp", "port": port, "protocol": "TCP"},
    ])
}

/// The kube-dns Endpoints for a server at `addr`.
pub fn endpoints_object(addr: SocketAddr) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": SERVICE,
            "namespace": NAMESPACE,
            "labels": {
                "k8s-app": "kube-dns",
                // Our own EndpointSlice exists; mirroring would add a second.
                "endpointslice.kubernetes.io/skip-mirror": "true",
            },
        },
        "subsets": [{
            "addresses": [{"ip": addr.ip().to_string()}],
            "ports": ports(addr.port()),
        }],
    })
}

/// The kube-dns EndpointSlice (named by the API: `kube-dns-xxxxx`), owned
/// by the Service when its uid is known.
pub fn endpoint_slice_object(addr: SocketAddr, service_uid: Option<&str>) -> Value {
    let mut slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": format!("{SERVICE}-"),
            "namespace": NAMESPACE,
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/service-name": SERVICE,
                "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
            },
        },
        "addressType": if addr.is_ipv4() { "IPv4" } else { "IPv6" },
        "endpoints": [{
            "addresses": [addr.ip().to_string()],
            "conditions": {"ready": true, "serving": true, "terminating": false},
        }],
        "ports": ports(addr.port()),
    });
    if let Some(uid) = service_uid {
        slice["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "v1",
            "kind": "Service",
            "name": SERVICE,
            "uid": uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }]);
    }
    slice
}

/// Does `current` lack what `desired` says? Only the fields we write
/// count: what the API adds (uid, timestamps, defaults) is no difference.
pub fn needs_update(current: &Value, desired: &Value) -> bool {
    for field in ["subsets", "endpoints", "ports", "addressType"] {
        if let Some(want) = desired.get(field) {
            if !contains(current.get(field).unwrap_or(&Value::Null), want) {
                return true;
            }
        }
    }
    for field in ["labels", "ownerReferences"] {
        if let Some(want) = desired["metadata"].get(field) {
            if !contains(current["metadata"].get(field).unwrap_or(&Value::Null), want) {
                return true;
            }
        }
    }
    false
}

/// `have` holds everything of `want` (objects may have more keys).
fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| contains(hv, v))),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(hv, wv)| contains(hv, wv))
        }
        _ => have == want,
    }
}

/// `desired` with the identity of `current`, for a PUT.
fn replacement(current: &Value, desired: &Value) -> Value {
    let mut obj = desired.clone();
    let mut meta = current["metadata"].clone();
    for field in ["labels", "ownerReferences"] {
        if let Some(v) = desired["metadata"].get(field) {
            meta[field] = v.clone();
        }
    }
    obj["metadata"] = meta;
    obj
}

async fn write_endpoints(client: &Client, addr: SocketAddr) -> Result<(), ClientError> {
    let desired = endpoints_object(addr);
    match client.get(&ENDPOINTS, Some(NAMESPACE), SERVICE).await {
        Ok(current) if !needs_update(&current, &desired) => Ok(()),
        Ok(current) => client
            .replace(
                &ENDPOINTS,
                Some(NAMESPACE),
                SERVICE,
                &replacement(&current, &desired),
            )
            .await
            .map(drop),
        Err(e) if e.is_not_found() => client
            .create(&ENDPOINTS, Some(NAMESPACE), &desired)
            .await
            .map(drop),
        Err(e) => Err(e),
    }
}

async fn write_endpoint_slice(client: &Client, addr: SocketAddr) -> Result<(), ClientError> {
    let uid = match client.get(&SERVICES, Some(NAMESPACE), SERVICE).await {
        Ok(svc) => svc["metadata"]["uid"].as_str().map(str::to_string),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    let desired = endpoint_slice_object(addr, uid.as_deref());
    let selector = format!(
        "kubernetes.io/service-name={SERVICE},endpointslice.kubernetes.io/managed-by={MANAGED_BY}"
    );
    let list = client
        .list(
            &ENDPOINT_SLICES,
            Some(NAMESPACE),
            &ListParams::labels(selector),
        )
        .await?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let Some((first, extra)) = items.split_first() else {
        return client
            .create(&ENDPOINT_SLICES, Some(NAMESPACE), &desired)
            .await
            .map(drop);
    };
    // One slice is enough; more are leftovers of an interrupted start.
    for stale in extra {
        if let Some(name) = stale["metadata"]["name"].as_str() {
            match client.delete(&ENDPOINT_SLICES, Some(NAMESPACE), name).await {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
    }
    if needs_update(first, &desired) {
        let name = first["metadata"]["name"].as_str().unwrap_or_default();
        client
            .replace(
                &ENDPOINT_SLICES,
                Some(NAMESPACE),
                name,
                &replacement(first, &desired),
            )
            .await?;
    }
    Ok(())
}

/// Write both objects, retrying (the API may still be starting, or a write
/// may conflict) until done or `shutdown`.
pub async fn publish_endpoints(
    client: Client,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> Result<(), DnsError> {
    if addr.ip().is_unspecified() {
        tracing::warn!(%addr, "DNS listens on a wildcard address; kube-dns endpoints not published");
        return Ok(());
    }
    let mut backoff = Duration::from_millis(100);
    loop {
        let result = async {
            write_endpoints(&client, addr).await?;
            write_endpoint_slice(&client, addr).await
        }
        .await;
        match result {
            Ok(()) => {
                tracing::info!(%addr, "kube-dns endpoints published");
                return Ok(());
            }
            Err(e) => tracing::debug!(error = %e, "cannot publish kube-dns endpoints yet"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Err(DnsError::Publish("stopped before the API answered".into())),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "10.244.0.1:53".parse().unwrap()
    }

    #[test]
    fn endpoints_list_the_listen_address_with_both_ports() {
        let ep = endpoints_object(addr());
        assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "10.244.0.1");
        assert_eq!(
            ep["subsets"][0]["ports"][0],
            json!({"name": "dns", "port": 53, "protocol": "UDP"})
        );
        assert_eq!(ep["subsets"][0]["ports"][1]["name"], "dns-tcp");
    }

    #[test]
    fn slice_is_labelled_for_its_service_and_owned_by_it() {
        let s = endpoint_slice_object(addr(), Some("u-1"));
        assert_eq!(
            s["metadata"]["labels"]["kubernetes.io/service-name"],
            SERVICE
        );
        assert_eq!(
            s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
            MANAGED_BY
        );
        assert_eq!(s["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(s["endpoints"][0]["conditions"]["ready"], true);
        assert_eq!(s["addressType"], "IPv4");
    }

    #[test]
    fn stored_copy_with_server_fields_needs_no_update_but_a_moved_server_does() {
        let desired = endpoints_object(addr());
        let mut stored = desired.clone();
        stored["metadata"]["uid"] = json!("x");
        stored["metadata"]["resourceVersion"] = json!("12");
        stored["metadata"]["labels"]["extra"] = json!("kept");
        assert!(!needs_update(&stored, &desired));
        let moved = endpoints_object("10.244.1.1:53".parse().unwrap());
        assert!(needs_update(&stored, &moved));
        let put = replacement(&stored, &moved);
        assert_eq!(put["metadata"]["resourceVersion"], "12");
        assert_eq!(put["subsets"][0]["addresses"][0]["ip"], "10.244.1.1");
    }
}
