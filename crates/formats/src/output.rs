//! Atomic output files: written as an unnamed file (O_TMPFILE) in the
//! destination folder and given their name when complete, so an interrupted,
//! failed or killed run (even by SIGKILL or a crash) leaves nothing behind.
//! Where the file system lacks O_TMPFILE, a temporary name and a rename.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use raster::{Error, Result};

/// Temporary files still being written, removed by [`remove_temporaries`]
/// when the process is interrupted (drop handlers don't run on a signal).
static PENDING: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

fn register(path: &Path, add: bool) {
    let mut set = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    let set = set.get_or_insert_with(HashSet::new);
    if add {
        set.insert(path.to_path_buf());
    } else {
        set.remove(path);
    }
}

/// Registers a temporary file written outside [`AtomicFile`] (e.g. a tile),
/// so an interruption removes it; it is forgotten when the guard drops.
pub struct TemporaryGuard(PathBuf);

impl TemporaryGuard {
    pub fn new(path: &Path) -> TemporaryGuard {
        register(path, true);
        TemporaryGuard(path.to_path_buf())
    }
}

impl Drop for TemporaryGuard {
    fn drop(&mut self) {
        register(&self.0, false);
    }
}

/// Deletes every temporary output still being written. Call from a signal handler before exiting.
pub fn remove_temporaries() {
    let set = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    for p in set.iter().flatten() {
        let _ = std::fs::remove_file(p);
    }
}

/// The temporary name used for `dest`: hidden, in the same folder (so the
/// rename is atomic), and marked with the process id.
pub fn temporary_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.giga-{}.tmp", std::process::id()))
}

/// A file being written; becomes `dest` on [`AtomicFile::commit`], vanishes if dropped.
pub struct AtomicFile {
    file: Option<File>,
    /// The temporary name, or None while the file is unnamed (O_TMPFILE).
    tmp: Option<PathBuf>,
    dest: PathBuf,
}

impl AtomicFile {
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        match create_unnamed(dest) {
            Ok(file) => {
                return Ok(AtomicFile {
                    file: Some(file),
                    tmp: None,
                    dest: dest.to_path_buf(),
                })
            }
            Err(e) if unnamed_unsupported(&e) => {}
            Err(e) => return Err(Error::io(dest, e)),
        }
        let tmp = temporary_path(dest);
        register(&tmp, true);
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| {
                register(&tmp, false);
                Error::io(dest, e)
            })?;
        Ok(AtomicFile {
            file: Some(file),
            tmp: Some(tmp),
            dest: dest.to_path_buf(),
        })
    }

    pub fn file(&self) -> &File {
        self.file.as_ref().expect("open until commit")
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// An I/O error on this output, naming the final path.
    pub fn err(&self, e: std::io::Error) -> Error {
        Error::io(&self.dest, e)
    }

    /// Gives the file its final name (replacing any file there) and closes it.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("committed once");
        let tmp = match self.tmp.take() {
            Some(tmp) => tmp,
            None => {
                // Link the unnamed file in under a temporary name, then rename over `dest`
                // (linkat can't replace an existing file).
                let tmp = temporary_path(&self.dest);
                register(&tmp, true);
                if let Err(e) = link_unnamed(&file, &tmp) {
                    register(&tmp, false);
                    return Err(Error::io(&self.dest, e));
                }
                tmp
            }
        };
        drop(file);
        let r = std::fs::rename(&tmp, &self.dest).map_err(|e| Error::io(&self.dest, e));
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        register(&tmp, false);
        r
    }
}

/// An unnamed file (O_TMPFILE) in the folder `dest` will be in; it disappears
/// with the process unless [`link_unnamed`] gives it a name.
pub fn create_unnamed(dest: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = dest
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o644)
        .open(dir)
}

/// Whether [`create_unnamed`] failed because the file system has no O_TMPFILE
/// (the caller then falls back to a temporary name and a rename).
pub fn unnamed_unsupported(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP) | Some(libc::EISDIR) | Some(libc::EINVAL)
    )
}

/// Gives an unnamed file the name `to` (which must not exist: linkat does not replace).
pub fn link_unnamed(file: &File, to: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::io::AsRawFd;
    let src = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).expect("no NUL");
    let dst =
        CString::new(to.as_os_str().as_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: both are valid NUL-terminated paths; linkat only reads them.
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            src.as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            if let Some(tmp) = self.tmp.take() {
                let _ = std::fs::remove_file(&tmp);
                register(&tmp, false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn commit_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.kro");
        std::fs::write(&dest, b"old").unwrap();
        let f = AtomicFile::create(&dest).unwrap();
        f.file().write_all(b"new").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        f.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn commit_renames_and_drop_removes() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.kro");
        let f = AtomicFile::create(&dest).unwrap();
        f.file().write_all(b"abc").unwrap();
        assert!(!dest.exists());
        f.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"abc");

        let dest2 = dir.path().join("gone.kro");
        let f = AtomicFile::create(&dest2).unwrap();
        f.file().write_all(b"abc").unwrap();
        drop(f);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
