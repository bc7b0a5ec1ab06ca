//! TIFF and BigTIFF input through the `tiff` crate: stripped or tiled,
//! uncompressed, deflate, LZW or PackBits. Tiled images are read one row of
//! tiles at a time; uncompressed stripped images are read row by row with
//! positioned reads, so even a single 4 GB strip never sits in memory.

use std::fs::File;
use std::io::BufReader;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;

use tiff::decoder::{ChunkType, Decoder, DecodingResult, Limits};
use tiff::tags::Tag;
use tiff::ColorType;

use raster::{Error, ImageInfo, PixelFormat, Result, SampleType, Samples, Source, Strip};

use crate::guard::guard;
use crate::STRIP_BYTES;

type Details = Vec<(&'static str, String)>;

fn corrupt(path: &Path, e: tiff::TiffError) -> Error {
    match e {
        tiff::TiffError::LimitsExceeded => Error::invalid(
            path,
            format!(
                "the TIFF declares a value or chunk above the decoding budget of {} (--max-memory GB raises it)",
                crate::budget::human(crate::budget::decode_budget())
            ),
        ),
        // A seek past what the file system allows (an offset of 2^63) is a corrupt offset.
        tiff::TiffError::IoError(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            Error::invalid(path, "corrupt TIFF: an offset points far outside the file")
        }
        tiff::TiffError::IoError(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => {
            Error::io(path, e)
        }
        e => Error::invalid(path, format!("corrupt or unsupported TIFF: {e}")),
    }
}

pub(crate) fn open(path: &Path, file: File) -> Result<(Box<dyn Source>, Details, Option<Vec<u8>>)> {
    guard(path, "corrupt TIFF", || open_inner(path, file))
}

fn open_inner(path: &Path, file: File) -> Result<(Box<dyn Source>, Details, Option<Vec<u8>>)> {
    let raw = file.try_clone().map_err(|e| Error::io(path, e))?;
    let err = |e| corrupt(path, e);
    let mut dec = decoder(path, file)?;
    let (width, height) = dec.dimensions().map_err(err)?;
    if width == 0 || height == 0 {
        return Err(Error::invalid(
            path,
            format!("invalid TIFF: size {width}x{height} has a zero side"),
        ));
    }
    let (channels, bits) = match dec.colortype().map_err(err)? {
        ColorType::Gray(b) => (1, b),
        ColorType::GrayA(b) => (2, b),
        ColorType::RGB(b) => (3, b),
        ColorType::RGBA(b) => (4, b),
        ColorType::Multiband { bit_depth, num_samples } if (1..=4).contains(&num_samples) => (num_samples as u8, bit_depth),
        other => {
            return Err(Error::invalid(path, format!("unsupported TIFF colour type {other:?} (giga reads gray, RGB, with or without alpha)")))
        }
    };
    let sample_format = match dec.find_tag(Tag::SampleFormat).map_err(err)? {
        Some(v) => v.into_u16_vec().map_err(err)?.first().copied().unwrap_or(1),
        None => 1,
    };
    let sample = match (bits, sample_format) {
        (8, 1) => SampleType::U8,
        (16, 1) => SampleType::U16,
        (32, 3) => SampleType::F32,
        _ => {
            let kind = match sample_format {
                1 => "unsigned",
                2 => "signed",
                3 => "float",
                _ => "unknown",
            };
            return Err(Error::invalid(
                path,
                format!("unsupported TIFF samples: {bits}-bit {kind} (giga reads 8/16-bit unsigned and 32-bit float)"),
            ));
        }
    };
    if dec
        .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)
        .map_err(err)?
        .unwrap_or(1)
        != 1
    {
        return Err(Error::invalid(path, "separate-plane TIFF is not supported (rewrite it with gdal_translate -co INTERLEAVE=PIXEL)"));
    }
    let compression = dec
        .find_tag_unsigned::<u16>(Tag::Compression)
        .map_err(err)?
        .unwrap_or(1);
    let icc = match dec.find_tag(Tag::IccProfile).map_err(err)? {
        Some(v) => Some(v.into_u8_vec().map_err(err)?),
        None => None,
    };
    let info = ImageInfo {
        width,
        height,
        format: PixelFormat::new(channels, sample),
    };
    let chunk = dec.get_chunk_type();
    let (cw, ch) = dec.chunk_dimensions();
    let mut magic = [0u8; 4];
    let big =
        crate::io::read_up_to(&raw, &mut magic, 0).is_ok() && (magic[2] == 43 || magic[3] == 43);
    let mut details = vec![
        (
            "container",
            if big { "BigTIFF" } else { "TIFF" }.to_string(),
        ),
        ("compression", compression_name(compression).to_string()),
        (
            "layout",
            match chunk {
                ChunkType::Tile => format!("tiles of {cw}x{ch}"),
                ChunkType::Strip => format!("strips of {ch} rows"),
            },
        ),
    ];
    if dec.byte_order() == tiff::tags::ByteOrder::BigEndian {
        details.push(("byte order", "big-endian".into()));
    }
    let big_endian = dec.byte_order() == tiff::tags::ByteOrder::BigEndian;
    // LZW chunks the tiff crate refuses get a second, lenient try (see `tiff_lzw`).
    let predictor = dec
        .find_tag_unsigned::<u16>(Tag::Predictor)
        .map_err(err)?
        .unwrap_or(1);
    let lzw =
        if compression == 5 && (predictor == 1 || (predictor == 2 && sample != SampleType::F32)) {
            let (o, n) = match chunk {
                ChunkType::Tile => (Tag::TileOffsets, Tag::TileByteCounts),
                ChunkType::Strip => (Tag::StripOffsets, Tag::StripByteCounts),
            };
            Some(LenientLzw {
                file: raw.try_clone().map_err(|e| Error::io(path, e))?,
                offsets: dec.get_tag_u64_vec(o).map_err(err)?,
                lengths: dec.get_tag_u64_vec(n).map_err(err)?,
                predictor,
                big_endian,
            })
        } else {
            None
        };
    check_chunk_rows(path, &info, chunk, (cw, ch), compression)?;
    let raw_rows = if chunk == ChunkType::Strip && compression == 1 {
        let offsets = dec.get_tag_u64_vec(Tag::StripOffsets).map_err(err)?;
        Some(RawRows {
            file: raw,
            offsets,
            rows_per_strip: ch,
            big_endian: dec.byte_order() == tiff::tags::ByteOrder::BigEndian,
        })
    } else {
        None
    };
    let reader = TiffReader {
        path: path.to_path_buf(),
        pool: Mutex::new(vec![dec]),
        info,
        chunk,
        chunk_w: cw,
        chunk_h: ch,
        next: 0,
        raw_rows,
        lzw,
        decoded: Default::default(),
    };
    Ok((Box::new(reader), details, icc))
}

/// Refuses chunks too big to decode within the budget: a compressed strip is
/// decoded whole, and so is a row of tiles (uncompressed strips are read by rows).
fn check_chunk_rows(
    path: &Path,
    info: &ImageInfo,
    chunk: ChunkType,
    (cw, ch): (u32, u32),
    compression: u16,
) -> Result<()> {
    let px = info.format.pixel_bytes() as u64;
    let (what, bytes) = match chunk {
        ChunkType::Strip if compression == 1 => return Ok(()),
        ChunkType::Strip => (
            format!("a compressed strip of {} rows", ch.min(info.height)),
            info.width as u64 * ch.min(info.height) as u64 * px,
        ),
        ChunkType::Tile => (
            format!("a row of {cw}x{ch} tiles"),
            (info.width.div_ceil(cw.max(1)) as u64 * cw as u64).saturating_mul(ch as u64 * px),
        ),
    };
    crate::budget::check(
        path,
        &what,
        bytes,
        "rewrite the TIFF tiled (e.g. gdal_translate -co TILED=YES, or vips copy IN OUT.tif[tile])",
    )
}

fn decoder(path: &Path, file: File) -> Result<Decoder<BufReader<File>>> {
    let dec =
        Decoder::new(BufReader::with_capacity(1 << 20, file)).map_err(|e| corrupt(path, e))?;
    // Tag values and decoded chunks count against the budget (the crate holds
    // a tag's values as 32-byte enums: an ICC tag of 2^30 bytes would be 34 GB).
    let budget = usize::try_from(crate::budget::decode_budget()).unwrap_or(usize::MAX);
    let mut limits = Limits::unlimited();
    limits.decoding_buffer_size = budget;
    limits.intermediate_buffer_size = budget;
    limits.ifd_value_size = budget;
    Ok(dec.with_limits(limits))
}

fn compression_name(c: u16) -> &'static str {
    match c {
        1 => "none",
        5 => "LZW",
        7 => "JPEG",
        8 | 32946 => "deflate",
        32773 => "PackBits",
        50000 => "zstd",
        _ => "other",
    }
}

/// Uncompressed strips, read directly.
struct RawRows {
    file: File,
    offsets: Vec<u64>,
    rows_per_strip: u32,
    big_endian: bool,
}

/// What the lenient LZW decoder needs to find and undo a chunk.
struct LenientLzw {
    file: File,
    offsets: Vec<u64>,
    lengths: Vec<u64>,
    predictor: u16,
    big_endian: bool,
}

struct TiffReader {
    path: PathBuf,
    /// Decoders for the worker threads: chunks are decoded in parallel, each
    /// thread taking a decoder of its own (they don't share state).
    pool: Mutex<Vec<Decoder<BufReader<File>>>>,
    info: ImageInfo,
    chunk: ChunkType,
    chunk_w: u32,
    chunk_h: u32,
    next: u32,
    raw_rows: Option<RawRows>,
    lzw: Option<LenientLzw>,
    /// A decoded row of tiles, already cut into strips: a row of tiles is as tall as a tile
    /// (256 rows, 358 MB at 350,000 px RGBA), and strips waiting in the pipeline should not
    /// each be that big.
    decoded: std::collections::VecDeque<Strip>,
}

fn into_samples(path: &Path, r: DecodingResult) -> Result<Samples> {
    match r {
        DecodingResult::U8(v) => Ok(Samples::U8(v)),
        DecodingResult::U16(v) => Ok(Samples::U16(v)),
        DecodingResult::F32(v) => Ok(Samples::F32(v)),
        _ => Err(Error::invalid(path, "unsupported TIFF sample type")),
    }
}

impl TiffReader {
    /// Chunk `i` (of `used` size) through `tiff_lzw`, as native samples.
    fn lenient_lzw(&self, i: u32, used: (u32, u32)) -> Result<Samples> {
        let l = self.lzw.as_ref().expect("checked");
        let (i, info) = (i as usize, self.info);
        let (Some(&offset), Some(&length)) = (l.offsets.get(i), l.lengths.get(i)) else {
            return Err(Error::invalid(
                &self.path,
                format!("corrupt TIFF: no offset for chunk {i}"),
            ));
        };
        let sample_bytes = info.format.sample.bytes();
        let (width, height) = match self.chunk {
            ChunkType::Tile => (self.chunk_w as usize, self.chunk_h as usize),
            ChunkType::Strip => (info.width as usize, used.1 as usize),
        };
        let chunk = crate::tiff_lzw::Chunk {
            offset,
            length,
            width,
            height,
            used_width: used.0 as usize,
            used_height: used.1 as usize,
            pixel_bytes: info.format.pixel_bytes(),
            sample_bytes,
            big_endian: l.big_endian,
            predictor: l.predictor,
        };
        let bytes = crate::tiff_lzw::decode(&l.file, &chunk)
            .map_err(|m| Error::invalid(&self.path, format!("corrupt TIFF: chunk {i}: {m}")))?;
        let be = l.big_endian;
        Ok(match info.format.sample {
            SampleType::U8 => Samples::U8(bytes),
            SampleType::U16 => Samples::U16(
                bytes
                    .chunks_exact(2)
                    .map(|b| {
                        if be {
                            u16::from_be_bytes([b[0], b[1]])
                        } else {
                            u16::from_le_bytes([b[0], b[1]])
                        }
                    })
                    .collect(),
            ),
            SampleType::F32 => Samples::F32(
                bytes
                    .chunks_exact(4)
                    .map(|b| {
                        let b = [b[0], b[1], b[2], b[3]];
                        if be {
                            f32::from_be_bytes(b)
                        } else {
                            f32::from_le_bytes(b)
                        }
                    })
                    .collect(),
            ),
        })
    }

    fn read_raw(&mut self, rows: u32) -> Result<Strip> {
        let raw = self.raw_rows.as_ref().unwrap();
        let info = self.info;
        let row_bytes = info.row_bytes();
        let mut samples = Samples::zeros(info.format.sample, rows as usize * info.row_samples());
        for (i, row) in samples
            .as_bytes_mut()
            .chunks_exact_mut(row_bytes)
            .enumerate()
        {
            let y = self.next + i as u32;
            let strip = (y / raw.rows_per_strip) as usize;
            let Some(&start) = raw.offsets.get(strip) else {
                return Err(Error::invalid(
                    &self.path,
                    format!("corrupt TIFF: no strip offset for row {y}"),
                ));
            };
            let at = start + (y % raw.rows_per_strip) as u64 * row_bytes as u64;
            raw.file
                .read_exact_at(row, at)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::UnexpectedEof => Error::invalid(
                        &self.path,
                        format!("truncated TIFF: row {y} lies past the end of the file"),
                    ),
                    _ => Error::io(&self.path, e),
                })?;
        }
        if raw.big_endian != cfg!(target_endian = "big") {
            // swap_if_little_endian swaps exactly when file and machine order differ here.
            samples.swap_if_little_endian();
        }
        Ok(Strip::new(
            self.next,
            info.width,
            rows,
            info.format.channels,
            samples,
        ))
    }

    /// Decodes chunks `indices` on all cores; returns each one's data size and samples.
    fn decode(&self, indices: &[u32]) -> Result<Vec<((u32, u32), Samples)>> {
        indices
            .par_iter()
            .map(|&i| {
                let popped = self.pool.lock().unwrap().pop();
                let mut dec = match popped {
                    Some(d) => d,
                    None => decoder(
                        &self.path,
                        File::open(&self.path).map_err(|e| Error::io(&self.path, e))?,
                    )?,
                };
                let r = guard(&self.path, "corrupt TIFF", || {
                    let dims = dec.chunk_data_dimensions(i);
                    let s = match dec.read_chunk(i) {
                        Ok(d) => into_samples(&self.path, d)?,
                        Err(e)
                            if self.lzw.is_some() && e.to_string().contains("no lzw end code") =>
                        {
                            self.lenient_lzw(i, dims)?
                        }
                        Err(e) => return Err(corrupt(&self.path, e)),
                    };
                    Ok((dims, s))
                });
                self.pool.lock().unwrap().push(dec);
                r
            })
            .collect()
    }

    fn read_chunks(&mut self) -> Result<Strip> {
        let info = self.info;
        let c = info.format.channels as usize;
        let sz = info.format.sample.bytes();
        let chunk_row = self.next / self.chunk_h;
        let across = info.width.div_ceil(self.chunk_w);
        let path = self.path.clone();
        match self.chunk {
            ChunkType::Strip => {
                // Enough whole strips for one of giga's strips, decoded together.
                let per = (info.rows_for_bytes(STRIP_BYTES) / self.chunk_h).max(1);
                let last = info.height.div_ceil(self.chunk_h);
                let indices: Vec<u32> = (chunk_row..(chunk_row + per).min(last)).collect();
                let rows = (indices.len() as u32 * self.chunk_h).min(info.height - self.next);
                let want = rows as usize * info.row_samples();
                let mut out = Samples::with_capacity(info.format.sample, want);
                for (k, (_, s)) in self.decode(&indices)?.into_iter().enumerate() {
                    let strip_rows = self
                        .chunk_h
                        .min(info.height - self.next - k as u32 * self.chunk_h)
                        as usize;
                    let n = strip_rows * info.row_samples();
                    if s.len() < n {
                        return Err(Error::invalid(
                            &path,
                            format!("corrupt TIFF: strip {} is short", indices[k]),
                        ));
                    }
                    out.extend_from(&s, 0, n);
                }
                Ok(Strip::new(
                    self.next,
                    info.width,
                    rows,
                    info.format.channels,
                    out,
                ))
            }
            ChunkType::Tile => {
                let rows = self.chunk_h.min(info.height - self.next);
                let indices: Vec<u32> = (0..across).map(|col| chunk_row * across + col).collect();
                let tiles = self.decode(&indices)?;
                // The row of tiles goes straight into strips of giga's size, queued.
                let per = info.rows_for_bytes(STRIP_BYTES).min(rows);
                let mut parts: Vec<Samples> = (0..rows.div_ceil(per))
                    .map(|k| {
                        Samples::zeros(
                            info.format.sample,
                            (per.min(rows - k * per)) as usize * info.row_samples(),
                        )
                    })
                    .collect();
                let stride = info.row_samples() * sz;
                for (col, ((tw, th), tile)) in tiles.into_iter().enumerate() {
                    let (tw, th) = (tw as usize, th.min(rows) as usize);
                    if tile.len() < tw * th * c {
                        return Err(Error::invalid(
                            &path,
                            format!("corrupt TIFF: tile {} is short", indices[col]),
                        ));
                    }
                    let src = tile.as_bytes();
                    let x0 = col * self.chunk_w as usize * c * sz;
                    let n = tw * c * sz;
                    for r in 0..th {
                        let (part, pr) = (r / per as usize, r % per as usize);
                        parts[part].as_bytes_mut()[pr * stride + x0..pr * stride + x0 + n]
                            .copy_from_slice(&src[r * n..r * n + n]);
                    }
                }
                let mut y = self.next;
                for samples in parts {
                    let h = (samples.len() / info.row_samples()) as u32;
                    self.decoded.push_back(Strip::new(
                        y,
                        info.width,
                        h,
                        info.format.channels,
                        samples,
                    ));
                    y += h;
                }
                Ok(self.decoded.pop_front().expect("a row of tiles has rows"))
            }
        }
    }
}

impl Source for TiffReader {
    fn info(&self) -> ImageInfo {
        self.info
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        if self.next >= self.info.height {
            return Ok(None);
        }
        let strip = if self.raw_rows.is_some() {
            let rows = self
                .info
                .rows_for_bytes(STRIP_BYTES)
                .min(self.info.height - self.next);
            self.read_raw(rows)?
        } else if let Some(strip) = self.decoded.pop_front() {
            strip
        } else {
            self.read_chunks()?
        };
        self.next += strip.height;
        Ok(Some(strip))
    }
}
