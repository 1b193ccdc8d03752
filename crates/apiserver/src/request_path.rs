//! Which resource a REST path names. One parser for every kind in the
//! registry, so a new kind needs a registry entry and nothing here.

use api::registry::{ResourceInfo, RESOURCES};

/// A path under `/api/v1` or `/apis/<group>/<version>` that names a
/// collection, one object or one object's subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub resource: &'static ResourceInfo,
    /// The namespace of the path; `None` for cluster-scoped kinds and for
    /// lists and watches across all namespaces.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The legacy `/watch/` path form (`/api/v1/watch/namespaces/...`).
    pub watch_prefix: bool,
}

/// Subresources a Namespace has: the segment after `namespaces/<name>/`
/// is one of these rather than a namespaced collection.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Subresources served for a kind beyond what discovery lists: the
/// scheduler binds Pods through `pods/<name>/binding`.
fn serves_subresource(resource: &ResourceInfo, sub: &str) -> bool {
    resource.subresources.contains(&sub) || (resource.plural == "pods" && sub == "binding")
}

/// Parse a request path; `None` means "the server could not find the
/// requested resource" (an unknown group, version, kind or subresource).
pub fn parse(path: &str) -> Option<ResourcePath> {
    let segments: Vec<&str> = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (watch_prefix, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let find = |plural: &str| {
        RESOURCES
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    };
    let (resource, namespace, tail): (&'static ResourceInfo, Option<String>, &[&str]) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if !NAMESPACE_SUBRESOURCES.contains(plural) && group_has_namespaced(find(plural)) =>
        {
            (find(plural)?, Some(ns.to_string()), tail)
        }
        [plural, tail @ ..] => (find(plural)?, None, tail),
        [] => return None,
    };
    if resource.namespaced && namespace.is_none() && !tail.is_empty() {
        // A namespaced object needs its namespace in the path.
        return None;
    }
    let (name, subresource) = match tail {
        [] => (None, None),
        [name] => (Some(name.to_string()), None),
        [name, sub] if serves_subresource(resource, sub) => {
            (Some(name.to_string()), Some(sub.to_string()))
        }
        _ => return None,
    };
    if name.as_deref() == Some("") {
        return None;
    }
    Some(ResourcePath {
        resource,
        namespace,
        name,
        subresource,
        watch_prefix,
    })
}

fn group_has_namespaced(found: Option<&ResourceInfo>) -> bool {
    found.is_some_and(|r| r.namespaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> (String, Option<String>, Option<String>, Option<String>, bool) {
        let r = parse(path).unwrap_or_else(|| panic!("{path} did not parse"));
        (
            r.resource.plural.to_string(),
            r.namespace,
            r.name,
            r.subresource,
            r.watch_prefix,
        )
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn namespaced_paths() {
        assert_eq!(
            p("/api/v1/namespaces/default/services"),
            ("services".into(), s("default"), None, None, false)
        );
        assert_eq!(
            p("/api/v1/namespaces/default/services/web"),
            ("services".into(), s("default"), s("web"), None, false)
        );
        assert_eq!(
            p("/apis/apps/v1/namespaces/d/deployments/web/scale"),
            ("deployments".into(), s("d"), s("web"), s("scale"), false)
        );
        assert_eq!(
            p("/api/v1/namespaces/d/pods/x/exec"),
            ("pods".into(), s("d"), s("x"), s("exec"), false)
        );
    }

    #[test]
    fn cluster_scoped_and_all_namespaces() {
        assert_eq!(p("/api/v1/pods"), ("pods".into(), None, None, None, false));
        assert_eq!(
            p("/api/v1/namespaces"),
            ("namespaces".into(), None, None, None, false)
        );
        assert_eq!(
            p("/api/v1/namespaces/kube-system"),
            ("namespaces".into(), None, s("kube-system"), None, false)
        );
        assert_eq!(
            p("/api/v1/namespaces/x/status"),
            ("namespaces".into(), None, s("x"), s("status"), false)
        );
        assert_eq!(
            p("/api/v1/nodes/n1/status"),
            ("nodes".into(), None, s("n1"), s("status"), false)
        );
    }

    #[test]
    fn watch_prefix() {
        assert_eq!(
            p("/api/v1/watch/namespaces/default/services/web"),
            ("services".into(), s("default"), s("web"), None, true)
        );
        assert_eq!(
            p("/apis/discovery.k8s.io/v1/watch/endpointslices"),
            ("endpointslices".into(), None, None, None, true)
        );
    }

    #[test]
    fn unknown_paths() {
        assert!(parse("/api/v1/widgets").is_none());
        assert!(parse("/api/v2/pods").is_none());
        assert!(parse("/apis/apps/v1/services").is_none());
        assert!(parse("/api/v1/namespaces/d/services/web/scale").is_none());
        assert!(parse("/api/v1/pods/web").is_none());
        assert!(parse("/healthz").is_none());
        assert!(parse("/api/v1/namespaces/d/services/web/status/x").is_none());
    }
}
