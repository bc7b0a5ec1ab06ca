//! PMTiles v3 archives: every tile of an xyz pyramid in one file that a
//! browser reads with HTTP Range requests (spec: `docs/spec/pmtiles.md`).
//!
//! Written in one streaming pass into an unnamed file like every output: the
//! first 16 KB are reserved for the header and the root directory, tile data
//! is appended as the encoders produce it (identical small tiles stored once),
//! and at the end the leaf directories and the JSON metadata follow the data,
//! then the header and root are written into the reserved space. Memory is the
//! directory entries (24 bytes a tile) and a hash per distinct small tile.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

use formats::output::AtomicFile;
use raster::{Error, Result};

/// Header and root directory live in the first 16 KB (the spec's limit, so a
/// reader gets both with its first request).
pub const RESERVED: u64 = 16_384;
const HEADER_LEN: usize = 127;
/// Tiles up to this size are compared for deduplication: blank sky, uniform
/// areas, transparent padding. Photo tiles are all different and much larger.
const DEDUP_MAX: usize = 16 << 10;
/// Entries per leaf directory: about 20 KB compressed, so a viewer fetches the
/// header and root (16 KB) and one leaf before its first tile.
const LEAF_ENTRIES: usize = 4096;

/// What a tile is, for the header's tile type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileType {
    Png = 2,
    Jpeg = 3,
    Webp = 4,
}

impl From<crate::TileFormat> for TileType {
    fn from(f: crate::TileFormat) -> TileType {
        match f {
            crate::TileFormat::Png => TileType::Png,
            crate::TileFormat::Jpeg { .. } => TileType::Jpeg,
            crate::TileFormat::Webp { .. } => TileType::Webp,
        }
    }
}

/// One addressed tile (or run of identical ones) in the data section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub tile_id: u64,
    pub offset: u64,
    pub length: u32,
    pub run_length: u32,
}

/// The tile ID of (z, x, y): tiles of the zooms above z, then the position on
/// the Hilbert curve of zoom z.
pub fn tile_id(z: u32, x: u32, y: u32) -> u64 {
    let above: u64 = (0..z).map(|k| 1u64 << (2 * k)).sum();
    let (mut x, mut y) = (x as u64, y as u64);
    let mut d = 0u64;
    let mut s = (1u64 << z) / 2;
    while s > 0 {
        let rx = u64::from(x & s > 0);
        let ry = u64::from(y & s > 0);
        d += s * s * ((3 * rx) ^ ry);
        // Rotate the quadrant so the curve continues.
        if ry == 0 {
            if rx == 1 {
                x = s - 1 - (x & (s - 1));
                y = s - 1 - (y & (s - 1));
            }
            std::mem::swap(&mut x, &mut y);
        }
        s /= 2;
    }
    above + d
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
            tile_type,
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

/// A directory: the entry count, then columns of delta-coded IDs, run lengths,
/// lengths and offsets (0 for "right after the previous one"), as varints, gzipped.
fn serialize(entries: &[Entry]) -> std::io::Result<Vec<u8>> {
    let mut b = Vec::with_capacity(entries.len() * 6);
    varint(&mut b, entries.len() as u64);
    let mut last = 0;
    for e in entries {
        varint(&mut b, e.tile_id - last);
        last = e.tile_id;
    }
    entries
        .iter()
        .for_each(|e| varint(&mut b, e.run_length as u64));
    entries.iter().for_each(|e| varint(&mut b, e.length as u64));
    for (i, e) in entries.iter().enumerate() {
        let follows = i > 0 && e.offset == entries[i - 1].offset + entries[i - 1].length as u64;
        varint(&mut b, if follows { 0 } else { e.offset + 1 });
    }
    gzip(&b)
}

fn varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8 & 0x7F) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    g.write_all(bytes)?;
    g.finish()
}

/// The 127-byte header's fields: (offset, length) of each section.
struct Header {
    root: (u64, u64),
    metadata: (u64, u64),
    leaves: (u64, u64),
    data: (u64, u64),
    addressed: u64,
    entries: u64,
    contents: u64,
    tile_type: TileType,
    zooms: (u8, u8),
}

impl Header {
    fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..7].copy_from_slice(b"PMTiles");
        h[7] = 3;
        let fields = [
            self.root.0,
            self.root.1,
            self.metadata.0,
            self.metadata.1,
            self.leaves.0,
            self.leaves.1,
            self.data.0,
            self.data.1,
            self.addressed,
            self.entries,
            self.contents,
        ];
        for (i, v) in fields.iter().enumerate() {
            h[8 + 8 * i..16 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        h[96] = 0; // not clustered: tiles are stored in the order they are made
        h[97] = 2; // directories and metadata: gzip
        h[98] = 1; // tiles: no compression (PNG, JPEG and WebP compress themselves)
        h[99] = self.tile_type as u8;
        (h[100], h[101]) = self.zooms;
        // Bounds and centre are geographic; an image has none (zeros), and the
        // centre zoom is the top.
        h[118] = self.zooms.0;
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_ids_follow_the_hilbert_curve_of_each_zoom() {
        assert_eq!(tile_id(0, 0, 0), 0);
        assert_eq!(
            [
                tile_id(1, 0, 0),
                tile_id(1, 0, 1),
                tile_id(1, 1, 1),
                tile_id(1, 1, 0)
            ],
            [1, 2, 3, 4]
        );
        assert_eq!(tile_id(2, 0, 0), 5);
        // Every tile of zoom 3 gets a distinct id in its zoom's range.
        let mut ids: Vec<u64> = (0..8)
            .flat_map(|x| (0..8).map(move |y| tile_id(3, x, y)))
            .collect();
        ids.sort();
        assert_eq!(ids, (21..85).collect::<Vec<u64>>());
    }

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
