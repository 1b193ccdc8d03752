//! Which lists of which kinds merge by key under a strategic merge patch:
//! Kubernetes' `patchStrategy`/`patchMergeKey` tags for the fields of the
//! kinds minik8s serves. A field not listed here is a plain field: maps
//! merge, lists are replaced whole.

/// The patch metadata of one field and the schema of its value (of each
/// element, for a list).
pub(crate) struct Field {
    pub name: &'static str,
    /// `patchStrategy: merge`: the list is merged rather than replaced.
    pub merge: bool,
    /// `patchMergeKey`: what identifies an element of a merged list of
    /// objects; empty for merged lists of scalars (`finalizers`).
    pub merge_key: &'static str,
    pub schema: &'static Schema,
}

/// The fields of one type that need more than the default strategy.
pub(crate) struct Schema {
    pub name: &'static str,
    pub fields: &'static [Field],
}

/// The patch metadata of one field as the merge needs it.
#[derive(Clone, Copy)]
pub(crate) struct FieldMeta {
    pub merge: bool,
    pub merge_key: &'static str,
}

impl Schema {
    /// The schema of `key`'s value and its patch metadata; unknown fields
    /// get the default strategy.
    pub fn lookup(&self, key: &str) -> (&'static Schema, FieldMeta) {
        match self.fields.iter().find(|f| f.name == key) {
            Some(f) => (
                f.schema,
                FieldMeta {
                    merge: f.merge,
                    merge_key: f.merge_key,
                },
            ),
            None => (
                &PLAIN,
                FieldMeta {
                    merge: false,
                    merge_key: "",
                },
            ),
        }
    }
}

const fn plain(name: &'static str, schema: &'static Schema) -> Field {
    Field {
        name,
        merge: false,
        merge_key: "",
        schema,
    }
}

const fn merged(name: &'static str, merge_key: &'static str, schema: &'static Schema) -> Field {
    Field {
        name,
        merge: true,
        merge_key,
        schema,
    }
}

/// Any value without special fields.
pub(crate) static PLAIN: Schema = Schema {
    name: "object",
    fields: &[],
};

static OBJECT_META: Schema = Schema {
    name: "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    fields: &[
        merged("ownerReferences", "uid", &PLAIN),
        merged("finalizers", "", &PLAIN),
    ],
};

static CONTAINER: Schema = Schema {
    name: "io.k8s.api.core.v1.Container",
    fields: &[
        merged("ports", "containerPort", &PLAIN),
        merged("env", "name", &PLAIN),
        merged("volumeMounts", "mountPath", &PLAIN),
        merged("volumeDevices", "devicePath", &PLAIN),
    ],
};

static POD_SPEC: Schema = Schema {
    name: "io.k8s.api.core.v1.PodSpec",
    fields: &[
        // Also `retainKeys`: kubectl sends `$retainKeys` in each volume,
        // which the merge honours wherever it appears.
        merged("volumes", "name", &PLAIN),
        merged("initContainers", "name", &CONTAINER),
        merged("containers", "name", &CONTAINER),
        merged("ephemeralContainers", "name", &CONTAINER),
        merged("imagePullSecrets", "name", &PLAIN),
        merged("hostAliases", "ip", &PLAIN),
        merged("topologySpreadConstraints", "topologyKey", &PLAIN),
        merged("schedulingGates", "name", &PLAIN),
        merged("resourceClaims", "name", &PLAIN),
    ],
};

static POD_STATUS: Schema = Schema {
    name: "io.k8s.api.core.v1.PodStatus",
    fields: &[
        merged("conditions", "type", &PLAIN),
        merged("hostIPs", "ip", &PLAIN),
        merged("podIPs", "ip", &PLAIN),
        merged("resourceClaimStatuses", "name", &PLAIN),
        // containerStatuses has no merge key: a patch replaces it whole.
    ],
};

static POD: Schema = Schema {
    name: "io.k8s.api.core.v1.Pod",
    fields: &[
        plain("metadata", &OBJECT_META),
        plain("spec", &POD_SPEC),
        plain("status", &POD_STATUS),
    ],
};

static POD_TEMPLATE_SPEC: Schema = Schema {
    name: "io.k8s.api.core.v1.PodTemplateSpec",
    fields: &[plain("metadata", &OBJECT_META), plain("spec", &POD_SPEC)],
};

/// Conditions merged by type: the status of Services, Deployments,
/// ReplicaSets and Namespaces.
static CONDITIONS_STATUS: Schema = Schema {
    name: "status",
    fields: &[merged("conditions", "type", &PLAIN)],
};

static SERVICE: Schema = Schema {
    name: "io.k8s.api.core.v1.Service",
    fields: &[
        plain("metadata", &OBJECT_META),
        plain("spec", &SERVICE_SPEC),
        // status.loadBalancer.ingress has no merge key: replaced whole.
        plain("status", &CONDITIONS_STATUS),
    ],
};

static SERVICE_SPEC: Schema = Schema {
    name: "io.k8s.api.core.v1.ServiceSpec",
    fields: &[merged("ports", "port", &PLAIN)],
};

static WORKLOAD_SPEC: Schema = Schema {
    name: "io.k8s.api.apps.v1.DeploymentSpec",
    // Deployment's `strategy` is `retainKeys`; kubectl sends the
    // directive in the patch.
    fields: &[plain("template", &POD_TEMPLATE_SPEC)],
};

/// Deployments and ReplicaSets.
static WORKLOAD: Schema = Schema {
    name: "io.k8s.api.apps.v1.Deployment",
    fields: &[
        plain("metadata", &OBJECT_META),
        plain("spec", &WORKLOAD_SPEC),
        plain("status", &CONDITIONS_STATUS),
    ],
};

static NODE_SPEC: Schema = Schema {
    name: "io.k8s.api.core.v1.NodeSpec",
    fields: &[merged("podCIDRs", "", &PLAIN)],
};

static NODE_STATUS: Schema = Schema {
    name: "io.k8s.api.core.v1.NodeStatus",
    fields: &[
        merged("conditions", "type", &PLAIN),
        merged("addresses", "type", &PLAIN),
    ],
};

static NODE: Schema = Schema {
    name: "io.k8s.api.core.v1.Node",
    fields: &[
        plain("metadata", &OBJECT_META),
        plain("spec", &NODE_SPEC),
        plain("status", &NODE_STATUS),
    ],
};

static NAMESPACE: Schema = Schema {
    name: "io.k8s.api.core.v1.Namespace",
    fields: &[
        plain("metadata", &OBJECT_META),
        plain("status", &CONDITIONS_STATUS),
    ],
};

/// Endpoints, EndpointSlices, Events and any other kind: only metadata
/// has merged lists.
static OTHER: Schema = Schema {
    name: "object",
    fields: &[plain("metadata", &OBJECT_META)],
};

/// The schema of a top-level object of `kind`.
pub(crate) fn schema_for_kind(kind: &str) -> &'static Schema {
    match kind {
        "Pod" => &POD,
        "Service" => &SERVICE,
        "Deployment" | "ReplicaSet" => &WORKLOAD,
        "Node" => &NODE,
        "Namespace" => &NAMESPACE,
        _ => &OTHER,
    }
}
