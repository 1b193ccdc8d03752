//! Images. No registry can be reached, so an image name selects a program
//! built into the minik8s binary (`nginx`) or a program of the host's file
//! system (`busybox`, `curlimages/curl`, `alpine`: their commands such as
//! `sh`, `curl`, `nslookup`, `wget` come from the host).
//!
//! Choice: an image minik8s does not know *with* a command runs that
//! command from the host (a manifest with `image: python` and `command:
//! [sleep, "3600"]` still works); *without* a command there is nothing to
//! run, so the container gets `ErrImagePull`/`ImagePullBackOff` like an
//! image that cannot be pulled.

mod nginx;
mod nginx_pages;

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub(crate) use nginx_pages::nginx_version_for_tag;

/// Entry point of `minik8s __image <name> [args...]`: `args[0]` is the
/// built-in image's name (`nginx`), the rest its arguments. Returns the
/// process exit code. Safe to call with or without a tokio runtime around.
pub fn builtin_image_main(args: &[String]) -> i32 {
    match args.first().map(String::as_str) {
        Some("nginx") => nginx::main(&args[1..]),
        Some(other) => {
            eprintln!("minik8s: no built-in image program {other:?} (built in: nginx)");
            127
        }
        None => {
            eprintln!("usage: minik8s __image <name> [args...]");
            2
        }
    }
}

/// What an image name selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageKind {
    /// nginx's welcome page server.
    Nginx,
    /// curlimages/curl: default command `curl`.
    Curl,
    /// busybox, alpine: default command `sh`.
    Shell,
    /// Not built in: runs only with an explicit command.
    Unknown,
}

/// A parsed image reference, normalised the way container runtimes
/// report it (`nginx` -> `docker.io/library/nginx:latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef {
    pub kind: ImageKind,
    /// `docker.io/library/nginx`
    pub repository: String,
    pub tag: String,
}

impl ImageRef {
    /// `docker.io/library/nginx:1.27`, the containerStatuses' `image`.
    pub fn canonical(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }

    /// A stable digest-style id (`docker.io/library/nginx@sha256:...`),
    /// the containerStatuses' `imageID`. Derived from the name because a
    /// built-in image has no content digest of its own.
    pub fn image_id(&self) -> String {
        let digest = Sha256::digest(format!("minik8s built-in image {}", self.canonical()));
        format!("{}@sha256:{}", self.repository, hex(&digest))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parse an image reference: `[registry/]path[:tag][@digest]`.
pub(crate) fn parse_image(image: &str) -> ImageRef {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_slash = without_digest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match without_digest[last_slash..].rfind(':') {
        Some(i) => (
            &without_digest[..last_slash + i],
            without_digest[last_slash + i + 1..].to_string(),
        ),
        None => (without_digest, "latest".to_string()),
    };
    let (registry, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    let path = if registry == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    let kind = match path.as_str() {
        "library/nginx" => ImageKind::Nginx,
        "curlimages/curl" => ImageKind::Curl,
        "library/busybox" | "library/alpine" => ImageKind::Shell,
        _ => ImageKind::Unknown,
    };
    ImageRef {
        kind,
        repository: format!("{registry}/{path}"),
        tag,
    }
}

/// The process to start for a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Launch {
    pub program: String,
    pub args: Vec<String>,
    /// Environment the image itself defines (before the container's env).
    pub image_env: Vec<(String, String)>,
}

/// What the kubelet knows about the host when planning a launch.
pub(crate) struct LaunchHost<'a> {
    /// The minik8s binary, for built-in programs.
    pub self_exe: &'a Path,
    /// A directory put first on PATH for shell images (its `sh` is
    /// busybox' ash, the shell those images have), when busybox exists.
    pub shell_bin: Option<&'a Path>,
    /// Whether a command name resolves to an executable on `path`.
    pub is_command: &'a (dyn Fn(&str, &str) -> bool + Sync),
}

/// Decide the process of a container from its image, command, args and
/// declared TCP ports. `Err` is the message of `ErrImagePull`.
pub(crate) fn plan_launch(
    image: &ImageRef,
    command: &[String],
    args: &[String],
    ports: &[u16],
    host: &LaunchHost,
) -> Result<Launch, String> {
    let image_env = image_env(image, host);
    let path = image_env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| crate::container_env::DEFAULT_PATH.to_string());
    let run = |argv: Vec<String>| Launch {
        program: argv[0].clone(),
        args: argv[1..].to_vec(),
        image_env: image_env.clone(),
    };
    // An explicit command replaces the image's entrypoint in every image.
    if !command.is_empty() {
        let mut argv = command.to_vec();
        argv.extend(args.iter().cloned());
        return Ok(run(argv));
    }
    match image.kind {
        ImageKind::Nginx => {
            // nginx's docker-entrypoint.sh runs any other command it is given.
            if let Some(first) = args.first() {
                if !first.starts_with("nginx") {
                    return Ok(run(args.to_vec()));
                }
            }
            let mut a = vec!["__image".to_string(), "nginx".to_string()];
            a.push("--version".into());
            a.push(nginx_version_for_tag(&image.tag));
            for p in ports {
                a.push("--port".into());
                a.push(p.to_string());
            }
            // nginx's own configuration listens on 80 whatever the Pod
            // declares; a declared port is served as well.
            if !ports.contains(&80) {
                a.push("--optional-port".into());
                a.push("80".into());
            }
            Ok(Launch {
                program: host.self_exe.to_string_lossy().into_owned(),
                args: a,
                image_env,
            })
        }
        ImageKind::Curl => {
            // curl's image entrypoint: arguments that are not a command are
            // curl's arguments.
            let argv = match args.first() {
                None => vec!["curl".to_string()],
                Some(first) if first.starts_with('-') || !(host.is_command)(first, &path) => {
                    let mut v = vec!["curl".to_string()];
                    v.extend(args.iter().cloned());
                    v
                }
                Some(_) => args.to_vec(),
            };
            Ok(run(argv))
        }
        ImageKind::Shell => {
            let argv = if args.is_empty() { vec!["sh".to_string()] } else { args.to_vec() };
            Ok(run(argv))
        }
        ImageKind::Unknown => Err(format!(
            "failed to pull and unpack image \"{}\": image is not built into minik8s \
             (built in: nginx, busybox, alpine, curlimages/curl); give the container a command to run it from the host",
            image.canonical()
        )),
    }
}

pub(crate) fn image_env(image: &ImageRef, host: &LaunchHost) -> Vec<(String, String)> {
    let mut env = Vec::new();
    match image.kind {
        ImageKind::Nginx => {
            env.push((
                "NGINX_VERSION".to_string(),
                nginx_version_for_tag(&image.tag),
            ));
        }
        ImageKind::Curl | ImageKind::Shell => {
            if let Some(dir) = host.shell_bin {
                env.push((
                    "PATH".to_string(),
                    format!("{}:{}", dir.display(), crate::container_env::DEFAULT_PATH),
                ));
            }
        }
        ImageKind::Unknown => {}
    }
    env
}

/// Whether `name` is an executable file, looked up on `path` unless it
/// contains a slash.
pub(crate) fn is_command_on_path(name: &str, path: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        return executable(Path::new(name));
    }
    path.split(':')
        .any(|dir| executable(&Path::new(dir).join(name)))
}

/// Create `<data_dir>/bin/sh` pointing at busybox (whose `sh` is ash, the
/// shell of the busybox, alpine and curl images: prompt `/ # `, line
/// editing). `None` when the host has no busybox; then the host's `sh` runs.
pub(crate) fn prepare_shell_bin(data_dir: &Path) -> Option<PathBuf> {
    let busybox = ["/usr/bin/busybox", "/bin/busybox", "/usr/local/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())?;
    let dir = data_dir.join("bin");
    std::fs::create_dir_all(&dir).ok()?;
    for applet in ["sh", "ash"] {
        let link = dir.join(applet);
        if std::fs::read_link(&link).ok().as_deref() != Some(busybox) {
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(busybox, &link).ok()?;
        }
    }
    Some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host<'a>(is_command: &'a (dyn Fn(&str, &str) -> bool + Sync)) -> LaunchHost<'a> {
        LaunchHost {
            self_exe: Path::new("/usr/local/bin/minik8s"),
            shell_bin: None,
            is_command,
        }
    }

    #[test]
    fn image_names_normalise_like_a_runtime() {
        let r = parse_image("nginx");
        assert_eq!(r.kind, ImageKind::Nginx);
        assert_eq!(r.canonical(), "docker.io/library/nginx:latest");
        assert_eq!(
            parse_image("nginx:1.27").canonical(),
            "docker.io/library/nginx:1.27"
        );
        assert_eq!(
            parse_image("docker.io/library/nginx:1.27").kind,
            ImageKind::Nginx
        );
        assert_eq!(parse_image("curlimages/curl:8.5.0").kind, ImageKind::Curl);
        assert_eq!(parse_image("busybox:1.36").kind, ImageKind::Shell);
        assert_eq!(
            parse_image("localhost:5000/app:v1").canonical(),
            "localhost:5000/app:v1"
        );
        assert_eq!(parse_image("localhost:5000/app").tag, "latest");
        assert_eq!(parse_image("quay.io/x/nginx").kind, ImageKind::Unknown);
        let id = parse_image("nginx").image_id();
        assert!(id.starts_with("docker.io/library/nginx@sha256:"));
        assert_eq!(id.len(), "docker.io/library/nginx@sha256:".len() + 64);
        assert_ne!(id, parse_image("nginx:1.27").image_id());
    }

    #[test]
    fn nginx_runs_the_built_in_server_on_the_declared_ports() {
        let no = |_: &str, _: &str| false;
        let l = plan_launch(&parse_image("nginx:1.27"), &[], &[], &[8080], &host(&no)).unwrap();
        assert_eq!(l.program, "/usr/local/bin/minik8s");
        assert_eq!(
            l.args,
            vec![
                "__image",
                "nginx",
                "--version",
                "1.27.5",
                "--port",
                "8080",
                "--optional-port",
                "80"
            ]
        );
        let l = plan_launch(&parse_image("nginx"), &[], &[], &[80], &host(&no)).unwrap();
        assert!(!l.args.contains(&"--optional-port".to_string()));
    }

    #[test]
    fn a_command_replaces_any_entrypoint() {
        let no = |_: &str, _: &str| false;
        let cmd = vec!["sh".to_string(), "-c".to_string()];
        let args = vec!["echo hi".to_string()];
        let l = plan_launch(&parse_image("nginx"), &cmd, &args, &[], &host(&no)).unwrap();
        assert_eq!(
            (l.program.as_str(), l.args.clone()),
            ("sh", vec!["-c".to_string(), "echo hi".to_string()])
        );
        let l = plan_launch(
            &parse_image("python:3.12"),
            &["sleep".into()],
            &["5".into()],
            &[],
            &host(&no),
        )
        .unwrap();
        assert_eq!(l.program, "sleep");
    }

    #[test]
    fn curl_image_treats_non_commands_as_curl_arguments() {
        let is_cmd = |n: &str, _: &str| n == "sh";
        let h = host(&is_cmd);
        let curl = parse_image("curlimages/curl");
        assert_eq!(
            plan_launch(&curl, &[], &[], &[], &h).unwrap().program,
            "curl"
        );
        let l = plan_launch(&curl, &[], &["-s".into(), "http://web".into()], &[], &h).unwrap();
        assert_eq!(
            (l.program.as_str(), l.args),
            ("curl", vec!["-s".to_string(), "http://web".to_string()])
        );
        let l = plan_launch(&curl, &[], &["http://web".into()], &[], &h).unwrap();
        assert_eq!(l.program, "curl");
        let l = plan_launch(&curl, &[], &["sh".into()], &[], &h).unwrap();
        assert_eq!((l.program.as_str(), l.args.len()), ("sh", 0));
    }

    #[test]
    fn shell_images_default_to_sh_and_unknown_images_cannot_be_pulled() {
        let no = |_: &str, _: &str| false;
        assert_eq!(
            plan_launch(&parse_image("busybox"), &[], &[], &[], &host(&no))
                .unwrap()
                .program,
            "sh"
        );
        let err =
            plan_launch(&parse_image("example/app:v2"), &[], &[], &[], &host(&no)).unwrap_err();
        assert!(err.contains("docker.io/example/app:v2"), "{err}");
    }

    #[test]
    fn shell_images_put_busybox_first_on_path() {
        let no = |_: &str, _: &str| false;
        let h = LaunchHost {
            shell_bin: Some(Path::new("/var/lib/minik8s/bin")),
            ..host(&no)
        };
        let l = plan_launch(&parse_image("busybox"), &[], &[], &[], &h).unwrap();
        let path = l.image_env.iter().find(|(k, _)| k == "PATH").unwrap();
        assert!(path.1.starts_with("/var/lib/minik8s/bin:/usr/local/sbin"));
    }
}
