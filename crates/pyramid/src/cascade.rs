//! The level cascade: full-resolution strips come in top to bottom; each
//! level keeps a band of rows just tall enough for its next row of tiles,
//! cuts the tiles once the band is complete, and feeds pairs of rows,
//! reduced 2x2, to the level below. Memory is a band per level, so it
//! depends on the width, never the height.

use std::collections::VecDeque;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use raster::{Color, Error, ImageInfo, PixelFormat, Result, SampleType, Samples, Sink, Strip};

use crate::checkpoint::{self, Checkpoints, LevelView, Saved};
use crate::geometry::Rounding;
use crate::layout::Layout;
use crate::tiles::{TileFormat, TileJob, TileWriter};
use raster::reduce::reduce_band;

struct Level {
    width: u32,
    height: u32,
    /// Rows kept for the next row of tiles, as the chunks they arrived in
    /// (first row, rows): moved in, never copied.
    band: VecDeque<(u32, Vec<u8>)>,
    rows_in: u32,
    next_tile_row: u32,
    /// A row waiting for its partner before the reduction.
    pending: Option<Vec<u8>>,
    /// Whole-level images being written as the rows arrive.
    wholes: Vec<(Box<dyn Sink>, PixelFormat)>,
    /// With checkpoints, levels with whole images log their rows here (see `checkpoint`).
    log: Option<std::fs::File>,
}

/// The level cascade: takes full-resolution strips, halves them level by level (pairs of rows, 2x2 boxes), cuts each level's tiles as their rows are complete, and writes whole-level images.
pub struct Cascade {
    layout: Layout,
    outdir: PathBuf,
    channels: usize,
    levels: Vec<Level>,
    tiles: Option<TileWriter>,
    background: Color,
    resume: bool,
    checkpoints: Option<(Checkpoints, Instant)>,
}

impl Cascade {
    /// `channels` is 3 (RGB) or 4 (RGBA); `format` decides how whole-level images are written.
    pub fn new(
        layout: Layout,
        outdir: &Path,
        channels: usize,
        tiles: TileWriter,
        format: TileFormat,
        background: Color,
        resume: bool,
    ) -> Result<Cascade> {
        let mut levels = Vec::new();
        for plan in &layout.levels {
            let mut wholes = Vec::new();
            for rel in &plan.wholes {
                let path = outdir.join(rel);
                // Whole-level images have no WebP writer: they are PNG then (keeping alpha).
                let (fmt, pf) = match format {
                    TileFormat::Jpeg { .. } => {
                        (formats::Format::Jpeg, PixelFormat::new(3, SampleType::U8))
                    }
                    TileFormat::Png | TileFormat::Webp { .. } => (
                        formats::Format::Png,
                        PixelFormat::new(channels as u8, SampleType::U8),
                    ),
                };
                let info = ImageInfo {
                    width: plan.width,
                    height: plan.height,
                    format: pf,
                };
                let quality = match format {
                    TileFormat::Jpeg { quality } => quality,
                    _ => 90,
                };
                let opts = formats::WriteOptions {
                    quality,
                    ..Default::default()
                };
                wholes.push((formats::create(&path, fmt, &info, &opts)?, pf));
            }
            levels.push(Level {
                width: plan.width,
                height: plan.height,
                band: VecDeque::new(),
                rows_in: 0,
                next_tile_row: 0,
                pending: None,
                wholes,
                log: None,
            });
        }
        Ok(Cascade {
            layout,
            outdir: outdir.to_path_buf(),
            channels,
            levels,
            tiles: Some(tiles),
            background,
            resume,
            checkpoints: None,
        })
    }

    /// Saves a checkpoint every `cp.every`, continuing from `saved` if given
    /// (the source then starts at `saved.rows()`).
    pub fn with_checkpoints(mut self, cp: Checkpoints, saved: Option<Saved>) -> Result<Cascade> {
        for (i, level) in self.levels.iter_mut().enumerate() {
            if !level.wholes.is_empty() {
                let p = checkpoint::log_path(&self.outdir, i);
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(saved.is_none())
                    .read(true)
                    .write(true)
                    .open(&p);
                level.log = Some(f.map_err(|e| Error::io(&p, e))?);
            }
        }
        if let Some(saved) = saved {
            self.restore(saved)?;
        }
        self.checkpoints = Some((cp, Instant::now()));
        Ok(self)
    }

    /// Puts the levels back as a checkpoint saved them; whole images get
    /// their logged rows again.
    fn restore(&mut self, saved: Saved) -> Result<()> {
        // The key matched, so only a damaged file can disagree with the pyramid's shape.
        let fits = saved.levels.len() == self.levels.len()
            && self.levels.iter().zip(&saved.levels).all(|(level, s)| {
                let row_len = level.width as usize * self.channels;
                s.rows_in <= level.height
                    && s.pending.as_ref().is_none_or(|p| p.len() == row_len)
                    && s.band.iter().all(|(start, rows)| {
                        rows.len() % row_len == 0
                            && *start as usize + rows.len() / row_len <= s.rows_in as usize
                    })
            });
        if !fits {
            let path = checkpoint::path(&self.outdir);
            return Err(Error::invalid(
                &path,
                "the checkpoint is damaged; delete it to start the pyramid over",
            ));
        }
        let (ch, bg) = (self.channels, self.background);
        for (i, (level, s)) in self.levels.iter_mut().zip(saved.levels).enumerate() {
            level.rows_in = s.rows_in;
            level.next_tile_row = s.next_tile_row;
            level.pending = s.pending;
            level.band = s.band.into();
            let Some(log) = &mut level.log else { continue };
            let row_len = level.width as usize * ch;
            let path = checkpoint::log_path(&self.outdir, i);
            let io = |e| Error::io(&path, e);
            log.set_len(s.rows_in as u64 * row_len as u64).map_err(io)?;
            log.seek(std::io::SeekFrom::Start(0)).map_err(io)?;
            let mut y = 0;
            while y < s.rows_in {
                let n = (s.rows_in - y).min((1 << 20) / row_len as u32 + 1);
                let mut rows = vec![0u8; n as usize * row_len];
                log.read_exact(&mut rows).map_err(io)?;
                for (sink, pf) in &mut level.wholes {
                    let strip = Strip::new(y, level.width, n, ch as u8, Samples::U8(rows.clone()));
                    sink.write(raster::ops::convert_strip(strip, *pf, bg))?;
                }
                y += n;
            }
        }
        Ok(())
    }

    /// Waits for the queued tiles and saves the levels (see `checkpoint`).
    fn checkpoint(&mut self) -> Result<()> {
        // (The row logs live in OUTDIR: the save's syncfs flushes them with the tiles.)
        self.tiles.as_ref().unwrap().wait_idle()?;
        let levels: Vec<LevelView> = self
            .levels
            .iter()
            .map(|l| LevelView {
                rows_in: l.rows_in,
                next_tile_row: l.next_tile_row,
                pending: l.pending.as_deref(),
                band: l.band.iter().map(|(s, r)| (*s, r.as_slice())).collect(),
            })
            .collect();
        let (cp, _) = self.checkpoints.as_ref().unwrap();
        checkpoint::save(&self.outdir, &cp.key, &levels)
    }

    fn row_len(&self, i: usize) -> usize {
        self.levels[i].width as usize * self.channels
    }

    /// Adds full rows to level `i`, then cascades.
    fn push(&mut self, i: usize, rows: Vec<u8>) -> Result<()> {
        let row_len = self.row_len(i);
        let n = (rows.len() / row_len) as u32;
        if n == 0 {
            return Ok(());
        }
        let (ch, bg) = (self.channels as u8, self.background);
        let has_next = i + 1 < self.levels.len();
        let level = &mut self.levels[i];
        let y = level.rows_in;
        if let Some(log) = &mut level.log {
            log.write_all(&rows)
                .map_err(|e| Error::io(checkpoint::log_path(&self.outdir, i), e))?;
        }
        for (sink, pf) in &mut level.wholes {
            let strip = Strip::new(y, level.width, n, ch, Samples::U8(rows.clone()));
            sink.write(raster::ops::convert_strip(strip, *pf, bg))?;
        }
        level.rows_in += n;
        let reduced = if has_next {
            self.reduce_into_next(i, &rows)
        } else {
            Vec::new()
        };
        if self.layout.levels[i].grid.is_some() {
            self.levels[i].band.push_back((y, rows));
            self.emit_tiles(i, false)?;
        }
        if !reduced.is_empty() {
            self.push(i + 1, reduced)?;
        }
        Ok(())
    }

    /// Reduces `rows` of level `i` (after any row left pending) into rows of
    /// level `i + 1`, leaving a last unpaired row pending. Copies only that
    /// one pending row, never the strip.
    fn reduce_into_next(&mut self, i: usize, rows: &[u8]) -> Vec<u8> {
        let row_len = self.row_len(i);
        let (w, ch) = (self.levels[i].width as usize, self.channels);
        let out_w = self.levels[i + 1].width as usize;
        let mut rows = rows;
        let mut out = Vec::new();
        if let Some(mut first) = self.levels[i].pending.take() {
            first.extend_from_slice(&rows[..row_len]);
            out = reduce_band(&first, w, ch, out_w, false);
            rows = &rows[row_len..];
        }
        let n = rows.len() / row_len;
        if n % 2 == 1 {
            self.levels[i].pending = Some(rows[(n - 1) * row_len..].to_vec());
            rows = &rows[..(n - 1) * row_len];
        }
        if !rows.is_empty() {
            let more = reduce_band(rows, w, ch, out_w, false);
            if out.is_empty() {
                out = more;
            } else {
                out.extend_from_slice(&more);
            }
        }
        out
    }

    /// Cuts every complete row of tiles out of level `i`'s band.
    fn emit_tiles(&mut self, i: usize, last: bool) -> Result<()> {
        let Some(grid) = self.layout.levels[i].grid else {
            return Ok(());
        };
        let row_len = self.row_len(i);
        let ch = self.channels;
        while self.levels[i].next_tile_row < grid.rows() {
            let r = self.levels[i].next_tile_row;
            let (top, bottom) = grid.y_span(r);
            let level = &self.levels[i];
            if level.rows_in < bottom && !last {
                break;
            }
            // The rows of this row of tiles, wherever their chunks are.
            let mut rows: Vec<&[u8]> = Vec::with_capacity((bottom - top) as usize);
            for (start, data) in &level.band {
                let n = (data.len() / row_len) as u32;
                for y in top.max(*start)..bottom.min(start + n) {
                    let k = (y - start) as usize;
                    rows.push(&data[k * row_len..(k + 1) * row_len]);
                }
            }
            debug_assert_eq!(rows.len() as u32, bottom - top);
            for c in 0..grid.cols() {
                if self.layout.shadowed.contains(&(i, c, r)) {
                    continue;
                }
                let (x0, x1) = grid.x_span(c);
                let rel = self.layout.tile_path(i, c, r);
                let path = self.outdir.join(&rel);
                if self.resume && path.exists() {
                    self.tiles
                        .as_ref()
                        .unwrap()
                        .counts
                        .kept
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    continue;
                }
                let (w, h) = (x1 - x0, bottom - top);
                let (tw, th) = if self.layout.pad_tiles {
                    (grid.tile, grid.tile)
                } else {
                    (w, h)
                };
                let mut pixels = Vec::with_capacity(tw as usize * th as usize * ch);
                for (y, row) in rows.iter().enumerate() {
                    pixels.extend_from_slice(&row[x0 as usize * ch..x1 as usize * ch]);
                    // Padded tiles (TMS) are transparent past the image.
                    pixels.resize((y + 1) * tw as usize * ch, 0);
                }
                pixels.resize(tw as usize * th as usize * ch, 0);
                let job = TileJob {
                    path,
                    zxy: (self.layout.levels[i].number, c, r),
                    width: tw,
                    height: th,
                    channels: ch,
                    pixels,
                };
                self.tiles.as_ref().unwrap().submit(job)?;
            }
            let level = &mut self.levels[i];
            level.next_tile_row += 1;
            // Keep only what the next row of tiles needs (its overlap reaches up).
            let keep_from = if r + 1 < grid.rows() {
                grid.y_span(r + 1).0
            } else {
                level.rows_in
            };
            while let Some((start, data)) = level.band.front() {
                if start + (data.len() / row_len) as u32 > keep_from {
                    break;
                }
                level.band.pop_front();
            }
        }
        Ok(())
    }

    /// Completes level `i` (and below): pairs a last odd row with itself
    /// where the rounding keeps it, writes the last tiles and whole images.
    fn finish_level(&mut self, i: usize) -> Result<()> {
        let has_next = i + 1 < self.levels.len();
        if has_next {
            if let Some(row) = self.levels[i].pending.take() {
                let next = &self.levels[i + 1];
                if self.layout.rounding == Rounding::Ceil || next.rows_in < next.height {
                    let out_w = next.width as usize;
                    let reduced = reduce_band(
                        &row,
                        self.levels[i].width as usize,
                        self.channels,
                        out_w,
                        true,
                    );
                    self.push(i + 1, reduced)?;
                }
            }
        }
        let level = &self.levels[i];
        if level.rows_in != level.height {
            return Err(Error::Internal(format!(
                "level {i} got {} of {} rows",
                level.rows_in, level.height
            )));
        }
        self.emit_tiles(i, true)?;
        for (sink, _) in std::mem::take(&mut self.levels[i].wholes) {
            sink.finish()?;
        }
        if has_next {
            self.finish_level(i + 1)?;
        }
        Ok(())
    }
}

impl Sink for Cascade {
    fn write(&mut self, strip: Strip) -> Result<()> {
        let Samples::U8(v) = strip.samples else {
            return Err(Error::Internal("the cascade takes 8-bit strips".into()));
        };
        self.push(0, v)?;
        let due = self
            .checkpoints
            .as_ref()
            .is_some_and(|(cp, last)| last.elapsed() >= cp.every);
        if due && self.levels[0].rows_in < self.levels[0].height {
            self.checkpoint()?;
            self.checkpoints.as_mut().unwrap().1 = Instant::now();
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.finish_level(0)?;
        self.tiles.take().unwrap().finish()
    }
}
