//! The server's own life: a signal while it is still starting, and the
//! API as Pods see it through the `kubernetes` Service.

use super::{Cluster, CLI_TIMEOUT};
use crate::support::{leftovers_named, node_lock, require_root, NodeSettings, TempDir, BIN};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// SIGTERM at several moments of start-up (before, during and after the
/// node's network is made): the server exits 0 and leaves no namespace,
/// link or route of its node.
#[test]
fn sigterm_during_start_leaves_nothing() {
    require_root();
    let _lock = node_lock();
    for delay_ms in [0u64, 20, 60, 150, 400] {
        let dir = TempDir::new("early-term");
        let node = NodeSettings::unique();
        let mut child = Command::new(BIN)
            .args(["server", "--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(node.server_args())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start minik8s server");
        std::thread::sleep(Duration::from_millis(delay_ms));
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait for the server") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("server did not stop within 30 s of SIGTERM after {delay_ms} ms");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let left = leftovers_named(&node.node_name);
        let routes = Command::new("ip")
            .args(["-4", "route", "show"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let pod_net = node.pod_cidr.split('/').next().unwrap_or_default();
        let stray: Vec<&str> = routes
            .lines()
            .filter(|l| l.starts_with(pod_net) || l.contains(&format!("mk-{}-h", node.node_name)))
            .collect();
        // Clean up before asserting, so a failure leaves nothing either.
        for ns in &left {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        assert!(
            left.is_empty() && stray.is_empty(),
            "SIGTERM {delay_ms} ms after start left namespaces {left:?} and routes {stray:?}"
        );
        // A signal that lands before the handlers exist (while the binary
        // is still loading) kills it by default, before it made anything.
        let killed_before_start = status.signal() == Some(libc::SIGTERM);
        assert!(
            status.success() || killed_before_start,
            "SIGTERM {delay_ms} ms after start: server exited with {status}"
        );
    }
}

/// A Pod reaches the API server at the `kubernetes` Service's ClusterIP
/// (port 443 -> the host side of the node's veth).
#[test]
fn pods_reach_the_api_through_the_kubernetes_service() {
    let c = Cluster::start("kubernetes-svc", &[]);
    c.client_pod("apiclient");
    let url = format!("http://{}:443/version", c.kubernetes_ip());
    let out = c.server.ctl_within(
        CLI_TIMEOUT,
        &["exec", "apiclient", "--", "curl", "-s", "-m", "10", &url],
    );
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && body.contains("\"gitVersion\""),
        "curl {url} from a Pod ({}): {body}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    c.stop_clean();
}
