//! `minik8s kubeconfig [--write]`: a kubeconfig that points the real
//! kubectl at this API (plain HTTP, no credentials).

use crate::encoding::{sorted, to_yaml_output};
use crate::error::CtlError;
use crate::GlobalOptions;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Print a kubeconfig for this API, or merge it into your kubeconfig file.
#[derive(clap::Args, Debug, Clone)]
pub struct KubeconfigArgs {
    /// Merge into $KUBECONFIG (first file) or ~/.kube/config and make it the current context.
    #[arg(long)]
    pub write: bool,
}

/// Name of the cluster, user and context entries.
pub const CONTEXT: &str = "minik8s";

pub async fn run(global: &GlobalOptions, args: KubeconfigArgs) -> Vec<CtlError> {
    let config = kubeconfig(&global.server);
    if !args.write {
        print!("{}", to_yaml_output(&config));
        return Vec::new();
    }
    let Some(path) = kubeconfig_path() else {
        return vec![CtlError::msg(
            "cannot find a kubeconfig location: set KUBECONFIG or HOME",
        )];
    };
    match write_merged(&path, &config) {
        Ok(()) => {
            println!(
                "Wrote context \"{CONTEXT}\" (server {}) to {}; current context is now \"{CONTEXT}\".",
                global.server,
                path.display()
            );
            Vec::new()
        }
        Err(e) => vec![e],
    }
}

pub fn kubeconfig(server: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT}}],
        "current-context": CONTEXT,
        "preferences": {},
        "users": [{"name": CONTEXT, "user": {}}],
    })
}

fn kubeconfig_path() -> Option<PathBuf> {
    if let Some(first) = std::env::var_os("KUBECONFIG")
        .and_then(|v| v.to_str().map(str::to_string))
        .and_then(|v| v.split(':').find(|p| !p.is_empty()).map(str::to_string))
    {
        return Some(PathBuf::from(first));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube").join("config"))
}

/// `ours` merged into `existing`: entries of the same name replaced, the
/// others kept, current-context switched to ours.
pub fn merge(existing: &Value, ours: &Value) -> Value {
    let mut out = if existing.is_object() {
        existing.clone()
    } else {
        json!({"apiVersion": "v1", "kind": "Config", "preferences": {}})
    };
    for section in ["clusters", "contexts", "users"] {
        let mut list: Vec<Value> = out[section].as_array().cloned().unwrap_or_default();
        for entry in ours[section].as_array().into_iter().flatten() {
            list.retain(|e| e["name"] != entry["name"]);
            list.push(entry.clone());
        }
        out[section] = Value::Array(list);
    }
    out["current-context"] = ours["current-context"].clone();
    sorted(&out)
}

fn write_merged(path: &std::path::Path, ours: &Value) -> Result<(), CtlError> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            crate::manifest::yaml_to_json(&text).map_err(|e| {
                CtlError::msg(format!(
                    "error loading config file \"{}\": {e}",
                    path.display()
                ))
            })?
        }
        _ => Value::Null,
    };
    let merged = merge(&existing, ours);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CtlError::msg(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, to_yaml_output(&merged))
        .map_err(|e| CtlError::msg(format!("cannot write {}: {e}", path.display())))?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_a_kubeconfig_for_the_local_api() {
        let text = to_yaml_output(&kubeconfig("http://127.0.0.1:6443"));
        assert_eq!(
            text,
            "apiVersion: v1\nclusters:\n- cluster:\n    server: http://127.0.0.1:6443\n  name: minik8s\n\
             contexts:\n- context:\n    cluster: minik8s\n    user: minik8s\n  name: minik8s\n\
             current-context: minik8s\nkind: Config\npreferences: {}\nusers:\n- name: minik8s\n  user: {}\n"
        );
    }

    #[test]
    fn merge_keeps_other_entries_and_switches_context() {
        let existing = json!({"apiVersion": "v1", "kind": "Config", "current-context": "prod",
            "clusters": [{"name": "prod", "cluster": {"server": "https://prod"}},
                         {"name": "minik8s", "cluster": {"server": "http://old"}}],
            "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "admin"}}],
            "users": [{"name": "admin", "user": {"token": "t"}}]});
        let merged = merge(&existing, &kubeconfig("http://127.0.0.1:6443"));
        assert_eq!(merged["current-context"], "minik8s");
        let clusters = merged["clusters"].as_array().unwrap();
        assert_eq!(clusters.len(), 2);
        assert_eq!(clusters[1]["cluster"]["server"], "http://127.0.0.1:6443");
        assert_eq!(merged["users"].as_array().unwrap().len(), 2);
    }
}
