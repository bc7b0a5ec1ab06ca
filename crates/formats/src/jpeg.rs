//! JPEG through mozjpeg (libjpeg-turbo's SIMD code): gray or RGB, 8-bit.
//!
//! libjpeg's state can't move between threads, so each decoder and encoder
//! lives on a thread of its own and trades strips over a bounded channel.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use mozjpeg::ColorSpace;
use raster::{Error, ImageInfo, PixelFormat, Result, SampleType, Samples, Sink, Source, Strip};

use crate::guard::guard;
use crate::output::AtomicFile;
use crate::{WriteOptions, STRIP_BYTES};

/// libjpeg's limit on a side (JPEG_MAX_DIMENSION).
pub const MAX_SIDE: u32 = 65_500;

type Details = Vec<(&'static str, String)>;

/// A buffered reader that remembers whether the decoder asked for bytes past
/// the end: libjpeg only warns about a truncated file and pads it with gray.
struct EofWatch {
    inner: BufReader<File>,
    hit: Arc<AtomicBool>,
}

impl Read for EofWatch {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.hit.store(true, Ordering::Relaxed);
        }
        Ok(n)
    }
}

impl BufRead for EofWatch {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        let b = self.inner.fill_buf()?;
        if b.is_empty() {
            self.hit.store(true, Ordering::Relaxed);
        }
        Ok(b)
    }
    fn consume(&mut self, n: usize) {
        self.inner.consume(n)
    }
}

pub(crate) fn open(path: &Path, file: File) -> Result<(Box<dyn Source>, Details, Option<Vec<u8>>)> {
    let (info_tx, info_rx) = sync_channel::<Result<(ImageInfo, Option<Vec<u8>>)>>(1);
    let (tx, rx) = sync_channel::<Result<Strip>>(1);
    let p = path.to_path_buf();
    let thread = std::thread::spawn(move || {
        let hit = Arc::new(AtomicBool::new(false));
        let reader = EofWatch {
            inner: BufReader::with_capacity(1 << 20, file),
            hit: hit.clone(),
        };
        let r = guard(&p, "corrupt JPEG", || {
            decode(&p, reader, &hit, &info_tx, &tx)
        });
        if let Err(e) = r {
            // Whoever waits (for the header or for strips) learns of the error.
            let _ = info_tx.try_send(Err(Error::Other(e.to_string())));
            let _ = tx.send(Err(e));
        }
    });
    let (info, icc) = match info_rx.recv() {
        Ok(Ok(got)) => got,
        Ok(Err(e)) => {
            let _ = thread.join();
            return Err(e);
        }
        Err(_) => return Err(Error::invalid(path, "corrupt JPEG: the decoder stopped")),
    };
    let details = vec![];
    Ok((
        Box::new(JpegReader {
            path: path.to_path_buf(),
            info,
            rx,
            thread: Some(thread),
            next: 0,
        }),
        details,
        icc,
    ))
}

fn decode(
    path: &Path,
    reader: EofWatch,
    hit: &AtomicBool,
    info_tx: &SyncSender<Result<(ImageInfo, Option<Vec<u8>>)>>,
    tx: &SyncSender<Result<Strip>>,
) -> Result<()> {
    let err = |e: std::io::Error| Error::invalid(path, format!("corrupt JPEG: {e}"));
    let d = mozjpeg::Decompress::builder()
        .with_markers(&[mozjpeg::Marker::APP(2)])
        .from_reader(reader)
        .map_err(err)?;
    let icc = icc_from_app2(d.markers().map(|m| m.data));
    let channels = match d.color_space() {
        ColorSpace::JCS_GRAYSCALE => 1,
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => {
            return Err(Error::invalid(
                path,
                "CMYK JPEG is not supported (convert it to RGB first)",
            ))
        }
        _ => 3,
    };
    let (w, h) = (d.width() as u32, d.height() as u32);
    let mut d = if channels == 1 {
        d.grayscale()
    } else {
        d.rgb()
    }
    .map_err(err)?;
    let info = ImageInfo {
        width: w,
        height: h,
        format: PixelFormat::new(channels, SampleType::U8),
    };
    if info_tx.send(Ok((info, icc))).is_err() {
        return Ok(());
    }
    let mut y = 0;
    while y < h {
        let rows = info.rows_for_bytes(STRIP_BYTES / 2).min(h - y);
        let mut buf = vec![0u8; rows as usize * info.row_bytes()];
        d.read_scanlines_into(&mut buf)
            .map_err(|_| Error::invalid(path, format!("truncated JPEG: no data after row {y}")))?;
        if hit.load(Ordering::Relaxed) {
            return Err(Error::invalid(
                path,
                format!("truncated JPEG: the data ends before row {}", y + rows),
            ));
        }
        if tx
            .send(Ok(Strip::new(y, w, rows, channels, Samples::U8(buf))))
            .is_err()
        {
            return Ok(()); // the reader was dropped: stop quietly
        }
        y += rows;
    }
    d.finish().map_err(err)?;
    Ok(())
}

/// Joins an ICC profile split over APP2 markers (`ICC_PROFILE\0`, sequence
/// number, count, data); none if a piece is missing.
fn icc_from_app2<'a>(markers: impl Iterator<Item = &'a [u8]>) -> Option<Vec<u8>> {
    let mut pieces: Vec<(u8, &[u8])> = markers
        .filter_map(|m| m.strip_prefix(b"ICC_PROFILE\0"))
        .filter(|m| m.len() >= 2)
        .map(|m| (m[0], &m[2..]))
        .collect();
    if pieces.is_empty() {
        return None;
    }
    pieces.sort_by_key(|p| p.0);
    let complete = pieces
        .iter()
        .enumerate()
        .all(|(i, p)| p.0 as usize == i + 1);
    complete.then(|| pieces.iter().flat_map(|p| p.1.iter().copied()).collect())
}

struct JpegReader {
    path: PathBuf,
    info: ImageInfo,
    rx: Receiver<Result<Strip>>,
    thread: Option<JoinHandle<()>>,
    next: u32,
}

impl Source for JpegReader {
    fn info(&self) -> ImageInfo {
        self.info
    }
    fn next_strip(&mut self) -> Result<Option<Strip>> {
        if self.next >= self.info.height {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
            return Ok(None);
        }
        match self.rx.recv() {
            Ok(r) => {
                let s = r?;
                self.next += s.height;
                Ok(Some(s))
            }
            Err(_) => Err(Error::invalid(
                &self.path,
                "corrupt JPEG: the decoder stopped",
            )),
        }
    }
}

pub(crate) fn create(path: &Path, info: &ImageInfo, opts: &WriteOptions) -> Result<Box<dyn Sink>> {
    let out = AtomicFile::create(path)?;
    let file = out.file().try_clone().map_err(|e| out.err(e))?;
    let (tx, rx) = sync_channel::<Strip>(1);
    let (info, quality, p, icc) = (*info, opts.quality, path.to_path_buf(), opts.icc.clone());
    let thread = std::thread::spawn(move || {
        guard(&p, "JPEG encoder failed", || {
            encode(&p, file, info, quality, icc, rx)
        })
    });
    Ok(Box::new(JpegWriter {
        out: Some(out),
        tx: Some(tx),
        thread: Some(thread),
    }))
}

fn encode(
    path: &Path,
    file: File,
    info: ImageInfo,
    quality: u8,
    icc: Option<Vec<u8>>,
    rx: Receiver<Strip>,
) -> Result<()> {
    let space = if info.format.channels == 1 {
        ColorSpace::JCS_GRAYSCALE
    } else {
        ColorSpace::JCS_RGB
    };
    let mut c = mozjpeg::Compress::new(space);
    c.set_size(info.width as usize, info.height as usize);
    c.set_fastest_defaults();
    c.set_quality(quality as f32);
    let io = |e: std::io::Error| Error::io(path, e);
    let mut started = c
        .start_compress(std::io::BufWriter::with_capacity(1 << 20, file))
        .map_err(io)?;
    if let Some(icc) = icc.filter(|p| !p.is_empty()) {
        started.write_icc_profile(&icc);
    }
    let mut rows = 0;
    for strip in rx {
        let Samples::U8(v) = &strip.samples else {
            return Err(Error::Other("JPEG takes 8-bit samples".into()));
        };
        started.write_scanlines(v).map_err(io)?;
        rows += strip.height;
    }
    if rows != info.height {
        return Ok(()); // abandoned: the output is deleted by the sink
    }
    let mut w = started.finish().map_err(io)?;
    w.flush().map_err(io)
}

struct JpegWriter {
    out: Option<AtomicFile>,
    tx: Option<SyncSender<Strip>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl JpegWriter {
    fn join(&mut self) -> Result<()> {
        self.tx.take();
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::Other("JPEG encoder failed".into())),
            None => Ok(()),
        }
    }
}

impl Sink for JpegWriter {
    fn write(&mut self, strip: Strip) -> Result<()> {
        if self.tx.as_ref().unwrap().send(strip).is_err() {
            // The encoder stopped: its error says why.
            return Err(self
                .join()
                .err()
                .unwrap_or_else(|| Error::Other("JPEG encoder stopped".into())));
        }
        Ok(())
    }
    fn finish(mut self: Box<Self>) -> Result<()> {
        self.join()?;
        self.out.take().expect("finished once").commit()
    }
}

impl Drop for JpegWriter {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::icc_from_app2;

    #[test]
    fn icc_pieces_join_in_sequence_order() {
        let piece = |n: u8, of: u8, data: &[u8]| [&b"ICC_PROFILE\0"[..], &[n, of], data].concat();
        let (a, b, xmp) = (
            piece(2, 2, b"world"),
            piece(1, 2, b"hello "),
            b"http://ns.adobe.com/xap/1.0/\0<x/>".to_vec(),
        );
        let markers = [xmp.as_slice(), a.as_slice(), b.as_slice()];
        assert_eq!(
            icc_from_app2(markers.into_iter()).as_deref(),
            Some(&b"hello world"[..])
        );
        // A missing piece, or no profile at all: none.
        assert_eq!(icc_from_app2([a.as_slice()].into_iter()), None);
        assert_eq!(icc_from_app2([xmp.as_slice()].into_iter()), None);
        assert_eq!(icc_from_app2([&b"ICC_PROFILE\0"[..]].into_iter()), None);
    }
}
