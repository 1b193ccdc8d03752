//! The processes a Pod's containers run, on disk, so that a server killed
//! with SIGKILL can find and stop them when it starts again (they were
//! children of the dead server and still hold ports and the sandbox).
//! A pid alone is not enough: the start time tells the process from a
//! later one that got the same pid.

#[cfg(test)]
use crate::process::process_start_time;
use crate::process::{process_running, signal_tree};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `<pod dir>/_sandbox/processes`: one `<container> <pid> <start time>`
/// line per running container. (`_` cannot start a container name.)
pub(crate) fn checkpoint_path(pod_dir: &Path) -> PathBuf {
    pod_dir.join("_sandbox").join("processes")
}

/// The running processes of one Pod.
#[derive(Debug)]
pub(crate) struct Checkpoint {
    path: PathBuf,
    entries: BTreeMap<String, (i32, u64)>,
}

impl Checkpoint {
    pub(crate) fn new(pod_dir: &Path) -> Checkpoint {
        Checkpoint {
            path: checkpoint_path(pod_dir),
            entries: BTreeMap::new(),
        }
    }

    pub(crate) fn add(&mut self, container: &str, pid: i32, start_time: u64) {
        self.entries
            .insert(container.to_string(), (pid, start_time));
        self.save();
    }

    pub(crate) fn remove(&mut self, container: &str) {
        if self.entries.remove(container).is_some() {
            self.save();
        }
    }

    /// Written with a rename, so a crash never leaves half a file. No fsync:
    /// the file only has to outlive the server process, not the machine
    /// (after a reboot none of the processes exist anyway).
    fn save(&self) {
        let text = render(&self.entries);
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = self.path.with_extension("tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &self.path);
        }
    }
}

fn render(entries: &BTreeMap<String, (i32, u64)>) -> String {
    entries
        .iter()
        .map(|(name, (pid, start))| format!("{name} {pid} {start}\n"))
        .collect()
}

pub(crate) fn parse(text: &str) -> Vec<(String, i32, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?.to_string();
            let pid = w.next()?.parse().ok()?;
            let start = w.next()?.parse().ok()?;
            Some((name, pid, start))
        })
        .collect()
}

/// Kill every process a previous run of the server left behind (found in
/// the Pods' checkpoints with a matching start time), wait briefly for
/// them to go, and clear the checkpoints. Returns how many were killed.
pub(crate) fn kill_stale_processes(pods_dir: &Path) -> usize {
    let Ok(dirs) = std::fs::read_dir(pods_dir) else {
        return 0;
    };
    let mut killed = Vec::new();
    for dir in dirs.flatten() {
        let path = checkpoint_path(&dir.path());
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for (_, pid, start) in parse(&text) {
            if process_running(pid, start) {
                signal_tree(pid, libc::SIGKILL);
                killed.push((pid, start));
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    // The new containers may bind the same ports in the same sandbox.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline
        && killed
            .iter()
            .any(|(pid, start)| process_running(*pid, *start))
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    killed.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let mut m = BTreeMap::new();
        m.insert("web".to_string(), (1234, 99));
        m.insert("side-car".to_string(), (77, 5));
        let parsed = parse(&render(&m));
        assert_eq!(
            parsed,
            vec![
                ("side-car".to_string(), 77, 5),
                ("web".to_string(), 1234, 99)
            ]
        );
        assert!(parse("garbage\nweb x 1\n").is_empty());
    }

    #[test]
    fn stale_processes_are_killed_and_reused_pids_spared() {
        let dir = std::env::temp_dir().join(format!("kubelet-ckpt-{}", std::process::id()));
        let pod = dir.join("uid-1");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let start = process_start_time(pid).unwrap();
        let mut cp = Checkpoint::new(&pod);
        cp.add("web", pid, start);
        // Our own pid with a wrong start time stands for a reused pid.
        cp.add("other", std::process::id() as i32, 1);
        assert_eq!(kill_stale_processes(&dir), 1);
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(!checkpoint_path(&pod).exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}
