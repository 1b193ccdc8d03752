//! The controllers against a real API server in this process (loopback,
//! port 0, a SledStore in a temporary directory; no root). A fake kubelet
//! plays the node: it makes bound Pods Running and Ready with an IP and
//! finishes graceful deletions.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use api::registry::{
    DEPLOYMENTS, ENDPOINTS, ENDPOINT_SLICES, EVENTS, NODES, PODS, REPLICA_SETS, SERVICES,
};
use client::{Client, ListParams, PatchType};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

struct Cluster {
    client: Client,
    stop: CancellationToken,
    dir: PathBuf,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Cluster {
    async fn start() -> Result<Cluster> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .with_test_writer()
            .try_init();
        let dir =
            std::env::temp_dir().join(format!("minik8s-controllers-{}", uuid::Uuid::new_v4()));
        let store = store::SledStore::open(&dir)?;
        let server = apiserver::ApiServer::new(
            apiserver::ApiServerConfig::default(),
            Arc::new(store),
            Arc::new(podio::NoNode),
        );
        apiserver::bootstrap(&server)
            .await
            .map_err(|e| anyhow!("bootstrap: {e}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let client = Client::new(format!("http://{}", listener.local_addr()?));
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        let s = stop.clone();
        tasks.push(tokio::spawn(async move {
            let _ = apiserver::serve(listener, server, s).await;
        }));
        let config = controllers::ControllersConfig {
            lb_pool: Some((
                Ipv4Addr::new(172, 18, 255, 1),
                Ipv4Addr::new(172, 18, 255, 2),
            )),
        };
        tasks.push(tokio::spawn(controllers::run(
            client.clone(),
            config,
            stop.clone(),
        )));
        tasks.push(tokio::spawn(fake_kubelet(client.clone(), stop.clone())));
        client
            .create(
                &NODES,
                None,
                &json!({
                    "apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": "node-a"},
                    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
                }),
            )
            .await?;
        Ok(Cluster {
            client,
            stop,
            dir,
            tasks,
        })
    }

    async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    async fn items(
        &self,
        res: &api::registry::ResourceInfo,
        selector: Option<&str>,
    ) -> Result<Vec<Value>> {
        let params = ListParams {
            label_selector: selector.map(str::to_string),
            field_selector: None,
        };
        let list = self.client.list(res, Some("default"), &params).await?;
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }
}

/// The node: bound Pods become Running and Ready with an IP; Pods marked
/// for deletion are removed (the containers "stopped").
async fn fake_kubelet(client: Client, stop: CancellationToken) {
    let mut events = client::watcher(client.clone(), &PODS, None, ListParams::default());
    let mut next_ip = 5u32;
    loop {
        let pods = tokio::select! {
            _ = stop.cancelled() => return,
            e = events.next() => match e {
                Some(client::WatcherEvent::Applied(p)) => vec![p],
                Some(client::WatcherEvent::Restarted(ps)) => ps,
                Some(client::WatcherEvent::Deleted(_)) => continue,
                None => return,
            },
        };
        for pod in pods {
            let ns = pod["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            let name = pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if pod["metadata"]["deletionTimestamp"].is_string() {
                let _ = client
                    .delete_with(&PODS, Some(&ns), &name, &json!({"gracePeriodSeconds": 0}))
                    .await;
                continue;
            }
            let bound = pod["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| !n.is_empty());
            if !bound || pod["status"]["podIP"].is_string() {
                continue;
            }
            let ip = format!("10.244.0.{next_ip}");
            next_ip += 1;
            let mut conditions = pod["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            conditions.retain(|c| c["type"] != "Ready");
            conditions.push(json!({"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}));
            let patch = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "conditions": conditions}});
            let _ = client
                .patch_status(&PODS, Some(&ns), &name, PatchType::Merge, &patch)
                .await;
        }
    }
}

/// Poll `check` until it yields Some, or fail after `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if start.elapsed() > limit {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn deployment(image: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]},
            },
        },
    })
}

fn names(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

fn endpoint_ips(ep: &Value) -> BTreeSet<String> {
    ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["ip"].as_str().map(str::to_string))
        .collect()
}

fn pod_ips(pods: &[Value]) -> BTreeSet<String> {
    pods.iter()
        .filter(|p| !p["metadata"]["deletionTimestamp"].is_string())
        .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_service_endpoints_and_cleanup() -> Result<()> {
    let cluster = Cluster::start().await?;
    let c = &cluster.client;
    let long = Duration::from_secs(10);
    c.create(&DEPLOYMENTS, Some("default"), &deployment("nginx", 3))
        .await?;

    // Deployment -> ReplicaSet -> 3 scheduled, running Pods.
    let pods = eventually("3 running pods", long, || async {
        let pods = cluster.items(&PODS, Some("app=web")).await?;
        Ok((pod_ips(&pods).len() == 3).then_some(pods))
    })
    .await?;
    let rs = cluster.items(&REPLICA_SETS, None).await?;
    assert_eq!(rs.len(), 1);
    let rs_name = rs[0]["metadata"]["name"].as_str().unwrap().to_string();
    let hash = rs[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(rs_name, format!("web-{hash}"));
    assert_eq!(
        rs[0]["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash.as_str()
    );
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap();
        assert!(
            name.starts_with(&format!("{rs_name}-")) && name.len() == rs_name.len() + 6,
            "{name}"
        );
        assert_eq!(
            pod["metadata"]["labels"]["pod-template-hash"],
            hash.as_str()
        );
        assert_eq!(pod["spec"]["nodeName"], "node-a");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
        let scheduled = pod["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "PodScheduled" && c["status"] == "True");
        assert!(scheduled, "PodScheduled condition on {name}");
    }
    let d = eventually("deployment status", long, || async {
        let d = c.get(&DEPLOYMENTS, Some("default"), "web").await?;
        Ok((d["status"]["availableReplicas"] == 3).then_some(d))
    })
    .await?;
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(d["status"]["updatedReplicas"], 3);
    assert_eq!(d["status"]["readyReplicas"], 3);
    let scaled = format!("Scaled up replica set {rs_name} from 0 to 3");
    eventually("ScalingReplicaSet event", long, || async {
        let events = c
            .list(
                &EVENTS,
                Some("default"),
                &ListParams::fields("involvedObject.kind=Deployment"),
            )
            .await?;
        let found = events["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["reason"] == "ScalingReplicaSet" && e["message"] == scaled.as_str());
        Ok(found.then_some(()))
    })
    .await?;

    // A Service gets Endpoints and an EndpointSlice with the Pods' IPs.
    c.create(
        &SERVICES,
        Some("default"),
        &json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]},
        }),
    )
    .await?;
    let ips = pod_ips(&pods);
    eventually("endpoints", long, || async {
        let ep = c.get(&ENDPOINTS, Some("default"), "web").await.ok();
        Ok(ep.filter(|ep| endpoint_ips(ep) == ips))
    })
    .await?;
    let slice = eventually("endpointslice", long, || async {
        let slices = cluster
            .items(&ENDPOINT_SLICES, Some("kubernetes.io/service-name=web"))
            .await?;
        Ok(slices
            .into_iter()
            .find(|s| s["endpoints"].as_array().map_or(0, Vec::len) == 3))
    })
    .await?;
    let slice_name = slice["metadata"]["name"].as_str().unwrap().to_string();
    assert!(
        slice_name.starts_with("web-") && slice_name.len() == 9,
        "{slice_name}"
    );
    assert_eq!(slice["ports"][0]["name"], "");
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");

    // A Pod turning unready leaves the ready addresses within milliseconds.
    let victim = &pods[0];
    let victim_name = victim["metadata"]["name"].as_str().unwrap().to_string();
    let victim_ip = victim["status"]["podIP"].as_str().unwrap().to_string();
    let started = Instant::now();
    c.patch_status(
        &PODS,
        Some("default"),
        &victim_name,
        PatchType::Merge,
        &json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
    )
    .await?;
    eventually("unready pod out of endpoints", long, || async {
        let ep = c.get(&ENDPOINTS, Some("default"), "web").await?;
        Ok((!endpoint_ips(&ep).contains(&victim_ip)).then_some(()))
    })
    .await?;
    let latency = started.elapsed();
    eprintln!("readiness change reached Endpoints in {latency:?}");
    assert!(latency < Duration::from_millis(500), "took {latency:?}");

    // Deleting a Pod: the ReplicaSet replaces it; the slice is updated in place.
    c.delete(&PODS, Some("default"), &victim_name).await?;
    eventually("replacement pod", long, || async {
        let pods = cluster.items(&PODS, Some("app=web")).await?;
        let live = pod_ips(&pods);
        Ok((live.len() == 3 && !live.contains(&victim_ip)).then_some(()))
    })
    .await?;
    eventually("slice follows", long, || async {
        let s = c
            .get(&ENDPOINT_SLICES, Some("default"), &slice_name)
            .await?;
        let n = s["endpoints"].as_array().map_or(0, Vec::len);
        let all_ready = s["endpoints"]
            .as_array()
            .is_some_and(|e| e.iter().all(|e| e["conditions"]["ready"] == true));
        Ok((n == 3 && all_ready).then_some(()))
    })
    .await?;

    // LoadBalancer: an address from the pool, released on the way back.
    c.patch(
        &SERVICES,
        Some("default"),
        "web",
        PatchType::Merge,
        &json!({"spec": {"type": "LoadBalancer"}}),
    )
    .await?;
    eventually("load-balancer address", long, || async {
        let s = c.get(&SERVICES, Some("default"), "web").await?;
        Ok((s["status"]["loadBalancer"]["ingress"][0]["ip"] == "172.18.255.1").then_some(()))
    })
    .await?;
    c.patch(
        &SERVICES,
        Some("default"),
        "web",
        PatchType::Merge,
        &json!({"spec": {"type": "ClusterIP"}}),
    )
    .await?;
    eventually("address released", long, || async {
        let s = c.get(&SERVICES, Some("default"), "web").await?;
        Ok(s["status"]["loadBalancer"]["ingress"]
            .is_null()
            .then_some(()))
    })
    .await?;

    // A new template rolls out: a second ReplicaSet takes over.
    c.replace(&DEPLOYMENTS, Some("default"), "web", &{
        let mut d = c.get(&DEPLOYMENTS, Some("default"), "web").await?;
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        d
    })
    .await?;
    eventually("rollout", Duration::from_secs(20), || async {
        let d = c.get(&DEPLOYMENTS, Some("default"), "web").await?;
        let rs = cluster.items(&REPLICA_SETS, None).await?;
        let old = rs
            .iter()
            .find(|r| r["metadata"]["name"] == rs_name.as_str());
        let done = d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
            && d["status"]["updatedReplicas"] == 3
            && d["status"]["availableReplicas"] == 3
            && d["status"]["replicas"] == 3
            && old.is_some_and(|o| o["spec"]["replicas"] == 0);
        Ok(done.then_some(()))
    })
    .await?;

    // Cleanup: the Deployment's ReplicaSets and Pods go with it; the
    // Service's Endpoints and slices with the Service.
    c.delete(&DEPLOYMENTS, Some("default"), "web").await?;
    c.delete(&SERVICES, Some("default"), "web").await?;
    eventually("garbage collection", long, || async {
        let left = names(&cluster.items(&PODS, None).await?).len()
            + names(&cluster.items(&REPLICA_SETS, None).await?).len()
            + names(
                &cluster
                    .items(&ENDPOINT_SLICES, Some("kubernetes.io/service-name=web"))
                    .await?,
            )
            .len();
        let ep_gone = c.get(&ENDPOINTS, Some("default"), "web").await.is_err();
        Ok((left == 0 && ep_gone).then_some(()))
    })
    .await?;
    // The API server's own Endpoints are not ours to touch.
    assert!(c
        .get(&ENDPOINTS, Some("default"), "kubernetes")
        .await
        .is_ok());

    cluster.stop().await;
    Ok(())
}
