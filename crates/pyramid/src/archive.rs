//! Writing PMTiles v3 archives: every tile of an xyz pyramid in one file that
//! a browser reads with HTTP Range requests (the format's pieces are in
//! `formats::pmtiles`, with the reader).
//!
//! Written in one streaming pass into an unnamed file like every output: the
//! first 16 KB are reserved for the header and the root directory, tile data
//! is appended as the encoders produce it (identical small tiles stored once),
//! and at the end the leaf directories and the JSON metadata follow the data,
//! then the header and root are written into the reserved space. Memory is the
//! directory entries (24 bytes a tile) and a hash per distinct small tile.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

use formats::output::AtomicFile;
pub use formats::pmtiles::TileType;
use formats::pmtiles::{gzip, serialize_directory as serialize, tile_id, Entry, Header};
use formats::pmtiles::{HEADER_LEN, ROOT_END as RESERVED};
use raster::{Error, Result};

/// Tiles up to this size are compared for deduplication: blank sky, uniform
/// areas, transparent padding. Photo tiles are all different and much larger.
const DEDUP_MAX: usize = 16 << 10;
/// Entries per leaf directory: about 20 KB compressed, so a viewer fetches the
/// header and root (16 KB) and one leaf before its first tile.
const LEAF_ENTRIES: usize = 4096;

impl From<crate::TileFormat> for TileType {
    fn from(f: crate::TileFormat) -> TileType {
        match f {
            crate::TileFormat::Png => TileType::Png,
            crate::TileFormat::Jpeg { .. } => TileType::Jpeg,
            crate::TileFormat::Webp { .. } => TileType::Webp,
        }
    }
}

struct Inner {
    out: Option<AtomicFile>,
    /// Bytes of tile data so far.
    data_len: u64,
    entries: Vec<Entry>,
    /// Hash of a small tile's bytes -> where copies of it are.
    seen: HashMap<u64, Vec<(u64, u32)>>,
    contents: u64,
}

/// A PMTiles archive being written; tiles may be added from any thread.
pub struct Archive {
    inner: Mutex<Inner>,
}

impl Archive {
    /// A new archive at `path` (an unnamed file until `finish`).
    pub fn create(path: &Path) -> Result<Archive> {
        let out = AtomicFile::create(path)?;
        Ok(Archive {
            inner: Mutex::new(Inner {
                out: Some(out),
                data_len: 0,
                entries: Vec::new(),
                seen: HashMap::new(),
                contents: 0,
            }),
        })
    }

    /// Appends tile (z, x, y); a small tile identical to one already stored
    /// points at that copy instead.
    pub fn add(&self, z: u32, x: u32, y: u32, bytes: &[u8]) -> Result<()> {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let s = &mut *s;
        let out = s.out.as_ref().expect("open until finished");
        let tile_id = tile_id(z, x, y);
        let length = u32::try_from(bytes.len())
            .map_err(|_| Error::invalid(out.dest(), "a tile over 4 GB"))?;
        let key = (bytes.len() <= DEDUP_MAX).then(|| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut h);
            h.finish()
        });
        if let Some(copies) = key.and_then(|k| s.seen.get(&k)) {
            for &(offset, len) in copies {
                if len == length && same_bytes(out, RESERVED + offset, bytes)? {
                    s.entries.push(Entry {
                        tile_id,
                        offset,
                        length,
                        run_length: 1,
                    });
                    return Ok(());
                }
            }
        }
        let offset = s.data_len;
        out.file()
            .write_all_at(bytes, RESERVED + offset)
            .map_err(|e| out.err(e))?;
        s.data_len += bytes.len() as u64;
        s.contents += 1;
        s.entries.push(Entry {
            tile_id,
            offset,
            length,
            run_length: 1,
        });
        if let Some(k) = key {
            s.seen.entry(k).or_default().push((offset, length));
        }
        Ok(())
    }

    /// Writes the directories, the metadata and the header, and gives the
    /// archive its name.
    pub fn finish(
        self,
        tile_type: TileType,
        zooms: (u8, u8),
        metadata: &serde_json::Value,
    ) -> Result<()> {
        let mut s = self.inner.into_inner().unwrap_or_else(|e| e.into_inner());
        let out = s.out.take().expect("finished once");
        let entries = runs(std::mem::take(&mut s.entries));
        if entries.is_empty() {
            return Err(Error::invalid(
                out.dest(),
                "no tile to archive: every tile was blank",
            ));
        }
        let (root, leaves) = directories(&entries).map_err(|e| out.err(e))?;
        let end = RESERVED + s.data_len;
        out.file()
            .write_all_at(&leaves, end)
            .map_err(|e| out.err(e))?;
        let meta = gzip(metadata.to_string().as_bytes()).map_err(|e| out.err(e))?;
        out.file()
            .write_all_at(&meta, end + leaves.len() as u64)
            .map_err(|e| out.err(e))?;
        let header = Header {
            root: (HEADER_LEN as u64, root.len() as u64),
            metadata: (end + leaves.len() as u64, meta.len() as u64),
            leaves: (end, leaves.len() as u64),
            data: (RESERVED, s.data_len),
            addressed: entries.iter().map(|e| e.run_length as u64).sum(),
            entries: entries.len() as u64,
            contents: s.contents,
            tile_type: tile_type as u8,
            zooms,
        };
        let mut head = header.to_bytes().to_vec();
        head.extend_from_slice(&root);
        out.file().write_all_at(&head, 0).map_err(|e| out.err(e))?;
        out.commit()
    }
}

fn same_bytes(out: &AtomicFile, at: u64, bytes: &[u8]) -> Result<bool> {
    let mut old = vec![0u8; bytes.len()];
    out.file()
        .read_exact_at(&mut old, at)
        .map_err(|e| out.err(e))?;
    Ok(old == bytes)
}

/// Sorted by tile ID, with consecutive IDs of the same stored tile joined into runs.
fn runs(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_unstable_by_key(|e| e.tile_id);
    let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
    for e in entries {
        match out.last_mut() {
            Some(last)
                if last.offset == e.offset
                    && last.length == e.length
                    && last.tile_id + last.run_length as u64 == e.tile_id =>
            {
                last.run_length += 1
            }
            _ => out.push(e),
        }
    }
    out
}

/// The root directory and the leaf directories (one after another): all
/// entries in the root when they fit in the reserved space, else a root of
/// pointers to leaves of `LEAF_ENTRIES` entries.
fn directories(entries: &[Entry]) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    // Tests force leaves on small archives with GIGA_PMTILES_LEAF_ENTRIES.
    let forced = std::env::var("GIGA_PMTILES_LEAF_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok());
    let root = serialize(entries)?;
    if HEADER_LEN + root.len() <= RESERVED as usize && forced.is_none() {
        return Ok((root, Vec::new()));
    }
    let mut leaf_size: usize = forced.unwrap_or(LEAF_ENTRIES).max(1);
    loop {
        let mut leaves = Vec::new();
        let mut pointers = Vec::new();
        for chunk in entries.chunks(leaf_size) {
            let leaf = serialize(chunk)?;
            pointers.push(Entry {
                tile_id: chunk[0].tile_id,
                offset: leaves.len() as u64,
                length: leaf.len() as u32,
                run_length: 0,
            });
            leaves.extend_from_slice(&leaf);
        }
        let root = serialize(&pointers)?;
        if HEADER_LEN + root.len() <= RESERVED as usize {
            return Ok((root, leaves));
        }
        leaf_size *= 2; // a terapixel archive: fewer, larger leaves
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_join_repeated_tiles_and_directories_fit_the_root() {
        let e = |id, offset| Entry {
            tile_id: id,
            offset,
            length: 10,
            run_length: 1,
        };
        let joined = runs(vec![e(3, 0), e(1, 0), e(2, 0), e(4, 10)]);
        assert_eq!(joined.len(), 2);
        assert_eq!((joined[0].tile_id, joined[0].run_length), (1, 3));
        // Many distinct tiles: the root points at leaves and still fits 16 KB.
        let mut at = 0;
        let many: Vec<Entry> = (0..300_000u64)
            .map(|i| {
                let length = (i * 7919 % 30_000 + 1) as u32; // photo tiles: all sizes
                at += length as u64;
                Entry {
                    tile_id: i * 2,
                    offset: at - length as u64,
                    length,
                    run_length: 1,
                }
            })
            .collect();
        let (root, leaves) = directories(&many).unwrap();
        assert!(HEADER_LEN + root.len() <= RESERVED as usize && !leaves.is_empty());
    }
}
