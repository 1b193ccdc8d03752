//! Container logs in the CRI format the kubelet reads
//! (`<RFC3339Nano> <stdout|stderr> <F|P> <content>` per line), one file per
//! container start: `<data_dir>/pods/<uid>/<container>/<n>.log`. Writing
//! happens in the output pump; reading serves `minik8s logs` with tail,
//! since, timestamps, limitBytes and follow.

use bytes::Bytes;
use futures::stream::BoxStream;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, watch};

/// Lines longer than this are split into partial (`P`) entries, as
/// container runtimes do.
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    Stdout,
    Stderr,
}

impl StreamKind {
    fn tag(self) -> &'static str {
        match self {
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        }
    }
    fn index(self) -> usize {
        match self {
            StreamKind::Stdout => 0,
            StreamKind::Stderr => 1,
        }
    }
}

/// How far a log file has been written; `closed` once the container's
/// outputs have all been closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LogProgress {
    pub bytes: u64,
    pub closed: bool,
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
pub(crate) fn encode_chunk(stream: StreamKind, ts: &str, pending: &mut Vec<u8>, data: &[u8], out: &mut Vec<u8>) {
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
    file: std::fs::File,
    pending: [Vec<u8>; 2],
    scratch: Vec<u8>,
    progress: watch::Sender<LogProgress>,
}

impl LogWriter {
    pub(crate) fn create(path: &Path) -> std::io::Result<(LogWriter, watch::Receiver<LogProgress>)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        let (tx, rx) = watch::channel(LogProgress::default());
        Ok((
            LogWriter {
                file,
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
        encode_chunk(stream, &ts, &mut self.pending[stream.index()], data, &mut self.scratch);
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
        // blocking thread.
        if self.file.write_all(&self.scratch).is_ok() {
            let n = self.scratch.len() as u64;
            self.progress.send_modify(|p| p.bytes += n);
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if !self.progress.borrow().closed {
            self.finish();
        }
    }
}

/// One log entry (partials merged), ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogEntry {
    pub timestamp: String,
    /// The line with its `\n`.
    pub line: Vec<u8>,
}

/// Turns CRI file bytes into entries; keeps unfinished input between calls.
#[derive(Debug, Default)]
pub(crate) struct LogParser {
    carry: Vec<u8>,
    partial: [Vec<u8>; 2],
}

impl LogParser {
    pub(crate) fn feed(&mut self, data: &[u8]) -> Vec<LogEntry> {
        self.carry.extend_from_slice(data);
        let mut entries = Vec::new();
        let mut start = 0;
        while let Some(nl) = self.carry[start..].iter().position(|b| *b == b'\n') {
            let line = &self.carry[start..start + nl];
            start += nl + 1;
            let Some((ts, stream, partial, content)) = split_cri_line(line) else { continue };
            let buf = &mut self.partial[stream.index()];
            buf.extend_from_slice(content);
            if !partial {
                let mut text = std::mem::take(buf);
                text.push(b'\n');
                entries.push(LogEntry {
                    timestamp: ts.to_string(),
                    line: text,
                });
            }
        }
        self.carry.drain(..start);
        entries
    }
}

fn split_cri_line(line: &[u8]) -> Option<(&str, StreamKind, bool, &[u8])> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let ts = std::str::from_utf8(parts.next()?).ok()?;
    let stream = match parts.next()? {
        b"stdout" => StreamKind::Stdout,
        b"stderr" => StreamKind::Stderr,
        _ => return None,
    };
    let partial = match parts.next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some((ts, stream, partial, parts.next().unwrap_or(b"")))
}

/// What to print of a log (the query of `GET .../log`).
#[derive(Debug, Clone, Default)]
pub(crate) struct LogSelection {
    pub tail_lines: Option<u64>,
    /// Only entries at or after this time (RFC 3339 strings of equal
    /// format compare in time order).
    pub since: Option<String>,
    pub timestamps: bool,
}

/// Entries chosen by since and tail, rendered.
pub(crate) fn select(entries: Vec<LogEntry>, sel: &LogSelection) -> Vec<u8> {
    let mut chosen: Vec<LogEntry> = match &sel.since {
        Some(since) => entries.into_iter().filter(|e| e.timestamp >= *since).collect(),
        None => entries,
    };
    if let Some(n) = sel.tail_lines {
        let n = n as usize;
        if chosen.len() > n {
            chosen.drain(..chosen.len() - n);
        }
    }
    let mut out = Vec::new();
    for e in &chosen {
        render(e, sel.timestamps, &mut out);
    }
    out
}

pub(crate) fn render(e: &LogEntry, timestamps: bool, out: &mut Vec<u8>) {
    if timestamps {
        out.extend_from_slice(e.timestamp.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(&e.line);
}

/// Where reading starts for `tail` lines: far enough back for `n` lines
/// (each entry is normally one line), so a tail of a large log does not
/// read the whole file.
fn tail_offset(file: &mut std::fs::File, n: u64) -> std::io::Result<u64> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut pos = len;
    let mut newlines = 0u64;
    let mut chunk = vec![0u8; 64 * 1024];
    while pos > 0 {
        let step = (chunk.len() as u64).min(pos);
        pos -= step;
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut chunk[..step as usize])?;
        for (i, b) in chunk[..step as usize].iter().enumerate().rev() {
            if *b == b'\n' {
                newlines += 1;
                if newlines > n {
                    return Ok(pos + i as u64 + 1);
                }
            }
        }
    }
    Ok(0)
}

/// Read a whole (or the tail of a) log file: the entries and the offset
/// reached.
fn read_from(path: &Path, tail: Option<u64>) -> std::io::Result<(Vec<LogEntry>, u64, LogParser)> {
    let mut file = std::fs::File::open(path)?;
    let start = match tail {
        Some(n) => tail_offset(&mut file, n)?,
        None => 0,
    };
    file.seek(SeekFrom::Start(start))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    let mut parser = LogParser::default();
    let entries = parser.feed(&data);
    Ok((entries, start + data.len() as u64, parser))
}

/// Stream a log file: what is there now (by `sel`), then, with `follow`,
/// every new entry until the file is closed. `limit_bytes` caps the total.
pub(crate) fn stream_log(
    path: PathBuf,
    sel: LogSelection,
    follow: Option<watch::Receiver<LogProgress>>,
    limit_bytes: Option<u64>,
) -> BoxStream<'static, Bytes> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let mut left = limit_bytes.unwrap_or(u64::MAX);
        let send = |mut data: Vec<u8>, left: &mut u64| {
            if (data.len() as u64) > *left {
                data.truncate(*left as usize);
            }
            *left -= data.len() as u64;
            Bytes::from(data)
        };
        let tail = sel.tail_lines;
        let p = path.clone();
        let Ok(Ok((entries, mut offset, mut parser))) =
            tokio::task::spawn_blocking(move || read_from(&p, tail)).await
        else {
            return;
        };
        let first = select(entries, &sel);
        if !first.is_empty() && tx.send(send(first, &mut left)).await.is_err() {
            return;
        }
        let Some(mut progress) = follow else { return };
        loop {
            if left == 0 {
                return;
            }
            let state = *progress.borrow_and_update();
            if state.bytes > offset {
                let p = path.clone();
                let from = offset;
                let Ok(Ok(data)) = tokio::task::spawn_blocking(move || read_range(&p, from)).await else {
                    return;
                };
                offset += data.len() as u64;
                let mut out = Vec::new();
                for e in parser.feed(&data) {
                    render(&e, sel.timestamps, &mut out);
                }
                if !out.is_empty() && tx.send(send(out, &mut left)).await.is_err() {
                    return;
                }
                continue;
            }
            if state.closed {
                return;
            }
            tokio::select! {
                changed = progress.changed() => {
                    if changed.is_err() {
                        // The writer is gone without closing: nothing more comes.
                        if progress.borrow().bytes <= offset { return; }
                    }
                }
                _ = tx.closed() => return,
            }
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (b, rx))
    }))
}

fn read_range(path: &Path, from: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_at_newlines_and_carried_over_between_chunks() {
        let mut pending = Vec::new();
        let mut out = Vec::new();
        encode_chunk(StreamKind::Stdout, "T1", &mut pending, b"hello\nwor", &mut out);
        encode_chunk(StreamKind::Stdout, "T2", &mut pending, b"ld\n", &mut out);
        encode_flush(StreamKind::Stdout, "T3", &mut pending, &mut out);
        assert_eq!(out, b"T1 stdout F hello\nT2 stdout F world\n");
        encode_chunk(StreamKind::Stderr, "T4", &mut pending, b"no newline", &mut out);
        encode_flush(StreamKind::Stderr, "T5", &mut pending, &mut out);
        assert!(out.ends_with(b"T5 stderr F no newline\n"));
    }

    #[test]
    fn long_lines_become_partials_that_the_parser_joins() {
        let mut pending = Vec::new();
        let mut out = Vec::new();
        let long = vec![b'x'; MAX_LINE + 10];
        encode_chunk(StreamKind::Stdout, "T", &mut pending, &long, &mut out);
        encode_chunk(StreamKind::Stdout, "T", &mut pending, b"\n", &mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("T stdout P "));
        let entries = LogParser::default().feed(&out);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].line.len(), MAX_LINE + 11);
    }

    #[test]
    fn parser_keeps_unfinished_file_lines_for_later() {
        let mut p = LogParser::default();
        assert!(p.feed(b"2026-01-01T00:00:00.000000000Z stdout F a\n2026").len() == 1);
        let e = p.feed(b"-01-01T00:00:01.000000000Z stderr F b\n");
        assert_eq!(e, vec![LogEntry { timestamp: "2026-01-01T00:00:01.000000000Z".into(), line: b"b\n".to_vec() }]);
    }

    #[test]
    fn selection_applies_since_then_tail_then_timestamps() {
        let entries: Vec<LogEntry> = (0..5)
            .map(|i| LogEntry {
                timestamp: format!("2026-01-01T00:00:0{i}.000000000Z"),
                line: format!("line {i}\n").into_bytes(),
            })
            .collect();
        let sel = LogSelection { tail_lines: Some(2), since: None, timestamps: false };
        assert_eq!(select(entries.clone(), &sel), b"line 3\nline 4\n");
        let sel = LogSelection {
            tail_lines: None,
            since: Some("2026-01-01T00:00:03.000000000Z".into()),
            timestamps: true,
        };
        assert_eq!(
            String::from_utf8(select(entries, &sel)).unwrap(),
            "2026-01-01T00:00:03.000000000Z line 3\n2026-01-01T00:00:04.000000000Z line 4\n"
        );
    }

    #[test]
    fn timestamps_have_nine_fraction_digits() {
        let t: jiff::Timestamp = "2026-11-26T10:00:00.5Z".parse().unwrap();
        assert_eq!(format_timestamp(t), "2026-11-26T10:00:00.500000000Z");
    }

    #[tokio::test]
    async fn follow_streams_new_lines_until_the_writer_closes() {
        use futures::StreamExt;
        let dir = std::env::temp_dir().join(format!("kubelet-logs-{}", std::process::id()));
        let path = dir.join("0.log");
        let (mut w, progress) = LogWriter::create(&path).unwrap();
        w.write(StreamKind::Stdout, b"one\n");
        let mut s = stream_log(path.clone(), LogSelection::default(), Some(progress), None);
        assert_eq!(s.next().await.unwrap(), Bytes::from_static(b"one\n"));
        w.write(StreamKind::Stderr, b"two\n");
        assert_eq!(s.next().await.unwrap(), Bytes::from_static(b"two\n"));
        w.finish();
        assert!(s.next().await.is_none());
        let limited = stream_log(path.clone(), LogSelection { tail_lines: Some(1), ..Default::default() }, None, Some(2));
        let all: Vec<Bytes> = limited.collect().await;
        assert_eq!(all, vec![Bytes::from_static(b"tw")]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
