//! Startup, liveness and readiness probes: when to probe and what a run of
//! results means (pure), and the loop that probes one container start.
//! The checks themselves (HTTP, TCP, exec) live in `probe_checks`.

use crate::probe_checks::{check, ProbeTarget};
use k8s_openapi::api::core::v1::{Container, Probe};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    /// As in events: `Readiness probe failed: ...`.
    pub(crate) fn title(self) -> &'static str {
        match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        }
    }
}

/// A probe's schedule and thresholds, with Kubernetes' defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProbeTiming {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl ProbeTiming {
    pub(crate) fn of(p: &Probe) -> ProbeTiming {
        let secs = |v: Option<i32>, default: u64, min: u64| {
            Duration::from_secs(v.map(|v| v.max(0) as u64).unwrap_or(default).max(min))
        };
        ProbeTiming {
            initial_delay: secs(p.initial_delay_seconds, 0, 0),
            period: secs(p.period_seconds, 10, 1),
            timeout: secs(p.timeout_seconds, 1, 1),
            success_threshold: p.success_threshold.unwrap_or(1).max(1) as u32,
            failure_threshold: p.failure_threshold.unwrap_or(3).max(1) as u32,
        }
    }

    /// When the probe first runs: `initialDelaySeconds` after the start.
    pub(crate) fn first_run(&self, started: Instant) -> Instant {
        started + self.initial_delay
    }
}

/// Consecutive results -> the probe's verdict. `None` until decided.
#[derive(Debug, Clone)]
pub(crate) struct ProbeTracker {
    timing: ProbeTiming,
    successes: u32,
    failures: u32,
    verdict: Option<bool>,
}

impl ProbeTracker {
    pub(crate) fn new(timing: ProbeTiming) -> Self {
        ProbeTracker {
            timing,
            successes: 0,
            failures: 0,
            verdict: None,
        }
    }

    /// Record one result; returns the new verdict when it changes
    /// (`successThreshold` successes in a row, or `failureThreshold`
    /// failures in a row).
    pub(crate) fn record(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.successes += 1;
            self.failures = 0;
        } else {
            self.failures += 1;
            self.successes = 0;
        }
        let next = if self.successes >= self.timing.success_threshold {
            Some(true)
        } else if self.failures >= self.timing.failure_threshold {
            Some(false)
        } else {
            self.verdict
        };
        if next != self.verdict {
            self.verdict = next;
            if let Some(v) = next {
                if !v {
                    // After a decided failure, count afresh (a liveness
                    // failure restarts; a readiness one keeps probing).
                    self.failures = 0;
                }
                return Some(v);
            }
        }
        None
    }
}

/// How long after a container's start failed readiness/startup checks
/// are retried quickly instead of counted.
const STARTING_UP: Duration = Duration::from_secs(1);
const STARTING_UP_RETRY: Duration = Duration::from_millis(50);

/// What the probe loop tells the pod worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProbeUpdate {
    /// The startup probe succeeded (liveness and readiness begin).
    Started,
    /// A probe run failed (for the `Unhealthy` event).
    Unhealthy {
        kind: ProbeKind,
        message: String,
    },
    /// failureThreshold reached: the container must be restarted.
    Failed {
        kind: ProbeKind,
        message: String,
    },
    Ready(bool),
}

/// Probe one container start until `cancel`. Without a startup probe the
/// container counts as started from the beginning (the worker knows).
pub(crate) async fn run_probes(
    container: Container,
    target: ProbeTarget,
    started: Instant,
    report: impl Fn(ProbeUpdate) + Send + Sync + 'static,
    cancel: CancellationToken,
) {
    let report = std::sync::Arc::new(report);
    let work = async {
        if let Some(p) = &container.startup_probe {
            let r = report.clone();
            match probe_loop(ProbeKind::Startup, p, &target, started, move |u| r(u)).await {
                Some(true) => report(ProbeUpdate::Started),
                _ => return,
            }
        }
        let live = async {
            if let Some(p) = &container.liveness_probe {
                let r = report.clone();
                probe_loop(ProbeKind::Liveness, p, &target, started, move |u| r(u)).await;
            }
        };
        let ready = async {
            if let Some(p) = &container.readiness_probe {
                let r = report.clone();
                probe_loop(ProbeKind::Readiness, p, &target, started, move |u| r(u)).await;
            }
        };
        tokio::join!(live, ready);
    };
    tokio::select! {
        _ = work => {}
        _ = cancel.cancelled() => {}
    }
}

/// Run one probe on its schedule. Startup returns at its first verdict,
/// liveness at failure; readiness runs until cancelled.
async fn probe_loop(
    kind: ProbeKind,
    probe: &Probe,
    target: &ProbeTarget,
    started: Instant,
    report: impl Fn(ProbeUpdate),
) -> Option<bool> {
    let timing = ProbeTiming::of(probe);
    let mut tracker = ProbeTracker::new(timing);
    let mut next = timing.first_run(started);
    loop {
        tokio::time::sleep_until(next).await;
        let began = Instant::now();
        let result = check(probe, target, timing.timeout).await;
        let ok = result.is_ok();
        if !ok && kind != ProbeKind::Liveness && began < started + STARTING_UP {
            // A program needs a moment to listen after its start; the
            // kubelet's first probe usually comes later than ours. Early
            // failures are retried soon and not counted.
            next = Instant::now() + STARTING_UP_RETRY;
            continue;
        }
        if let Err(message) = &result {
            report(ProbeUpdate::Unhealthy {
                kind,
                message: message.clone(),
            });
        }
        if let Some(verdict) = tracker.record(ok) {
            match (kind, verdict) {
                (ProbeKind::Readiness, v) => report(ProbeUpdate::Ready(v)),
                (ProbeKind::Startup, true) => return Some(true),
                (_, false) => {
                    let message = result.err().unwrap_or_default();
                    report(ProbeUpdate::Failed { kind, message });
                    return Some(false);
                }
                (ProbeKind::Liveness, true) => {}
            }
        }
        next = began + timing.period;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(success: u32, failure: u32) -> ProbeTiming {
        ProbeTiming {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    #[test]
    fn defaults_are_kubernetes_defaults() {
        let t = ProbeTiming::of(&Probe::default());
        assert_eq!(
            t,
            ProbeTiming {
                initial_delay: Duration::ZERO,
                period: Duration::from_secs(10),
                timeout: Duration::from_secs(1),
                success_threshold: 1,
                failure_threshold: 3,
            }
        );
        let p = Probe {
            initial_delay_seconds: Some(5),
            period_seconds: Some(2),
            ..Default::default()
        };
        let t = ProbeTiming::of(&p);
        let start = Instant::now();
        assert_eq!(t.first_run(start), start + Duration::from_secs(5));
        assert_eq!(t.period, Duration::from_secs(2));
    }

    #[test]
    fn verdict_needs_consecutive_results() {
        let mut t = ProbeTracker::new(timing(2, 3));
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(true), Some(true));
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), Some(false));
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(true), Some(true));
    }

    #[test]
    fn one_success_decides_with_default_threshold() {
        let mut t = ProbeTracker::new(timing(1, 3));
        assert_eq!(t.record(true), Some(true));
    }

    #[tokio::test]
    async fn readiness_reports_ready_then_unready_on_its_period() {
        use k8s_openapi::api::core::v1::TCPSocketAction;
        use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let container = Container {
            name: "c".into(),
            readiness_probe: Some(Probe {
                tcp_socket: Some(TCPSocketAction {
                    host: None,
                    port: IntOrString::Int(port as i32),
                }),
                period_seconds: Some(1),
                failure_threshold: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let target = ProbeTarget::on_host(std::net::Ipv4Addr::LOCALHOST);
        let task = tokio::spawn(run_probes(
            container,
            target,
            Instant::now(),
            move |u| {
                let _ = tx.send(u);
            },
            cancel.clone(),
        ));
        assert_eq!(rx.recv().await, Some(ProbeUpdate::Ready(true)));
        drop(listener);
        let next = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                match rx.recv().await {
                    Some(ProbeUpdate::Ready(v)) => return v,
                    Some(_) => continue,
                    None => panic!("probe loop ended"),
                }
            }
        })
        .await
        .unwrap();
        assert!(!next);
        cancel.cancel();
        task.await.unwrap();
    }
}
