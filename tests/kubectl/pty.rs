//! A command run on a pseudo-terminal, typed into like a reader types:
//! `kubectl run -it` only goes interactive (raw mode, a TTY in the Pod)
//! when its stdin is a terminal.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct PtySession {
    child: Child,
    master: File,
    transcript: Arc<Mutex<Vec<u8>>>,
    /// Where the next `expect` starts looking.
    cursor: usize,
    what: String,
}

impl PtySession {
    /// Start `cmd` with a new pseudo-terminal (80x24) as its controlling
    /// terminal and stdin, stdout and stderr.
    pub fn spawn(mut cmd: Command, what: &str) -> PtySession {
        let (mut master, mut slave) = (-1, -1);
        let mut size = libc::winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two new descriptors into the given ints;
        // the name and termios pointers may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &mut size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just created and are owned here.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let dup = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup pty slave"));
        cmd.stdin(dup(&slave))
            .stdout(dup(&slave))
            .stderr(dup(&slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
        // The child holds the slave now; ours must go, or reading the
        // master would never see the end.
        drop(cmd);
        drop(slave);
        let transcript = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().expect("dup pty master");
        let sink = transcript.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once every holder of the slave is gone.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        PtySession {
            child,
            master,
            transcript,
            cursor: 0,
            what: what.to_string(),
        }
    }

    /// Everything the command has written so far.
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.transcript.lock().unwrap()).into_owned()
    }

    /// Wait until a line the terminal shows holds `needle`, the way a
    /// reader sees it: a shell that redraws its input line (`\r`, the
    /// prompt again, erase to the end) when the terminal's size arrives
    /// while the reader types leaves the typed text split in the byte
    /// stream but whole on the screen.
    pub fn expect_on_screen(&mut self, needle: &str, timeout: Duration) {
        self.wait_for(&format!("{needle:?} on the screen"), timeout, |t| {
            screen_line_with(t, needle)
        });
    }

    /// Wait until `needle` appears after the previous match; fail the test
    /// with the transcript when it does not within `timeout`.
    pub fn expect(&mut self, needle: &str, timeout: Duration) {
        self.wait_for(&format!("{needle:?}"), timeout, |t| {
            t.windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .map(|i| i + needle.len())
        });
    }

    /// Polls the transcript after the previous match until `find` gives
    /// the offset just past a new match.
    fn wait_for(&mut self, what: &str, timeout: Duration, find: impl Fn(&[u8]) -> Option<usize>) {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let t = self.transcript.lock().unwrap();
                if let Some(end) = find(&t[self.cursor.min(t.len())..]) {
                    self.cursor += end;
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "{}: {what} did not appear within {timeout:?}; transcript:\n{:?}",
                    self.what,
                    self.transcript()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Type `keys` at the terminal.
    pub fn send(&mut self, keys: &str) {
        self.master
            .write_all(keys.as_bytes())
            .expect("write to pty");
        self.master.flush().expect("flush pty");
    }

    /// Wait for the command to exit; fail the test when it does not.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("wait for pty command") {
                // Let the reader drain what was written just before exit.
                std::thread::sleep(Duration::from_millis(100));
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not exit within {timeout:?}; transcript:\n{:?}",
                    self.what,
                    self.transcript()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Renders `bytes` line by line as a terminal would (`\r` returns to the
/// line's start, `ESC [ ... J`/`K` erase to its end, other escape
/// sequences change nothing here, other bytes overwrite) and returns the
/// offset just past the first line that holds `needle`.
fn screen_line_with(bytes: &[u8], needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    let holds = |line: &[u8]| line.windows(needle.len()).any(|w| w == needle);
    let (mut line, mut col) = (Vec::new(), 0);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                if holds(&line) {
                    return Some(i + 1);
                }
                line.clear();
                col = 0;
            }
            b'\r' => col = 0,
            0x1b if bytes.get(i + 1) == Some(&b'[') => {
                // A CSI sequence: parameters, then one final byte.
                let mut j = i + 2;
                while j < bytes.len() && !(0x40..=0x7e).contains(&bytes[j]) {
                    j += 1;
                }
                if matches!(bytes.get(j), Some(b'J' | b'K')) {
                    line.truncate(col);
                }
                i = j;
            }
            b => {
                if col < line.len() {
                    line[col] = b;
                } else {
                    line.push(b);
                }
                col += 1;
            }
        }
        i += 1;
    }
    holds(&line).then_some(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::screen_line_with;

    #[test]
    fn a_redrawn_input_line_reads_whole() {
        let seen = b"cu\r/ # cu\x1b[Jrl -s http://web | head -1\r\n<!DOCTYPE html>\r\n";
        let end = screen_line_with(seen, "curl -s http://web | head -1").unwrap();
        assert_eq!(&seen[end..], b"<!DOCTYPE html>\r\n");
        assert_eq!(screen_line_with(b"cu\r\x1b[Kxx\n", "cu"), None);
    }
}
