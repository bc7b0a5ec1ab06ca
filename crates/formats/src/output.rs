//! Atomic output files: written under a temporary name in the destination
//! folder and renamed when complete, so an interrupted or failed run never
//! leaves a file under the final name.

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
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dest.with_file_name(format!(".{name}.giga-{}.tmp", std::process::id()))
}

/// A file being written; becomes `dest` on [`AtomicFile::commit`], vanishes if dropped.
pub struct AtomicFile {
    file: Option<File>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl AtomicFile {
    pub fn create(dest: &Path) -> Result<AtomicFile> {
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
        Ok(AtomicFile { file: Some(file), tmp, dest: dest.to_path_buf() })
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

    /// Closes the file and renames it to its final name.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("committed once");
        drop(file);
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        register(&self.tmp, false);
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
            register(&self.tmp, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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
