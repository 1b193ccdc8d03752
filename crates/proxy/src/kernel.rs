//! The thin adapter to the kernel: rules written inside the node's network
//! namespace (over netlink, or by `iptables-restore`), and `conntrack`.
//! Passed to the proxy as a trait object so tests can record instead.

use crate::nft::{NftError, NftWriter};
use crate::ProxyError;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;

pub trait RuleWriter: Send + Sync + 'static {
    /// Apply one `iptables-restore` transaction. `replace`: the tables in
    /// the payload replace the kernel's whole tables; otherwise only the
    /// chains it declares are rewritten (`--noflush`).
    fn restore(&self, payload: &str, replace: bool) -> Result<(), ProxyError>;
    /// Forget UDP flows to `cluster_ip:port` that were sent to an endpoint
    /// which is gone, so the next datagram is balanced afresh.
    fn clear_udp_flows(&self, cluster_ip: Ipv4Addr, port: u16, endpoint: Ipv4Addr);
    /// Whether the kernel's rules are still exactly as the last successful
    /// `restore` left them: `Some(false)` when something else changed
    /// them since, `None` when this writer cannot tell cheaply.
    fn untouched_since_last_write(&self) -> Option<bool> {
        None
    }
}

/// How the real writer gets rules into the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// minik8s' own netlink writer (`crate::nft`): the same iptables rules
    /// iptables-nft would write, in one nf_tables transaction, without a
    /// process. Input it cannot encode goes to `iptables-restore`.
    Netlink,
    /// The system's `iptables-restore` (nf_tables on Debian): each table
    /// is a transaction of its own.
    Restore,
    /// `iptables-legacy-restore` (x_tables), for comparison: it copies
    /// the whole table out and back in for every change.
    LegacyRestore,
}

/// The real writer: rules written inside the node netns.
///
/// The default, `Backend::Netlink`, writes where `iptables-save` looks
/// (nf_tables) and is the fastest way there: a full write of 1,000
/// Services costs the kernel ~0.6 s and user space a few milliseconds,
/// where iptables-nft-restore adds ~0.4 s of parsing and building; a
/// change rewrites only its chains. x_tables (`legacy`) writes a full
/// table faster (~0.35 s) but copies the whole table for every change
/// (~170 ms at that size). scripts/bench-proxy.sh prints all three.
pub struct IptablesInNetns {
    netns_path: PathBuf,
    backend: Backend,
    netlink: NftWriter,
    /// The nf_tables generation the last netlink write committed (None:
    /// unknown, or written another way).
    written_at: Mutex<Option<u32>>,
}

impl IptablesInNetns {
    pub fn new(netns_path: PathBuf, backend: Backend) -> IptablesInNetns {
        IptablesInNetns {
            netlink: NftWriter::new(netns_path.clone()),
            netns_path,
            backend,
            written_at: Mutex::new(None),
        }
    }

    fn command(&self, program: &str) -> std::process::Command {
        let program = match (self.backend, program) {
            (Backend::LegacyRestore, "iptables-restore") => "iptables-legacy-restore",
            _ => program,
        };
        nodenet::command_in_netns(&self.netns_path, program)
    }

    fn iptables_restore(&self, payload: &str, replace: bool) -> Result<(), ProxyError> {
        let mut cmd = self.command("iptables-restore");
        cmd.arg("--wait");
        if !replace {
            cmd.arg("--noflush");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ProxyError::Spawn("iptables-restore", e.to_string()))?;
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(payload.as_bytes())
            .map_err(|e| ProxyError::Spawn("iptables-restore", e.to_string()))?;
        let out = child
            .wait_with_output()
            .map_err(|e| ProxyError::Spawn("iptables-restore", e.to_string()))?;
        if !out.status.success() {
            return Err(ProxyError::Restore(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(())
    }
}

impl RuleWriter for IptablesInNetns {
    fn restore(&self, payload: &str, replace: bool) -> Result<(), ProxyError> {
        let mut written_at = self.written_at.lock().unwrap_or_else(|e| e.into_inner());
        *written_at = None;
        if self.backend != Backend::Netlink {
            return self.iptables_restore(payload, replace);
        }
        match self.netlink.apply(payload, replace) {
            Ok(generation) => {
                *written_at = Some(generation);
                Ok(())
            }
            Err(NftError::Kernel(e)) => Err(ProxyError::Netlink(e)),
            Err(NftError::Unsupported(why)) => {
                tracing::warn!(%why, "rules the netlink writer cannot encode; using iptables-restore");
                self.iptables_restore(payload, replace)
            }
        }
    }

    /// nf_tables counts committed transactions: if the count is where our
    /// last write left it, nobody has written since (a flush by hand, a
    /// stray iptables command in the node namespace would have moved it).
    fn untouched_since_last_write(&self) -> Option<bool> {
        let written_at = (*self.written_at.lock().unwrap_or_else(|e| e.into_inner()))?;
        Some(self.netlink.generation().ok() == Some(written_at))
    }

    fn clear_udp_flows(&self, cluster_ip: Ipv4Addr, port: u16, endpoint: Ipv4Addr) {
        // conntrack exits 1 when there was nothing to delete: not an error.
        let _ = self
            .command("conntrack")
            .args([
                "-D",
                "-p",
                "udp",
                "--orig-dst",
                &cluster_ip.to_string(),
                "--orig-port-dst",
                &port.to_string(),
                "--dst-nat",
                &endpoint.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
