//! The load-balancer provider's loop: any Service change recomputes the
//! whole address book (one key, so bursts coalesce) and writes the changed
//! statuses through `services/status`.

use std::sync::Arc;

use futures::future::join_all;
use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, Service};
use tokio_util::sync::CancellationToken;

use super::plan::{plan_load_balancers, AddressPool, StatusChange, IP_MODE};
use crate::caches::{all_synced, Caches};
use crate::events::{EventRecorder, EventType};
use crate::runtime::{run_worker, Action, Change, TypedApi, WorkQueue};
use crate::ControllerError;

/// The one key of this controller's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AllServices;

impl std::fmt::Display for AllServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("all services")
    }
}

pub struct LoadBalancerController {
    pool: AddressPool,
    services: TypedApi<Service>,
    queue: Arc<WorkQueue<AllServices>>,
    events: EventRecorder,
}

impl LoadBalancerController {
    pub fn new(
        client: &client::Client,
        caches: &Caches,
        pool: AddressPool,
    ) -> LoadBalancerController {
        let queue = WorkQueue::new();
        let q = queue.clone();
        caches.services.on_change(move |c| match c {
            Change::Applied { .. } | Change::Deleted(_) => q.add(AllServices),
        });
        LoadBalancerController {
            pool,
            services: caches.services_api(client),
            queue,
            events: EventRecorder::new(client, "service-controller"),
        }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let ready = async {
            all_synced(&[&*self.services.cache]).await;
        };
        self.queue.add(AllServices);
        let this = &self;
        run_worker("loadbalancer", self.queue.clone(), ready, shutdown, |_| {
            this.reconcile()
        })
        .await;
    }

    async fn reconcile(&self) -> Result<Action, ControllerError> {
        let all = self.services.cache.list(None);
        let refs: Vec<&Service> = all.iter().map(|s| s.as_ref()).collect();
        let changes = plan_load_balancers(&refs, &self.pool);
        let results = join_all(changes.iter().map(|c| self.publish(c))).await;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(Action::done())
    }

    async fn publish(&self, change: &StatusChange) -> Result<(), ControllerError> {
        let Some(svc) = self.services.cache.get_ref(&change.service) else {
            return Ok(());
        };
        tracing::debug!(service = %change.service, address = ?change.address, "load-balancer status");
        let status = LoadBalancerStatus {
            ingress: change.address.map(|ip| {
                vec![LoadBalancerIngress {
                    ip: Some(ip.to_string()),
                    ip_mode: Some(IP_MODE.into()),
                    ..Default::default()
                }]
            }),
        };
        if change.address.is_some() {
            self.events.record(
                &*svc,
                EventType::Normal,
                "EnsuringLoadBalancer",
                "Ensuring load balancer".into(),
            );
        }
        self.services
            .write_status(&svc, |s| {
                s.status.get_or_insert_with(Default::default).load_balancer = Some(status.clone());
            })
            .await?;
        let (reason, message) = match change.address {
            Some(_) => ("EnsuredLoadBalancer", "Ensured load balancer"),
            None => ("DeletedLoadBalancer", "Deleted load balancer"),
        };
        self.events
            .record(&*svc, EventType::Normal, reason, message.into());
        Ok(())
    }
}
