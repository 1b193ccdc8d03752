//! Container logs in the CRI format the kubelet reads
//! (`<RFC3339Nano> <stdout|stderr> <F|P> <content>` per line), one file per
//! container start: `<data_dir>/pods/<uid>/<container>/<n>.log`, rotated
//! at 10 MiB. This file writes them (from the output pump);
//! `log_reader.rs` serves `minik8s logs`.

use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::sync::watch;

/// Lines longer than this are split into partial (`P`) entries, as
/// container runtimes do.
pub(crate) const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    Stdout,
    Stderr,
}

impl StreamKind {
    pub(crate) fn tag(self) -> &'static str {
        match self {
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        }
    }
    pub(crate) fn index(self) -> usize {
        match self {
            StreamKind::Stdout => 0,
            StreamKind::Stderr => 1,
        }
    }
}

/// How far a log has been written: `generation` counts rotations (the
/// file was renamed to `<name>.1` and a new one started), `bytes` is the
/// size of the current file, `closed` is set once the container's outputs
/// have all been closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LogProgress {
    pub generation: u64,
    pub bytes: u64,
    pub closed: bool,
}

/// A log file is rotated at this size; one rotated file is kept (like the
/// kubelet's containerLogMaxSize, with fewer files), so a busy server's
/// access log cannot fill the disk.
pub(crate) const MAX_LOG_FILE: u64 = 10 * 1024 * 1024;

/// `<n>.log` -> `<n>.log.1`
pub(crate) fn rotated_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

/// `2026-11-26T10:00:00.123456789Z`: RFC 3339 with nanoseconds, fixed
/// width (what `kubectl logs --timestamps` prints).
pub(crate) fn format_timestamp(t: jiff::Timestamp) -> String {
    format!(
        "{}.{:09}Z",
        t.strftime("%Y-%m-%dT%H:%M:%S"),
        t.subsec_nanosecond()
    )
}

/// Encode `data` of one stream into CRI lines appended to `out`. `pending`
/// carries an unfinished line between calls.
pub(crate) fn encode_chunk(
    stream: StreamKind,
    ts: &str,
    pending: &mut Vec<u8>,
    data: &[u8],
    out: &mut Vec<u8>,
) {
    let mut rest = data;
    while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
        pending.extend_from_slice(&rest[..nl]);
        push_line(stream, ts, false, pending, out);
        pending.clear();
        rest = &rest[nl + 1..];
    }
    pending.extend_from_slice(rest);
    while pending.len() >= MAX_LINE {
        let tail = pending.split_off(MAX_LINE);
        push_line(stream, ts, true, pending, out);
        *pending = tail;
    }
}

/// At the end of a stream: an unfinished last line becomes a full line.
pub(crate) fn encode_flush(stream: StreamKind, ts: &str, pending: &mut Vec<u8>, out: &mut Vec<u8>) {
    if !pending.is_empty() {
        push_line(stream, ts, false, pending, out);
        pending.clear();
    }
}

fn push_line(stream: StreamKind, ts: &str, partial: bool, content: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(ts.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.tag().as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(content);
    out.push(b'\n');
}

/// Writes one container start's log file.
pub(crate) struct LogWriter {
    path: PathBuf,
    file: std::fs::File,
    size: u64,
    max_size: u64,
    pending: [Vec<u8>; 2],
    scratch: Vec<u8>,
    progress: watch::Sender<LogProgress>,
}

impl LogWriter {
    pub(crate) fn create(
        path: &Path,
    ) -> std::io::Result<(LogWriter, watch::Receiver<LogProgress>)> {
        Self::with_max_size(path, MAX_LOG_FILE)
    }

    pub(crate) fn with_max_size(
        path: &Path,
        max_size: u64,
    ) -> std::io::Result<(LogWriter, watch::Receiver<LogProgress>)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(rotated_path(path));
        let file = open_new(path)?;
        let (tx, rx) = watch::channel(LogProgress::default());
        Ok((
            LogWriter {
                path: path.to_path_buf(),
                file,
                size: 0,
                max_size,
                pending: [Vec::new(), Vec::new()],
                scratch: Vec::new(),
                progress: tx,
            },
            rx,
        ))
    }

    pub(crate) fn write(&mut self, stream: StreamKind, data: &[u8]) {
        let ts = format_timestamp(jiff::Timestamp::now());
        self.scratch.clear();
        encode_chunk(
            stream,
            &ts,
            &mut self.pending[stream.index()],
            data,
            &mut self.scratch,
        );
        self.append();
    }

    /// The streams have ended: write unfinished lines, mark the file done.
    pub(crate) fn finish(&mut self) {
        let ts = format_timestamp(jiff::Timestamp::now());
        self.scratch.clear();
        for s in [StreamKind::Stdout, StreamKind::Stderr] {
            encode_flush(s, &ts, &mut self.pending[s.index()], &mut self.scratch);
        }
        self.append();
        self.progress.send_modify(|p| p.closed = true);
    }

    fn append(&mut self) {
        if self.scratch.is_empty() {
            return;
        }
        // Page-cache writes of a few bytes: cheaper inline than a hop to a
        // blocking thread. Only whole lines are written, so a rotation
        // never splits one.
        if self.file.write_all(&self.scratch).is_ok() {
            let n = self.scratch.len() as u64;
            self.size += n;
            self.progress.send_modify(|p| p.bytes = self.size);
        }
        if self.size >= self.max_size {
            self.rotate();
        }
    }

    fn rotate(&mut self) {
        if std::fs::rename(&self.path, rotated_path(&self.path)).is_err() {
            return;
        }
        if let Ok(f) = open_new(&self.path) {
            self.file = f;
            self.size = 0;
            self.progress.send_modify(|p| {
                p.generation += 1;
                p.bytes = 0;
            });
        }
    }
}

fn open_new(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if !self.progress.borrow().closed {
            self.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_at_newlines_and_carried_over_between_chunks() {
        let mut pending = Vec::new();
        let mut out = Vec::new();
        encode_chunk(
            StreamKind::Stdout,
            "T1",
            &mut pending,
            b"hello\nwor",
            &mut out,
        );
        encode_chunk(StreamKind::Stdout, "T2", &mut pending, b"ld\n", &mut out);
        encode_flush(StreamKind::Stdout, "T3", &mut pending, &mut out);
        assert_eq!(out, b"T1 stdout F hello\nT2 stdout F world\n");
        encode_chunk(
            StreamKind::Stderr,
            "T4",
            &mut pending,
            b"no newline",
            &mut out,
        );
        encode_flush(StreamKind::Stderr, "T5", &mut pending, &mut out);
        assert!(out.ends_with(b"T5 stderr F no newline\n"));
    }

    #[test]
    fn timestamps_have_nine_fraction_digits() {
        let t: jiff::Timestamp = "2026-11-26T10:00:00.5Z".parse().unwrap();
        assert_eq!(format_timestamp(t), "2026-11-26T10:00:00.500000000Z");
    }
}
