//! `minik8s apply -f`: create what is missing, patch what changed, leave
//! the rest (`service/web created|configured|unchanged`).

use crate::client_side_apply::{self, ApplyPlan, LAST_APPLIED};
use crate::encoding::to_go_json;
use crate::error::CtlError;
use crate::manifest::{self, Manifest};
use crate::resource_args::kind_name;
use crate::Context;
use api::registry::ResourceInfo;
use client::PatchType;
use serde_json::Value;

/// Apply a configuration to resources from files, directories or stdin.
#[derive(clap::Args, Debug, Clone)]
pub struct ApplyArgs {
    /// A manifest file, a directory of them, or `-` for stdin (repeatable).
    #[arg(short = 'f', long = "filename", required = true)]
    pub filenames: Vec<String>,
    /// Also read manifests in subdirectories.
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

/// kubectl retries a patch that lost a race this many times.
const MAX_PATCH_RETRIES: usize = 5;

pub async fn run(ctx: &Context, args: ApplyArgs) -> Vec<CtlError> {
    let (objects, mut errors) = manifest::read_all(&args.filenames, args.recursive);
    if objects.is_empty() && errors.is_empty() {
        return vec![CtlError::msg("no objects passed to apply")];
    }
    for m in objects {
        match apply_one(ctx, &m).await {
            Ok(line) => println!("{line}"),
            Err(e @ CtlError::Unreachable { .. }) => return vec![e],
            Err(e) => errors.push(e),
        }
    }
    errors
}

/// The kind of a manifest, or kubectl's "resource mapping not found".
pub(crate) fn resource_of(m: &Manifest) -> Result<&'static ResourceInfo, CtlError> {
    let api_version = m.object["apiVersion"].as_str().unwrap_or_default();
    let kind = m.object["kind"].as_str().unwrap_or_default();
    api::registry::by_kind(api_version, kind).ok_or_else(|| {
        CtlError::msg(format!(
            "resource mapping not found for name: {:?} namespace: {:?} from {:?}: no matches for kind {kind:?} in version {api_version:?}\nensure CRDs are installed first",
            m.object["metadata"]["name"].as_str().unwrap_or_default(),
            m.object["metadata"]["namespace"].as_str().unwrap_or_default(),
            m.source
        ))
    })
}

/// The namespace a manifest object goes to, written into the object as
/// kubectl's builder does. A `-n` that contradicts the manifest is refused.
pub(crate) fn place_in_namespace(
    ctx: &Context,
    res: &ResourceInfo,
    obj: &mut Value,
) -> Result<Option<String>, CtlError> {
    if !res.namespaced {
        return Ok(None);
    }
    match obj["metadata"]["namespace"].as_str().filter(|s| !s.is_empty()) {
        Some(ns) if ctx.namespace_explicit && ns != ctx.namespace => Err(CtlError::msg(format!(
            "the namespace from the provided object \"{ns}\" does not match the namespace \"{}\". You must pass '--namespace={ns}' to perform this operation.",
            ctx.namespace
        ))),
        Some(ns) => Ok(Some(ns.to_string())),
        None => {
            if !obj["metadata"].is_object() {
                obj["metadata"] = Value::Object(Default::default());
            }
            obj["metadata"]["namespace"] = Value::String(ctx.namespace.clone());
            Ok(Some(ctx.namespace.clone()))
        }
    }
}

/// kubectl's `resource.Info.String()`, used in apply's error messages.
pub(crate) fn info_string(res: &ResourceInfo, name: &str, ns: Option<&str>) -> String {
    format!(
        "Resource: \"{group}/{version}, Resource={plural}\", GroupVersionKind: \"{group}/{version}, Kind={kind}\"\nName: {name:?}, Namespace: {ns:?}",
        group = res.group,
        version = res.version,
        plural = res.plural,
        kind = res.kind,
        ns = ns.unwrap_or_default(),
    )
}

async fn apply_one(ctx: &Context, m: &Manifest) -> Result<String, CtlError> {
    let res = resource_of(m)?;
    let mut obj = m.object.clone();
    let ns = place_in_namespace(ctx, res, &mut obj)?;
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let info = info_string(res, &name, ns.as_deref());
    if name.is_empty() {
        return Err(CtlError::msg(format!(
            "error when retrieving current configuration of:\n{info}\nfrom server for: \"{}\": resource name may not be empty",
            m.source
        )));
    }
    let shown = format!("{}/{name}", kind_name(res));

    let mut attempt = 0;
    loop {
        let live = match ctx.client.get(res, ns.as_deref(), &name).await {
            Ok(live) => Some(live),
            Err(e) if e.is_not_found() => None,
            Err(e) => {
                let verb =
                    format!("retrieving current configuration of:\n{info}\nfrom server for:");
                return Err(CtlError::from_client(e, Some((&verb, &m.source))));
            }
        };
        if let Some(live) = &live {
            if live["metadata"]["annotations"][LAST_APPLIED].is_null() && attempt == 0 {
                eprintln!(
                    "Warning: resource {}/{name} is missing the {LAST_APPLIED} annotation which is required by minik8s apply. minik8s apply should only be used on resources created declaratively by either minik8s create --save-config or minik8s apply. The missing annotation will be patched automatically.",
                    res.group_resource()
                );
            }
        }
        match client_side_apply::plan(&obj, live.as_ref()) {
            ApplyPlan::Create(body) => {
                return match ctx.client.create(res, ns.as_deref(), &body).await {
                    Ok(_) => Ok(format!("{shown} created")),
                    Err(e) => Err(CtlError::from_client(e, Some(("creating", &m.source)))),
                };
            }
            ApplyPlan::Unchanged => return Ok(format!("{shown} unchanged")),
            ApplyPlan::Patch(patch) => {
                match ctx
                    .client
                    .patch(res, ns.as_deref(), &name, PatchType::Strategic, &patch)
                    .await
                {
                    Ok(_) => return Ok(format!("{shown} configured")),
                    Err(e) if e.is_conflict() && attempt < MAX_PATCH_RETRIES => attempt += 1,
                    Err(e) => {
                        let context = format!(
                            "error when applying patch:\n{}\nto:\n{info}\nfor: \"{src}\": error when patching \"{src}\": ",
                            to_go_json(&patch),
                            src = m.source
                        );
                        return Err(CtlError::with_context(e, Some(context)));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(ns: Option<&str>) -> Context {
        Context {
            client: client::Client::new("http://127.0.0.1:1"),
            namespace: ns.unwrap_or("default").to_string(),
            namespace_explicit: ns.is_some(),
        }
    }

    #[test]
    fn unknown_kinds_are_not_mapped() {
        let m = Manifest {
            source: "f.yaml".into(),
            object: json!({"apiVersion": "v1", "kind": "Foo", "metadata": {"name": "x"}}),
        };
        assert_eq!(
            resource_of(&m).unwrap_err().render(),
            "error: resource mapping not found for name: \"x\" namespace: \"\" from \"f.yaml\": no matches for kind \"Foo\" in version \"v1\"\nensure CRDs are installed first"
        );
    }

    #[test]
    fn namespace_defaults_and_conflicts() {
        let svc = &api::registry::SERVICES;
        let mut obj = json!({"metadata": {"name": "web"}});
        assert_eq!(
            place_in_namespace(&ctx(None), svc, &mut obj)
                .unwrap()
                .as_deref(),
            Some("default")
        );
        assert_eq!(obj["metadata"]["namespace"], "default");
        let mut obj = json!({"metadata": {"name": "web", "namespace": "prod"}});
        let err = place_in_namespace(&ctx(Some("dev")), svc, &mut obj).unwrap_err();
        assert!(err.render().contains("You must pass '--namespace=prod'"));
        assert_eq!(
            place_in_namespace(&ctx(None), &api::registry::NAMESPACES, &mut json!({})).unwrap(),
            None
        );
    }

    #[test]
    fn info_names_resource_and_kind() {
        assert_eq!(
            info_string(&api::registry::DEPLOYMENTS, "web", Some("default")),
            "Resource: \"apps/v1, Resource=deployments\", GroupVersionKind: \"apps/v1, Kind=Deployment\"\nName: \"web\", Namespace: \"default\""
        );
    }
}
