//! Streaming sessions of `attach` (join a container's main process) and
//! `exec` (start a process beside it), in the shape `podio::Session` hands
//! to the API server.

use crate::container_io::ContainerIo;
use crate::process::{self, ProcessIo, ProcessSpec, SpawnError};
use crate::pty::PtyMaster;
use bytes::Bytes;
use podio::{Output, Session, StreamOptions};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, oneshot};

/// Join the main process of a container: its output from now on (and,
/// for the first client of a `stdinOnce` container, what it printed
/// before), its stdin (when it has one), its terminal size.
pub(crate) fn attach_session(io: Arc<ContainerIo>, opts: &StreamOptions) -> Session {
    let (out_tx, out_rx) = mpsc::channel::<Output>(64);
    let (exit_tx, exit_rx) = oneshot::channel();
    let sub = io.subscribe();
    let (mut chunks, mut done, mut exit) = (sub.chunks, sub.done, sub.exit);
    let (want_out, want_err) = (opts.stdout, opts.stderr);
    tokio::spawn(async move {
        let wanted = |o: &Output| match o {
            Output::Stdout(_) => want_out,
            Output::Stderr(_) => want_err,
        };
        for o in sub.early {
            if wanted(&o) && out_tx.send(o).await.is_err() {
                return;
            }
        }
        loop {
            tokio::select! {
                biased;
                r = chunks.recv() => match r {
                    Ok(o) => {
                        if wanted(&o) && out_tx.send(o).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = async { let _ = done.wait_for(|d| *d).await; } => {
                    while let Ok(o) = chunks.try_recv() {
                        if wanted(&o) && out_tx.send(o).await.is_err() {
                            return;
                        }
                    }
                    break;
                }
                _ = out_tx.closed() => return,
            }
        }
        let code = match exit.wait_for(|c| c.is_some()).await {
            Ok(c) => (*c).unwrap_or(0),
            Err(_) => 0,
        };
        drop(out_tx);
        let _ = exit_tx.send(code);
    });

    let stdin = match (opts.stdin, io.stdin()) {
        (true, Some(container_stdin)) => {
            let (tx, mut rx) = mpsc::channel::<Bytes>(64);
            let io = io.clone();
            tokio::spawn(async move {
                while let Some(data) = rx.recv().await {
                    if container_stdin.send(data).await.is_err() {
                        break;
                    }
                }
                drop(container_stdin);
                io.client_closed_stdin();
            });
            Some(tx)
        }
        _ => None,
    };
    let resize = io.tty.then(|| {
        let (tx, mut rx) = mpsc::channel::<(u16, u16)>(8);
        let io = io.clone();
        tokio::spawn(async move {
            while let Some((cols, rows)) = rx.recv().await {
                io.resize(cols, rows);
            }
        });
        tx
    });
    Session {
        stdin,
        output: out_rx,
        resize,
        exit: exit_rx,
    }
}

/// Start `spec` (already set to join the container's namespaces) and
/// stream it. `on_exit` runs once the process has been reaped. A client
/// that goes away (drops the output) takes the process down with it.
pub(crate) async fn exec_session(
    spec: &ProcessSpec,
    opts: &StreamOptions,
    on_start: impl FnOnce(i32),
    on_exit: impl FnOnce() + Send + 'static,
) -> Result<Session, SpawnError> {
    let spawned = process::spawn(spec).await?;
    let pid = spawned.pid;
    on_start(pid);
    let (out_tx, out_rx) = mpsc::channel::<Output>(64);
    let (exit_tx, exit_rx) = oneshot::channel();
    let mut stdin_tx = None;
    let mut resize_tx = None;
    let readers: Vec<tokio::task::JoinHandle<()>> = match spawned.io {
        ProcessIo::Pipes {
            stdin,
            stdout,
            stderr,
        } => {
            if let Some(mut stdin) = stdin {
                let (tx, mut rx) = mpsc::channel::<Bytes>(64);
                tokio::spawn(async move {
                    while let Some(data) = rx.recv().await {
                        if stdin.write_all(&data).await.is_err() {
                            break;
                        }
                    }
                });
                stdin_tx = Some(tx);
            }
            vec![
                tokio::spawn(copy_out(
                    stdout,
                    out_tx.clone(),
                    opts.stdout,
                    Output::Stdout,
                    pid,
                )),
                tokio::spawn(copy_out(
                    stderr,
                    out_tx.clone(),
                    opts.stderr,
                    Output::Stderr,
                    pid,
                )),
            ]
        }
        ProcessIo::Tty { master } => {
            let pty = Arc::new(PtyMaster::new(master).map_err(|source| SpawnError::Os {
                context: "register the terminal".into(),
                source,
            })?);
            let (tx, mut rx) = mpsc::channel::<Bytes>(64);
            let writer = pty.clone();
            tokio::spawn(async move {
                while let Some(data) = rx.recv().await {
                    if writer.write_all(&data).await.is_err() {
                        break;
                    }
                }
            });
            stdin_tx = Some(tx);
            let (rtx, mut rrx) = mpsc::channel::<(u16, u16)>(8);
            let sizer = pty.clone();
            tokio::spawn(async move {
                while let Some((cols, rows)) = rrx.recv().await {
                    sizer.resize(cols, rows);
                }
            });
            resize_tx = Some(rtx);
            let out = out_tx.clone();
            vec![tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match pty.read(&mut buf).await {
                        Ok(n) if n > 0 => {
                            if out
                                .send(Output::Stdout(Bytes::copy_from_slice(&buf[..n])))
                                .await
                                .is_err()
                            {
                                process::signal_tree(pid, libc::SIGKILL);
                                return;
                            }
                        }
                        _ => return,
                    }
                }
            })]
        }
    };
    drop(out_tx);
    let mut child = spawned.child;
    tokio::spawn(async move {
        let status = child.wait().await;
        for r in readers {
            let _ = r.await;
        }
        on_exit();
        let code = status.map(process::exit_code).unwrap_or(255);
        let _ = exit_tx.send(code);
    });
    Ok(Session {
        stdin: if opts.stdin { stdin_tx } else { None },
        output: out_rx,
        resize: resize_tx,
        exit: exit_rx,
    })
}

async fn copy_out<R: tokio::io::AsyncRead + Unpin>(
    mut r: R,
    out: mpsc::Sender<Output>,
    wanted: bool,
    wrap: fn(Bytes) -> Output,
    pid: i32,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(n) if n > 0 => {
                // Unwanted output is read and dropped so the process never
                // blocks on a full pipe.
                if wanted
                    && out
                        .send(wrap(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                {
                    process::signal_tree(pid, libc::SIGKILL);
                    return;
                }
            }
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::LogWriter;
    use crate::process::{Namespaces, StdioMode};

    fn spec(args: &[&str], stdio: StdioMode) -> ProcessSpec {
        ProcessSpec {
            program: "sh".into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![("PATH".into(), crate::container_env::DEFAULT_PATH.into())],
            working_dir: "/".into(),
            namespaces: Namespaces::Host,
            stdio,
        }
    }

    async fn collect(session: &mut Session) -> (String, String) {
        let (mut out, mut err) = (String::new(), String::new());
        while let Some(o) = session.output.recv().await {
            match o {
                Output::Stdout(b) => out.push_str(&String::from_utf8_lossy(&b)),
                Output::Stderr(b) => err.push_str(&String::from_utf8_lossy(&b)),
            }
        }
        (out, err)
    }

    #[tokio::test]
    async fn exec_with_pipes_passes_stdin_and_reports_the_exit_code() {
        let opts = StreamOptions {
            command: vec![],
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        };
        let exited = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = exited.clone();
        let mut s = exec_session(
            &spec(
                &["-c", "read l; echo got $l; echo oops >&2; exit 7"],
                StdioMode::Pipes { stdin: true },
            ),
            &opts,
            |_| {},
            move || flag.store(true, std::sync::atomic::Ordering::SeqCst),
        )
        .await
        .unwrap();
        s.stdin
            .take()
            .unwrap()
            .send(Bytes::from_static(b"hello\n"))
            .await
            .unwrap();
        let (out, err) = collect(&mut s).await;
        assert_eq!((out.as_str(), err.as_str()), ("got hello\n", "oops\n"));
        assert_eq!(s.exit.await.unwrap(), 7);
        assert!(exited.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn exec_with_a_tty_echoes_and_resizes() {
        let opts = StreamOptions {
            command: vec![],
            stdin: true,
            stdout: true,
            stderr: false,
            tty: true,
        };
        let mut s = exec_session(
            &spec(
                &["-c", "read l; stty size; echo got $l"],
                StdioMode::Tty { cols: 80, rows: 24 },
            ),
            &opts,
            |_| {},
            || {},
        )
        .await
        .unwrap();
        s.resize.as_ref().unwrap().send((120, 40)).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        s.stdin
            .as_ref()
            .unwrap()
            .send(Bytes::from_static(b"hi\n"))
            .await
            .unwrap();
        let (out, _) = collect(&mut s).await;
        assert!(out.contains("40 120"), "{out:?}");
        assert!(out.contains("got hi"), "{out:?}");
        assert_eq!(s.exit.await.unwrap(), 0);
    }

    /// A `sh -c script` main process with a stdin pipe and `stdinOnce`,
    /// logging into a fresh directory: (directory, child, its streams).
    async fn stdin_once_container(
        tag: &str,
        script: &str,
    ) -> (std::path::PathBuf, tokio::process::Child, Arc<ContainerIo>) {
        let dir = std::env::temp_dir().join(format!("kubelet-{tag}-{}", std::process::id()));
        let (log, _) = LogWriter::create(&dir.join("0.log")).unwrap();
        let p = process::spawn(&spec(&["-c", script], StdioMode::Pipes { stdin: true }))
            .await
            .unwrap();
        let io = ContainerIo::start(p.io, log, true).unwrap();
        (dir, p.child, io)
    }

    fn attach_all(io: &Arc<ContainerIo>, stdin: bool) -> Session {
        let opts = StreamOptions {
            command: vec![],
            stdin,
            stdout: true,
            stderr: true,
            tty: false,
        };
        attach_session(io.clone(), &opts)
    }

    /// Types `line` into the session, closes its stdin, waits for the
    /// process to exit and records its code: what the session printed.
    async fn feed_and_finish(
        s: &mut Session,
        line: &'static [u8],
        child: &mut tokio::process::Child,
        io: &ContainerIo,
    ) -> String {
        let stdin = s.stdin.take().unwrap();
        stdin.send(Bytes::from_static(line)).await.unwrap();
        drop(stdin);
        io.set_exit(process::exit_code(child.wait().await.unwrap()));
        collect(s).await.0
    }

    #[tokio::test]
    async fn attach_sees_output_after_joining_and_feeds_stdin_once() {
        let (dir, mut child, io) =
            stdin_once_container("attach", "read l; echo got $l; exit 4").await;
        let mut s = attach_all(&io, true);
        let out = feed_and_finish(&mut s, b"x\n", &mut child, &io).await;
        assert_eq!(out, "got x\n");
        assert_eq!(s.exit.await.unwrap(), 4);
        // stdinOnce: the first client's EOF closed the container's stdin.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(io.stdin().is_none());
        let logged = std::fs::read_to_string(dir.join("0.log")).unwrap();
        assert!(logged.ends_with(" stdout F got x\n"), "{logged}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_first_client_of_a_stdin_once_container_sees_what_it_printed_before() {
        let (dir, mut child, io) =
            stdin_once_container("early", "echo early; read l; echo got $l").await;
        // The line is out (in the log) before anyone attaches.
        for _ in 0..200 {
            let logged = std::fs::read_to_string(dir.join("0.log")).unwrap_or_default();
            if logged.contains("early") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let mut s = attach_all(&io, true);
        // A second client sees the output from when it joined only.
        let mut second = attach_all(&io, false);
        let out = feed_and_finish(&mut s, b"x\n", &mut child, &io).await;
        assert_eq!(out, "early\ngot x\n");
        let (out, _) = collect(&mut second).await;
        assert_eq!(out, "got x\n");
        let _ = std::fs::remove_dir_all(dir);
    }
}
