//! PNG through the `png` crate: 8 and 16-bit, gray or RGB, with or without
//! alpha. Palettes, low bit depths and tRNS are expanded on reading.
//! Interlaced PNGs can only be decoded whole, so they are (PNG tops out far
//! below gigapixel sizes in practice).

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use png::{BitDepth, ColorType, Transformations};
use raster::{Error, ImageInfo, PixelFormat, Result, SampleType, Samples, Sink, Source, Strip};

use crate::guard::guard;
use crate::io::next_rows;
use crate::output::AtomicFile;

type Details = Vec<(&'static str, String)>;

/// The largest ICC profile kept; real ones are at most a few MB.
const ICC_MAX: u64 = 32 << 20;

fn corrupt(path: &Path, e: png::DecodingError) -> Error {
    match e {
        png::DecodingError::IoError(e) if e.kind() != std::io::ErrorKind::UnexpectedEof => {
            Error::io(path, e)
        }
        png::DecodingError::IoError(_) => Error::invalid(path, "truncated PNG"),
        e => Error::invalid(path, format!("corrupt PNG: {e}")),
    }
}

pub(crate) fn open(path: &Path, file: File) -> Result<(Box<dyn Source>, Details, Option<Vec<u8>>)> {
    guard(path, "corrupt PNG", || {
        let mut dec = png::Decoder::new(BufReader::with_capacity(1 << 20, file));
        // What the crate may allocate: its row buffers, and an ICC profile of at most
        // ICC_MAX (a bigger one is dropped, as a corrupt one is).
        let hdr = dec.read_header_info().map_err(|e| corrupt(path, e))?;
        let row = hdr.width as u64 * 8; // RGBA, 16-bit: the widest a row expands to
        crate::budget::check_row_width(path, hdr.width, 8)?;
        let bytes = (ICC_MAX + 8 * row + (1 << 20)) as usize;
        dec.set_limits(png::Limits { bytes });
        dec.set_transformations(Transformations::EXPAND);
        let mut reader = dec.read_info().map_err(|e| corrupt(path, e))?;
        let (color, depth) = reader.output_color_type();
        let channels = match color {
            ColorType::Grayscale => 1,
            ColorType::GrayscaleAlpha => 2,
            ColorType::Rgb => 3,
            ColorType::Rgba => 4,
            ColorType::Indexed => {
                return Err(Error::invalid(path, "unexpected palette after expansion"))
            }
        };
        let sample = if depth == BitDepth::Sixteen {
            SampleType::U16
        } else {
            SampleType::U8
        };
        let (width, height) = (reader.info().width, reader.info().height);
        let interlaced = reader.info().interlaced;
        let icc = reader.info().icc_profile.as_ref().map(|p| p.to_vec());
        let info = ImageInfo {
            width,
            height,
            format: PixelFormat::new(channels, sample),
        };
        let mut details = vec![(
            "interlaced",
            if interlaced { "yes" } else { "no" }.to_string(),
        )];
        let whole = if interlaced {
            let size = reader.output_buffer_size().unwrap_or(usize::MAX);
            crate::budget::check(
                path,
                &format!("an interlaced PNG of {width}x{height} (decoded whole)"),
                size as u64,
                "rewrite it without interlacing (e.g. vips copy IN OUT.png[interlace=false])",
            )?;
            details.push(("note", "interlaced: decoded whole in memory".into()));
            let mut buf = vec![0u8; size];
            reader.next_frame(&mut buf).map_err(|e| corrupt(path, e))?;
            Some(buf)
        } else {
            None
        };
        let src = PngReader {
            path: path.to_path_buf(),
            reader,
            info,
            next: 0,
            whole,
        };
        Ok((Box::new(src) as Box<dyn Source>, details, icc))
    })
}

struct PngReader {
    path: PathBuf,
    reader: png::Reader<BufReader<File>>,
    info: ImageInfo,
    next: u32,
    /// The decoded image, for interlaced files only.
    whole: Option<Vec<u8>>,
}

impl Source for PngReader {
    fn info(&self) -> ImageInfo {
        self.info
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let info = self.info;
        let Some(rows) = next_rows(&info, self.next) else {
            return Ok(None);
        };
        let row_bytes = info.row_bytes();
        let mut bytes = Vec::with_capacity(rows as usize * row_bytes);
        if let Some(whole) = &self.whole {
            let start = self.next as usize * row_bytes;
            bytes.extend_from_slice(&whole[start..start + rows as usize * row_bytes]);
        } else {
            let path = self.path.clone();
            guard(&path, "corrupt PNG", || {
                for _ in 0..rows {
                    match self.reader.next_row().map_err(|e| corrupt(&path, e))? {
                        Some(row) if row.data().len() >= row_bytes => {
                            bytes.extend_from_slice(&row.data()[..row_bytes])
                        }
                        _ => {
                            return Err(Error::invalid(
                                &path,
                                "truncated PNG: fewer rows than the header says",
                            ))
                        }
                    }
                }
                Ok(())
            })?;
        }
        let samples = Samples::from_be_bytes(info.format.sample, &bytes);
        let strip = Strip::new(self.next, info.width, rows, info.format.channels, samples);
        self.next += rows;
        Ok(Some(strip))
    }
}

pub(crate) fn create(path: &Path, info: &ImageInfo, icc: Option<&[u8]>) -> Result<Box<dyn Sink>> {
    let out = AtomicFile::create(path)?;
    let file = out.file().try_clone().map_err(|e| out.err(e))?;
    let mut png_info = png::Info::with_size(info.width, info.height);
    png_info.icc_profile = icc.map(|p| std::borrow::Cow::Owned(p.to_vec()));
    let err = |e: png::EncodingError| Error::invalid(path, format!("PNG encoder: {e}"));
    let mut enc = png::Encoder::with_info(file, png_info).map_err(err)?;
    enc.set_color(match info.format.channels {
        1 => ColorType::Grayscale,
        2 => ColorType::GrayscaleAlpha,
        3 => ColorType::Rgb,
        _ => ColorType::Rgba,
    });
    enc.set_depth(if info.format.sample == SampleType::U16 {
        BitDepth::Sixteen
    } else {
        BitDepth::Eight
    });
    enc.set_compression(png::Compression::Fast);
    let writer = enc
        .write_header()
        .map_err(err)?
        .into_stream_writer_with_size(1 << 20)
        .map_err(err)?;
    Ok(Box::new(PngWriter {
        out,
        writer: Some(writer),
        buf: Vec::new(),
    }))
}

struct PngWriter {
    out: AtomicFile,
    writer: Option<png::StreamWriter<'static, File>>,
    buf: Vec<u8>,
}

impl Sink for PngWriter {
    fn write(&mut self, strip: Strip) -> Result<()> {
        self.buf.clear();
        strip.samples.extend_be_bytes(&mut self.buf);
        self.writer
            .as_mut()
            .unwrap()
            .write_all(&self.buf)
            .map_err(|e| self.out.err(e))
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        let w = self.writer.take().unwrap();
        w.finish()
            .map_err(|e| Error::invalid(self.out.dest(), format!("PNG encoder: {e}")))?;
        self.out.commit()
    }
}
