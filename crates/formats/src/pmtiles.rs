//! PMTiles v3, the single-file tile archive (notes on the spec: `docs/spec/pmtiles.md`):
//! the format's pieces (tile IDs on Hilbert curves, directories, the header),
//! shared with the archive writer in `pyramid`, and a reader of giga's image
//! archives: random access to any tile, and the full-resolution level as a
//! strip [`Source`] (so `giga convert NAME.pmtiles OUT.tif` copies the image).

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use raster::{Error, ImageInfo, PixelFormat, Result, SampleType, Samples, Source, Strip};

/// The header's length.
pub const HEADER_LEN: usize = 127;
/// Where the header and root directory must end: the first 16 KB.
pub const ROOT_END: u64 = 16_384;
/// Directories and metadata larger than this once inflated are refused (a leaf of
/// giga's is ~30 KB; 32 MB is ~8 million entries, ~200 MB once parsed).
const INFLATED_MAX: u64 = 32 << 20;

/// What a tile is, for the header's tile type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileType {
    /// PNG tiles.
    Png = 2,
    /// JPEG tiles.
    Jpeg = 3,
    /// WebP tiles.
    Webp = 4,
}

/// One addressed tile (or run of identical ones), or with `run_length` 0 a leaf directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The first tile's ID.
    pub tile_id: u64,
    /// Where its bytes start, from the data section (or the leaf section).
    pub offset: u64,
    /// How many bytes.
    pub length: u32,
    /// How many consecutive IDs share those bytes; 0: a leaf directory.
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

/// A directory: the entry count, then columns of delta-coded IDs, run lengths,
/// lengths and offsets (0 for "right after the previous one"), as varints, gzipped.
pub fn serialize_directory(entries: &[Entry]) -> std::io::Result<Vec<u8>> {
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

/// The entries of a gzipped directory; `None` if it is malformed.
pub fn parse_directory(gz: &[u8]) -> Option<Vec<Entry>> {
    let raw = gunzip(gz).ok()?;
    let mut at = 0;
    let n = read_varint(&raw, &mut at)?;
    // Each entry takes at least four bytes: a count beyond that is a lie.
    if n == 0 || n > raw.len() as u64 / 4 {
        return None;
    }
    let n = n as usize;
    let mut entries = vec![
        Entry {
            tile_id: 0,
            offset: 0,
            length: 0,
            run_length: 0
        };
        n
    ];
    let mut last = 0u64;
    for e in entries.iter_mut() {
        last = last.checked_add(read_varint(&raw, &mut at)?)?;
        e.tile_id = last;
    }
    for e in entries.iter_mut() {
        e.run_length = u32::try_from(read_varint(&raw, &mut at)?).ok()?;
    }
    for e in entries.iter_mut() {
        e.length = u32::try_from(read_varint(&raw, &mut at)?).ok()?;
    }
    for i in 0..n {
        let v = read_varint(&raw, &mut at)?;
        entries[i].offset = match (v, i) {
            (0, i) if i > 0 => entries[i - 1]
                .offset
                .checked_add(entries[i - 1].length as u64)?,
            (0, _) => return None,
            (v, _) => v - 1,
        };
    }
    Some(entries)
}

fn varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8 & 0x7F) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn read_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= ((byte & 0x7F) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Gzip at the default level: directories and metadata.
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    g.write_all(bytes)?;
    g.finish()
}

/// Inflates at most `INFLATED_MAX` bytes (a directory can't be a gzip bomb).
fn gunzip(gz: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .take(INFLATED_MAX + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > INFLATED_MAX {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    Ok(out)
}

/// The header's fields: (offset, length) of each section, counts, type, zooms.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// (offset, length) of the root directory.
    pub root: (u64, u64),
    /// (offset, length) of the JSON metadata.
    pub metadata: (u64, u64),
    /// (offset, length) of the leaf directories.
    pub leaves: (u64, u64),
    /// (offset, length) of the tile data.
    pub data: (u64, u64),
    /// Tiles addressed (runs counted out).
    pub addressed: u64,
    /// Entries with tiles (not leaves).
    pub entries: u64,
    /// Distinct tiles stored.
    pub contents: u64,
    /// 2 PNG, 3 JPEG, 4 WebP.
    pub tile_type: u8,
    /// (min, max) zoom.
    pub zooms: (u8, u8),
}

impl Header {
    /// The 127 bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..7].copy_from_slice(b"PMTiles");
        h[7] = 3;
        for (i, v) in self.fields().iter().enumerate() {
            h[8 + 8 * i..16 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        h[96] = 0; // not clustered: tiles are stored in the order they are made
        h[97] = 2; // directories and metadata: gzip
        h[98] = 1; // tiles: no compression (PNG, JPEG and WebP compress themselves)
        h[99] = self.tile_type;
        (h[100], h[101]) = self.zooms;
        // Bounds and centre are geographic; an image has none (zeros). Centre zoom: the top.
        h[118] = self.zooms.0;
        h
    }

    fn fields(&self) -> [u64; 11] {
        [
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
        ]
    }

    /// Parses a header; `Err` says what is wrong.
    pub fn parse(h: &[u8]) -> std::result::Result<Header, String> {
        if h.len() < HEADER_LEN || &h[..7] != b"PMTiles" {
            return Err("not a PMTiles archive".into());
        }
        if h[7] != 3 {
            return Err(format!("PMTiles version {} (giga reads version 3)", h[7]));
        }
        if h[97] != 2 && h[97] != 1 {
            return Err("its directories are compressed with something other than gzip".into());
        }
        if h[98] != 1 {
            return Err("its tiles are compressed a second time (giga reads plain PNG, JPEG and WebP tiles)".into());
        }
        let u =
            |i: usize| u64::from_le_bytes(h[8 + 8 * i..16 + 8 * i].try_into().expect("8 bytes"));
        Ok(Header {
            root: (u(0), u(1)),
            metadata: (u(2), u(3)),
            leaves: (u(4), u(5)),
            data: (u(6), u(7)),
            addressed: u(8),
            entries: u(9),
            contents: u(10),
            tile_type: h[99],
            zooms: (h[100], h[101]),
        })
    }
}

/// The entry covering `id` in a sorted directory: the last starting at or before it.
fn find(entries: &[Entry], id: u64) -> Option<Entry> {
    let i = entries
        .partition_point(|e| e.tile_id <= id)
        .checked_sub(1)?;
    let e = entries[i];
    (e.run_length == 0 || id - e.tile_id < e.run_length as u64).then_some(e)
}

/// A giga image archive opened for reading.
pub struct Archive {
    path: PathBuf,
    file: File,
    len: u64,
    /// Its header.
    pub header: Header,
    root: Vec<Entry>,
    leaves: Mutex<HashMap<u64, Arc<Vec<Entry>>>>,
    /// The image's width (from giga's metadata).
    pub width: u32,
    /// The image's height.
    pub height: u32,
    /// Tile side in pixels.
    pub tile: u32,
    /// The JSON metadata.
    pub metadata: serde_json::Value,
}

impl Archive {
    /// Opens a giga image archive; refuses anything it can't read with one line.
    pub fn open(path: &Path, file: File) -> Result<Archive> {
        let bad = |m: String| Error::invalid(path, m);
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut head = vec![0u8; HEADER_LEN];
        file.read_exact_at(&mut head, 0)
            .map_err(|_| bad("truncated PMTiles: shorter than its 127-byte header".into()))?;
        let header = Header::parse(&head).map_err(bad)?;
        let read = |(at, n): (u64, u64), what: &str| -> Result<Vec<u8>> {
            if at.checked_add(n).is_none_or(|end| end > len) || n > INFLATED_MAX {
                return Err(bad(format!(
                    "truncated or corrupt PMTiles: its {what} lies past the end of the file"
                )));
            }
            let mut b = vec![0u8; n as usize];
            file.read_exact_at(&mut b, at)
                .map_err(|e| Error::io(path, e))?;
            Ok(b)
        };
        let root = parse_directory(&read(header.root, "root directory")?)
            .ok_or_else(|| bad("corrupt PMTiles: the root directory can't be read".into()))?;
        let meta = read(header.metadata, "metadata")?;
        let meta = if header.metadata.1 == 0 {
            Vec::new()
        } else {
            gunzip(&meta)
                .map_err(|_| bad("corrupt PMTiles: the metadata can't be inflated".into()))?
        };
        let metadata: serde_json::Value = serde_json::from_slice(&meta).unwrap_or_default();
        let g = &metadata["giga"];
        let num = |k: &str| {
            g[k].as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .filter(|&v| v > 0)
        };
        let (Some(width), Some(height), Some(tile)) =
            (num("width"), num("height"), num("tileSize"))
        else {
            return Err(bad("a PMTiles archive without an image's size in its metadata (giga reads the archives giga tile --archive writes)".into()));
        };
        if !matches!(header.tile_type, 2..=4) {
            return Err(bad(format!(
                "PMTiles tile type {} (giga decodes PNG, JPEG and WebP tiles)",
                header.tile_type
            )));
        }
        Ok(Archive {
            path: path.to_path_buf(),
            file,
            len,
            header,
            root,
            leaves: Mutex::new(HashMap::new()),
            width,
            height,
            tile,
            metadata,
        })
    }

    /// The top zoom: full resolution.
    pub fn max_zoom(&self) -> u32 {
        self.header.zooms.1 as u32
    }

    /// Channels of the decoded tiles: RGB for JPEG, RGBA otherwise.
    pub fn channels(&self) -> usize {
        if self.header.tile_type == TileType::Jpeg as u8 {
            3
        } else {
            4
        }
    }

    fn corrupt(&self, what: &str) -> Error {
        Error::invalid(&self.path, format!("corrupt PMTiles: {what}"))
    }

    fn leaf(&self, e: Entry) -> Result<Arc<Vec<Entry>>> {
        if let Some(l) = self
            .leaves
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&e.offset)
        {
            return Ok(l.clone());
        }
        let b = self.read(self.header.leaves.0, e, "a leaf directory")?;
        let leaf = Arc::new(
            parse_directory(&b).ok_or_else(|| self.corrupt("a leaf directory can't be read"))?,
        );
        let mut cache = self.leaves.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 256 {
            cache.clear(); // a few MB at most; a 62-GP archive has ~300 leaves
        }
        cache.insert(e.offset, leaf.clone());
        Ok(leaf)
    }

    /// The bytes entry `e` points at, from the section starting at `base`.
    fn read(&self, base: u64, e: Entry, what: &str) -> Result<Vec<u8>> {
        let at = base
            .checked_add(e.offset)
            .filter(|a| a.saturating_add(e.length as u64) <= self.len)
            .ok_or_else(|| self.corrupt(&format!("{what} lies past the end of the file")))?;
        let mut b = vec![0u8; e.length as usize];
        self.file
            .read_exact_at(&mut b, at)
            .map_err(|er| Error::io(&self.path, er))?;
        Ok(b)
    }

    /// Tile (z, x, y)'s bytes, or `None` where the archive has none (a blank tile left out).
    pub fn tile_bytes(&self, z: u32, x: u32, y: u32) -> Result<Option<Vec<u8>>> {
        let id = tile_id(z, x, y);
        let mut dir: Arc<Vec<Entry>> = Arc::new(Vec::new());
        let mut in_root = true;
        for _ in 0..4 {
            let entries: &[Entry] = if in_root { &self.root } else { &dir };
            let Some(e) = find(entries, id) else {
                return Ok(None);
            };
            if e.run_length > 0 {
                return self.read(self.header.data.0, e, "a tile").map(Some);
            }
            dir = self.leaf(e)?;
            in_root = false;
        }
        Err(self.corrupt("directories nested more than four deep"))
    }

    /// Decodes tile bytes into 8-bit pixels of [`Archive::channels`]; (width, height, pixels).
    pub fn decode(&self, bytes: &[u8]) -> Result<(u32, u32, Vec<u8>)> {
        let c = self.channels();
        let bad = |m: &str| self.corrupt(&format!("a tile can't be decoded ({m})"));
        let (w, h, have, px) = match self.header.tile_type {
            3 => crate::guard::guard(&self.path, "corrupt PMTiles tile", || {
                let d = mozjpeg::Decompress::new_mem(bytes).map_err(|_| bad("JPEG"))?;
                let mut d = d.rgb().map_err(|_| bad("JPEG"))?;
                let (w, h) = (d.width() as u32, d.height() as u32);
                let px: Vec<u8> = d.read_scanlines().map_err(|_| bad("JPEG"))?;
                Ok((w, h, 3, px))
            })?,
            2 => {
                let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
                dec.set_transformations(
                    png::Transformations::EXPAND
                        | png::Transformations::STRIP_16
                        | png::Transformations::ALPHA,
                );
                let mut r = dec.read_info().map_err(|_| bad("PNG"))?;
                let mut px = vec![0u8; r.output_buffer_size().ok_or_else(|| bad("PNG"))?];
                let info = r.next_frame(&mut px).map_err(|_| bad("PNG"))?;
                let have = info.color_type.samples();
                px.truncate(info.buffer_size());
                (info.width, info.height, have, px)
            }
            _ => {
                let img = webp::Decoder::new(bytes)
                    .decode()
                    .ok_or_else(|| bad("WebP"))?;
                let have = if img.is_alpha() { 4 } else { 3 };
                (img.width(), img.height(), have, img.to_vec())
            }
        };
        if w > self.tile * 2 || h > self.tile * 2 || px.len() != (w * h) as usize * have {
            return Err(bad("its size"));
        }
        Ok((w, h, to_channels(px, have, c)))
    }
}

/// 8-bit pixels of `have` channels (gray, gray+alpha, RGB, RGBA) as `want` (3 or 4).
fn to_channels(px: Vec<u8>, have: usize, want: usize) -> Vec<u8> {
    if have == want {
        return px;
    }
    px.chunks_exact(have)
        .flat_map(|p| {
            let (rgb, a) = match have {
                1 => ([p[0]; 3], 255),
                2 => ([p[0]; 3], p[1]),
                3 => ([p[0], p[1], p[2]], 255),
                _ => ([p[0], p[1], p[2]], p[3]),
            };
            let mut o = [rgb[0], rgb[1], rgb[2], a];
            if want == 3 && a < 255 {
                // JPEG-like output: onto white, as tiles left out are.
                for v in o.iter_mut().take(3) {
                    *v = ((*v as u32 * a as u32 + 255 * (255 - a as u32) + 127) / 255) as u8;
                }
            }
            o.into_iter().take(want)
        })
        .collect()
}

/// The archive's full-resolution level as strips: one row of tiles at a time.
pub(crate) struct ArchiveReader {
    archive: Archive,
    info: ImageInfo,
    next: u32,
    queued: std::collections::VecDeque<Strip>,
}

type Details = Vec<(&'static str, String)>;

pub(crate) fn open(path: &Path, file: File) -> Result<(Box<dyn Source>, Details)> {
    let archive = Archive::open(path, file)?;
    let c = archive.channels();
    let info = ImageInfo {
        width: archive.width,
        height: archive.height,
        format: PixelFormat::new(c as u8, SampleType::U8),
    };
    let row = archive.width as u64 * archive.tile as u64 * c as u64;
    crate::budget::check(
        path,
        "a row of tiles",
        row * 2,
        "the archive's tiles are too big for its width",
    )?;
    let h = &archive.header;
    let kind = match h.tile_type {
        2 => "PNG",
        3 => "JPEG",
        _ => "WebP",
    };
    let details = vec![
        ("container", "PMTiles v3".to_string()),
        (
            "tiles",
            format!(
                "{} {kind} tiles of {} px, zooms {} to {}",
                h.addressed, archive.tile, h.zooms.0, h.zooms.1
            ),
        ),
        (
            "stored",
            format!(
                "{} distinct tiles, {} bytes of tile data",
                h.contents, h.data.1
            ),
        ),
        (
            "index",
            format!(
                "root directory {} bytes, leaf directories {} bytes",
                h.root.1, h.leaves.1
            ),
        ),
    ];
    Ok((
        Box::new(ArchiveReader {
            archive,
            info,
            next: 0,
            queued: Default::default(),
        }),
        details,
    ))
}

impl ArchiveReader {
    /// Decodes the row of top-zoom tiles holding row `self.next`, straight into strips
    /// of giga's size (as the TIFF reader does with its rows of tiles: no band copied).
    fn read_tile_row(&mut self) -> Result<()> {
        let (a, info) = (&self.archive, self.info);
        let (t, c) = (a.tile, a.channels());
        let ty = self.next / t;
        let rows = t.min(info.height - ty * t) as usize;
        let stride = info.row_bytes();
        let per = info.rows_for_bytes(crate::STRIP_BYTES).min(rows as u32) as usize;
        // Left-out tiles read as transparent, or white where tiles are JPEG.
        let blank = if c == 3 { 255 } else { 0 };
        let mut parts: Vec<Vec<u8>> = (0..rows.div_ceil(per))
            .map(|k| vec![blank; per.min(rows - k * per) * stride])
            .collect();
        for tx in 0..info.width.div_ceil(t) {
            let Some(bytes) = a.tile_bytes(a.max_zoom(), tx, ty)? else {
                continue;
            };
            let (w, h, px) = a.decode(&bytes)?;
            let cols = w.min(info.width - tx * t) as usize * c;
            for y in 0..(h as usize).min(rows) {
                let dst = (y % per) * stride + (tx * t) as usize * c;
                parts[y / per][dst..dst + cols].copy_from_slice(&px[y * w as usize * c..][..cols]);
            }
        }
        let mut y = self.next;
        for part in parts {
            let n = (part.len() / stride) as u32;
            self.queued
                .push_back(Strip::new(y, info.width, n, c as u8, Samples::U8(part)));
            y += n;
        }
        Ok(())
    }
}

impl Source for ArchiveReader {
    fn info(&self) -> ImageInfo {
        self.info
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        if self.next >= self.info.height {
            return Ok(None);
        }
        if self.queued.is_empty() {
            self.read_tile_row()?;
        }
        let s = self.queued.pop_front().expect("a row of tiles has rows");
        self.next += s.height;
        Ok(Some(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_ids_follow_the_hilbert_curve_of_each_zoom() {
        assert_eq!(tile_id(0, 0, 0), 0);
        let z1 = [
            tile_id(1, 0, 0),
            tile_id(1, 0, 1),
            tile_id(1, 1, 1),
            tile_id(1, 1, 0),
        ];
        assert_eq!(z1, [1, 2, 3, 4]);
        assert_eq!(tile_id(2, 0, 0), 5);
        let mut ids: Vec<u64> = (0..8)
            .flat_map(|x| (0..8).map(move |y| tile_id(3, x, y)))
            .collect();
        ids.sort();
        assert_eq!(ids, (21..85).collect::<Vec<u64>>());
    }

    #[test]
    fn directories_round_trip_and_lies_are_refused() {
        let e = |id, offset, length, run| Entry {
            tile_id: id,
            offset,
            length,
            run_length: run,
        };
        let d = vec![
            e(0, 0, 10, 1),
            e(1, 10, 5, 3),
            e(7, 0, 10, 1),
            e(9, 500, 7, 0),
        ];
        assert_eq!(
            parse_directory(&serialize_directory(&d).unwrap()).unwrap(),
            d
        );
        assert_eq!(find(&d, 3).map(|e| e.tile_id), Some(1));
        assert_eq!(find(&d, 5), None);
        assert_eq!(find(&d, 1000).map(|e| e.run_length), Some(0)); // a leaf covers the rest
                                                                   // A count of a billion entries in a few bytes; garbage; an empty directory.
        let mut lie = Vec::new();
        varint(&mut lie, 1 << 30);
        assert!(parse_directory(&gzip(&lie).unwrap()).is_none());
        assert!(parse_directory(b"not gzip").is_none());
        assert!(parse_directory(&gzip(&[0]).unwrap()).is_none());
    }
}
