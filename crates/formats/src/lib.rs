//! Readers and writers of the formats giga works with, all as strip streams.
//!
//! [`open`] recognises a file by its signature and returns a
//! [`raster::Source`]; [`create`] returns a [`raster::Sink`] writing under a
//! temporary name that becomes the real name only when the sink finishes.
//! Each format lives in its own module; [`Format`] says what each can hold.

#![deny(missing_docs)]

mod budget;
pub mod encode;
mod guard;
mod io;
mod jpeg;
mod kro;
pub mod output;
pub mod pmtiles;
mod png;
mod pnm;
mod psd;
mod tiff_lzw;
mod tiff_read;
mod tiff_write;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use raster::{Error, ImageInfo, Result, SampleType, Sink, Source};

pub use budget::{decode_budget, set_decode_budget, DEFAULT_BUDGET};
pub use guard::set_quiet_panics;
pub use io::keep_freed_memory;

/// Strips are about this many bytes: large enough for fast I/O and parallel
/// work, small enough that a few of them stay well under the memory budget.
/// (1 MB and 2 MB tile and convert equally fast; 1 MB holds 4 MB less.)
pub const STRIP_BYTES: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// The formats giga knows.
pub enum Format {
    /// KRO, Autopano's raw format (`docs/spec/kro.md`).
    Kro,
    /// TIFF and BigTIFF.
    Tiff,
    /// Photoshop PSD and PSB (the flat composite).
    Psd,
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// Netpbm PGM, PPM and PAM.
    Pnm,
    /// Read only: giga's PMTiles archives (written by `giga tile --archive pmtiles`).
    Pmtiles,
}

impl Format {
    /// Every format, in the order `detect` and messages use.
    pub const ALL: [Format; 7] = [
        Format::Kro,
        Format::Tiff,
        Format::Psd,
        Format::Png,
        Format::Jpeg,
        Format::Pnm,
        Format::Pmtiles,
    ];

    /// The format's name for messages ("TIFF", "PMTiles").
    pub fn name(self) -> &'static str {
        match self {
            Format::Kro => "KRO",
            Format::Tiff => "TIFF",
            Format::Psd => "PSD",
            Format::Png => "PNG",
            Format::Jpeg => "JPEG",
            Format::Pnm => "PNM",
            Format::Pmtiles => "PMTiles",
        }
    }

    fn extensions(self) -> &'static [&'static str] {
        match self {
            Format::Kro => &["kro"],
            Format::Tiff => &["tif", "tiff", "btf", "tf8"],
            Format::Psd => &["psd", "psb"],
            Format::Png => &["png"],
            Format::Jpeg => &["jpg", "jpeg", "jpe"],
            Format::Pnm => &["ppm", "pgm", "pam", "pnm"],
            Format::Pmtiles => &["pmtiles"],
        }
    }

    /// The format named by a path's extension, if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Format::ALL
            .into_iter()
            .find(|f| f.extensions().contains(&ext.as_str()))
    }

    /// Parses a format name as given to `--format` (any of its extensions, or its name).
    pub fn from_name(name: &str) -> Option<Format> {
        let n = name.to_ascii_lowercase();
        let n = n.trim_start_matches('.');
        Format::ALL.into_iter().find(|f| {
            f.name().eq_ignore_ascii_case(n)
                || f.extensions().contains(&n)
                || (n == "psb" && *f == Format::Psd)
        })
    }

    /// Recognises a file from its first bytes.
    pub fn detect(head: &[u8]) -> Option<Format> {
        if head.starts_with(b"KRO") {
            Some(Format::Kro)
        } else if head.starts_with(b"II*\0")
            || head.starts_with(b"MM\0*")
            || head.starts_with(b"II+\0")
            || head.starts_with(b"MM\0+")
        {
            Some(Format::Tiff)
        } else if head.starts_with(b"PMTiles") {
            Some(Format::Pmtiles)
        } else if head.starts_with(b"8BPS") {
            Some(Format::Psd)
        } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Format::Png)
        } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Format::Jpeg)
        } else if head.len() >= 2 && head[0] == b'P' && matches!(head[1], b'5' | b'6' | b'7') {
            Some(Format::Pnm)
        } else {
            None
        }
    }

    /// Why this format cannot hold `info`, if it cannot. Alpha is never a
    /// reason: formats without it get the image flattened onto a background.
    pub fn cannot_hold(self, info: &ImageInfo) -> Option<String> {
        let (w, h) = (info.width, info.height);
        let side = w.max(h);
        let depth = info.format.sample;
        match self {
            Format::Kro | Format::Tiff => None,
            Format::Pmtiles => Some("giga writes PMTiles archives with giga tile IN OUTDIR --archive pmtiles".into()),
            Format::Psd if side > psd::PSB_MAX_SIDE => Some(format!(
                "{w}x{h} is too large for PSB (at most {} px a side); write BigTIFF (.tif) or KRO (.kro) instead",
                psd::PSB_MAX_SIDE
            )),
            Format::Psd => None,
            Format::Jpeg if side > jpeg::MAX_SIDE => Some(format!(
                "{w}x{h} is too large for JPEG (at most {} px a side); write BigTIFF (.tif), PSB (.psb) or KRO (.kro), or tile it",
                jpeg::MAX_SIDE
            )),
            Format::Jpeg if depth != SampleType::U8 => {
                Some(format!("JPEG holds 8-bit samples only, the image is {}; add --depth 8", info.format))
            }
            Format::Png | Format::Pnm if depth == SampleType::F32 => Some(format!(
                "{} holds 8 or 16-bit integers only, the image is 32-bit float; add --depth 16 or --depth 8",
                self.name()
            )),
            Format::Png if side > i32::MAX as u32 => Some("too large for PNG".into()),
            _ => None,
        }
    }

    /// Whether the format can embed an ICC profile.
    pub fn holds_icc(self) -> bool {
        !matches!(self, Format::Kro | Format::Pnm | Format::Pmtiles)
    }

    /// Whether the format stores an alpha channel.
    pub fn has_alpha(self) -> bool {
        self != Format::Jpeg
    }
}

/// Compression of TIFF output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Stored as is.
    None,
    /// Deflate (libdeflate level 6), the default.
    Deflate,
    /// PackBits run lengths.
    PackBits,
}

/// Choices a writer may need; each format uses what applies to it.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// TIFF: `Some(true)` forces BigTIFF, `Some(false)` forbids it, `None` decides by size.
    pub bigtiff: Option<bool>,
    /// TIFF compression.
    pub compression: Compression,
    /// TIFF tile side in pixels (a multiple of 16).
    pub tile_size: u32,
    /// JPEG quality, 1..=100.
    pub quality: u8,
    /// TIFF: add reduced-resolution pages (a multi-resolution TIFF).
    pub pyramid: bool,
    /// An ICC profile to embed (TIFF, PSD, PNG, JPEG; the others can't hold one).
    pub icc: Option<Vec<u8>>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            bigtiff: None,
            compression: Compression::Deflate,
            tile_size: 256,
            quality: 90,
            pyramid: false,
            icc: None,
        }
    }
}

/// An open input: its strip source and what `giga info` reports about it.
pub struct Opened {
    /// The image as strips.
    pub source: Box<dyn Source>,
    /// What the file is.
    pub format: Format,
    /// The file's length in bytes.
    pub file_size: u64,
    /// Format-specific facts, e.g. the KRO pixel data offset or TIFF compression.
    pub details: Vec<(&'static str, String)>,
    /// The embedded ICC colour profile (TIFF, PSD, PNG, JPEG), as stored.
    pub icc: Option<Vec<u8>>,
}

/// Opens an image for streaming, recognising the format by its signature.
pub fn open(path: &Path) -> Result<Opened> {
    open_reduced(path, 1).map(|(opened, _)| opened)
}

/// Opens an image, decoded up to `reduce` times smaller where its format can do
/// that cheaply (JPEG, by 2, 4 or 8: libjpeg's DCT scaling); returns it and the
/// reduction it got (1 for other formats), each pixel the mean of such a block.
pub fn open_reduced(path: &Path, reduce: u32) -> Result<(Opened, u32)> {
    // Before opening: opening a FIFO would wait for a writer forever.
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    refuse_non_file(path, &meta)?;
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; 16];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    let head = &head[..n];
    let format =
        match Format::detect(head) {
            Some(f) => f,
            None if n == 0 => return Err(Error::invalid(path, "empty file")),
            None if Format::from_path(path) == Some(Format::Kro) => Format::Kro, // the KRO parser explains what is wrong
            None => return Err(Error::invalid(
                path,
                "not an image giga reads (expected KRO, TIFF, PSD/PSB, PNG, JPEG, PNM or PMTiles)",
            )),
        };
    let file_size = meta.len();
    let jpeg_reduce = [8, 4, 2].into_iter().find(|&k| k <= reduce).unwrap_or(1);
    let got = if format == Format::Jpeg {
        jpeg_reduce
    } else {
        1
    };
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(path, e))?;
    let no_icc = |(source, details)| (source, details, None);
    let (source, details, icc) = match format {
        Format::Kro => no_icc(kro::open(path, file)?),
        Format::Tiff => tiff_read::open(path, file)?,
        Format::Psd => psd::open(path, file)?,
        Format::Png => png::open(path, file)?,
        Format::Jpeg => jpeg::open(path, file, jpeg_reduce)?,
        Format::Pnm => no_icc(pnm::open(path, file)?),
        Format::Pmtiles => no_icc(pmtiles::open(path, file)?),
    };
    budget::check_rows(path, &source.info())?;
    let opened = Opened {
        source,
        format,
        file_size,
        details,
        icc,
    };
    Ok((opened, got))
}

/// Refuses inputs that are not regular files: folders, FIFOs, devices, sockets
/// (giga needs an image's size up front and reads some inputs twice).
pub fn refuse_non_file(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let what = if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        return Ok(());
    };
    Err(Error::invalid(
        path,
        format!("is {what}, not an image file; giga reads images from regular files"),
    ))
}

/// Creates a writer of `format` for an image like `info` at `path`. The
/// caller converts the strips to what the format holds beforehand (see
/// [`Format::cannot_hold`] and [`Format::has_alpha`]).
pub fn create(
    path: &Path,
    format: Format,
    info: &ImageInfo,
    opts: &WriteOptions,
) -> Result<Box<dyn Sink>> {
    if let Some(why) = format.cannot_hold(info) {
        return Err(Error::invalid(path, why));
    }
    match format {
        Format::Kro => kro::create(path, info),
        Format::Tiff => tiff_write::create(path, info, opts),
        Format::Psd => psd::create(path, info, opts.icc.as_deref()),
        Format::Png => png::create(path, info, opts.icc.as_deref()),
        Format::Jpeg => jpeg::create(path, info, opts),
        Format::Pnm => pnm::create(path, info),
        Format::Pmtiles => unreachable!("cannot_hold refuses it"),
    }
}
