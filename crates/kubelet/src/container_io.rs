//! The kubelet's end of a container's standard streams. An output pump
//! copies stdout/stderr (or the tty) into the log file and to attached
//! clients; stdin (a pipe or the tty) stays with the kubelet so `attach`
//! and `run -it` can type into the main process.

use crate::logs::{LogWriter, StreamKind};
use crate::process::ProcessIo;
use crate::pty::PtyMaster;
use bytes::Bytes;
use podio::Output;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, watch};

/// Shared between the pod worker (which sets the exit code) and attach
/// sessions.
pub(crate) struct ContainerIo {
    pub tty: bool,
    output: broadcast::Sender<Output>,
    /// `true` once the pump has sent everything the process wrote.
    output_done: watch::Receiver<bool>,
    stdin: Mutex<Option<mpsc::Sender<Bytes>>>,
    stdin_once: bool,
    pty: Option<Arc<PtyMaster>>,
    exit: watch::Sender<Option<i32>>,
}

impl ContainerIo {
    /// Start the pump (and the stdin writer) for a freshly spawned process.
    pub(crate) fn start(
        io: ProcessIo,
        log: LogWriter,
        stdin_once: bool,
    ) -> std::io::Result<Arc<ContainerIo>> {
        let (output, _) = broadcast::channel(256);
        let (done_tx, done_rx) = watch::channel(false);
        let (exit, _) = watch::channel(None);
        let (stdin_tx, mut stdin_rx) = mpsc::channel::<Bytes>(64);
        let hub = match io {
            ProcessIo::Pipes {
                stdin,
                stdout,
                stderr,
            } => {
                tokio::spawn(pump_pipes(stdout, stderr, log, output.clone(), done_tx));
                let has_stdin = stdin.is_some();
                if let Some(mut stdin) = stdin {
                    tokio::spawn(async move {
                        while let Some(data) = stdin_rx.recv().await {
                            if stdin.write_all(&data).await.is_err() {
                                break;
                            }
                        }
                        // Dropping the pipe is the process' end of input.
                    });
                }
                ContainerIo {
                    tty: false,
                    output,
                    output_done: done_rx,
                    stdin: Mutex::new(has_stdin.then_some(stdin_tx)),
                    stdin_once,
                    pty: None,
                    exit,
                }
            }
            ProcessIo::Tty { master } => {
                let pty = Arc::new(PtyMaster::new(master)?);
                tokio::spawn(pump_tty(pty.clone(), log, output.clone(), done_tx));
                let writer = pty.clone();
                tokio::spawn(async move {
                    while let Some(data) = stdin_rx.recv().await {
                        if writer.write_all(&data).await.is_err() {
                            break;
                        }
                    }
                });
                ContainerIo {
                    tty: true,
                    output,
                    output_done: done_rx,
                    stdin: Mutex::new(Some(stdin_tx)),
                    stdin_once,
                    pty: Some(pty),
                    exit,
                }
            }
        };
        Ok(Arc::new(hub))
    }

    /// The process exited with `code`.
    pub(crate) fn set_exit(&self, code: i32) {
        self.exit.send_replace(Some(code));
    }

    /// A sender into the process' stdin, if it has one still open.
    pub(crate) fn stdin(&self) -> Option<mpsc::Sender<Bytes>> {
        self.stdin.lock().expect("stdin lock").clone()
    }

    /// An attached client closed its stdin: with `stdinOnce` the process'
    /// stdin closes too (the kubelet drops its writer).
    pub(crate) fn client_closed_stdin(&self) {
        if self.stdin_once {
            self.stdin.lock().expect("stdin lock").take();
        }
    }

    pub(crate) fn resize(&self, cols: u16, rows: u16) {
        if let Some(pty) = &self.pty {
            pty.resize(cols, rows);
        }
    }

    /// Subscribe to the output from now on: (chunks, done flag, exit code).
    pub(crate) fn subscribe(
        &self,
    ) -> (
        broadcast::Receiver<Output>,
        watch::Receiver<bool>,
        watch::Receiver<Option<i32>>,
    ) {
        (
            self.output.subscribe(),
            self.output_done.clone(),
            self.exit.subscribe(),
        )
    }
}

/// Hand a chunk to attached clients; no copy when nobody is attached (a
/// busy server's access log is written, not broadcast).
fn forward(output: &broadcast::Sender<Output>, wrap: fn(Bytes) -> Output, data: &[u8]) {
    if output.receiver_count() > 0 {
        let _ = output.send(wrap(Bytes::copy_from_slice(data)));
    }
}

async fn pump_pipes(
    mut stdout: tokio::process::ChildStdout,
    mut stderr: tokio::process::ChildStderr,
    mut log: LogWriter,
    output: broadcast::Sender<Output>,
    done: watch::Sender<bool>,
) {
    let mut out_buf = vec![0u8; 16 * 1024];
    let mut err_buf = vec![0u8; 16 * 1024];
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        // stdout first when both have data: a program's first lines are
        // usually on stdout, and a fixed order keeps logs stable.
        tokio::select! {
            biased;
            r = stdout.read(&mut out_buf), if out_open => match r {
                Ok(n) if n > 0 => {
                    log.write(StreamKind::Stdout, &out_buf[..n]);
                    forward(&output, Output::Stdout, &out_buf[..n]);
                }
                _ => out_open = false,
            },
            r = stderr.read(&mut err_buf), if err_open => match r {
                Ok(n) if n > 0 => {
                    log.write(StreamKind::Stderr, &err_buf[..n]);
                    forward(&output, Output::Stderr, &err_buf[..n]);
                }
                _ => err_open = false,
            },
        }
    }
    log.finish();
    let _ = done.send(true);
}

async fn pump_tty(
    pty: Arc<PtyMaster>,
    mut log: LogWriter,
    output: broadcast::Sender<Output>,
    done: watch::Sender<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match pty.read(&mut buf).await {
            Ok(n) if n > 0 => {
                log.write(StreamKind::Stdout, &buf[..n]);
                forward(&output, Output::Stdout, &buf[..n]);
            }
            _ => break,
        }
    }
    log.finish();
    let _ = done.send(true);
}
