//! One probe run: an HTTP GET or a TCP connect to the Pod's address from
//! inside its network namespace, or a command beside the container.
//! `Err` carries the failure as the kubelet words it in events.

use crate::process::{self, Namespaces, ProcessIo, ProcessSpec, StdioMode};
use k8s_openapi::api::core::v1::{ContainerPort, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where a container start can be probed.
#[derive(Debug, Clone)]
pub(crate) struct ProbeTarget {
    /// The Pod's network namespace; `None`: the caller's (tests).
    pub netns: Option<PathBuf>,
    pub pod_ip: Ipv4Addr,
    /// The container's main process: exec probes join its namespaces;
    /// 0 runs them in the caller's namespaces (tests).
    pub pid: i32,
    pub env: Vec<(String, String)>,
    pub working_dir: String,
    pub ports: Vec<ContainerPort>,
}

impl ProbeTarget {
    /// A target in the caller's own namespaces (for tests).
    #[cfg(test)]
    pub(crate) fn on_host(ip: Ipv4Addr) -> ProbeTarget {
        ProbeTarget {
            netns: None,
            pod_ip: ip,
            pid: 0,
            env: vec![("PATH".into(), crate::container_env::DEFAULT_PATH.into())],
            working_dir: "/".into(),
            ports: Vec::new(),
        }
    }

    fn port(&self, port: &IntOrString) -> Result<u16, String> {
        match port {
            IntOrString::Int(p) => u16::try_from(*p).map_err(|_| format!("invalid port {p}")),
            IntOrString::String(name) => match name.parse::<u16>() {
                Ok(p) => Ok(p),
                Err(_) => self
                    .ports
                    .iter()
                    .find(|p| p.name.as_deref() == Some(name.as_str()))
                    .map(|p| p.container_port as u16)
                    .ok_or_else(|| format!("port {name:?} is not a named port of the container")),
            },
        }
    }

    fn host(&self, host: Option<&str>) -> Result<Ipv4Addr, String> {
        match host.filter(|h| !h.is_empty()) {
            None => Ok(self.pod_ip),
            Some(h) => h
                .parse()
                .map_err(|_| format!("probe host {h:?} is not an IPv4 address")),
        }
    }

    async fn connect(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<tokio::net::TcpStream, String> {
        let socket = match &self.netns {
            Some(ns) => crate::netns::tcp_socket_in(ns).await,
            None => tokio::net::TcpSocket::new_v4(),
        }
        .map_err(|e| format!("dial tcp {addr}: socket: {e}"))?;
        match tokio::time::timeout(timeout, socket.connect(addr)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(format!("dial tcp {addr}: connect: {}", os_message(&e))),
            Err(_) => Err(format!("dial tcp {addr}: i/o timeout")),
        }
    }
}

/// Go-style error text: `connection refused`, not `Connection refused (os error 111)`.
fn os_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
        None => text,
    }
}

/// Run `probe` once against `target` within `timeout`.
pub(crate) async fn check(
    probe: &Probe,
    target: &ProbeTarget,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(http) = &probe.http_get {
        let ip = target.host(http.host.as_deref())?;
        let port = target.port(&http.port)?;
        let path = http
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        let scheme = http.scheme.as_deref().unwrap_or("HTTP");
        let url = format!("{}://{ip}:{port}{path}", scheme.to_ascii_lowercase());
        let addr = SocketAddr::from((ip, port));
        if scheme.eq_ignore_ascii_case("HTTPS") {
            // No TLS client here: an HTTPS probe checks that the port
            // accepts connections.
            return target
                .connect(addr, timeout)
                .await
                .map(|_| ())
                .map_err(|e| format!("Get \"{url}\": {e}"));
        }
        let headers: Vec<(String, String)> = http
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        let run = async {
            let mut stream = target.connect(addr, timeout).await?;
            let mut req = format!("GET {path} HTTP/1.1\r\n");
            if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
                req.push_str(&format!("Host: {ip}:{port}\r\n"));
            }
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
            {
                req.push_str("User-Agent: kube-probe/1.35\r\n");
            }
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("accept"))
            {
                req.push_str("Accept: */*\r\n");
            }
            for (n, v) in &headers {
                req.push_str(&format!("{n}: {v}\r\n"));
            }
            req.push_str("Connection: close\r\n\r\n");
            stream
                .write_all(req.as_bytes())
                .await
                .map_err(|e| os_message(&e))?;
            let mut head = Vec::with_capacity(256);
            let mut buf = [0u8; 1024];
            while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 10 * 1024 {
                let n = stream.read(&mut buf).await.map_err(|e| os_message(&e))?;
                if n == 0 {
                    return Err("EOF".to_string());
                }
                head.extend_from_slice(&buf[..n]);
            }
            let line = String::from_utf8_lossy(&head);
            let code: u16 = line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| "malformed HTTP response".to_string())?;
            if (200..400).contains(&code) {
                Ok(())
            } else {
                Err(format!("HTTP probe failed with statuscode: {code}"))
            }
        };
        return match tokio::time::timeout(timeout, run).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.starts_with("HTTP probe failed") => Err(e),
            Ok(Err(e)) => Err(format!("Get \"{url}\": {e}")),
            Err(_) => Err(format!(
                "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            )),
        };
    }
    if let Some(tcp) = &probe.tcp_socket {
        let ip = target.host(tcp.host.as_deref())?;
        let port = target.port(&tcp.port)?;
        return target
            .connect(SocketAddr::from((ip, port)), timeout)
            .await
            .map(|_| ());
    }
    if let Some(grpc) = &probe.grpc {
        // No gRPC client here: a gRPC probe checks that the port accepts
        // connections.
        let port = u16::try_from(grpc.port).map_err(|_| "invalid port".to_string())?;
        return target
            .connect(SocketAddr::from((target.pod_ip, port)), timeout)
            .await
            .map(|_| ());
    }
    if let Some(exec) = &probe.exec {
        return exec_check(exec.command.clone().unwrap_or_default(), target, timeout).await;
    }
    Err("probe has no handler (httpGet, tcpSocket, exec or grpc)".into())
}

async fn exec_check(
    command: Vec<String>,
    target: &ProbeTarget,
    timeout: Duration,
) -> Result<(), String> {
    let Some((program, args)) = command.split_first() else {
        return Err("exec probe has no command".into());
    };
    let spec = ProcessSpec {
        program: program.clone(),
        args: args.to_vec(),
        env: target.env.clone(),
        working_dir: target.working_dir.clone(),
        namespaces: if target.pid > 0 {
            Namespaces::JoinProcess { pid: target.pid }
        } else {
            Namespaces::Host
        },
        stdio: StdioMode::Pipes { stdin: false },
    };
    let mut spawned = process::spawn(&spec).await.map_err(|e| e.to_string())?;
    let pid = spawned.pid;
    let ProcessIo::Pipes { stdout, stderr, .. } = spawned.io else {
        return Err("exec probe without pipes".into());
    };
    let run = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut so = stdout.take(10 * 1024);
        let mut se = stderr.take(10 * 1024);
        let _ = tokio::join!(so.read_to_end(&mut out), se.read_to_end(&mut err));
        let status = spawned.child.wait().await;
        (status, out, err)
    };
    match tokio::time::timeout(timeout, run).await {
        Ok((Ok(status), out, err)) => {
            let code = process::exit_code(status);
            if code == 0 {
                Ok(())
            } else {
                let mut text = String::from_utf8_lossy(&out).into_owned();
                text.push_str(&String::from_utf8_lossy(&err));
                if text.trim().is_empty() {
                    Err(format!(
                        "command {:?} exited with {code}",
                        command.join(" ")
                    ))
                } else {
                    Err(text.trim_end().to_string())
                }
            }
        }
        Ok((Err(e), _, _)) => Err(e.to_string()),
        Err(_) => {
            process::signal_tree(pid, libc::SIGKILL);
            Err(format!(
                "command timed out: \"{}\" timed out after {}s",
                command.join(" "),
                timeout.as_secs()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ExecAction, HTTPGetAction, TCPSocketAction};

    fn http(port: u16, path: &str) -> Probe {
        Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::Int(port as i32),
                path: Some(path.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    async fn serve_once(status: &'static str) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        port
    }

    #[tokio::test]
    async fn http_probe_succeeds_on_2xx_3xx_and_fails_otherwise() {
        let t = ProbeTarget::on_host(Ipv4Addr::LOCALHOST);
        let ok = serve_once("200 OK").await;
        assert_eq!(
            check(&http(ok, "/healthz"), &t, Duration::from_secs(1)).await,
            Ok(())
        );
        let moved = serve_once("301 Moved Permanently").await;
        assert_eq!(
            check(&http(moved, "/"), &t, Duration::from_secs(1)).await,
            Ok(())
        );
        let bad = serve_once("503 Service Unavailable").await;
        assert_eq!(
            check(&http(bad, "/"), &t, Duration::from_secs(1)).await,
            Err("HTTP probe failed with statuscode: 503".into())
        );
    }

    #[tokio::test]
    async fn refused_connections_read_like_the_kubelet() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let t = ProbeTarget::on_host(Ipv4Addr::LOCALHOST);
        let err = check(&http(port, "/"), &t, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(err, format!("Get \"http://127.0.0.1:{port}/\": dial tcp 127.0.0.1:{port}: connect: connection refused"));
        let tcp = Probe {
            tcp_socket: Some(TCPSocketAction {
                host: None,
                port: IntOrString::Int(port as i32),
            }),
            ..Default::default()
        };
        assert!(check(&tcp, &t, Duration::from_secs(1)).await.is_err());
    }

    #[tokio::test]
    async fn named_ports_resolve_through_the_container() {
        let port = serve_once("200 OK").await;
        let mut t = ProbeTarget::on_host(Ipv4Addr::LOCALHOST);
        t.ports = vec![ContainerPort {
            name: Some("http".into()),
            container_port: port as i32,
            ..Default::default()
        }];
        let p = Probe {
            tcp_socket: Some(TCPSocketAction {
                host: None,
                port: IntOrString::String("http".into()),
            }),
            ..Default::default()
        };
        assert_eq!(check(&p, &t, Duration::from_secs(1)).await, Ok(()));
    }

    #[tokio::test]
    async fn exec_probe_uses_the_exit_code_and_times_out() {
        let t = ProbeTarget::on_host(Ipv4Addr::LOCALHOST);
        let exec = |cmd: &[&str]| Probe {
            exec: Some(ExecAction {
                command: Some(cmd.iter().map(|s| s.to_string()).collect()),
            }),
            ..Default::default()
        };
        assert_eq!(
            check(&exec(&["true"]), &t, Duration::from_secs(1)).await,
            Ok(())
        );
        assert_eq!(
            check(
                &exec(&["sh", "-c", "echo sick; exit 1"]),
                &t,
                Duration::from_secs(1)
            )
            .await,
            Err("sick".into())
        );
        let err = check(&exec(&["sleep", "5"]), &t, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(err.contains("timed out"), "{err}");
    }
}
