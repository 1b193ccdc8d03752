//! A Pod's status, computed from what the worker knows about its
//! containers: phase, conditions, container statuses, addresses, QoS
//! class. Pure, so every rule (Kubernetes' `getPhase`, condition reasons,
//! transition times) is unit-tested.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::net::Ipv4Addr;

/// How a container run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Termination {
    pub exit_code: i32,
    pub signal: Option<i32>,
    /// `Completed`, `Error`, `StartError`, ...
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Timestamp,
    pub container_id: Option<String>,
}

impl Termination {
    /// `Completed` for exit code 0, else `Error`, as the runtime reports.
    pub(crate) fn reason_for(exit_code: i32) -> &'static str {
        if exit_code == 0 {
            "Completed"
        } else {
            "Error"
        }
    }
}

/// The current state of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunState {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: Timestamp,
        container_id: String,
    },
    Terminated(Termination),
}

/// What the status needs to know about one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerView {
    pub name: String,
    /// Normalised image (`docker.io/library/nginx:latest`).
    pub image: String,
    /// Empty until the image is "pulled".
    pub image_id: String,
    pub state: RunState,
    pub last_termination: Option<Termination>,
    pub restart_count: u32,
    pub ready: bool,
    pub started: bool,
}

/// Everything a Pod's status is made of.
pub(crate) struct PodView<'a> {
    pub pod: &'a Pod,
    /// Conditions as last reported (transition times carry over, other
    /// owners' conditions stay).
    pub previous: &'a [PodCondition],
    pub init: &'a [ContainerView],
    pub app: &'a [ContainerView],
    pub pod_ip: Option<Ipv4Addr>,
    pub host_ip: Ipv4Addr,
    pub start_time: Timestamp,
    /// The sandbox exists (network ready, containers can start).
    pub sandbox_ready: bool,
    /// The Pod reached Succeeded/Failed earlier: it stays there.
    pub terminal_phase: Option<&'a str>,
    pub now: Timestamp,
}

fn time(t: Timestamp) -> Time {
    // Status times have whole seconds on the wire; rounding here keeps
    // a recomputed, unchanged status equal to the one last written.
    Time(Timestamp::from_second(t.as_second()).unwrap_or(t))
}

fn to_api_state(state: &RunState) -> ContainerState {
    match state {
        RunState::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..Default::default()
        },
        RunState::Running { started_at, .. } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(time(*started_at)),
            }),
            ..Default::default()
        },
        RunState::Terminated(t) => ContainerState {
            terminated: Some(to_api_termination(t)),
            ..Default::default()
        },
    }
}

fn to_api_termination(t: &Termination) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: t.exit_code,
        signal: t.signal,
        reason: Some(t.reason.clone()),
        message: t.message.clone(),
        started_at: t.started_at.map(time),
        finished_at: Some(time(t.finished_at)),
        container_id: t.container_id.clone(),
    }
}

fn container_status(c: &ContainerView) -> ContainerStatus {
    let container_id = match &c.state {
        RunState::Running { container_id, .. } => Some(container_id.clone()),
        RunState::Terminated(t) => t.container_id.clone(),
        RunState::Waiting { .. } => None,
    };
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: c.image_id.clone(),
        container_id,
        state: Some(to_api_state(&c.state)),
        last_state: Some(match &c.last_termination {
            Some(t) => ContainerState {
                terminated: Some(to_api_termination(t)),
                ..Default::default()
            },
            None => ContainerState::default(),
        }),
        ready: c.ready,
        started: Some(c.started),
        restart_count: c.restart_count as i32,
        ..Default::default()
    }
}

/// Kubernetes' `getPhase` for a Pod without sidecar containers.
pub(crate) fn pod_phase(
    restart_policy: &str,
    init: &[ContainerView],
    app: &[ContainerView],
) -> &'static str {
    let mut pending_init = 0;
    let mut failed_init = 0;
    for c in init {
        match &c.state {
            RunState::Running { .. } => pending_init += 1,
            RunState::Terminated(t) => {
                if t.exit_code != 0 {
                    failed_init += 1;
                }
            }
            RunState::Waiting { .. } => match &c.last_termination {
                Some(t) if t.exit_code != 0 => failed_init += 1,
                Some(_) => {}
                None => pending_init += 1,
            },
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in app {
        match &c.state {
            RunState::Running { .. } => running += 1,
            RunState::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            RunState::Waiting { .. } => {
                if c.last_termination.is_some() {
                    stopped += 1;
                } else {
                    waiting += 1;
                }
            }
        }
    }
    if failed_init > 0 && restart_policy == "Never" {
        return "Failed";
    }
    if pending_init > 0 || waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        if restart_policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if restart_policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

/// Whether every init container has completed successfully.
pub(crate) fn initialized(init: &[ContainerView]) -> bool {
    init.iter()
        .all(|c| matches!(&c.state, RunState::Terminated(t) if t.exit_code == 0))
}

/// The QoS class Kubernetes assigns from requests and limits.
pub(crate) fn qos_class(spec: &PodSpec) -> &'static str {
    let all: Vec<&Container> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in all {
        let res = c.resources.clone().unwrap_or_default();
        let requests = res.requests.unwrap_or_default();
        let limits = res.limits.unwrap_or_default();
        for r in ["cpu", "memory"] {
            let (req, lim) = (requests.get(r), limits.get(r));
            if req.is_some() || lim.is_some() {
                any = true;
            }
            match (req, lim) {
                (_, None) => guaranteed = false,
                (Some(q), Some(l)) if q != l => guaranteed = false,
                _ => {}
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

fn condition(
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    previous: &[PodCondition],
    now: Timestamp,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    // The transition time moves only when the status does.
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| time(now));
    PodCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(last_transition_time),
        last_probe_time: None,
        observed_generation: None,
    }
}

/// The Pod's `metadata.generation` this status was computed from
/// (Kubernetes 1.35 reports it on the status and on the kubelet's
/// conditions).
fn observed(mut conditions: Vec<PodCondition>, generation: Option<i64>) -> Vec<PodCondition> {
    for c in &mut conditions {
        c.observed_generation = generation;
    }
    conditions
}

/// The Pod's status.
pub(crate) fn pod_status(v: &PodView) -> PodStatus {
    let spec = v.pod.spec.clone().unwrap_or_default();
    let previous = v.previous;
    let restart_policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let phase = match v.terminal_phase {
        Some(p) => p.to_string(),
        None => pod_phase(restart_policy, v.init, v.app).to_string(),
    };
    let completed = phase == "Succeeded" || phase == "Failed";
    let is_initialized = initialized(v.init);

    let unready: Vec<&str> = v
        .app
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let containers_ready = unready.is_empty() && !completed;
    let (cr_reason, cr_message) = if completed {
        (Some("PodCompleted"), None)
    } else if !unready.is_empty() {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    } else {
        (None, None)
    };
    // readinessGates: the Pod is Ready only when those conditions are True.
    let gate_problem = spec.readiness_gates.iter().flatten().find_map(|g| {
        match previous.iter().find(|c| c.type_ == g.condition_type) {
            None => Some(format!(
                "corresponding condition of pod readiness gate \"{}\" does not exist.",
                g.condition_type
            )),
            Some(c) if c.status != "True" => Some(format!(
                "the status of pod readiness gate \"{}\" is not \"True\", but {}",
                g.condition_type, c.status
            )),
            _ => None,
        }
    });
    let ready = containers_ready && gate_problem.is_none();
    let (ready_reason, ready_message) = if containers_ready {
        match &gate_problem {
            Some(m) => (Some("ReadinessGatesNotReady"), Some(m.clone())),
            None => (None, None),
        }
    } else {
        (cr_reason, cr_message.clone())
    };
    let incomplete: Vec<&str> = v
        .init
        .iter()
        .filter(|c| !matches!(&c.state, RunState::Terminated(t) if t.exit_code == 0))
        .map(|c| c.name.as_str())
        .collect();
    let (init_reason, init_message) = if is_initialized {
        (None, None)
    } else {
        (
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
        )
    };

    let now = v.now;
    let generation = v.pod.metadata.generation;
    let mut conditions = observed(
        vec![
            condition(
                "PodReadyToStartContainers",
                v.sandbox_ready,
                None,
                None,
                previous,
                now,
            ),
            condition(
                "Initialized",
                is_initialized,
                init_reason,
                init_message,
                previous,
                now,
            ),
            condition("Ready", ready, ready_reason, ready_message, previous, now),
            condition(
                "ContainersReady",
                containers_ready,
                cr_reason,
                cr_message,
                previous,
                now,
            ),
        ],
        generation,
    );
    match previous.iter().find(|c| c.type_ == "PodScheduled") {
        Some(c) => conditions.push(c.clone()),
        None => conditions.push(condition("PodScheduled", true, None, None, previous, now)),
    }
    // Conditions others own (readiness gates, DisruptionTarget) stay.
    const OURS: [&str; 5] = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ];
    conditions.extend(
        previous
            .iter()
            .filter(|c| !OURS.contains(&c.type_.as_str()))
            .cloned(),
    );

    let pod_ip = v.pod_ip.map(|ip| ip.to_string());
    PodStatus {
        phase: Some(phase),
        conditions: Some(conditions),
        host_ip: Some(v.host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: v.host_ip.to_string(),
        }]),
        pod_ip: pod_ip.clone(),
        pod_ips: pod_ip.map(|ip| vec![PodIP { ip }]),
        start_time: Some(time(v.start_time)),
        qos_class: Some(qos_class(&spec).to_string()),
        observed_generation: v.pod.metadata.generation,
        container_statuses: Some(v.app.iter().map(container_status).collect()),
        init_container_statuses: (!v.init.is_empty())
            .then(|| v.init.iter().map(container_status).collect()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn running(name: &str, ready: bool) -> ContainerView {
        ContainerView {
            name: name.into(),
            image: "docker.io/library/nginx:latest".into(),
            image_id: "docker.io/library/nginx@sha256:00".into(),
            state: RunState::Running {
                started_at: ts(1),
                container_id: "minik8s://abc".into(),
            },
            last_termination: None,
            restart_count: 0,
            ready,
            started: true,
        }
    }

    fn terminated(name: &str, code: i32) -> ContainerView {
        ContainerView {
            state: RunState::Terminated(Termination {
                exit_code: code,
                signal: None,
                reason: Termination::reason_for(code).into(),
                message: None,
                started_at: Some(ts(1)),
                finished_at: ts(2),
                container_id: Some("minik8s://abc".into()),
            }),
            ready: false,
            started: false,
            ..running(name, false)
        }
    }

    fn waiting(name: &str, reason: &str) -> ContainerView {
        ContainerView {
            state: RunState::Waiting {
                reason: reason.into(),
                message: None,
            },
            ready: false,
            started: false,
            ..running(name, false)
        }
    }

    fn pod_with(policy: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"restartPolicy": policy, "containers": [{"name": "web", "image": "nginx"}]},
            "status": {"conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "2027-01-15T08:00:00Z"}]}
        }))
        .unwrap()
    }

    fn view<'a>(pod: &'a Pod, app: &'a [ContainerView], now: Timestamp) -> PodView<'a> {
        PodView {
            pod,
            previous: pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or(&[]),
            init: &[],
            app,
            pod_ip: Some(Ipv4Addr::new(10, 244, 0, 5)),
            host_ip: Ipv4Addr::new(192, 168, 49, 2),
            start_time: ts(0),
            sandbox_ready: true,
            terminal_phase: None,
            now,
        }
    }

    #[test]
    fn phase_follows_kubernetes_get_phase() {
        assert_eq!(
            pod_phase("Always", &[], &[waiting("a", "ContainerCreating")]),
            "Pending"
        );
        assert_eq!(
            pod_phase("Always", &[], &[running("a", true), terminated("b", 1)]),
            "Running"
        );
        assert_eq!(pod_phase("Always", &[], &[terminated("a", 0)]), "Running");
        assert_eq!(
            pod_phase("OnFailure", &[], &[terminated("a", 0)]),
            "Succeeded"
        );
        assert_eq!(
            pod_phase("OnFailure", &[], &[terminated("a", 1)]),
            "Running"
        );
        assert_eq!(
            pod_phase("Never", &[], &[terminated("a", 0), terminated("b", 2)]),
            "Failed"
        );
        let mut backing_off = waiting("a", "CrashLoopBackOff");
        backing_off.last_termination = Some(match terminated("a", 1).state {
            RunState::Terminated(t) => t,
            _ => unreachable!(),
        });
        assert_eq!(pod_phase("Always", &[], &[backing_off]), "Running");
        assert_eq!(
            pod_phase(
                "Always",
                &[running("init", false)],
                &[waiting("a", "PodInitializing")]
            ),
            "Pending"
        );
        assert_eq!(
            pod_phase(
                "Never",
                &[terminated("init", 1)],
                &[waiting("a", "PodInitializing")]
            ),
            "Failed"
        );
    }

    #[test]
    fn running_and_ready_pod_has_true_conditions_and_addresses() {
        let pod = pod_with("Always");
        let app = [running("web", true)];
        let s = pod_status(&view(&pod, &app, ts(5)));
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let conds = s.conditions.unwrap();
        let types: Vec<&str> = conds.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            [
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled"
            ]
        );
        assert!(conds.iter().all(|c| c.status == "True"));
        // PodScheduled keeps the scheduler's time.
        assert_eq!(
            conds[4]
                .last_transition_time
                .as_ref()
                .unwrap()
                .0
                .to_string(),
            "2027-01-15T08:00:00Z"
        );
        assert_eq!(s.pod_ip.as_deref(), Some("10.244.0.5"));
        assert_eq!(s.pod_ips.unwrap()[0].ip, "10.244.0.5");
        assert_eq!(s.host_ips.unwrap()[0].ip, "192.168.49.2");
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
        let cs = &s.container_statuses.unwrap()[0];
        assert!(cs.ready && cs.started == Some(true));
        assert_eq!(cs.container_id.as_deref(), Some("minik8s://abc"));
    }

    #[test]
    fn unready_containers_are_named_and_transition_times_only_move_on_change() {
        let mut pod = pod_with("Always");
        let app = [running("web", false)];
        let s1 = pod_status(&view(&pod, &app, ts(5)));
        let ready = s1
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap()
            .clone();
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [web]")
        );
        pod.status = Some(s1.clone());
        let s2 = pod_status(&view(&pod, &app, ts(50)));
        assert_eq!(s1, s2, "nothing changed, nothing moves");
        let now_ready = [running("web", true)];
        let s3 = pod_status(&view(&pod, &now_ready, ts(60)));
        let r = s3
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(r.last_transition_time.unwrap().0, ts(60));
    }

    #[test]
    fn completed_pods_are_not_ready_with_reason_pod_completed() {
        let pod = pod_with("Never");
        let app = [terminated("web", 0)];
        let s = pod_status(&view(&pod, &app, ts(5)));
        assert_eq!(s.phase.as_deref(), Some("Succeeded"));
        let ready = s
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.reason.as_deref(), Some("PodCompleted"));
        let st = s.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap();
        assert_eq!((st.exit_code, st.reason.as_deref()), (0, Some("Completed")));
    }

    #[test]
    fn readiness_gates_hold_ready_back() {
        let mut pod = pod_with("Always");
        pod.spec.as_mut().unwrap().readiness_gates =
            Some(vec![k8s_openapi::api::core::v1::PodReadinessGate {
                condition_type: "example.com/lb".into(),
            }]);
        let app = [running("web", true)];
        let s = pod_status(&view(&pod, &app, ts(5)));
        let ready = s
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("False", Some("ReadinessGatesNotReady"))
        );
    }

    #[test]
    fn qos_classes() {
        let spec = |res: serde_json::Value| -> PodSpec {
            serde_json::from_value(
                serde_json::json!({"containers": [{"name": "a", "resources": res}]}),
            )
            .unwrap()
        };
        assert_eq!(qos_class(&spec(serde_json::json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&spec(
                serde_json::json!({"limits": {"cpu": "1", "memory": "1Gi"}})
            )),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&spec(serde_json::json!({"requests": {"cpu": "100m"}}))),
            "Burstable"
        );
    }

    #[test]
    fn the_observed_generation_is_reported_on_status_and_kubelet_conditions() {
        let mut pod = pod_with("Always");
        pod.metadata.generation = Some(3);
        let app = [running("web", true)];
        let s = pod_status(&view(&pod, &app, ts(5)));
        assert_eq!(s.observed_generation, Some(3));
        for c in s.conditions.unwrap() {
            let expected = if c.type_ == "PodScheduled" {
                None
            } else {
                Some(3)
            };
            assert_eq!(c.observed_generation, expected, "{}", c.type_);
        }
    }
}
