//! The resource registry: one entry per kind the API serves. Every generic
//! part of minik8s (storage keys, REST paths, discovery, the CLI's resource
//! names) reads these entries; nothing else lists kinds.

/// What the API knows about one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; "" for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The plural used in paths, e.g. `services`.
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub namespaced: bool,
    /// e.g. `all` for `kubectl get all`.
    pub categories: &'static [&'static str],
    /// Subresources the API serves, e.g. `status`, `scale`, `log`, `exec`.
    pub subresources: &'static [&'static str],
    /// Verbs for discovery.
    pub verbs: &'static [&'static str],
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub const NAMESPACES: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    kind: "Namespace",
    plural: "namespaces",
    singular: "namespace",
    short_names: &["ns"],
    namespaced: false,
    categories: &[],
    subresources: &["status"],
    verbs: &[
        "create", "delete", "get", "list", "patch", "update", "watch",
    ],
};

pub const NODES: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    kind: "Node",
    plural: "nodes",
    singular: "node",
    short_names: &["no"],
    namespaced: false,
    categories: &[],
    subresources: &["status"],
    verbs: ALL_VERBS,
};

pub const PODS: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    kind: "Pod",
    plural: "pods",
    singular: "pod",
    short_names: &["po"],
    namespaced: true,
    categories: &["all"],
    subresources: &["status", "log", "exec", "attach"],
    verbs: ALL_VERBS,
};

pub const SERVICES: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    kind: "Service",
    plural: "services",
    singular: "service",
    short_names: &["svc"],
    namespaced: true,
    categories: &["all"],
    subresources: &["status"],
    verbs: &[
        "create", "delete", "get", "list", "patch", "update", "watch",
    ],
};

pub const ENDPOINTS: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    kind: "Endpoints",
    plural: "endpoints",
    singular: "endpoints",
    short_names: &["ep"],
    namespaced: true,
    categories: &[],
    subresources: &[],
    verbs: ALL_VERBS,
};

pub const EVENTS: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    kind: "Event",
    plural: "events",
    singular: "event",
    short_names: &["ev"],
    namespaced: true,
    categories: &[],
    subresources: &[],
    verbs: ALL_VERBS,
};

pub const ENDPOINT_SLICES: ResourceInfo = ResourceInfo {
    group: "discovery.k8s.io",
    version: "v1",
    kind: "EndpointSlice",
    plural: "endpointslices",
    singular: "endpointslice",
    short_names: &[],
    namespaced: true,
    categories: &[],
    subresources: &[],
    verbs: ALL_VERBS,
};

pub const DEPLOYMENTS: ResourceInfo = ResourceInfo {
    group: "apps",
    version: "v1",
    kind: "Deployment",
    plural: "deployments",
    singular: "deployment",
    short_names: &["deploy"],
    namespaced: true,
    categories: &["all"],
    subresources: &["status", "scale"],
    verbs: ALL_VERBS,
};

pub const REPLICA_SETS: ResourceInfo = ResourceInfo {
    group: "apps",
    version: "v1",
    kind: "ReplicaSet",
    plural: "replicasets",
    singular: "replicaset",
    short_names: &["rs"],
    namespaced: true,
    categories: &["all"],
    subresources: &["status", "scale"],
    verbs: ALL_VERBS,
};

/// Every kind the API serves, in discovery order.
pub const RESOURCES: &[ResourceInfo] = &[
    NAMESPACES,
    NODES,
    PODS,
    SERVICES,
    ENDPOINTS,
    EVENTS,
    ENDPOINT_SLICES,
    DEPLOYMENTS,
    REPLICA_SETS,
];

impl ResourceInfo {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `/api/v1` or `/apis/apps/v1`.
    pub fn group_version_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// The REST path of the collection (`name: None`) or of one object.
    /// `namespace` is ignored for cluster-scoped kinds; `None` for a
    /// namespaced kind means all namespaces (list and watch only).
    pub fn path(&self, namespace: Option<&str>, name: Option<&str>) -> String {
        let mut p = self.group_version_path();
        if self.namespaced {
            if let Some(ns) = namespace {
                p.push_str("/namespaces/");
                p.push_str(ns);
            }
        }
        p.push('/');
        p.push_str(self.plural);
        if let Some(n) = name {
            p.push('/');
            p.push_str(n);
        }
        p
    }

    /// `services` for the core group, `deployments.apps` otherwise: the
    /// qualified resource name Kubernetes uses in messages and kubectl in
    /// `deployment.apps/web`.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `deployment.apps` / `service`: the prefix of `-o name` output.
    pub fn group_singular(&self) -> String {
        if self.group.is_empty() {
            self.singular.to_string()
        } else {
            format!("{}.{}", self.singular, self.group)
        }
    }

    /// `ServiceList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The storage key prefix of this kind (`/registry/core/services/`),
    /// optionally narrowed to one namespace (`.../services/default/`).
    pub fn key_prefix(&self, namespace: Option<&str>) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("/registry/{group}/{}/{ns}/", self.plural),
            _ => format!("/registry/{group}/{}/", self.plural),
        }
    }

    /// The storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}{}", self.key_prefix(namespace), name)
    }
}

/// Resolve what a user typed (`svc`, `services`, `service`, `Service`,
/// `deployments.apps`, `deploy`) to a kind.
pub fn resolve(name: &str) -> Option<&'static ResourceInfo> {
    let lower = name.to_ascii_lowercase();
    let (base, group) = match lower.split_once('.') {
        Some((b, g)) => (b.to_string(), Some(g.to_string())),
        None => (lower.clone(), None),
    };
    RESOURCES.iter().find(|r| {
        let group_ok = match &group {
            Some(g) => *g == r.group || (g == "v1" && r.group.is_empty()),
            None => true,
        };
        group_ok
            && (r.plural == base
                || r.singular == base
                || r.kind.eq_ignore_ascii_case(&base)
                || r.short_names.contains(&base.as_str()))
    })
}

/// Find the kind of a manifest from its `apiVersion` and `kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_short_and_qualified_names() {
        assert_eq!(resolve("svc").unwrap().kind, "Service");
        assert_eq!(resolve("deployments.apps").unwrap().kind, "Deployment");
        assert_eq!(resolve("ep").unwrap().kind, "Endpoints");
        assert_eq!(resolve("endpointslices").unwrap().kind, "EndpointSlice");
        assert!(resolve("widgets").is_none());
    }

    #[test]
    fn paths_and_keys() {
        assert_eq!(
            DEPLOYMENTS.path(Some("default"), Some("web")),
            "/apis/apps/v1/namespaces/default/deployments/web"
        );
        assert_eq!(SERVICES.path(None, None), "/api/v1/services");
        assert_eq!(NODES.path(Some("x"), Some("n1")), "/api/v1/nodes/n1");
        assert_eq!(
            SERVICES.key(Some("default"), "web"),
            "/registry/core/services/default/web"
        );
        assert_eq!(
            NAMESPACES.key(None, "default"),
            "/registry/core/namespaces/default"
        );
    }
}
