//! `minik8s describe`: fetch the object and what belongs to it (its
//! EndpointSlices, ReplicaSets, Events) and print kubectl's description.

use crate::describe;
use crate::error::CtlError;
use crate::resource_args;
use crate::Context;
use api::registry::{self, ResourceInfo};
use client::{typed, ListParams};
use serde_json::Value;

/// Show details of a specific resource or group of resources.
#[derive(clap::Args, Debug, Clone)]
pub struct DescribeArgs {
    /// TYPE [NAME_PREFIX] or TYPE/NAME.
    pub resources: Vec<String>,
    /// Label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Describe in all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Show events related to the described object.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub show_events: bool,
}

pub async fn run(ctx: &Context, args: DescribeArgs) -> Vec<CtlError> {
    let targets = match resource_args::parse(&args.resources) {
        Ok(t) => t,
        Err(e) => return vec![e],
    };
    let mut errors = Vec::new();
    let mut first = true;
    let mut found = 0;
    for t in targets {
        let ns = (t.res.namespaced && !args.all_namespaces).then(|| ctx.namespace.clone());
        let objects = match find(ctx, t.res, ns.as_deref(), t.name.as_deref(), &args).await {
            Ok(o) => o,
            Err(e @ CtlError::Unreachable { .. }) => return vec![e],
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        for obj in objects {
            found += 1;
            match describe_one(ctx, t.res, &obj, args.show_events).await {
                Ok(text) => {
                    if first {
                        print!("{text}");
                        first = false;
                    } else {
                        print!("\n\n{text}");
                    }
                }
                Err(e) => errors.push(e),
            }
        }
    }
    if found == 0 && errors.is_empty() {
        if args.all_namespaces {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {} namespace.", ctx.namespace);
        }
    }
    errors
}

/// The named object, else the objects whose names start with the name
/// (kubectl's prefix match), else all objects of the type.
async fn find(
    ctx: &Context,
    res: &'static ResourceInfo,
    ns: Option<&str>,
    name: Option<&str>,
    args: &DescribeArgs,
) -> Result<Vec<Value>, CtlError> {
    let params = ListParams {
        label_selector: args.selector.clone(),
        field_selector: None,
    };
    if let Some(name) = name {
        match ctx.client.get(res, ns, name).await {
            Ok(o) => return Ok(vec![o]),
            Err(e) if e.is_not_found() => {
                let list = ctx.client.list(res, ns, &params).await?;
                let matches: Vec<Value> = items(&list)
                    .into_iter()
                    .filter(|o| {
                        o["metadata"]["name"]
                            .as_str()
                            .is_some_and(|n| n.starts_with(name))
                    })
                    .collect();
                if matches.is_empty() {
                    return Err(e.into());
                }
                return Ok(matches);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let list = ctx.client.list(res, ns, &params).await?;
    Ok(items(&list))
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

async fn describe_one(
    ctx: &Context,
    res: &'static ResourceInfo,
    obj: &Value,
    show_events: bool,
) -> Result<String, CtlError> {
    let now = jiff::Timestamp::now();
    let ns = obj["metadata"]["namespace"].as_str();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    // kubectl's namespace describer shows no events.
    let events = if show_events && res.kind != "Namespace" {
        events_for(ctx, res, obj).await
    } else {
        None
    };
    let events = events.as_deref();
    let text = match res.kind {
        "Service" => {
            let params = ListParams::labels(format!("kubernetes.io/service-name={name}"));
            let slices = ctx
                .client
                .list_as(&registry::ENDPOINT_SLICES, ns, &params)
                .await
                .unwrap_or_default();
            describe::describe_service(&typed(obj.clone())?, &slices, events, now)
        }
        "Pod" => describe::describe_pod(&typed(obj.clone())?, events, now),
        "Endpoints" => describe::describe_endpoints(&typed(obj.clone())?, events, now),
        "EndpointSlice" => describe::describe_endpoint_slice(&typed(obj.clone())?, events, now),
        "Namespace" => describe::describe_namespace(&typed(obj.clone())?),
        "ReplicaSet" => {
            let counts = pod_counts(ctx, obj).await;
            describe::describe_replica_set(&typed(obj.clone())?, counts, events, now)
        }
        "Deployment" => {
            let (old, new) = replica_sets_of(ctx, obj).await;
            describe::describe_deployment(&typed(obj.clone())?, &old, &new, events, now)
        }
        _ => describe::describe_generic(obj, events, now),
    };
    Ok(text)
}

/// Events about the object (`None` when they cannot be read, so the
/// section is left out, as kubectl does).
async fn events_for(
    ctx: &Context,
    res: &ResourceInfo,
    obj: &Value,
) -> Option<Vec<k8s_openapi::api::core::v1::Event>> {
    let meta = &obj["metadata"];
    let mut selector = vec![
        format!("involvedObject.kind={}", res.kind),
        format!(
            "involvedObject.name={}",
            meta["name"].as_str().unwrap_or_default()
        ),
    ];
    if let Some(ns) = meta["namespace"].as_str() {
        selector.push(format!("involvedObject.namespace={ns}"));
    }
    if let Some(uid) = meta["uid"].as_str() {
        selector.push(format!("involvedObject.uid={uid}"));
    }
    let ns = meta["namespace"].as_str();
    ctx.client
        .list_as(
            &registry::EVENTS,
            ns,
            &ListParams::fields(selector.join(",")),
        )
        .await
        .ok()
}

/// The Deployment's ReplicaSets, split into old ones and the one running
/// the current pod template.
async fn replica_sets_of(
    ctx: &Context,
    deploy: &Value,
) -> (
    Vec<k8s_openapi::api::apps::v1::ReplicaSet>,
    Vec<k8s_openapi::api::apps::v1::ReplicaSet>,
) {
    let ns = deploy["metadata"]["namespace"].as_str();
    let uid = deploy["metadata"]["uid"].as_str().unwrap_or_default();
    let Ok(list) = ctx
        .client
        .list(&registry::REPLICA_SETS, ns, &ListParams::default())
        .await
    else {
        return (Vec::new(), Vec::new());
    };
    let template = without_hash(&deploy["spec"]["template"]);
    let mut old = Vec::new();
    let mut new = Vec::new();
    for rs in items(&list) {
        let owned = rs["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid));
        if !owned {
            continue;
        }
        let is_new = without_hash(&rs["spec"]["template"]) == template;
        if let Ok(typed_rs) = typed(rs) {
            if is_new {
                new.push(typed_rs);
            } else {
                old.push(typed_rs);
            }
        }
    }
    (old, new)
}

/// Phases of the pods the ReplicaSet controls.
async fn pod_counts(ctx: &Context, rs: &Value) -> describe::PodCounts {
    let ns = rs["metadata"]["namespace"].as_str();
    let uid = rs["metadata"]["uid"].as_str().unwrap_or_default();
    let selector = rs["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let mut counts = describe::PodCounts::default();
    let Ok(list) = ctx
        .client
        .list(&registry::PODS, ns, &ListParams::labels(selector))
        .await
    else {
        return counts;
    };
    for pod in items(&list) {
        let controlled = pod["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|refs| {
                refs.iter()
                    .any(|r| r["uid"] == uid && r["controller"] == true)
            });
        if !controlled {
            continue;
        }
        match pod["status"]["phase"].as_str().unwrap_or_default() {
            "Running" => counts.running += 1,
            "Pending" => counts.waiting += 1,
            "Succeeded" => counts.succeeded += 1,
            "Failed" => counts.failed += 1,
            _ => {}
        }
    }
    counts
}

/// A pod template without the `pod-template-hash` label the ReplicaSet
/// controller adds.
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove("pod-template-hash");
    }
    t
}
