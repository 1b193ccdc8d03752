//! A container's environment and the `$(VAR)` expansion of its command,
//! args and env values, as Kubernetes defines them.

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// The search path every container starts with (the images' own PATH).
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Facts about the Pod that `valueFrom.fieldRef` can refer to.
#[derive(Debug, Clone)]
pub(crate) struct EnvContext<'a> {
    pub pod: &'a Pod,
    pub pod_ip: Option<Ipv4Addr>,
    pub host_ip: Ipv4Addr,
    pub hostname: &'a str,
    /// Node capacity, used by resourceFieldRef when no limit is set.
    pub node_cpus: u64,
    pub node_memory_bytes: u64,
}

/// The full environment of one container: the image's defaults, then the
/// container's `env` (later entries win, like Kubernetes). An error is the
/// message of a `CreateContainerConfigError`.
pub(crate) fn container_env(
    container: &Container,
    image_env: &[(String, String)],
    service_env: &[(String, String)],
    ctx: &EnvContext,
) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOSTNAME".into(), ctx.hostname.to_string()),
        ("HOME".into(), "/root".into()),
    ];
    if container.tty == Some(true) {
        out.push(("TERM".into(), "xterm".into()));
    }
    out.extend(image_env.iter().cloned());
    out.extend(service_env.iter().cloned());
    // Values of `env` may refer to the Service variables and to earlier
    // entries of `env` with $(NAME).
    let mut defined: HashMap<String, String> = service_env.iter().cloned().collect();
    for from in container.env_from.iter().flatten() {
        let (kind, name, optional) = if let Some(cm) = &from.config_map_ref {
            ("configmap", cm.name.clone(), cm.optional == Some(true))
        } else if let Some(s) = &from.secret_ref {
            ("secret", s.name.clone(), s.optional == Some(true))
        } else {
            continue;
        };
        if !optional {
            return Err(format!("{kind} \"{name}\" not found"));
        }
    }
    for var in container.env.iter().flatten() {
        let value = env_value(var, container, ctx, &defined)?;
        let Some(value) = value else { continue };
        defined.insert(var.name.clone(), value.clone());
        set(&mut out, &var.name, value);
    }
    Ok(out)
}

fn set(env: &mut Vec<(String, String)>, name: &str, value: String) {
    match env.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value,
        None => env.push((name.to_string(), value)),
    }
}

/// One `env` entry's value; `None` for an optional reference that is
/// missing (the variable is then not set at all).
fn env_value(
    var: &EnvVar,
    container: &Container,
    ctx: &EnvContext,
    defined: &HashMap<String, String>,
) -> Result<Option<String>, String> {
    if let Some(v) = &var.value {
        return Ok(Some(expand(v, &|n| defined.get(n).cloned())));
    }
    let Some(from) = &var.value_from else {
        return Ok(Some(String::new()));
    };
    if let Some(f) = &from.field_ref {
        return field_value(&f.field_path, ctx).map(Some);
    }
    if let Some(r) = &from.resource_field_ref {
        return Ok(Some(resource_value(&r.resource, container, ctx)));
    }
    if let Some(k) = &from.config_map_key_ref {
        return if k.optional == Some(true) {
            Ok(None)
        } else {
            Err(format!("configmap \"{}\" not found", k.name))
        };
    }
    if let Some(k) = &from.secret_key_ref {
        return if k.optional == Some(true) {
            Ok(None)
        } else {
            Err(format!("secret \"{}\" not found", k.name))
        };
    }
    Ok(Some(String::new()))
}

fn field_value(path: &str, ctx: &EnvContext) -> Result<String, String> {
    let meta = &ctx.pod.metadata;
    let spec = ctx.pod.spec.clone().unwrap_or_default();
    let map_lookup = |map: Option<&std::collections::BTreeMap<String, String>>, key: &str| {
        map.and_then(|m| m.get(key).cloned()).unwrap_or_default()
    };
    if let Some(key) = bracket_key(path, "metadata.labels") {
        return Ok(map_lookup(meta.labels.as_ref(), &key));
    }
    if let Some(key) = bracket_key(path, "metadata.annotations") {
        return Ok(map_lookup(meta.annotations.as_ref(), &key));
    }
    let ip = ctx.pod_ip.map(|ip| ip.to_string()).unwrap_or_default();
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.node_name.unwrap_or_default(),
        "spec.serviceAccountName" => spec.service_account_name.unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => ctx.host_ip.to_string(),
        "status.podIP" | "status.podIPs" => ip,
        other => return Err(format!("unsupported fieldRef fieldPath {other:?}")),
    })
}

/// `metadata.labels['app']` -> `app`.
fn bracket_key(path: &str, prefix: &str) -> Option<String> {
    let rest = path.strip_prefix(prefix)?;
    let inner = rest.strip_prefix("['")?.strip_suffix("']")?;
    Some(inner.to_string())
}

/// `limits.cpu` etc.: the container's value in whole units (cores rounded
/// up, bytes), or the node's capacity when the container sets none.
fn resource_value(resource: &str, container: &Container, ctx: &EnvContext) -> String {
    let res = container.resources.clone().unwrap_or_default();
    let (map, what) = match resource.split_once('.') {
        Some(("limits", w)) => (res.limits, w),
        Some(("requests", w)) => (res.requests.or(res.limits), w),
        _ => return String::new(),
    };
    let quantity = map.and_then(|m| m.get(what).map(|q| q.0.clone()));
    match (what, quantity) {
        ("cpu", Some(q)) => parse_quantity(&q)
            .map(|v| v.ceil() as u64)
            .unwrap_or(0)
            .max(1)
            .to_string(),
        ("cpu", None) => ctx.node_cpus.to_string(),
        ("memory", Some(q)) => parse_quantity(&q)
            .map(|v| v as u64)
            .unwrap_or(0)
            .to_string(),
        ("memory", None) => ctx.node_memory_bytes.to_string(),
        (_, Some(q)) => q,
        (_, None) => "0".to_string(),
    }
}

/// A Kubernetes quantity (`500m`, `64Mi`, `1G`, `2`) as a number.
pub(crate) fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0f64.powi(4),
        _ => return None,
    };
    Some(n * factor)
}

/// Kubernetes' `$(VAR)` expansion: a defined variable is replaced, an
/// undefined reference is kept as written, `$$` is a literal `$`.
pub(crate) fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' || i + 1 >= bytes.len() {
            let ch = input[i..]
                .chars()
                .next()
                .expect("index is on a char boundary");
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        match bytes[i + 1] {
            b'$' => {
                out.push('$');
                i += 2;
            }
            b'(' => match input[i + 2..].find(')') {
                Some(end) => {
                    let name = &input[i + 2..i + 2 + end];
                    match lookup(name) {
                        Some(v) => out.push_str(&v),
                        None => out.push_str(&input[i..i + 3 + end]),
                    }
                    i += 3 + end;
                }
                None => {
                    out.push_str(&input[i..]);
                    i = bytes.len();
                }
            },
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    out
}

/// Expand command and args against the container's final environment.
pub(crate) fn expand_all(items: &[String], env: &[(String, String)]) -> Vec<String> {
    let lookup = |n: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    items.iter().map(|s| expand(s, &lookup)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EnvVarSource, ObjectFieldSelector, PodSpec};

    fn ctx(pod: &Pod) -> EnvContext<'_> {
        EnvContext {
            pod,
            pod_ip: Some(Ipv4Addr::new(10, 244, 0, 5)),
            host_ip: Ipv4Addr::new(192, 168, 49, 2),
            hostname: "web-1",
            node_cpus: 2,
            node_memory_bytes: 1 << 30,
        }
    }

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let lookup = |n: &str| (n == "A").then(|| "x".to_string());
        assert_eq!(expand("$(A)-$(B)", &lookup), "x-$(B)");
        assert_eq!(expand("$$(A) $$ $", &lookup), "$(A) $ $");
        assert_eq!(expand("cost: $5 $(A", &lookup), "cost: $5 $(A");
        assert_eq!(expand("héllo $(A)", &lookup), "héllo x");
    }

    #[test]
    fn env_refers_to_earlier_entries_and_pod_fields() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web-1".into());
        pod.metadata.namespace = Some("default".into());
        pod.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        pod.spec = Some(PodSpec {
            node_name: Some("minik8s-node".into()),
            ..Default::default()
        });
        let field = |p: &str| EnvVar {
            name: String::new(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: p.into(),
                    api_version: None,
                }),
                ..Default::default()
            }),
        };
        let c = Container {
            name: "c".into(),
            env: Some(vec![
                EnvVar {
                    name: "GREETING".into(),
                    value: Some("hi".into()),
                    value_from: None,
                },
                EnvVar {
                    name: "MSG".into(),
                    value: Some("$(GREETING) there".into()),
                    value_from: None,
                },
                EnvVar {
                    name: "WEB".into(),
                    value: Some("http://$(WEB_SERVICE_HOST)".into()),
                    value_from: None,
                },
                EnvVar {
                    name: "POD_IP".into(),
                    ..field("status.podIP")
                },
                EnvVar {
                    name: "APP".into(),
                    ..field("metadata.labels['app']")
                },
                EnvVar {
                    name: "NODE".into(),
                    ..field("spec.nodeName")
                },
                EnvVar {
                    name: "PATH".into(),
                    value: Some("/opt/bin".into()),
                    value_from: None,
                },
            ]),
            ..Default::default()
        };
        let env = container_env(
            &c,
            &[("NGINX_VERSION".into(), "1.27.5".into())],
            &[("WEB_SERVICE_HOST".into(), "10.96.0.5".into())],
            &ctx(&pod),
        )
        .unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("MSG"), Some("hi there"));
        assert_eq!(get("WEB"), Some("http://10.96.0.5"));
        assert_eq!(get("POD_IP"), Some("10.244.0.5"));
        assert_eq!(get("APP"), Some("web"));
        assert_eq!(get("NODE"), Some("minik8s-node"));
        assert_eq!(get("PATH"), Some("/opt/bin"));
        assert_eq!(get("HOSTNAME"), Some("web-1"));
        assert_eq!(get("NGINX_VERSION"), Some("1.27.5"));
        let args = expand_all(&["echo".into(), "$(MSG)".into()], &env);
        assert_eq!(args, vec!["echo", "hi there"]);
    }

    #[test]
    fn missing_config_map_is_a_config_error_unless_optional() {
        let pod = Pod::default();
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c",
            "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]
        }))
        .unwrap();
        assert_eq!(
            container_env(&c, &[], &[], &ctx(&pod)).unwrap_err(),
            "configmap \"cfg\" not found"
        );
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c",
            "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k", "optional": true}}}]
        }))
        .unwrap();
        let env = container_env(&c, &[], &[], &ctx(&pod)).unwrap();
        assert!(!env.iter().any(|(n, _)| n == "X"));
    }

    #[test]
    fn quantities_parse() {
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("64Mi"), Some(67108864.0));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("x"), None);
    }
}
