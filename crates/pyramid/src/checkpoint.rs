//! Checkpoints of a pyramid build, so that a slow source (a render) can
//! resume where it stopped instead of from its first row. Once in a while the
//! cascade waits for its queued tiles, flushes the file system, and saves
//! what it holds: each level's band of rows, its counters and any row waiting
//! for its partner. Levels written as whole images (IIIF sizes, legacy) also
//! log every row they get, replayed into new writers on resume.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use raster::{Error, Result};

const FILE: &str = ".giga-checkpoint";
const MAGIC: &[u8] = b"giga pyramid checkpoint 1\n";

/// When to save, and what the saved state belongs to.
#[derive(Clone, Debug)]
pub struct Checkpoints {
    /// Identifies the job (its inputs and options): a checkpoint with another key is ignored.
    pub key: String,
    /// Time between checkpoints.
    pub every: Duration,
}

/// What a level held at a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SavedLevel {
    pub rows_in: u32,
    pub next_tile_row: u32,
    pub pending: Option<Vec<u8>>,
    pub band: Vec<(u32, Vec<u8>)>,
}

/// A saved build: the full-resolution rows it had consumed, and its levels.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub(crate) levels: Vec<SavedLevel>,
}

impl Saved {
    /// Full-resolution rows already consumed: the source resumes at this row.
    pub fn rows(&self) -> u32 {
        self.levels.first().map_or(0, |l| l.rows_in)
    }
}

pub(crate) fn path(outdir: &Path) -> PathBuf {
    outdir.join(FILE)
}

/// The row log of level `i` (levels written as whole images).
pub(crate) fn log_path(outdir: &Path, i: usize) -> PathBuf {
    outdir.join(format!("{FILE}-level-{i}.rows"))
}

/// The checkpoint in `outdir`, if there is one for `key` and it reads whole.
pub fn load(outdir: &Path, key: &str) -> Option<Saved> {
    let mut bytes = Vec::new();
    File::open(path(outdir))
        .ok()?
        .read_to_end(&mut bytes)
        .ok()?;
    decode(&bytes, key)
}

/// Deletes the checkpoint and row logs of a finished build.
pub fn remove(outdir: &Path, levels: usize) {
    let _ = std::fs::remove_file(path(outdir));
    let _ = std::fs::remove_file(outdir.join(format!("{FILE}.tmp")));
    for i in 0..levels {
        let _ = std::fs::remove_file(log_path(outdir, i));
    }
}

/// One level as the cascade holds it, borrowed for saving (no copy of its rows).
pub(crate) struct LevelView<'a> {
    pub rows_in: u32,
    pub next_tile_row: u32,
    pub pending: Option<&'a [u8]>,
    pub band: Vec<(u32, &'a [u8])>,
}

/// Writes the checkpoint atomically, after flushing the file system that
/// holds `outdir` so the tiles it vouches for survive a power cut too.
pub(crate) fn save(outdir: &Path, key: &str, levels: &[LevelView]) -> Result<()> {
    let dir = File::open(outdir).map_err(|e| Error::io(outdir, e))?;
    // SAFETY: syncfs takes any open descriptor of the file system and only flushes it.
    if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)) } != 0 {
        return Err(Error::io(outdir, std::io::Error::last_os_error()));
    }
    let tmp = outdir.join(format!("{FILE}.tmp"));
    let io = |e| Error::io(&tmp, e);
    let mut w = std::io::BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(io)?);
    encode(&mut w, key, levels).map_err(io)?;
    let f = w.into_inner().map_err(|e| io(e.into_error()))?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path(outdir)).map_err(io)?;
    dir.sync_all().map_err(|e| Error::io(outdir, e))
}

fn encode(w: &mut impl Write, key: &str, levels: &[LevelView]) -> std::io::Result<()> {
    let bytes = |w: &mut dyn Write, v: &[u8]| -> std::io::Result<()> {
        w.write_all(&(v.len() as u64).to_le_bytes())?;
        w.write_all(v)
    };
    w.write_all(MAGIC)?;
    bytes(w, key.as_bytes())?;
    w.write_all(&(levels.len() as u32).to_le_bytes())?;
    for l in levels {
        w.write_all(&l.rows_in.to_le_bytes())?;
        w.write_all(&l.next_tile_row.to_le_bytes())?;
        w.write_all(&[l.pending.is_some() as u8])?;
        if let Some(p) = l.pending {
            bytes(w, p)?;
        }
        w.write_all(&(l.band.len() as u32).to_le_bytes())?;
        for (start, rows) in &l.band {
            w.write_all(&start.to_le_bytes())?;
            bytes(w, rows)?;
        }
    }
    Ok(())
}

/// The reverse of `encode`; `None` for another key or anything malformed.
fn decode(b: &[u8], key: &str) -> Option<Saved> {
    let mut r = b.strip_prefix(MAGIC)?;
    fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        (r.len() >= n).then(|| {
            let (head, rest) = r.split_at(n);
            *r = rest;
            head
        })
    }
    let u32_ = |r: &mut &[u8]| Some(u32::from_le_bytes(take(r, 4)?.try_into().ok()?));
    let bytes = |r: &mut &[u8]| {
        let n = u64::from_le_bytes(take(r, 8)?.try_into().ok()?);
        take(r, usize::try_from(n).ok()?).map(<[u8]>::to_vec)
    };
    if bytes(&mut r)? != key.as_bytes() {
        return None;
    }
    let n = u32_(&mut r)?;
    let mut levels = Vec::new();
    for _ in 0..n {
        let rows_in = u32_(&mut r)?;
        let next_tile_row = u32_(&mut r)?;
        let pending = match take(&mut r, 1)?[0] {
            0 => None,
            1 => Some(bytes(&mut r)?),
            _ => return None,
        };
        let chunks = u32_(&mut r)?;
        let mut band = Vec::new();
        for _ in 0..chunks {
            let start = u32_(&mut r)?;
            band.push((start, bytes(&mut r)?));
        }
        levels.push(SavedLevel {
            rows_in,
            next_tile_row,
            pending,
            band,
        });
    }
    r.is_empty().then_some(Saved { levels })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_key() {
        let saved = Saved {
            levels: vec![
                SavedLevel {
                    rows_in: 300,
                    next_tile_row: 1,
                    pending: None,
                    band: vec![(254, vec![1; 12]), (290, vec![2; 40])],
                },
                SavedLevel {
                    rows_in: 150,
                    next_tile_row: 0,
                    pending: Some(vec![9; 6]),
                    band: vec![],
                },
            ],
        };
        let views: Vec<LevelView> = saved
            .levels
            .iter()
            .map(|l| LevelView {
                rows_in: l.rows_in,
                next_tile_row: l.next_tile_row,
                pending: l.pending.as_deref(),
                band: l.band.iter().map(|(s, r)| (*s, r.as_slice())).collect(),
            })
            .collect();
        let mut b = Vec::new();
        encode(&mut b, "job 1", &views).unwrap();
        assert_eq!(decode(&b, "job 1"), Some(saved.clone()));
        assert_eq!(saved.rows(), 300);
        assert_eq!(decode(&b, "job 2"), None);
        assert_eq!(decode(&b[..b.len() - 1], "job 1"), None);
    }

    proptest! {
        /// Whatever the bytes (a torn or foreign file), decoding returns, never panics.
        #[test]
        fn decoding_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&tail);
            let _ = decode(&b, "k");
        }
    }
}
