//! The kubelet's end of a container's standard streams. An output pump
//! copies stdout/stderr (or the tty) into the log file and to attached
//! clients; stdin (a pipe or the tty) stays with the kubelet so `attach`
//! and `run -it` can type into the main process.
//!
//! A `stdinOnce` container without a terminal (what `run -i` makes, for
//! one client to attach to) keeps what it prints until that client
//! attaches, and hands it over first: `run -i ... -- curl -s http://web` prints the page even when
//! curl answers before the client has joined, where a kubelet would lose
//! those bytes.

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
    /// Output kept for the first client (`stdinOnce` only), shared with
    /// the pump; `None` once taken, or for other containers.
    early: Arc<Mutex<Option<EarlyOutput>>>,
}

/// Output printed before the first attach, up to a bound.
#[derive(Default)]
struct EarlyOutput {
    chunks: Vec<Output>,
    bytes: usize,
}

/// Beyond this, early output is not kept (the client sees it from the
/// moment it attaches, as with a kubelet).
const EARLY_OUTPUT_LIMIT: usize = 1 << 20;

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
        // Pipes only: on a terminal the early output is a shell's prompt
        // and its terminal queries (busybox asks for the cursor position),
        // which a terminal would answer long after the shell stopped
        // waiting; `run -it` prints kubectl's "If you don't see a command
        // prompt, try pressing enter." instead, as with a kubelet.
        let tty = matches!(io, ProcessIo::Tty { .. });
        let early = Arc::new(Mutex::new((stdin_once && !tty).then(EarlyOutput::default)));
        let sink = OutputSink {
            clients: output.clone(),
            early: early.clone(),
        };
        let hub = match io {
            ProcessIo::Pipes {
                stdin,
                stdout,
                stderr,
            } => {
                tokio::spawn(pump_pipes(stdout, stderr, log, sink, done_tx));
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
                    early,
                }
            }
            ProcessIo::Tty { master } => {
                let pty = Arc::new(PtyMaster::new(master)?);
                tokio::spawn(pump_tty(pty.clone(), log, sink, done_tx));
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
                    early,
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

    /// Subscribe to the output: what a `stdinOnce` container printed
    /// before its first client (for that client only), then the chunks
    /// from now on, the done flag and the exit code.
    pub(crate) fn subscribe(&self) -> Subscription {
        // Under the pump's lock: every chunk is either in `early` or sent
        // to this receiver, never both, never neither.
        let mut early = self.early.lock().unwrap_or_else(|e| e.into_inner());
        Subscription {
            early: early.take().map(|e| e.chunks).unwrap_or_default(),
            chunks: self.output.subscribe(),
            done: self.output_done.clone(),
            exit: self.exit.subscribe(),
        }
    }
}

pub(crate) struct Subscription {
    pub early: Vec<Output>,
    pub chunks: broadcast::Receiver<Output>,
    pub done: watch::Receiver<bool>,
    pub exit: watch::Receiver<Option<i32>>,
}

/// Where the pump hands output besides the log: attached clients, and the
/// early-output buffer while it is kept.
struct OutputSink {
    clients: broadcast::Sender<Output>,
    early: Arc<Mutex<Option<EarlyOutput>>>,
}

impl OutputSink {
    /// No copy when nobody is attached and nothing is kept (a busy
    /// server's access log is written, not broadcast).
    fn forward(&self, wrap: fn(Bytes) -> Output, data: &[u8]) {
        let mut early = self.early.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kept) = early.as_mut() {
            if kept.bytes + data.len() <= EARLY_OUTPUT_LIMIT {
                kept.bytes += data.len();
                kept.chunks.push(wrap(Bytes::copy_from_slice(data)));
            }
        }
        if self.clients.receiver_count() > 0 {
            let _ = self.clients.send(wrap(Bytes::copy_from_slice(data)));
        }
    }
}

async fn pump_pipes(
    mut stdout: tokio::process::ChildStdout,
    mut stderr: tokio::process::ChildStderr,
    mut log: LogWriter,
    output: OutputSink,
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
                    output.forward(Output::Stdout, &out_buf[..n]);
                }
                _ => out_open = false,
            },
            r = stderr.read(&mut err_buf), if err_open => match r {
                Ok(n) if n > 0 => {
                    log.write(StreamKind::Stderr, &err_buf[..n]);
                    output.forward(Output::Stderr, &err_buf[..n]);
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
    output: OutputSink,
    done: watch::Sender<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match pty.read(&mut buf).await {
            Ok(n) if n > 0 => {
                log.write(StreamKind::Stdout, &buf[..n]);
                output.forward(Output::Stdout, &buf[..n]);
            }
            _ => break,
        }
    }
    log.finish();
    let _ = done.send(true);
}
