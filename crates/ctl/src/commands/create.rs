//! `minik8s create`: objects from manifests (no merge, fails if they exist)
//! or a namespace by name.

use super::apply::{place_in_namespace, resource_of};
use crate::client_side_apply::with_last_applied;
use crate::error::CtlError;
use crate::resource_args::kind_name;
use crate::{manifest, Context};
use serde_json::json;

/// Create a resource from a file or from stdin, or a namespace by name.
#[derive(clap::Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CreateArgs {
    #[command(subcommand)]
    pub what: Option<CreateWhat>,
    /// Manifest file, directory or `-`.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Record the manifest for later `apply` (the last-applied annotation).
    #[arg(long)]
    pub save_config: bool,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum CreateWhat {
    /// Create a namespace with the specified name.
    #[command(alias = "ns")]
    Namespace {
        /// Name of the namespace.
        name: String,
    },
}

pub async fn run(ctx: &Context, args: CreateArgs) -> Vec<CtlError> {
    match args.what {
        Some(CreateWhat::Namespace { name }) => {
            let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            match ctx
                .client
                .create(&api::registry::NAMESPACES, None, &ns)
                .await
            {
                Ok(_) => {
                    println!("namespace/{name} created");
                    Vec::new()
                }
                Err(e) => vec![e.into()],
            }
        }
        None => create_from_files(ctx, &args).await,
    }
}

async fn create_from_files(ctx: &Context, args: &CreateArgs) -> Vec<CtlError> {
    if args.filenames.is_empty() {
        return vec![CtlError::msg(
            "must specify one of -f and -k, or a resource to create (e.g. `minik8s create namespace NAME`)",
        )];
    }
    let (objects, mut errors) = manifest::read_all(&args.filenames, false);
    for m in objects {
        let res = match resource_of(&m) {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let mut obj = m.object.clone();
        let ns = match place_in_namespace(ctx, res, &mut obj) {
            Ok(ns) => ns,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if args.save_config {
            obj = with_last_applied(&obj);
        }
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match ctx.client.create(res, ns.as_deref(), &obj).await {
            Ok(_) => println!("{}/{name} created", kind_name(res)),
            Err(e) => {
                let e = CtlError::from_client(e, Some(("creating", &m.source)));
                if matches!(e, CtlError::Unreachable { .. }) {
                    return vec![e];
                }
                errors.push(e);
            }
        }
    }
    errors
}
