//! The node's persisted sandbox records: which Pod holds which address and
//! which netns/veth names. Written before any kernel object of a sandbox is
//! created and atomically (temp file, fsync, rename, fsync of the directory),
//! so after `kill -9` an address is never handed out twice and a Pod uid
//! gets its old address back.

use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::NodeNetError;
use crate::Sandbox;

const STATE_FILE: &str = "sandboxes.json";
const STATE_VERSION: u32 = 1;

/// What is on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersistedState {
    pub version: u32,
    /// The Pod CIDR the addresses were allocated from (string: ipnet's
    /// serde support is an optional feature).
    pub pod_cidr: String,
    pub last_reserved: Option<Ipv4Addr>,
    pub sandboxes: Vec<Sandbox>,
}

impl PersistedState {
    pub fn new(
        pod_cidr: Ipv4Net,
        last_reserved: Option<Ipv4Addr>,
        sandboxes: Vec<Sandbox>,
    ) -> Self {
        PersistedState {
            version: STATE_VERSION,
            pod_cidr: pod_cidr.to_string(),
            last_reserved,
            sandboxes,
        }
    }
}

/// The state file of one node inside `state_dir`.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn new(state_dir: &Path) -> StateFile {
        StateFile {
            path: state_dir.join(STATE_FILE),
        }
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state, or None when nothing was saved yet.
    pub fn load(&self) -> Result<Option<PersistedState>, NodeNetError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(NodeNetError::Io {
                    op: "read",
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let state: PersistedState =
            serde_json::from_slice(&bytes).map_err(|e| NodeNetError::CorruptState {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        if state.version != STATE_VERSION {
            return Err(NodeNetError::CorruptState {
                path: self.path.clone(),
                reason: format!("unknown version {}", state.version),
            });
        }
        Ok(Some(state))
    }

    /// Replaces the file atomically and durably.
    pub fn save(&self, state: &PersistedState) -> Result<(), NodeNetError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let io_err = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| NodeNetError::Io { op, path, source }
        };
        fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        let tmp = self.path.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(state).expect("state serializes");
        {
            let mut f = fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
            f.write_all(&body).map_err(io_err("write", &tmp))?;
            f.sync_all().map_err(io_err("fsync", &tmp))?;
        }
        fs::rename(&tmp, &self.path).map_err(io_err("rename into", &self.path))?;
        // The rename is durable only once the directory entry is.
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("fsync", dir))?;
        Ok(())
    }

    /// Removes the file (teardown); missing is fine.
    pub fn remove(&self) -> Result<(), NodeNetError> {
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(NodeNetError::Io {
                op: "remove",
                path: self.path.clone(),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "nodenet-state-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn sandbox(uid: &str, ip: &str) -> Sandbox {
        Sandbox {
            pod_uid: uid.to_string(),
            netns_name: format!("minik8s-default-p-{uid}"),
            netns_path: PathBuf::from(format!("/run/netns/minik8s-default-p-{uid}")),
            ip: ip.parse().unwrap(),
            prefix_len: 24,
            gateway: "10.244.0.1".parse().unwrap(),
            host_veth: format!("veth{uid}"),
        }
    }

    #[test]
    fn missing_file_is_empty_state() {
        let dir = temp_dir("missing");
        assert_eq!(StateFile::new(&dir).load().unwrap(), None);
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = temp_dir("roundtrip");
        let file = StateFile::new(&dir);
        let state = PersistedState::new(
            "10.244.0.0/24".parse().unwrap(),
            Some("10.244.0.3".parse().unwrap()),
            vec![
                sandbox("aaaaaaaa", "10.244.0.2"),
                sandbox("bbbbbbbb", "10.244.0.3"),
            ],
        );
        file.save(&state).unwrap();
        assert_eq!(file.load().unwrap(), Some(state.clone()));
        // A second save replaces, leaving no temp file behind.
        let smaller = PersistedState::new("10.244.0.0/24".parse().unwrap(), None, vec![]);
        file.save(&smaller).unwrap();
        assert_eq!(file.load().unwrap(), Some(smaller));
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["sandboxes.json"]);
        file.remove().unwrap();
        file.remove().unwrap();
        assert_eq!(file.load().unwrap(), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_file_is_an_error_not_an_empty_state() {
        let dir = temp_dir("corrupt");
        fs::create_dir_all(&dir).unwrap();
        let file = StateFile::new(&dir);
        fs::write(file.path(), b"{not json").unwrap();
        assert!(matches!(
            file.load(),
            Err(NodeNetError::CorruptState { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
