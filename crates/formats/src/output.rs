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
    /// Registers `path`; forgotten when the guard drops.
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
/// Character devices and pipes (`/dev/null`, `/dev/stdout`) are written through
/// instead: they can't be replaced, and what was written can't be taken back.
pub struct AtomicFile {
    file: Option<File>,
    /// The temporary name, or None while the file is unnamed (O_TMPFILE).
    tmp: Option<PathBuf>,
    dest: PathBuf,
    /// Written straight into `dest` (a device or a pipe), nothing to rename.
    direct: bool,
    /// The path the file is renamed to: `dest`, or the target when `dest` is a symlink.
    target: PathBuf,
}

/// Where an output named `dest` really goes: a symlink's target (so the link
/// stays and its target gets the image), or `dest` itself.
fn resolve_output(dest: &Path) -> PathBuf {
    let mut p = dest.to_path_buf();
    for _ in 0..40 {
        match std::fs::read_link(&p) {
            Ok(target) => {
                let base = p.parent().unwrap_or(Path::new("."));
                p = base.join(target);
            }
            Err(_) => return p,
        }
    }
    p
}

impl AtomicFile {
    /// A new output for `dest` (see the type's notes on devices and links).
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        use std::os::unix::fs::FileTypeExt;
        if let Ok(meta) = std::fs::metadata(dest) {
            let t = meta.file_type();
            if t.is_block_device() {
                return Err(Error::invalid(
                    dest,
                    "is a block device; giga writes image files, never devices",
                ));
            }
            if t.is_char_device() || t.is_fifo() || t.is_socket() {
                let file = File::options()
                    .write(true)
                    .open(dest)
                    .map_err(|e| Error::io(dest, e))?;
                return Ok(AtomicFile {
                    file: Some(file),
                    tmp: None,
                    dest: dest.to_path_buf(),
                    direct: true,
                    target: dest.to_path_buf(),
                });
            }
            if t.is_dir() {
                return Err(Error::invalid(dest, "is a folder; name the output file"));
            }
        }
        let mut out = AtomicFile::create_replacing(&resolve_output(dest))?;
        out.dest = dest.to_path_buf();
        Ok(out)
    }

    /// A new file that replaces `dest` when committed.
    fn create_replacing(dest: &Path) -> Result<AtomicFile> {
        match create_unnamed(dest) {
            Ok(file) => {
                return Ok(AtomicFile {
                    file: Some(file),
                    tmp: None,
                    dest: dest.to_path_buf(),
                    direct: false,
                    target: dest.to_path_buf(),
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
            direct: false,
            target: dest.to_path_buf(),
        })
    }

    /// The file being written.
    pub fn file(&self) -> &File {
        self.file.as_ref().expect("open until commit")
    }

    /// The path the output will have (as given).
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
        if self.direct {
            return Ok(());
        }
        let real = std::mem::take(&mut self.target);
        let tmp = match self.tmp.take() {
            Some(tmp) => tmp,
            None => {
                // Link the unnamed file in under a temporary name, then rename over `real`
                // (linkat can't replace an existing file).
                let tmp = temporary_path(&real);
                register(&tmp, true);
                if let Err(e) = link_unnamed(&file, &tmp) {
                    register(&tmp, false);
                    return Err(Error::io(&self.dest, e));
                }
                tmp
            }
        };
        drop(file);
        let r = std::fs::rename(&tmp, &real).map_err(|e| Error::io(&self.dest, e));
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        register(&tmp, false);
        r
    }
}

/// Writes a small file whole, atomically (an [`AtomicFile`] committed at once).
pub fn write_file(dest: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let out = AtomicFile::create(dest)?;
    out.file().write_all(bytes).map_err(|e| out.err(e))?;
    out.commit()
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
    fn symlinks_keep_pointing_at_the_new_file_and_devices_are_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.kro");
        std::fs::write(&target, b"old").unwrap();
        let link = dir.path().join("link.kro");
        std::os::unix::fs::symlink("real.kro", &link).unwrap();
        let f = AtomicFile::create(&link).unwrap();
        f.file().write_all(b"new").unwrap();
        f.commit().unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");

        let f = AtomicFile::create(Path::new("/dev/null")).unwrap();
        f.file().write_all(b"nothing").unwrap();
        f.commit().unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());
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
