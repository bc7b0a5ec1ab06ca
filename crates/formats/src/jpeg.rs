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

/// Opens a JPEG; `reduce` (1, 2, 4 or 8) decodes it that many times smaller with
/// libjpeg's DCT scaling (each pixel the mean of a `reduce`-sided block, at a
/// fraction of the cost): previews of frames shrunk onto a small canvas.
pub(crate) fn open(
    path: &Path,
    file: File,
    reduce: u32,
) -> Result<(Box<dyn Source>, Details, Option<Vec<u8>>)> {
    let progressive = scan_is_progressive(&file).map_err(|e| Error::io(path, e))?;
    let (info_tx, info_rx) = sync_channel::<Result<(ImageInfo, Option<Vec<u8>>)>>(1);
    let (go_tx, go_rx) = sync_channel::<()>(1);
    let (tx, rx) = sync_channel::<Result<Strip>>(1);
    let p = path.to_path_buf();
    let thread = std::thread::spawn(move || {
        let hit = Arc::new(AtomicBool::new(false));
        let reader = EofWatch {
            inner: BufReader::with_capacity(1 << 20, file),
            hit: hit.clone(),
        };
        let channels = Channels {
            info: &info_tx,
            go: go_rx,
            strips: &tx,
        };
        let r = guard(&p, "corrupt JPEG", || {
            decode(&p, reader, &hit, (progressive, reduce), channels)
        });
        if let Err(e) = r {
            // Whoever waits (for the header or for strips) learns of the error.
            let _ = info_tx.try_send(Err(Error::invalid(&p, error_text(&e, &p))));
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
    let mut details = vec![];
    if progressive {
        details.push(("coding", "progressive (decoded whole)".to_string()));
    }
    Ok((
        Box::new(JpegReader {
            path: path.to_path_buf(),
            info,
            rx,
            go: Some(go_tx),
            thread: Some(thread),
            next: 0,
        }),
        details,
        icc,
    ))
}

/// An error's message without the path the caller's line adds again.
fn error_text(e: &Error, path: &Path) -> String {
    let s = e.to_string();
    let prefix = format!("{}: ", path.display());
    s.strip_prefix(&prefix).unwrap_or(&s).to_string()
}

/// Whether the frame header before the first scan is progressive (SOF2, SOF6,
/// SOF10, SOF14): libjpeg then holds every coefficient of the image at once.
fn scan_is_progressive(file: &File) -> std::io::Result<bool> {
    let mut at = 2u64;
    let mut head = [0u8; 4];
    for _ in 0..10_000 {
        if crate::io::read_up_to(file, &mut head, at)? < 4 || head[0] != 0xFF {
            return Ok(false); // libjpeg explains what is wrong
        }
        match head[1] {
            0xFF => at += 1, // fill byte
            0xC2 | 0xC6 | 0xCA | 0xCE => return Ok(true),
            0xC0..=0xCF if !matches!(head[1], 0xC4 | 0xC8 | 0xCC) => return Ok(false),
            0xDA | 0xD9 => return Ok(false),
            _ => at += 2 + u16::from_be_bytes([head[2], head[3]]) as u64,
        }
    }
    Ok(false)
}

/// What the decoder thread sends and waits for.
struct Channels<'a> {
    info: &'a SyncSender<Result<(ImageInfo, Option<Vec<u8>>)>>,
    /// The first strip is asked for: only then is decoding started (a progressive
    /// JPEG decodes the whole file at the start, which `giga info` must not wait for).
    go: Receiver<()>,
    strips: &'a SyncSender<Result<Strip>>,
}

/// Bytes libjpeg holds for a progressive image: every DCT coefficient (2 bytes)
/// of every component, in whole blocks.
fn coefficient_bytes(components: &[mozjpeg::CompInfo]) -> u64 {
    components
        .iter()
        .map(|c| c.width_in_blocks as u64 * c.height_in_blocks as u64 * 128)
        .sum()
}

fn decode(
    path: &Path,
    reader: EofWatch,
    hit: &AtomicBool,
    (progressive, reduce): (bool, u32),
    ch: Channels,
) -> Result<()> {
    let err = |e: std::io::Error| Error::invalid(path, format!("corrupt JPEG: {e}"));
    let d = mozjpeg::Decompress::builder()
        .with_err(strict_errors())
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
    let (full_w, full_h) = (d.width() as u32, d.height() as u32);
    let (w, h) = (full_w.div_ceil(reduce), full_h.div_ceil(reduce));
    if progressive {
        crate::budget::check(
            path,
            &format!("a progressive JPEG of {full_w}x{full_h}"),
            coefficient_bytes(d.components()),
            "make it baseline first (jpegtran -optimize IN > OUT; baseline JPEG is decoded in strips)",
        )?;
    }
    let info = ImageInfo {
        width: w,
        height: h,
        format: PixelFormat::new(channels, SampleType::U8),
    };
    if ch.info.send(Ok((info, icc))).is_err() || ch.go.recv().is_err() {
        return Ok(()); // nobody wants the pixels
    }
    let mut d = d;
    if reduce > 1 {
        d.scale((8 / reduce) as u8);
    }
    let mut d = if channels == 1 {
        d.grayscale()
    } else {
        d.rgb()
    }
    .map_err(err)?;
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
        if ch
            .strips
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

/// libjpeg's error manager, made strict: warnings about the data (a premature
/// end, corrupt or missing entropy-coded data, a scan out of order) are errors,
/// since libjpeg would otherwise fill what is missing with gray and succeed.
fn strict_errors() -> mozjpeg_sys::jpeg_error_mgr {
    // SAFETY: jpeg_std_error fills every field of the zeroed struct.
    let mut err: mozjpeg_sys::jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { mozjpeg_sys::jpeg_std_error(&mut err) };
    err.error_exit = Some(fail_with_message);
    err.emit_message = Some(warning_is_fatal);
    err
}

/// Benign warnings: pixels are intact (an unknown Adobe transform flag, an
/// odd JFIF version, a bad ICC marker, which giga then ignores).
fn benign(code: i32) -> bool {
    use mozjpeg_sys::{JWRN_ADOBE_XFORM, JWRN_BOGUS_ICC, JWRN_JFIF_MAJOR};
    [JWRN_ADOBE_XFORM, JWRN_JFIF_MAJOR, JWRN_BOGUS_ICC].contains(&(code as _))
}

extern "C-unwind" fn warning_is_fatal(cinfo: &mut mozjpeg_sys::jpeg_common_struct, level: i32) {
    // SAFETY: libjpeg passes its own common struct, whose err points at our manager.
    let code = unsafe { (*cinfo.err).msg_code };
    if level < 0 && !benign(code) {
        fail_with_message(cinfo);
    }
}

extern "C-unwind" fn fail_with_message(cinfo: &mut mozjpeg_sys::jpeg_common_struct) {
    let mut buffer = [0u8; 80];
    // SAFETY: format_message writes at most 80 bytes (JMSG_LENGTH_MAX) into the
    // buffer; mozjpeg-sys declares the buffer `&[u8; 80]` though C writes to it,
    // so it is passed as a pointer it owns.
    unsafe {
        if let Some(fmt) = (*cinfo.err).format_message {
            let f: unsafe extern "C-unwind" fn(&mut mozjpeg_sys::jpeg_common_struct, *mut u8) =
                std::mem::transmute(fmt);
            f(cinfo, buffer.as_mut_ptr());
        }
    }
    let msg = buffer.split(|&c| c == 0).next().unwrap_or_default();
    std::panic::resume_unwind(Box::new(String::from_utf8_lossy(msg).into_owned()));
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
    /// Tells the decoder to start; dropped once sent.
    go: Option<SyncSender<()>>,
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
        if let Some(go) = self.go.take() {
            let _ = go.send(());
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
            return Err(Error::Internal(
                "the JPEG writer got samples of more than 8 bits".into(),
            ));
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
            Some(Err(_)) => Err(Error::Internal("the JPEG encoder's thread crashed".into())),
            None => Ok(()),
        }
    }
}

impl Sink for JpegWriter {
    fn write(&mut self, strip: Strip) -> Result<()> {
        if self.tx.as_ref().unwrap().send(strip).is_err() {
            // The encoder stopped: its error says why.
            return Err(self.join().err().unwrap_or_else(|| {
                Error::Internal("the JPEG encoder stopped without a word".into())
            }));
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
