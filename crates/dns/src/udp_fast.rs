//! The UDP side of the server: a few threads (one per core) read the one
//! UDP socket in batches, answer the common questions from the table
//! right away (`fast_query`, `fast_answer`) and send those answers in one
//! batch; every other question goes to the full hickory-based handler on
//! the runtime (`fallback`), which answers from the same socket.
//!
//! Why not hickory's UDP server for all: per question it decodes a
//! `Message`, spawns a task, encodes a `Message` and makes two system
//! calls; at tens of thousands of questions per second on a small machine
//! that is most of the CPU, and the client competes for the same cores.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::batch_io::{Batch, BATCH, MAX_PACKET};
use crate::fallback::Fallback;
use crate::shared::SharedTable;
use crate::{fast_answer, fast_query};

/// Most reading threads.
const MAX_THREADS: usize = 4;

/// How long a reading thread waits for questions before it looks whether
/// it should stop.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// The reading threads; `stop` ends them.
pub struct UdpWorkers {
    threads: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

/// Start one reading thread per core on `socket`.
pub fn start(
    socket: UdpSocket,
    table: Arc<SharedTable>,
    fallback: Fallback,
) -> io::Result<UdpWorkers> {
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(STOP_CHECK))?;
    let socket = Arc::new(socket);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_THREADS);
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = UdpWorkers {
        threads: Vec::new(),
        stop: stop.clone(),
    };
    for i in 0..threads {
        let (socket, table, fallback, stop) = (
            socket.clone(),
            table.clone(),
            fallback.clone(),
            stop.clone(),
        );
        let thread = std::thread::Builder::new()
            .name(format!("dns-udp-{i}"))
            .spawn(move || serve_socket(socket, &table, &fallback, &stop));
        match thread {
            Ok(t) => workers.threads.push(t),
            Err(e) => {
                workers.stop();
                return Err(e);
            }
        }
    }
    Ok(workers)
}

impl UdpWorkers {
    /// Stop reading and wait for the threads (at most `STOP_CHECK`).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            if t.join().is_err() {
                tracing::error!("a DNS UDP thread panicked");
            }
        }
    }
}

fn serve_socket(
    socket: Arc<UdpSocket>,
    table: &SharedTable,
    fallback: &Fallback,
    stop: &AtomicBool,
) {
    let fd = socket.as_raw_fd();
    let mut batch = Batch::new();
    let mut out = Vec::with_capacity(MAX_PACKET);
    let mut answered: Vec<(usize, usize)> = Vec::with_capacity(BATCH);
    let mut slow: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let n = match batch.recv(fd) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                // Not expected on a bound UDP socket; do not spin on it.
                tracing::warn!(error = %e, "cannot read DNS questions");
                std::thread::sleep(STOP_CHECK);
                continue;
            }
        };
        answered.clear();
        {
            // One look at the table for the whole batch.
            let table = table.load();
            for i in 0..n {
                let Some((packet, src)) = batch.packet(i) else {
                    continue;
                };
                // No answer can reach port 0.
                if src.port() == 0 {
                    continue;
                }
                let fast = fast_query::parse(packet)
                    .is_some_and(|q| fast_answer::answer(&table, &q, &mut out))
                    && out.len() <= MAX_PACKET;
                if fast {
                    batch.take_buffer(i)[..out.len()].copy_from_slice(&out);
                    answered.push((i, out.len()));
                } else {
                    slow.push((packet.to_vec(), src));
                }
            }
        }
        batch.send(fd, &answered);
        for (packet, src) in slow.drain(..) {
            fallback.dispatch(packet, src, &socket);
        }
    }
}
