//! `minik8s delete`: by manifest, by type and names, or by selector
//! (`service "web" deleted`), then wait until the objects are gone.

use super::apply::{place_in_namespace, resource_of};
use crate::error::CtlError;
use crate::resource_args::{self, kind_name};
use crate::{manifest, Context};
use api::registry::ResourceInfo;
use client::ListParams;
use serde_json::{json, Value};
use std::time::Duration;

/// Delete resources by file names, stdin, resources and names, or by label selector.
#[derive(clap::Args, Debug, Clone)]
pub struct DeleteArgs {
    /// TYPE NAME..., TYPE/NAME..., or TYPE with -l/--all.
    pub resources: Vec<String>,
    /// Delete the objects of these manifests.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Delete the objects matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Delete all objects of the type in the namespace.
    #[arg(long)]
    pub all: bool,
    /// With -l or --all: in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Treat "not found" as success.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Wait until the objects are gone before returning.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub wait: bool,
    /// Seconds the pod gets to stop (-1: the object's default).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// Delete immediately (with --grace-period=0).
    #[arg(long)]
    pub force: bool,
    /// Same as --grace-period=1.
    #[arg(long)]
    pub now: bool,
}

/// One object to delete.
struct Victim {
    res: &'static ResourceInfo,
    namespace: Option<String>,
    name: String,
    /// Manifest the object came from, for kubectl's error context.
    source: Option<String>,
}

pub async fn run(ctx: &Context, args: DeleteArgs) -> Vec<CtlError> {
    let (victims, mut errors) = match victims(ctx, &args).await {
        Ok(v) => v,
        Err(e) => return vec![e],
    };
    let mut grace = args.grace_period;
    if args.now {
        grace = 1;
    }
    if args.force && grace < 0 {
        grace = 0;
    }
    if grace == 0 {
        eprintln!("Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely.");
    }
    let mut found = 0;
    let mut deleted = Vec::new();
    for v in &victims {
        let result = if grace >= 0 {
            ctx.client
                .delete_with(
                    v.res,
                    v.namespace.as_deref(),
                    &v.name,
                    &json!({"gracePeriodSeconds": grace}),
                )
                .await
        } else {
            ctx.client
                .delete(v.res, v.namespace.as_deref(), &v.name)
                .await
        };
        match result {
            Ok(answer) => {
                found += 1;
                let op = if grace == 0 {
                    "force deleted"
                } else {
                    "deleted"
                };
                println!("{} \"{}\" {op}", kind_name(v.res), v.name);
                deleted.push((v, uid_of(&answer)));
            }
            Err(e) if e.is_not_found() && args.ignore_not_found => {}
            Err(e) => {
                let ctx_src = v.source.as_deref().map(|s| ("deleting", s));
                let e = CtlError::from_client(e, ctx_src);
                if matches!(e, CtlError::Unreachable { .. }) {
                    return vec![e];
                }
                errors.push(e);
            }
        }
    }
    if found == 0 && errors.is_empty() && (args.selector.is_some() || args.all) {
        println!("No resources found");
    }
    if args.wait {
        for (v, uid) in deleted {
            wait_gone(ctx, v, uid.as_deref()).await;
        }
    }
    errors
}

async fn victims(
    ctx: &Context,
    args: &DeleteArgs,
) -> Result<(Vec<Victim>, Vec<CtlError>), CtlError> {
    if !args.filenames.is_empty() {
        let (objects, mut errors) = manifest::read_all(&args.filenames, args.recursive);
        let mut out = Vec::new();
        for m in objects {
            let res = match resource_of(&m) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let mut obj = m.object.clone();
            let namespace = place_in_namespace(ctx, res, &mut obj)?;
            out.push(Victim {
                res,
                namespace,
                name: obj["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                source: Some(m.source.clone()),
            });
        }
        return Ok((out, errors));
    }
    if args.resources.is_empty() {
        return Err(CtlError::msg(
            "You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'",
        ));
    }
    let targets = resource_args::parse(&args.resources)?;
    let mut out = Vec::new();
    for t in targets {
        let namespace = t.res.namespaced.then(|| ctx.namespace.clone());
        match t.name {
            Some(name) => out.push(Victim {
                res: t.res,
                namespace,
                name,
                source: None,
            }),
            None => {
                if args.selector.is_none() && !args.all {
                    return Err(CtlError::msg(
                        "resource(s) were provided, but no name was specified",
                    ));
                }
                let list_ns = if args.all_namespaces {
                    None
                } else {
                    namespace.as_deref()
                };
                let params = ListParams {
                    label_selector: args.selector.clone(),
                    field_selector: None,
                };
                let list = ctx.client.list(t.res, list_ns, &params).await?;
                for item in list["items"].as_array().into_iter().flatten() {
                    out.push(Victim {
                        res: t.res,
                        namespace: item["metadata"]["namespace"].as_str().map(str::to_string),
                        name: item["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        source: None,
                    });
                }
            }
        }
    }
    Ok((out, Vec::new()))
}

/// The uid of the object a DELETE answered with (object or Status).
fn uid_of(answer: &Value) -> Option<String> {
    answer["metadata"]["uid"]
        .as_str()
        .or_else(|| answer["details"]["uid"].as_str())
        .map(str::to_string)
}

/// Poll until the object is gone (or replaced by a new one of the same name),
/// as kubectl's `--wait` does.
async fn wait_gone(ctx: &Context, v: &Victim, uid: Option<&str>) {
    loop {
        match ctx.client.get(v.res, v.namespace.as_deref(), &v.name).await {
            Err(e) if e.is_not_found() => return,
            Err(_) => return,
            Ok(obj) => {
                if let (Some(old), Some(now)) = (uid, obj["metadata"]["uid"].as_str()) {
                    if old != now {
                        return;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
