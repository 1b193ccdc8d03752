//! Reading container logs for `minik8s logs`: CRI lines back into
//! entries (partials joined), selection by since and tail, timestamps,
//! limitBytes, and following a log across rotations until it closes.

use crate::logs::{rotated_path, LogProgress, StreamKind};
use bytes::Bytes;
use futures::stream::BoxStream;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, watch};

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
            let Some((ts, stream, partial, content)) = split_cri_line(line) else {
                continue;
            };
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
        Some(since) => entries
            .into_iter()
            .filter(|e| e.timestamp >= *since)
            .collect(),
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

/// The entries of a log as it is now (rotated part first), and the open
/// current file positioned at its end, for following.
fn read_now(
    path: &Path,
    tail: Option<u64>,
) -> std::io::Result<(Vec<LogEntry>, std::fs::File, LogParser)> {
    let mut file = std::fs::File::open(path)?;
    let mut parser = LogParser::default();
    let mut entries = Vec::new();
    let start = match tail {
        Some(n) => tail_offset(&mut file, n)?,
        None => 0,
    };
    // The rotated file is needed unless the tail is all in the current one.
    let current_has_enough = tail.is_some() && start > 0;
    if !current_has_enough {
        if let Ok(old) = std::fs::read(rotated_path(path)) {
            entries.extend(parser.feed(&old));
        }
    }
    file.seek(SeekFrom::Start(start))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    entries.extend(parser.feed(&data));
    Ok((entries, file, parser))
}

/// Stream a log: what is there now (by `sel`), then, with `follow`, every
/// new entry until the writer closes it. `limit_bytes` caps the total.
pub(crate) fn stream_log(
    path: PathBuf,
    sel: LogSelection,
    follow: Option<watch::Receiver<LogProgress>>,
    limit_bytes: Option<u64>,
) -> BoxStream<'static, Bytes> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let mut left = limit_bytes.unwrap_or(u64::MAX);
        let cap = |mut data: Vec<u8>, left: &mut u64| {
            if (data.len() as u64) > *left {
                data.truncate(*left as usize);
            }
            *left -= data.len() as u64;
            Bytes::from(data)
        };
        // Where the follower is before it reads anything: the generation
        // it starts in.
        let mut generation = follow.as_ref().map(|p| p.borrow().generation).unwrap_or(0);
        let tail = sel.tail_lines;
        let p = path.clone();
        let Ok(Ok((entries, mut file, mut parser))) =
            tokio::task::spawn_blocking(move || read_now(&p, tail)).await
        else {
            return;
        };
        let first = select(entries, &sel);
        if !first.is_empty() && tx.send(cap(first, &mut left)).await.is_err() {
            return;
        }
        let Some(mut progress) = follow else { return };
        loop {
            if left == 0 {
                return;
            }
            let state = *progress.borrow_and_update();
            // Read what the open file has (after a rotation, the rest of
            // the renamed file), then move on to the new file.
            let (data, f) = match tokio::task::spawn_blocking(move || {
                let mut data = Vec::new();
                let r = file.read_to_end(&mut data);
                (r.map(|_| data), file)
            })
            .await
            {
                Ok((Ok(data), f)) => (data, f),
                _ => return,
            };
            file = f;
            if !data.is_empty() {
                let mut out = Vec::new();
                for e in parser.feed(&data) {
                    render(&e, sel.timestamps, &mut out);
                }
                if !out.is_empty() && tx.send(cap(out, &mut left)).await.is_err() {
                    return;
                }
                continue;
            }
            if state.generation != generation {
                match std::fs::File::open(&path) {
                    Ok(f) => {
                        file = f;
                        generation = state.generation;
                        continue;
                    }
                    Err(_) => return,
                }
            }
            if state.closed {
                return;
            }
            tokio::select! {
                changed = progress.changed() => {
                    if changed.is_err() && *progress.borrow() == state {
                        // The writer is gone: nothing more comes.
                        return;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{encode_chunk, LogWriter, MAX_LINE};

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
        assert!(
            p.feed(b"2026-01-01T00:00:00.000000000Z stdout F a\n2026")
                .len()
                == 1
        );
        let e = p.feed(b"-01-01T00:00:01.000000000Z stderr F b\n");
        assert_eq!(
            e,
            vec![LogEntry {
                timestamp: "2026-01-01T00:00:01.000000000Z".into(),
                line: b"b\n".to_vec()
            }]
        );
    }

    #[test]
    fn selection_applies_since_then_tail_then_timestamps() {
        let entries: Vec<LogEntry> = (0..5)
            .map(|i| LogEntry {
                timestamp: format!("2026-01-01T00:00:0{i}.000000000Z"),
                line: format!("line {i}\n").into_bytes(),
            })
            .collect();
        let sel = LogSelection {
            tail_lines: Some(2),
            since: None,
            timestamps: false,
        };
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
        let limited = stream_log(
            path.clone(),
            LogSelection {
                tail_lines: Some(1),
                ..Default::default()
            },
            None,
            Some(2),
        );
        let all: Vec<Bytes> = limited.collect().await;
        assert_eq!(all, vec![Bytes::from_static(b"tw")]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn rotation_keeps_one_old_file_and_followers_cross_it() {
        use futures::StreamExt;
        let dir = std::env::temp_dir().join(format!("kubelet-rotate-{}", std::process::id()));
        let path = dir.join("0.log");
        // Each line is ~50 bytes in the file: rotate about every 4 lines.
        let (mut w, progress) = LogWriter::with_max_size(&path, 200).unwrap();
        w.write(StreamKind::Stdout, b"a0\n");
        let mut follower = stream_log(
            path.clone(),
            LogSelection::default(),
            Some(progress.clone()),
            None,
        );
        let mut seen = String::new();
        for i in 1..10 {
            // The follower keeps pace: it has read everything before this.
            while !seen.contains(&format!("a{}\n", i - 1)) {
                let chunk = follower.next().await.expect("follower ended early");
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
            w.write(StreamKind::Stdout, format!("a{i}\n").as_bytes());
        }
        assert!(progress.borrow().generation >= 2);
        w.finish();
        while let Some(chunk) = follower.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        let expected: String = (0..10).map(|i| format!("a{i}\n")).collect();
        assert_eq!(seen, expected, "the follower saw every line once, in order");
        // A later reader sees the rotated file and the current one.
        let all: Vec<Bytes> = stream_log(path.clone(), LogSelection::default(), None, None)
            .collect()
            .await;
        let text: String = all
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert!(
            text.ends_with("a9\n") && text.lines().count() >= 4,
            "{text}"
        );
        assert!(rotated_path(&path).exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}
