//! The data-dir format marker: a small text file written before any data, so
//! a build can tell a directory it understands from one written by a newer
//! (incompatible) minik8s, or from a directory minik8s never owned. It is a
//! plain file rather than a sled key because a future format need not be
//! sled at all.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::StoreError;

/// The format this build writes and reads. Bump it when the on-disk layout
/// changes incompatibly (and teach `check_or_init` to migrate older ones).
pub(crate) const FORMAT_VERSION: u32 = 1;

/// File name of the marker inside the data dir.
pub(crate) const MARKER_FILE: &str = "minik8s-format";
const MARKER_TMP: &str = "minik8s-format.tmp";

/// Creates `dir` if needed and makes sure it holds data of
/// [`FORMAT_VERSION`]: an empty (or new) directory is claimed by writing the
/// marker; anything else must carry a marker this build can read.
pub(crate) fn check_or_init(dir: &Path) -> Result<(), StoreError> {
    let io =
        |what: &str, e: std::io::Error| StoreError::Io(format!("{what} {}: {e}", dir.display()));
    fs::create_dir_all(dir).map_err(|e| io("creating data dir", e))?;
    match fs::read_to_string(dir.join(MARKER_FILE)) {
        Ok(text) => check_marker(dir, &text),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if has_foreign_entries(dir).map_err(|e| io("reading data dir", e))? {
                return Err(StoreError::NotADataDir {
                    dir: dir.to_path_buf(),
                });
            }
            write_marker(dir).map_err(|e| io("writing format marker in", e))
        }
        Err(e) => Err(io("reading format marker in", e)),
    }
}

fn check_marker(dir: &Path, text: &str) -> Result<(), StoreError> {
    let found: u32 = text
        .trim()
        .parse()
        .map_err(|_| StoreError::UnreadableFormat {
            dir: dir.to_path_buf(),
            reason: format!("expected a format number, found {:?}", text.trim()),
        })?;
    if found > FORMAT_VERSION {
        return Err(StoreError::NewerFormat {
            dir: dir.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    if found < FORMAT_VERSION {
        // No older format has ever been released; 0 can only be damage.
        return Err(StoreError::UnreadableFormat {
            dir: dir.to_path_buf(),
            reason: format!("unknown format {found}"),
        });
    }
    Ok(())
}

/// Anything but a half-written marker from an interrupted first start.
fn has_foreign_entries(dir: &Path) -> std::io::Result<bool> {
    for entry in fs::read_dir(dir)? {
        if entry?.file_name() != MARKER_TMP {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Write-then-rename, with fsyncs, so a crash leaves either no marker or a
/// complete one.
fn write_marker(dir: &Path) -> std::io::Result<()> {
    let tmp = dir.join(MARKER_TMP);
    let mut f = fs::File::create(&tmp)?;
    writeln!(f, "{FORMAT_VERSION}")?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(MARKER_FILE))?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "minik8s-store-format-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn new_dir_is_claimed_and_reopens() {
        let dir = scratch("new");
        check_or_init(&dir).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join(MARKER_FILE)).unwrap().trim(),
            FORMAT_VERSION.to_string()
        );
        check_or_init(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn newer_format_is_refused_with_both_numbers() {
        let dir = scratch("newer");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(MARKER_FILE), "7\n").unwrap();
        let err = check_or_init(&dir).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "data dir {} was written by a newer minik8s (format 7); this build reads format {FORMAT_VERSION}",
                dir.display()
            )
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn garbage_marker_and_foreign_dir_are_refused() {
        let dir = scratch("garbage");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(MARKER_FILE), "sled\n").unwrap();
        assert!(matches!(
            check_or_init(&dir),
            Err(StoreError::UnreadableFormat { .. })
        ));
        fs::remove_file(dir.join(MARKER_FILE)).unwrap();
        fs::write(dir.join("notes.txt"), "mine").unwrap();
        assert!(matches!(
            check_or_init(&dir),
            Err(StoreError::NotADataDir { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn leftover_tmp_marker_does_not_block_first_start() {
        let dir = scratch("tmp");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(MARKER_TMP), "").unwrap();
        check_or_init(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
