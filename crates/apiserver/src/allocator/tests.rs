//! The allocator against admission's real rules: concurrent reservations,
//! settling by the write's outcome, and rebuilding from a store.

use super::*;
use api::field_error::FieldError;
use api::service_admission::admit_service;
use serde_json::json;
use std::collections::BTreeSet;
use store::{SledStore, Store};

fn service(name: &str, spec: Value) -> Value {
    json!({"metadata": {"namespace": "default", "name": name}, "spec": spec})
}

fn node_port(name: &str, node_port: Option<u16>) -> Value {
    let mut port = json!({"port": 80, "protocol": "TCP", "targetPort": 80});
    if let Some(np) = node_port {
        port["nodePort"] = json!(np);
    }
    service(
        name,
        json!({"type": "NodePort", "ports": [port], "selector": {"app": name}}),
    )
}

/// Admit `svc` (a create, or an update of `old`) as the API server does.
fn admit(
    allocations: &Allocations,
    svc: &mut Value,
    old: Option<&Value>,
) -> Result<Reservation, Vec<FieldError>> {
    let net = ServiceNetwork::default();
    allocations.admit(&service_key(svc), svc, old, |svc, in_use| {
        admit_service(svc, old, in_use, &net, &mut rand::rng())
    })
}

fn ip_of(svc: &Value) -> Ipv4Addr {
    svc["spec"]["clusterIP"].as_str().unwrap().parse().unwrap()
}

fn node_port_of(svc: &Value) -> u16 {
    svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap() as u16
}

fn messages(errors: Vec<FieldError>) -> Vec<String> {
    errors.iter().map(FieldError::message).collect()
}

#[test]
fn concurrent_creates_never_share_an_address() {
    let allocations = Allocations::default();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let allocations = allocations.clone();
            std::thread::spawn(move || {
                (0..100)
                    .map(|i| {
                        let mut svc = node_port(&format!("s{t}-{i}"), None);
                        admit(&allocations, &mut svc, None)
                            .expect("admitted")
                            .commit(false);
                        (ip_of(&svc), node_port_of(&svc))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<(Ipv4Addr, u16)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let ips: BTreeSet<_> = all.iter().map(|(ip, _)| *ip).collect();
    let ports: BTreeSet<_> = all.iter().map(|(_, p)| *p).collect();
    assert_eq!(ips.len(), 800, "a ClusterIP was handed out twice");
    assert_eq!(ports.len(), 800, "a NodePort was handed out twice");
}

#[test]
fn an_unsettled_reservation_already_blocks_others() {
    let allocations = Allocations::default();
    let mut first = node_port("a", Some(30080));
    let _in_flight = admit(&allocations, &mut first, None).unwrap();
    let mut second = node_port("b", Some(30080));
    let err = admit(&allocations, &mut second, None).unwrap_err();
    assert_eq!(
        messages(err),
        ["spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"]
    );
    let mut third = service(
        "c",
        json!({"clusterIP": ip_of(&first).to_string(), "ports": [{"port": 80}]}),
    );
    let err = admit(&allocations, &mut third, None).unwrap_err();
    assert!(
        messages(err)[0].ends_with("provided IP is already allocated"),
        "same ClusterIP admitted twice"
    );
}

#[test]
fn a_failed_write_gives_the_reservation_back() {
    let allocations = Allocations::default();
    let mut svc = node_port("web", Some(30080));
    let reservation = admit(&allocations, &mut svc, None).unwrap();
    let ip = ip_of(&svc);
    assert!(allocations.cluster_ip_held(ip) && allocations.node_port_held(30080));
    drop(reservation);
    assert!(!allocations.cluster_ip_held(ip) && !allocations.node_port_held(30080));
    let mut again = node_port("other", Some(30080));
    admit(&allocations, &mut again, None)
        .expect("port free again")
        .commit(false);
}

#[test]
fn delete_gives_back_only_once_committed() {
    let allocations = Allocations::default();
    let mut svc = node_port("web", Some(30080));
    admit(&allocations, &mut svc, None).unwrap().commit(false);
    let key = service_key(&svc);
    // A delete that failed (conflict) keeps everything held.
    drop(allocations.release_on_delete(&key, &svc));
    assert!(allocations.node_port_held(30080) && allocations.cluster_ip_held(ip_of(&svc)));
    allocations.release_on_delete(&key, &svc).commit(true);
    assert!(!allocations.node_port_held(30080) && !allocations.cluster_ip_held(ip_of(&svc)));
}

#[test]
fn update_keeps_its_own_addresses_and_frees_what_it_drops() {
    let allocations = Allocations::default();
    let mut old = node_port("web", Some(30080));
    admit(&allocations, &mut old, None).unwrap().commit(false);
    let ip = ip_of(&old);

    // Re-applying the same Service is no conflict with itself.
    let mut same = old.clone();
    admit(&allocations, &mut same, Some(&old))
        .expect("own port is not taken")
        .commit(false);
    assert!(allocations.node_port_held(30080));

    // NodePort -> ClusterIP drops the node port once the update commits.
    let mut cluster_ip = same.clone();
    cluster_ip["spec"]["type"] = json!("ClusterIP");
    let reservation = admit(&allocations, &mut cluster_ip, Some(&same)).unwrap();
    assert!(
        allocations.node_port_held(30080),
        "released before the commit"
    );
    reservation.commit(false);
    assert!(!allocations.node_port_held(30080));
    assert!(
        allocations.cluster_ip_held(ip),
        "ClusterIP kept across the type change"
    );

    // An update that fails leaves the stored version's holdings as they were.
    let mut back = cluster_ip.clone();
    back["spec"]["type"] = json!("NodePort");
    back["spec"]["ports"][0]["nodePort"] = json!(30081);
    drop(admit(&allocations, &mut back, Some(&cluster_ip)).unwrap());
    assert!(!allocations.node_port_held(30081));
    assert!(allocations.cluster_ip_held(ip));
}

#[test]
fn renamed_reservation_moves_to_the_new_key() {
    let allocations = Allocations::default();
    let mut svc = node_port("web-abcde", Some(30080));
    let mut reservation = admit(&allocations, &mut svc, None).unwrap();
    reservation.rename("/registry/core/services/default/web-fghij");
    reservation.commit(false);
    let renamed = node_port("web-fghij", Some(30080));
    allocations
        .release_on_delete("/registry/core/services/default/web-fghij", &renamed)
        .commit(true);
    assert!(!allocations.node_port_held(30080));
}

struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch() -> Scratch {
    Scratch(std::env::temp_dir().join(format!("minik8s-allocator-{}", uuid::Uuid::new_v4())))
}

#[tokio::test]
async fn rebuilt_from_the_store_after_a_restart() {
    let dir = scratch();
    let mut held = node_port("web", Some(30080));
    {
        let store = SledStore::open(&dir.0).unwrap();
        let allocations = Allocations::default();
        admit(&allocations, &mut held, None).unwrap().commit(false);
        store.create(&service_key(&held), held.clone()).unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.0).unwrap());
    let storage = Storage::new(store);
    let allocator = ServiceAllocator::new(ServiceNetwork::default());
    let allocations = allocator.allocations(&storage).await.unwrap();
    assert!(allocations.cluster_ip_held(ip_of(&held)));
    assert!(allocations.node_port_held(30080));
    let mut clash = node_port("other", Some(30080));
    assert_eq!(
        messages(admit(allocations, &mut clash, None).unwrap_err()),
        ["spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"]
    );
}

#[tokio::test]
async fn settled_write_commits_or_hands_the_reservation_back() {
    let dir = scratch();
    let storage = Storage::new(Arc::new(SledStore::open(&dir.0).unwrap()));
    let allocations = Allocations::default();
    let mut svc = node_port("web", Some(30080));
    let key = service_key(&svc);
    let reservation = admit(&allocations, &mut svc, None).unwrap();
    let (result, unsettled) = settled_write(
        &storage,
        key.clone(),
        Write::Create(svc.clone()),
        Some(reservation),
    )
    .await;
    assert!(result.is_ok() && unsettled.is_none());
    assert!(allocations.node_port_held(30080));

    // The same create again fails in the store: the second reservation
    // comes back, and dropping it leaves the first Service's port held.
    let mut dup = node_port("web", Some(30081));
    let reservation = admit(&allocations, &mut dup, None).unwrap();
    let (result, unsettled) =
        settled_write(&storage, key.clone(), Write::Create(dup), Some(reservation)).await;
    assert_eq!(result.unwrap_err(), StoreError::AlreadyExists);
    drop(unsettled.expect("handed back"));
    assert!(!allocations.node_port_held(30081) && allocations.node_port_held(30080));

    let delete = allocations.release_on_delete(&key, &svc);
    let (result, _) = settled_write(&storage, key, Write::Delete(None), Some(delete)).await;
    assert!(result.is_ok());
    assert!(!allocations.node_port_held(30080));
}
