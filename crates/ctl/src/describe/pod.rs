//! `describe pod` (kubectl's `describePod`) and the container sections
//! shared with the pod template of `describe deployment`.

use super::{describe_events, print_annotations, print_labels, rfc1123z, since, DescribeWriter};
use k8s_openapi::api::core::v1::{Container, ContainerState, ContainerStatus, Event, Pod, Volume};

pub fn describe_pod(pod: &Pod, events: Option<&[Event]>, now: jiff::Timestamp) -> String {
    let mut w = DescribeWriter::new();
    let meta = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    w.name_and_namespace(meta);
    if let Some(p) = spec.priority {
        w.write(0, &format!("Priority:\t{p}\n"));
    }
    if let Some(p) = spec
        .priority_class_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        w.write(0, &format!("Priority Class Name:\t{p}\n"));
    }
    if let Some(sa) = spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        w.write(0, &format!("Service Account:\t{sa}\n"));
    }
    match spec.node_name.as_deref().filter(|s| !s.is_empty()) {
        None => w.write(0, "Node:\t<none>\n"),
        Some(node) => w.write(
            0,
            &format!(
                "Node:\t{node}/{}\n",
                status.host_ip.as_deref().unwrap_or_default()
            ),
        ),
    }
    if let Some(t) = &status.start_time {
        w.write(0, &format!("Start Time:\t{}\n", rfc1123z(t)));
    }
    print_labels(&mut w, "Labels", meta.labels.as_ref());
    print_annotations(&mut w, "Annotations", meta.annotations.as_ref());
    let phase = status.phase.clone().unwrap_or_default();
    match &meta.deletion_timestamp {
        Some(t) if phase != "Failed" && phase != "Succeeded" => {
            w.write(
                0,
                &format!("Status:\tTerminating (lasts {})\n", since(Some(&t.0), now)),
            );
            w.write(
                0,
                &format!(
                    "Termination Grace Period:\t{}s\n",
                    meta.deletion_grace_period_seconds.unwrap_or(0)
                ),
            );
        }
        _ => w.write(0, &format!("Status:\t{phase}\n")),
    }
    if let Some(r) = status.reason.as_deref().filter(|s| !s.is_empty()) {
        w.write(0, &format!("Reason:\t{r}\n"));
    }
    if let Some(m) = status.message.as_deref().filter(|s| !s.is_empty()) {
        w.write(0, &format!("Message:\t{m}\n"));
    }
    w.write(
        0,
        &format!("IP:\t{}\n", status.pod_ip.as_deref().unwrap_or_default()),
    );
    match status.pod_ips.as_ref().filter(|ips| !ips.is_empty()) {
        None => w.write(0, "IPs:\t<none>\n"),
        Some(ips) => {
            w.write(0, "IPs:\n");
            for ip in ips {
                w.write(1, &format!("IP:\t{}\n", ip.ip));
            }
        }
    }
    if let Some(owner) = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        w.write(
            0,
            &format!("Controlled By:\t{}/{}\n", owner.kind, owner.name),
        );
    }
    if let Some(n) = status
        .nominated_node_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        w.write(0, &format!("NominatedNodeName:\t{n}\n"));
    }
    if let Some(init) = spec.init_containers.as_ref().filter(|c| !c.is_empty()) {
        describe_containers(
            &mut w,
            "Init Containers",
            init,
            status.init_container_statuses.as_deref(),
            "",
        );
    }
    describe_containers(
        &mut w,
        "Containers",
        &spec.containers,
        status.container_statuses.as_deref(),
        "",
    );
    if let Some(conds) = status.conditions.as_ref().filter(|c| !c.is_empty()) {
        w.write(0, "Conditions:\n  Type\tStatus\n");
        for c in conds {
            w.write(1, &format!("{} \t{} \n", c.type_, c.status));
        }
    }
    describe_volumes(&mut w, spec.volumes.as_deref(), "");
    w.write(0, &format!("QoS Class:\t{}\n", qos_class(pod)));
    print_labels(&mut w, "Node-Selectors", spec.node_selector.as_ref());
    describe_tolerations(&mut w, "Tolerations", &spec);
    describe_events(&mut w, events, now);
    w.finish()
}

/// `Containers:` and each container's block; `space` indents it inside a
/// pod template.
pub(crate) fn describe_containers(
    w: &mut DescribeWriter,
    label: &str,
    containers: &[Container],
    statuses: Option<&[ContainerStatus]>,
    space: &str,
) {
    let none = if containers.is_empty() { " <none>" } else { "" };
    w.write(0, &format!("{space}{label}:{none}\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for c in containers {
        let status = statuses.into_iter().flatten().find(|s| s.name == c.name);
        w.write(1, &format!("{name_indent}{}:\n", c.name));
        if let Some(s) = status {
            w.write(
                2,
                &format!(
                    "Container ID:\t{}\n",
                    s.container_id.as_deref().unwrap_or_default()
                ),
            );
        }
        w.write(
            2,
            &format!("Image:\t{}\n", c.image.as_deref().unwrap_or_default()),
        );
        if let Some(s) = status {
            w.write(2, &format!("Image ID:\t{}\n", s.image_id));
        }
        let ports = c.ports.clone().unwrap_or_default();
        let describe_ports =
            |port_of: &dyn Fn(&k8s_openapi::api::core::v1::ContainerPort) -> i32| {
                ports
                    .iter()
                    .map(|p| {
                        let text = format!(
                            "{}/{}",
                            port_of(p),
                            p.protocol.as_deref().unwrap_or_default()
                        );
                        match p.name.as_deref().filter(|n| !n.is_empty()) {
                            Some(n) => format!("{text} ({n})"),
                            None => text,
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
        let port_list = describe_ports(&|p| p.container_port);
        let host_list = describe_ports(&|p| p.host_port.unwrap_or(0));
        let or_none = |s: String| {
            if s.is_empty() {
                "<none>".to_string()
            } else {
                s
            }
        };
        if port_list.contains(',') {
            w.write(2, &format!("Ports:\t{port_list}\n"));
        } else {
            w.write(2, &format!("Port:\t{}\n", or_none(port_list)));
        }
        if host_list.contains(',') {
            w.write(2, &format!("Host Ports:\t{host_list}\n"));
        } else {
            w.write(2, &format!("Host Port:\t{}\n", or_none(host_list)));
        }
        if let Some(cmd) = c.command.as_ref().filter(|c| !c.is_empty()) {
            w.write(2, "Command:\n");
            for part in cmd {
                for line in part.split('\n') {
                    w.write(3, &format!("{line}\n"));
                }
            }
        }
        if let Some(args) = c.args.as_ref().filter(|a| !a.is_empty()) {
            w.write(2, "Args:\n");
            for part in args {
                for line in part.split('\n') {
                    w.write(3, &format!("{line}\n"));
                }
            }
        }
        if let Some(s) = status {
            describe_state(w, "State", s.state.as_ref());
            if let Some(last) = s.last_state.as_ref().filter(|l| l.terminated.is_some()) {
                describe_state(w, "Last State", Some(last));
            }
            w.write(
                2,
                &format!("Ready:\t{}\n", if s.ready { "True" } else { "False" }),
            );
            w.write(2, &format!("Restart Count:\t{}\n", s.restart_count));
        }
        if let Some(res) = &c.resources {
            for (title, list) in [("Limits", &res.limits), ("Requests", &res.requests)] {
                if let Some(list) = list.as_ref().filter(|l| !l.is_empty()) {
                    w.write(2, &format!("{title}:\n"));
                    for (name, q) in list {
                        w.write(3, &format!("{name}:\t{}\n", q.0));
                    }
                }
            }
        }
        let env = c.env.clone().unwrap_or_default();
        w.write(
            2,
            &format!(
                "Environment:{}\n",
                if env.is_empty() { "\t<none>" } else { "" }
            ),
        );
        for e in env {
            match &e.value_from {
                None => {
                    for (i, line) in e
                        .value
                        .as_deref()
                        .unwrap_or_default()
                        .split('\n')
                        .enumerate()
                    {
                        if i == 0 {
                            w.write(3, &format!("{}:\t{line}\n", e.name));
                        } else {
                            w.write(3, &format!("\t{line}\n"));
                        }
                    }
                }
                Some(from) => {
                    if let Some(f) = &from.field_ref {
                        w.write(
                            3,
                            &format!(
                                "{}:\t ({}:{})\n",
                                e.name,
                                f.api_version.as_deref().unwrap_or_default(),
                                f.field_path
                            ),
                        );
                    } else {
                        w.write(3, &format!("{}:\t<set from a reference>\n", e.name));
                    }
                }
            }
        }
        let mounts = c.volume_mounts.clone().unwrap_or_default();
        w.write(
            2,
            &format!(
                "Mounts:{}\n",
                if mounts.is_empty() { "\t<none>" } else { "" }
            ),
        );
        let mut mounts = mounts;
        mounts.sort_by(|a, b| a.mount_path.cmp(&b.mount_path));
        for m in mounts {
            let mut flags = vec![if m.read_only == Some(true) {
                "ro"
            } else {
                "rw"
            }
            .to_string()];
            if let Some(sp) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                flags.push(format!("path={sp:?}"));
            }
            w.write(
                3,
                &format!("{} from {} ({})\n", m.mount_path, m.name, flags.join(",")),
            );
        }
    }
}

fn describe_state(w: &mut DescribeWriter, title: &str, state: Option<&ContainerState>) {
    let time = |t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
        t.as_ref().map(rfc1123z).unwrap_or_default()
    };
    match state {
        Some(ContainerState {
            running: Some(r), ..
        }) => {
            w.write(2, &format!("{title}:\tRunning\n"));
            w.write(3, &format!("Started:\t{}\n", time(&r.started_at)));
        }
        Some(ContainerState {
            waiting: Some(wt), ..
        }) => {
            w.write(2, &format!("{title}:\tWaiting\n"));
            if let Some(r) = wt.reason.as_deref().filter(|s| !s.is_empty()) {
                w.write(3, &format!("Reason:\t{r}\n"));
            }
        }
        Some(ContainerState {
            terminated: Some(t),
            ..
        }) => {
            w.write(2, &format!("{title}:\tTerminated\n"));
            if let Some(r) = t.reason.as_deref().filter(|s| !s.is_empty()) {
                w.write(3, &format!("Reason:\t{r}\n"));
            }
            if let Some(m) = t.message.as_deref().filter(|s| !s.is_empty()) {
                w.write(3, &format!("Message:\t{m}\n"));
            }
            w.write(3, &format!("Exit Code:\t{}\n", t.exit_code));
            if let Some(sig) = t.signal.filter(|s| *s > 0) {
                w.write(3, &format!("Signal:\t{sig}\n"));
            }
            w.write(3, &format!("Started:\t{}\n", time(&t.started_at)));
            w.write(3, &format!("Finished:\t{}\n", time(&t.finished_at)));
        }
        _ => w.write(2, &format!("{title}:\tWaiting\n")),
    }
}

pub(crate) fn describe_volumes(w: &mut DescribeWriter, volumes: Option<&[Volume]>, space: &str) {
    let Some(volumes) = volumes.filter(|v| !v.is_empty()) else {
        w.write(0, &format!("{space}Volumes:\t<none>\n"));
        return;
    };
    w.write(0, &format!("{space}Volumes:\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for v in volumes {
        w.write(1, &format!("{name_indent}{}:\n", v.name));
        if let Some(hp) = &v.host_path {
            w.write(2, "Type:\tHostPath (bare host directory volume)\n");
            w.write(2, &format!("Path:\t{}\n", hp.path));
            w.write(
                2,
                &format!(
                    "HostPathType:\t{}\n",
                    hp.type_.as_deref().unwrap_or_default()
                ),
            );
        } else if let Some(ed) = &v.empty_dir {
            w.write(
                2,
                "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n",
            );
            w.write(
                2,
                &format!("Medium:\t{}\n", ed.medium.as_deref().unwrap_or_default()),
            );
            let limit = ed
                .size_limit
                .as_ref()
                .map(|q| q.0.clone())
                .unwrap_or_else(|| "<unset>".into());
            w.write(2, &format!("SizeLimit:\t{limit}\n"));
        } else {
            w.write(1, "<unknown>\n");
        }
    }
}

pub(crate) fn describe_tolerations(
    w: &mut DescribeWriter,
    title: &str,
    spec: &k8s_openapi::api::core::v1::PodSpec,
) {
    w.write(0, &format!("{title}:\t"));
    let tolerations = spec.tolerations.clone().unwrap_or_default();
    if tolerations.is_empty() {
        w.write(0, "<none>\n");
        return;
    }
    for (i, t) in tolerations.iter().enumerate() {
        if i != 0 {
            w.write(0, "\t");
        }
        let mut s = t.key.clone().unwrap_or_default();
        if let Some(v) = t.value.as_deref().filter(|v| !v.is_empty()) {
            s.push('=');
            s.push_str(v);
        } else if t.operator.as_deref() == Some("Exists") && !s.is_empty() {
            s.push_str(" op=Exists");
        }
        if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty()) {
            s.push(':');
            s.push_str(e);
        }
        if let Some(secs) = t.toleration_seconds {
            s.push_str(&format!(" for {secs}s"));
        }
        w.write(0, &format!("{s}\n"));
    }
}

/// The pod's QoS class: as the server recorded it, else computed from the
/// containers' requests and limits.
fn qos_class(pod: &Pod) -> String {
    if let Some(q) = pod.status.as_ref().and_then(|s| s.qos_class.clone()) {
        return q;
    }
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let res = c.resources.clone().unwrap_or_default();
        let limits = res.limits.unwrap_or_default();
        let requests = res.requests.unwrap_or_default();
        if !limits.is_empty() || !requests.is_empty() {
            any = true;
        }
        for r in ["cpu", "memory"] {
            let limit = limits.get(r);
            if limit.is_none() || requests.get(r).is_some_and(|q| Some(q) != limit) {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort".into()
    } else if guaranteed {
        "Guaranteed".into()
    } else {
        "Burstable".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn describes_a_running_pod() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web", "pod-template-hash": "abc"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "u", "controller": true}]},
            "spec": {"nodeName": "minik8s-node", "containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "hostIP": "192.168.49.2", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "nginx", "image": "nginx", "imageID": "", "ready": true, "restartCount": 0,
                                              "state": {"waiting": {"reason": "ContainerCreating"}}}]}
        }))
        .unwrap();
        let out = describe_pod(&pod, None, jiff::Timestamp::now());
        assert_eq!(
            out,
            "Name:         web-1\n\
             Namespace:    default\n\
             Node:         minik8s-node/192.168.49.2\n\
             Labels:       app=web\n              pod-template-hash=abc\n\
             Annotations:  <none>\n\
             Status:       Running\n\
             IP:           10.244.0.5\n\
             IPs:\n  \
               IP:           10.244.0.5\n\
             Controlled By:  ReplicaSet/web-abc\n\
             Containers:\n  \
               nginx:\n    \
                 Container ID:   \n    \
                 Image:          nginx\n    \
                 Image ID:       \n    \
                 Port:           80/TCP\n    \
                 Host Port:      0/TCP\n    \
                 State:          Waiting\n      \
                   Reason:       ContainerCreating\n    \
                 Ready:          True\n    \
                 Restart Count:  0\n    \
                 Environment:    <none>\n    \
                 Mounts:         <none>\n\
             Conditions:\n  \
               Type           Status\n  \
               Ready          True \n\
             Volumes:         <none>\n\
             QoS Class:       BestEffort\n\
             Node-Selectors:  <none>\n\
             Tolerations:     <none>\n"
        );
    }
}
