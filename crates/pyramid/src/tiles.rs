//! Encoding and writing tiles on all cores. The cascade cuts tiles and
//! queues them; worker threads flatten, encode and write each one under a
//! temporary name, then rename it, so a tile file is always complete.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender};
use formats::encode::{encode_jpeg, encode_jpeg_with, encode_png, encode_webp, flatten_in_place};
use raster::{Color, Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// Tile image formats.
pub enum TileFormat {
    /// JPEG (mozjpeg), alpha flattened.
    Jpeg {
        /// 1-100.
        quality: u8,
    },
    /// PNG, keeping alpha.
    Png,
    /// Lossy WebP with alpha (libwebp, method 0: the fastest, about 10% larger than method 4).
    Webp {
        /// 1-100.
        quality: u8,
    },
}

impl TileFormat {
    /// The file extension.
    pub fn ext(self) -> &'static str {
        match self {
            TileFormat::Jpeg { .. } => "jpg",
            TileFormat::Png => "png",
            TileFormat::Webp { .. } => "webp",
        }
    }
}

/// One tile's pixels (8-bit RGB or RGBA, straight alpha) and where it goes.
pub struct TileJob {
    /// The tile's file (and, in an archive, the name errors give it).
    pub path: PathBuf,
    /// Its level number, column and row (an archive's z, x, y).
    pub zxy: (u32, u32, u32),
    /// Tile width.
    pub width: u32,
    /// Tile height.
    pub height: u32,
    /// 3 (RGB) or 4 (RGBA).
    pub channels: usize,
    /// 8-bit samples, rows top to bottom.
    pub pixels: Vec<u8>,
}

/// Counters shared with the workers, readable while the pyramid is built.
#[derive(Default)]
pub struct Counts {
    /// Tiles encoded and written.
    pub written: AtomicU64,
    /// Left out by --skip-blank.
    pub blank: AtomicU64,
    /// Already there (--resume).
    pub kept: AtomicU64,
}

#[derive(Clone)]
/// How tiles are encoded and where they go.
pub struct Encoding {
    /// Tile image format.
    pub format: TileFormat,
    /// What alpha is flattened onto (JPEG).
    pub background: Color,
    /// Leave out blank tiles.
    pub skip_blank: bool,
    /// Tiles go into this archive instead of files.
    pub archive: Option<Arc<crate::archive::Archive>>,
}

/// Encodes and writes tiles on worker threads, a bounded queue in front.
pub struct TileWriter {
    tx: Option<Sender<TileJob>>,
    workers: Vec<JoinHandle<()>>,
    error: Arc<Mutex<Option<Error>>>,
    /// What has been written, kept, left out.
    pub counts: Arc<Counts>,
    /// Jobs sent, and jobs the workers are done with (whatever the outcome).
    submitted: AtomicU64,
    done: Arc<AtomicU64>,
}

impl TileWriter {
    /// Starts `threads` workers.
    pub fn new(enc: Encoding, threads: usize, counts: Arc<Counts>) -> TileWriter {
        // A few tiles per worker keep the cores busy; more would only hold memory.
        let (tx, rx) = bounded::<TileJob>(8 * threads.max(1));
        let error = Arc::new(Mutex::new(None));
        let done = Arc::new(AtomicU64::new(0));
        let workers = (0..threads.max(1))
            .map(|_| {
                let (rx, error, counts, done, enc) = (
                    rx.clone(),
                    error.clone(),
                    counts.clone(),
                    done.clone(),
                    enc.clone(),
                );
                std::thread::spawn(move || {
                    for job in rx {
                        if error.lock().unwrap().is_none() {
                            // (after a failure the rest are drained quietly)
                            match write_tile(job, &enc) {
                                Ok(true) => counts.written.fetch_add(1, Ordering::Relaxed),
                                Ok(false) => counts.blank.fetch_add(1, Ordering::Relaxed),
                                Err(e) => {
                                    error.lock().unwrap().get_or_insert(e);
                                    0
                                }
                            };
                        }
                        done.fetch_add(1, Ordering::Release);
                    }
                })
            })
            .collect();
        TileWriter {
            tx: Some(tx),
            workers,
            error,
            counts,
            submitted: AtomicU64::new(0),
            done,
        }
    }

    /// Waits until every tile submitted so far is written (for a checkpoint).
    pub fn wait_idle(&self) -> Result<()> {
        while self.done.load(Ordering::Acquire) < self.submitted.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        match self.failed() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn failed(&self) -> Option<Error> {
        self.error.lock().unwrap().take()
    }

    /// Queues a tile; an earlier failure of a worker comes back here.
    pub fn submit(&self, job: TileJob) -> Result<()> {
        if let Some(e) = self.failed() {
            return Err(e);
        }
        self.submitted.fetch_add(1, Ordering::Relaxed);
        self.tx
            .as_ref()
            .expect("open")
            .send(job)
            .map_err(|_| Error::Internal("the tile writers stopped".into()))
    }

    /// Waits for every queued tile.
    pub fn finish(mut self) -> Result<()> {
        self.tx.take();
        for w in self.workers.drain(..) {
            if w.join().is_err() {
                return Err(Error::Internal("a tile writer crashed".into()));
            }
        }
        match self.failed() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for TileWriter {
    fn drop(&mut self) {
        self.tx.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Whether every pixel is transparent, or the background colour.
pub fn is_blank(pixels: &[u8], channels: usize, background: Color) -> bool {
    if channels == 4 && pixels.chunks_exact(4).all(|p| p[3] == 0) {
        return true;
    }
    let bg = background.0.map(|c| (c * 255.0 + 0.5) as u8);
    pixels
        .chunks_exact(channels)
        .all(|p| p[..3] == bg && (channels == 3 || p[3] == 255))
}

/// Encodes and writes one tile; false if it was left out as blank.
fn write_tile(mut job: TileJob, enc: &Encoding) -> Result<bool> {
    if enc.skip_blank && is_blank(&job.pixels, job.channels, enc.background) {
        return Ok(false);
    }
    let bytes = match enc.format {
        TileFormat::Jpeg { quality } if job.channels == 4 => {
            // libjpeg reads RGBA directly (ignoring alpha): flatten in place, no copy.
            let mut px = std::mem::take(&mut job.pixels);
            flatten_in_place(&mut px, enc.background);
            encode_jpeg_with(
                &px,
                job.width,
                job.height,
                quality,
                mozjpeg::ColorSpace::JCS_EXT_RGBA,
            )
        }
        TileFormat::Jpeg { quality } => encode_jpeg(&job.pixels, job.width, job.height, quality),
        TileFormat::Png => encode_png(&job.pixels, job.width, job.height, job.channels),
        TileFormat::Webp { quality } => {
            encode_webp(&job.pixels, job.width, job.height, job.channels, quality)
        }
    }
    .map_err(|m| Error::invalid(&job.path, m))?;
    match &enc.archive {
        Some(a) => a.add(job.zxy.0, job.zxy.1, job.zxy.2, &bytes)?,
        None => write_atomic(&job.path, &bytes)?,
    }
    Ok(true)
}

/// Writes `bytes` to `path` so that the name appears only with the whole
/// file behind it: an unnamed file (O_TMPFILE) linked in when complete, one
/// directory operation per tile; where the file system lacks O_TMPFILE, a
/// temporary name and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use formats::output::{create_unnamed, link_unnamed, unnamed_unsupported};
    let linked = create_unnamed(path).and_then(|mut f| {
        f.write_all(bytes)?;
        link_unnamed(&f, path)
    });
    match linked {
        Ok(()) => Ok(()),
        // linkat won't replace an existing tile (--resume rewrites): the rename does.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists || unnamed_unsupported(&e) => {
            write_renamed(path, bytes)
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

fn write_renamed(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = formats::output::temporary_path(path);
    let _guard = formats::output::TemporaryGuard::new(&tmp);
    let r = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|_| std::fs::rename(&tmp, path));
    r.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank() {
        assert!(is_blank(&[9, 9, 9, 0, 1, 2, 3, 0], 4, Color::WHITE));
        assert!(is_blank(&[255, 255, 255, 255], 4, Color::WHITE));
        assert!(!is_blank(&[255, 255, 254, 255], 4, Color::WHITE));
        assert!(is_blank(&[0, 0, 0], 3, Color([0.0; 3])));
    }
}
