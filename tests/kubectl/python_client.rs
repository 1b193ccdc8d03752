//! The Python `kubernetes` client (PyPI) against minik8s:
//! `tests/python/client_check.py` creates, lists, watches and deletes
//! Services and reads Endpoints, decoding every answer into the client's
//! own models.

use super::tools::{python_with_client, run_bounded};
use crate::support::{Server, TempDir};
use std::process::Command;
use std::time::Duration;

#[test]
fn python_client_creates_lists_watches_and_deletes_services() {
    let python = python_with_client();
    let dir = TempDir::new("kc-python");
    let s = Server::control_plane(&dir.path().join("data"));
    let script = format!(
        "{}/tests/python/client_check.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut cmd = Command::new(&python);
    cmd.arg(&script).arg(&s.url);
    let out = run_bounded(cmd, dir.path(), Duration::from_secs(180), "client_check.py");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("python client: all checks passed"),
        "client_check.py failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
        out.status,
        s.log()
    );
    // The watch really saw the Services come and go.
    for line in [
        "watch saw ADDED py-web",
        "watch saw DELETED py-web",
        "read Endpoints py-web",
    ] {
        assert!(
            stdout.contains(&format!("ok: {line}")),
            "missing {line:?} in:\n{stdout}"
        );
    }
}
