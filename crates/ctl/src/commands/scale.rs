//! `minik8s scale deploy web --replicas 5` through the `scale` subresource.

use crate::error::CtlError;
use crate::resource_args::{self, kind_name};
use crate::Context;
use client::PatchType;
use serde_json::json;

/// Set a new size for a Deployment or ReplicaSet.
#[derive(clap::Args, Debug, Clone)]
pub struct ScaleArgs {
    /// TYPE NAME... or TYPE/NAME...
    pub resources: Vec<String>,
    /// The new number of replicas.
    #[arg(long, required = true)]
    pub replicas: i32,
}

pub async fn run(ctx: &Context, args: ScaleArgs) -> Vec<CtlError> {
    let targets = match resource_args::parse(&args.resources) {
        Ok(t) => t,
        Err(e) => return vec![e],
    };
    if args.replicas < 0 {
        return vec![CtlError::msg(
            "The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0",
        )];
    }
    let mut errors = Vec::new();
    for t in targets {
        let Some(name) = t.name else {
            errors.push(CtlError::msg(
                "resource(s) were provided, but no name was specified",
            ));
            continue;
        };
        if !t.res.subresources.contains(&"scale") {
            errors.push(CtlError::msg(format!(
                "cannot scale {}: the resource has no scale subresource",
                t.res.group_resource()
            )));
            continue;
        }
        let ns = t.res.namespaced.then_some(ctx.namespace.as_str());
        let path = format!("{}/scale", t.res.path(ns, Some(&name)));
        let patch = json!({"spec": {"replicas": args.replicas}});
        match ctx
            .client
            .patch_path(&path, PatchType::Merge, &patch, &[])
            .await
        {
            Ok(_) => println!("{}/{name} scaled", kind_name(t.res)),
            Err(e) => {
                let e = CtlError::from(e);
                if matches!(e, CtlError::Unreachable { .. }) {
                    return vec![e];
                }
                errors.push(e);
            }
        }
    }
    errors
}
