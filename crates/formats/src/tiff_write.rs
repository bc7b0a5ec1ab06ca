//! A tiled TIFF / BigTIFF writer, optionally pyramidal.
//!
//! Strips are regrouped into rows of tiles; the tiles of each row are
//! compressed in parallel and appended in order. Offsets are kept in memory
//! (16 bytes a tile: 15 MB for 62 gigapixels) and the directories are
//! written at the end, after which the header is patched to point at them.
//! A pyramid (`--pyramid`) adds reduced levels as further pages (halved,
//! 2x2 average weighted by alpha, until one tile holds the level), each
//! streamed from the level above as its rows arrive: what IIPImage,
//! Cantaloupe and libvips read as a multi-resolution TIFF.

use std::cell::RefCell;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rayon::prelude::*;

use raster::{Error, ImageInfo, Result, RowBlocks, SampleType, Sink, Strip};

use crate::output::AtomicFile;
use crate::{Compression, WriteOptions};

/// libdeflate level: 6 matches zlib's default ratio at about twice its speed.
const DEFLATE_LEVEL: i32 = 6;

pub(crate) fn create(path: &Path, info: &ImageInfo, opts: &WriteOptions) -> Result<Box<dyn Sink>> {
    let tile = opts.tile_size;
    if tile == 0 || tile % 16 != 0 {
        return Err(Error::invalid(
            path,
            format!("TIFF tile size {tile} must be a positive multiple of 16"),
        ));
    }
    let across = info.width.div_ceil(tile) as u64;
    let down = info.height.div_ceil(tile) as u64;
    let tile_bytes = tile as u64 * tile as u64 * info.format.pixel_bytes() as u64;
    // Worst case: incompressible data grows by 1/128 with PackBits, less with deflate.
    let worst =
        (across * down * tile_bytes).saturating_mul(130) / 128 + across * down * 16 + (1 << 20);
    let bigtiff = opts
        .bigtiff
        .unwrap_or(worst.saturating_mul(if opts.pyramid { 4 } else { 3 }) / 3 > u32::MAX as u64);
    let out = AtomicFile::create(path)?;
    let header: &[u8] = if bigtiff {
        b"II\x2b\x00\x08\x00\x00\x00\0\0\0\0\0\0\0\0"
    } else {
        b"II\x2a\x00\0\0\0\0"
    };
    out.file().write_all(header).map_err(|e| out.err(e))?;
    let mut levels = vec![Level::new(*info, tile)];
    // Halved pages down to one tile.
    while opts.pyramid
        && levels
            .last()
            .is_some_and(|l| l.info.width > tile || l.info.height > tile)
    {
        let last = levels.last().unwrap().info;
        let info = ImageInfo {
            width: last.width.div_ceil(2),
            height: last.height.div_ceil(2),
            ..last
        };
        levels.push(Level::new(info, tile));
    }
    Ok(Box::new(TiffWriter {
        out,
        tile,
        bigtiff,
        compression: opts.compression,
        pos: header.len() as u64,
        levels,
        icc: opts.icc.clone(),
    }))
}

/// One page of the file: its tiles' offsets and the rows waiting for a full row of tiles.
struct Level {
    info: ImageInfo,
    blocks: RowBlocks,
    offsets: Vec<u64>,
    counts: Vec<u64>,
    /// A row waiting for its partner before the reduction into the next level.
    pending: Option<Strip>,
}

impl Level {
    fn new(info: ImageInfo, tile: u32) -> Level {
        let n = (info.width.div_ceil(tile) as usize) * (info.height.div_ceil(tile) as usize);
        Level {
            info,
            blocks: RowBlocks::new(tile),
            offsets: Vec::with_capacity(n),
            counts: Vec::with_capacity(n),
            pending: None,
        }
    }
}

struct TiffWriter {
    out: AtomicFile,
    tile: u32,
    bigtiff: bool,
    compression: Compression,
    pos: u64,
    levels: Vec<Level>,
    icc: Option<Vec<u8>>,
}

thread_local! {
    static DEFLATER: RefCell<Option<libdeflater::Compressor>> = const { RefCell::new(None) };
}

impl TiffWriter {
    /// Cuts one row of tiles out of `block` (up to `tile` rows), compresses
    /// them in parallel and appends them to the file.
    fn write_tile_row(&mut self, level: usize, block: &Strip) -> Result<()> {
        let tile = self.tile as usize;
        let info = self.levels[level].info;
        let px = info.format.pixel_bytes();
        let across = info.width.div_ceil(self.tile) as usize;
        let compression = self.compression;
        let mut le = Vec::new();
        let bytes: &[u8] = if cfg!(target_endian = "little") {
            block.samples.as_bytes()
        } else {
            block.samples.extend_le_bytes(&mut le);
            &le
        };
        let row_bytes = block.width as usize * px;
        let rows = block.height as usize;
        let tiles: Vec<Vec<u8>> = (0..across)
            .into_par_iter()
            .map(|col| {
                // Edge tiles are padded to full size with zeros, as TIFF requires.
                let mut t = vec![0u8; tile * tile * px];
                let x0 = col * tile * px;
                let n = (row_bytes - x0).min(tile * px);
                for r in 0..rows {
                    t[r * tile * px..r * tile * px + n]
                        .copy_from_slice(&bytes[r * row_bytes + x0..r * row_bytes + x0 + n]);
                }
                match compression {
                    Compression::None => t,
                    Compression::PackBits => packbits(&t, tile * px),
                    Compression::Deflate => deflate(&t),
                }
            })
            .collect();
        let mut joined = Vec::with_capacity(tiles.iter().map(|t| t.len()).sum());
        let l = &mut self.levels[level];
        for t in &tiles {
            l.offsets.push(self.pos + joined.len() as u64);
            l.counts.push(t.len() as u64);
            joined.extend_from_slice(t);
        }
        self.out
            .file()
            .write_all(&joined)
            .map_err(|e| self.out.err(e))?;
        self.pos += joined.len() as u64;
        if !self.bigtiff && self.pos > u32::MAX as u64 {
            return Err(Error::invalid(
                self.out.dest(),
                "the file passed 4 GiB: write it as BigTIFF (--bigtiff)",
            ));
        }
        Ok(())
    }

    /// The directory of page `level` written at `data_start` (values first,
    /// then the IFD), pointing to the next page's IFD at `next` (0: last page).
    fn directory(&self, level: usize, data_start: u64, next: u64) -> (Vec<u8>, u64) {
        let l = &self.levels[level];
        let info = &l.info;
        let spp = info.format.channels as u64;
        let bits = info.format.sample.bits() as u64;
        let sample_format = if info.format.sample == SampleType::F32 {
            3
        } else {
            1
        };
        let photometric = if info.format.channels <= 2 { 1 } else { 2 };
        let compression = match self.compression {
            Compression::None => 1,
            Compression::Deflate => 8,
            Compression::PackBits => 32773,
        };
        // Values too large for an entry go into `data`, written before the directory.
        let mut data = Vec::new();
        let mut entries: Vec<(u16, u16, u64, Vec<u8>)> = Vec::new();
        let (long_type, long_size) = if self.bigtiff { (16u16, 8) } else { (4u16, 4) };
        let shorts = |v: &[u64]| {
            v.iter()
                .flat_map(|&x| (x as u16).to_le_bytes())
                .collect::<Vec<u8>>()
        };
        let longs = |v: &[u64]| {
            v.iter()
                .flat_map(|&x| (x as u32).to_le_bytes())
                .collect::<Vec<u8>>()
        };
        let offs = |v: &[u64]| -> Vec<u8> {
            if self.bigtiff {
                v.iter().flat_map(|&x| x.to_le_bytes()).collect()
            } else {
                longs(v)
            }
        };
        if level > 0 {
            entries.push((254, 4, 1, longs(&[1]))); // NewSubfileType: a reduced-resolution page
        }
        entries.push((256, 4, 1, longs(&[info.width as u64])));
        entries.push((257, 4, 1, longs(&[info.height as u64])));
        entries.push((258, 3, spp, shorts(&vec![bits; spp as usize])));
        entries.push((259, 3, 1, shorts(&[compression])));
        entries.push((262, 3, 1, shorts(&[photometric])));
        entries.push((277, 3, 1, shorts(&[spp])));
        entries.push((284, 3, 1, shorts(&[1])));
        entries.push((305, 2, 5, b"giga\0".to_vec()));
        entries.push((322, 4, 1, longs(&[self.tile as u64])));
        entries.push((323, 4, 1, longs(&[self.tile as u64])));
        entries.push((324, long_type, l.offsets.len() as u64, offs(&l.offsets)));
        entries.push((325, long_type, l.counts.len() as u64, offs(&l.counts)));
        if info.format.has_alpha() {
            entries.push((338, 3, 1, shorts(&[2]))); // unassociated alpha
        }
        entries.push((339, 3, spp, shorts(&vec![sample_format; spp as usize])));
        if let Some(icc) = &self.icc {
            entries.push((34675, 7, icc.len() as u64, icc.clone())); // InterColorProfile, every page
        }
        let inline = if self.bigtiff { 8 } else { 4 };
        let mut ifd = Vec::new();
        let n = entries.len() as u64;
        let mut value_fields = Vec::new();
        for (_, _, _, value) in &entries {
            if value.len() > inline {
                if data.len() % 2 == 1 {
                    data.push(0);
                }
                let at = data_start + data.len() as u64;
                data.extend_from_slice(value);
                value_fields.push(if self.bigtiff {
                    at.to_le_bytes().to_vec()
                } else {
                    (at as u32).to_le_bytes().to_vec()
                });
            } else {
                let mut v = value.clone();
                v.resize(inline, 0);
                value_fields.push(v);
            }
        }
        if data.len() % 2 == 1 {
            data.push(0);
        }
        let ifd_at = data_start + data.len() as u64;
        if self.bigtiff {
            ifd.extend_from_slice(&n.to_le_bytes());
        } else {
            ifd.extend_from_slice(&(n as u16).to_le_bytes());
        }
        for ((tag, typ, count, _), field) in entries.iter().zip(value_fields) {
            ifd.extend_from_slice(&tag.to_le_bytes());
            ifd.extend_from_slice(&typ.to_le_bytes());
            if self.bigtiff {
                ifd.extend_from_slice(&count.to_le_bytes());
            } else {
                ifd.extend_from_slice(&(*count as u32).to_le_bytes());
            }
            ifd.extend_from_slice(&field);
        }
        if self.bigtiff {
            ifd.extend_from_slice(&next.to_le_bytes());
        } else {
            ifd.extend_from_slice(&(next as u32).to_le_bytes());
        }
        let _ = long_size;
        data.extend_from_slice(&ifd);
        (data, ifd_at)
    }
}

fn deflate(data: &[u8]) -> Vec<u8> {
    DEFLATER.with(|d| {
        let mut d = d.borrow_mut();
        let c = d.get_or_insert_with(|| {
            libdeflater::Compressor::new(libdeflater::CompressionLvl::new(DEFLATE_LEVEL).unwrap())
        });
        let mut out = vec![0u8; c.zlib_compress_bound(data.len())];
        let n = c
            .zlib_compress(data, &mut out)
            .expect("buffer sized by compress_bound");
        out.truncate(n);
        out
    })
}

/// PackBits (TIFF compression 32773), row by row as the spec asks.
pub(crate) fn packbits(data: &[u8], row_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 128 + 1);
    for row in data.chunks(row_len) {
        let mut i = 0;
        while i < row.len() {
            let mut run = 1;
            while i + run < row.len() && run < 128 && row[i + run] == row[i] {
                run += 1;
            }
            if run >= 2 {
                out.push((1 - run as i32) as u8);
                out.push(row[i]);
                i += run;
            } else {
                // A literal stretch until the next run of 3 (a run of 2 inside literals doesn't pay).
                let start = i;
                while i < row.len() && i - start < 128 {
                    if i + 2 < row.len() && row[i] == row[i + 1] && row[i] == row[i + 2] {
                        break;
                    }
                    i += 1;
                }
                out.push((i - start - 1) as u8);
                out.extend_from_slice(&row[start..i]);
            }
        }
    }
    out
}

impl TiffWriter {
    /// Adds rows to page `level`: writes its completed rows of tiles and
    /// reduces pairs of rows into the next page.
    fn push(&mut self, level: usize, strip: Strip) -> Result<()> {
        if level + 1 < self.levels.len() {
            let reduced = self.reduce(level, &strip, false);
            if let Some(r) = reduced {
                self.push(level + 1, r)?;
            }
        }
        for block in self.levels[level].blocks.push(strip) {
            self.write_tile_row(level, &block)?;
        }
        Ok(())
    }

    /// Pairs the rows of `strip` (after any pending row) into half as many
    /// rows of the next page; with `last`, an odd row pairs with itself.
    fn reduce(&mut self, level: usize, strip: &Strip, last: bool) -> Option<Strip> {
        let l = &mut self.levels[level];
        let mut rows = match l.pending.take() {
            Some(mut p) => {
                p.samples
                    .extend_from(&strip.samples, 0, strip.samples.len());
                p.height += strip.height;
                p
            }
            None => strip.clone(),
        };
        if rows.height % 2 == 1 && !last {
            let keep = rows.window(0, rows.width, rows.height - 1, 1, rows.y + rows.height - 1);
            rows = rows.window(0, rows.width, 0, rows.height - 1, rows.y);
            l.pending = Some(keep);
        }
        if rows.height == 0 {
            return None;
        }
        let out_w = self.levels[level + 1].info.width;
        Some(raster::ops::reduce_2x2(&rows, out_w, rows.y / 2))
    }
}

impl Sink for TiffWriter {
    fn write(&mut self, strip: Strip) -> Result<()> {
        self.push(0, strip)
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        for level in 0..self.levels.len() {
            if level + 1 < self.levels.len() {
                if let Some(p) = self.levels[level].pending.take() {
                    let r = self.reduce_pending(level, p);
                    self.push(level + 1, r)?;
                }
            }
            if let Some(block) = self.levels[level].blocks.finish() {
                self.write_tile_row(level, &block)?;
            }
        }
        // Directories from the last page back, so each can point to the next.
        let mut next = 0u64;
        let mut all = Vec::new();
        let mut at = self.pos;
        let mut ifds = Vec::new();
        for level in (0..self.levels.len()).rev() {
            let (dir, ifd_at) = self.directory(level, at, next);
            at += dir.len() as u64;
            next = ifd_at;
            ifds.push(ifd_at);
            all.extend_from_slice(&dir);
        }
        if !self.bigtiff && at > u32::MAX as u64 {
            return Err(Error::invalid(
                self.out.dest(),
                "the file passed 4 GiB: write it as BigTIFF (--bigtiff)",
            ));
        }
        let mut file = self.out.file();
        file.write_all(&all).map_err(|e| self.out.err(e))?;
        let first = next; // level 0's IFD, written last
        let patch = if self.bigtiff {
            (8, first.to_le_bytes().to_vec())
        } else {
            (4, (first as u32).to_le_bytes().to_vec())
        };
        file.write_all_at(&patch.1, patch.0)
            .map_err(|e| self.out.err(e))?;
        self.out.commit()
    }
}

impl TiffWriter {
    /// The last, unpaired row of a page with an odd height, paired with itself.
    fn reduce_pending(&self, level: usize, row: Strip) -> Strip {
        let out_w = self.levels[level + 1].info.width;
        raster::ops::reduce_2x2(&row, out_w, row.y / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unpackbits(mut d: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some((&n, rest)) = d.split_first() {
            let n = n as i8;
            if n >= 0 {
                out.extend_from_slice(&rest[..n as usize + 1]);
                d = &rest[n as usize + 1..];
            } else if n != -128 {
                out.extend(std::iter::repeat_n(rest[0], (1 - n as i32) as usize));
                d = &rest[1..];
            } else {
                d = rest;
            }
        }
        out
    }

    proptest! {
        #[test]
        fn packbits_round_trips(data in proptest::collection::vec(prop_oneof![Just(0u8), Just(7u8), any::<u8>()], 0..700)) {
            let packed = packbits(&data, 300);
            prop_assert_eq!(unpackbits(&packed), data);
        }
    }
}
