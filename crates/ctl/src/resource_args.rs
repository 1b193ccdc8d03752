//! What a user names on the command line: `svc`, `svc,deploy web`,
//! `deploy/web svc/web`, `all`, resolved against the registry the way
//! kubectl's `ResourceTypeOrNameArgs` does.

use crate::error::CtlError;
use api::registry::{self, ResourceInfo};

/// One request: a whole kind (`name: None`) or one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub res: &'static ResourceInfo,
    pub name: Option<String>,
}

/// `deployment.apps` / `service`: how kubectl names a kind in output
/// (`deployment.apps/web`, `deployment.apps "web" deleted`).
pub fn kind_name(res: &ResourceInfo) -> String {
    let kind = res.kind.to_lowercase();
    if res.group.is_empty() {
        kind
    } else {
        format!("{kind}.{}", res.group)
    }
}

/// Resolve one type word; `all` expands to the kinds of category `all`.
pub fn resolve_types(word: &str) -> Result<Vec<&'static ResourceInfo>, CtlError> {
    let mut out = Vec::new();
    for t in word.split(',').filter(|t| !t.is_empty()) {
        if t == "all" {
            out.extend(
                registry::RESOURCES
                    .iter()
                    .filter(|r| r.categories.contains(&"all")),
            );
            continue;
        }
        match registry::resolve(t) {
            Some(r) => {
                if !out.contains(&r) {
                    out.push(r)
                }
            }
            None => return Err(CtlError::UnknownResourceType(t.to_string())),
        }
    }
    Ok(out)
}

/// Parse `TYPE[,TYPE...] [NAME...]` or `TYPE/NAME...`.
pub fn parse(args: &[String]) -> Result<Vec<Target>, CtlError> {
    let Some(first) = args.first() else {
        return Err(CtlError::msg(
            "You must specify the type of resource to get. Use \"minik8s get all\" to list the common ones.\nerror: Required resource not specified.",
        ));
    };
    if args.iter().any(|a| a.contains('/')) {
        let mut out = Vec::new();
        for a in args {
            let Some((t, name)) = a.split_once('/') else {
                return Err(CtlError::msg(
                    "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'minik8s get resource/<resource_name>' instead of 'minik8s get resource resource/<resource_name>'",
                ));
            };
            if name.is_empty() {
                return Err(CtlError::msg(
                    "arguments in resource/name form must have a single resource and name",
                ));
            }
            let res =
                registry::resolve(t).ok_or_else(|| CtlError::UnknownResourceType(t.to_string()))?;
            out.push(Target {
                res,
                name: Some(name.to_string()),
            });
        }
        return Ok(out);
    }
    let types = resolve_types(first)?;
    let names = &args[1..];
    let mut out = Vec::new();
    for res in types {
        if names.is_empty() {
            out.push(Target { res, name: None });
        } else {
            out.extend(names.iter().map(|n| Target {
                res,
                name: Some(n.clone()),
            }));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn types_and_names() {
        let t = parse(&args(&["svc,deploy", "web"])).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].res.kind, "Service");
        assert_eq!(t[1].res.kind, "Deployment");
        assert_eq!(t[1].name.as_deref(), Some("web"));
    }

    #[test]
    fn slash_form() {
        let t = parse(&args(&["deploy/web", "svc/web"])).unwrap();
        assert_eq!(kind_name(t[0].res), "deployment.apps");
        assert_eq!(kind_name(t[1].res), "service");
        assert!(parse(&args(&["svc", "deploy/web"])).is_err());
    }

    #[test]
    fn all_is_the_category() {
        let kinds: Vec<_> = parse(&args(&["all"]))
            .unwrap()
            .iter()
            .map(|t| t.res.kind)
            .collect();
        assert_eq!(kinds, ["Pod", "Service", "Deployment", "ReplicaSet"]);
    }

    #[test]
    fn unknown_type_is_reported() {
        let e = parse(&args(&["foo"])).unwrap_err();
        assert_eq!(
            e.render(),
            "error: the server doesn't have a resource type \"foo\""
        );
    }
}
