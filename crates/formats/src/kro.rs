//! KRO: a 20-byte header and raw big-endian pixels, so any window can be
//! read with one positioned read per row.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ::kro::{Depth, Header, LengthCheck, HEADER_LEN};
use raster::{
    Error, ImageInfo, PixelFormat, Rect, Result, SampleType, Samples, Sink, Source, Strip,
};

use crate::io::{next_rows, read_exact_at_into, read_up_to, RawWriter};
use crate::output::AtomicFile;

fn sample_type(d: Depth) -> SampleType {
    match d {
        Depth::U8 => SampleType::U8,
        Depth::U16 => SampleType::U16,
        Depth::F32 => SampleType::F32,
    }
}

fn depth(s: SampleType) -> Depth {
    match s {
        SampleType::U8 => Depth::U8,
        SampleType::U16 => Depth::U16,
        SampleType::F32 => Depth::F32,
    }
}

pub(crate) fn open(
    path: &Path,
    file: File,
) -> Result<(Box<dyn Source>, Vec<(&'static str, String)>)> {
    let mut head = [0u8; HEADER_LEN as usize];
    let n = read_up_to(&file, &mut head, 0).map_err(|e| Error::io(path, e))?;
    let header = Header::parse(&head[..n]).map_err(|e| Error::invalid(path, e.to_string()))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut warnings = Vec::new();
    match header.check_len(len) {
        LengthCheck::Exact => {}
        LengthCheck::Trailing(extra) => warnings.push(format!(
            "{}: {extra} bytes after the pixel data (ignored)",
            path.display()
        )),
        LengthCheck::Truncated(missing) => {
            return Err(Error::invalid(
                path,
                format!(
                    "truncated KRO: the header says {}x{} {}-bit x{} ({} bytes), the file is {} bytes short",
                    header.width,
                    header.height,
                    header.depth.bits(),
                    header.channels,
                    header.file_len().unwrap_or(0),
                    missing
                ),
            ))
        }
    }
    let info = ImageInfo {
        width: header.width,
        height: header.height,
        format: PixelFormat::new(header.channels as u8, sample_type(header.depth)),
    };
    let details = vec![("pixel data offset", HEADER_LEN.to_string())];
    let rect = Rect {
        x: 0,
        y: 0,
        width: info.width,
        height: info.height,
    };
    let reader = KroReader {
        path: path.to_path_buf(),
        file,
        header,
        rect,
        next: 0,
        warnings,
    };
    Ok((Box::new(reader), details))
}

struct KroReader {
    path: PathBuf,
    file: File,
    header: Header,
    /// The window being read (the whole image unless restricted).
    rect: Rect,
    /// Next row to read, relative to `rect`.
    next: u32,
    warnings: Vec<String>,
}

impl Source for KroReader {
    fn info(&self) -> ImageInfo {
        ImageInfo {
            width: self.rect.width,
            height: self.rect.height,
            format: PixelFormat::new(self.header.channels as u8, sample_type(self.header.depth)),
        }
    }

    fn restrict(&mut self, rect: Rect) -> bool {
        self.rect = rect;
        true
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let info = self.info();
        let Some(rows) = next_rows(&info, self.next) else {
            return Ok(None);
        };
        let row_bytes = info.row_bytes();
        let y0 = self.rect.y + self.next;
        let whole_rows = self.rect.width == self.header.width;
        let (mut samples, result) = if whole_rows && info.format.sample == SampleType::U8 {
            // Full rows are contiguous: one read for the whole strip, into memory not zeroed first.
            let mut v = Vec::new();
            let r = read_exact_at_into(
                &self.file,
                &mut v,
                rows as usize * row_bytes,
                self.header.pixel_offset(0, y0),
            );
            (Samples::U8(v), r)
        } else {
            let mut samples =
                Samples::zeros(info.format.sample, rows as usize * info.row_samples());
            let buf = samples.as_bytes_mut();
            let r = if whole_rows {
                self.file
                    .read_exact_at(buf, self.header.pixel_offset(0, y0))
            } else {
                buf.chunks_exact_mut(row_bytes)
                    .enumerate()
                    .try_for_each(|(i, row)| {
                        self.file.read_exact_at(
                            row,
                            self.header.pixel_offset(self.rect.x, y0 + i as u32),
                        )
                    })
            };
            (samples, r)
        };
        result.map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => Error::invalid(
                &self.path,
                format!("file ended early, before row {y0} (was it truncated while reading?)"),
            ),
            _ => Error::io(&self.path, e),
        })?;
        samples.swap_if_little_endian();
        let strip = Strip::new(self.next, info.width, rows, info.format.channels, samples);
        self.next += rows;
        Ok(Some(strip))
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

pub(crate) fn create(path: &Path, info: &ImageInfo) -> Result<Box<dyn Sink>> {
    let header = Header::new(
        info.width,
        info.height,
        depth(info.format.sample),
        info.format.channels as u32,
    )
    .map_err(|e| Error::invalid(path, e.to_string()))?;
    Ok(Box::new(RawWriter::new(
        AtomicFile::create(path)?,
        &header.to_bytes(),
    )?))
}
