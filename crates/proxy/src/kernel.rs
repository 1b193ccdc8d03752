//! The thin adapter to the kernel: `iptables-restore` and `conntrack`, run
//! inside the node's network namespace. Passed to the proxy as a trait
//! object so tests can record instead.

use crate::ProxyError;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;

pub trait RuleWriter: Send + Sync + 'static {
    /// Apply one `iptables-restore` transaction. `replace`: the tables in
    /// the payload replace the kernel's whole tables; otherwise only the
    /// chains it declares are rewritten (`--noflush`).
    fn restore(&self, payload: &str, replace: bool) -> Result<(), ProxyError>;
    /// Forget UDP flows to `cluster_ip:port` that were sent to an endpoint
    /// which is gone, so the next datagram is balanced afresh.
    fn clear_udp_flows(&self, cluster_ip: Ipv4Addr, port: u16, endpoint: Ipv4Addr);
}

/// The real writer: processes started inside the node netns.
///
/// By default it runs the system's `iptables-restore`, the backend
/// `iptables-save` shows (nf_tables on Debian), so the rules are where a
/// reader looks for them. nf_tables is also the faster backend for
/// minik8s' syncs where it matters most, a change: a partial sync
/// rewrites only the changed chains in the kernel (~30 ms of CPU with
/// 32,000 rules present), while x_tables (`legacy`) copies the whole table
/// out and back in for every change (~170 ms). A full write of 1,000
/// Services costs ~1 s of CPU with nf_tables and ~0.35 s with x_tables
/// (scripts/bench-proxy.sh prints both).
pub struct IptablesInNetns {
    pub netns_path: PathBuf,
    /// Use the legacy (x_tables) backend instead of the system's default.
    pub legacy: bool,
}

impl IptablesInNetns {
    fn command(&self, program: &str) -> std::process::Command {
        let program = match (self.legacy, program) {
            (true, "iptables-restore") => "iptables-legacy-restore",
            _ => program,
        };
        nodenet::command_in_netns(&self.netns_path, program)
    }
}

impl RuleWriter for IptablesInNetns {
    fn restore(&self, payload: &str, replace: bool) -> Result<(), ProxyError> {
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
