use crate::{Error, ImageInfo, Rect, Result, Samples, Sink, Source, Strip};

/// Streams `source` into `sink`: the source (with any operations mapped onto
/// it) runs on its own thread, two strips ahead of the sink, so reading and
/// writing overlap. `progress` is told the rows written after each strip.
pub fn run(source: Box<dyn Source>, sink: Box<dyn Sink>, progress: impl FnMut(u32)) -> Result<()> {
    run_from(source, sink, 0, progress)
}

/// [`run`] for a source that starts at row `start` (a resumed job whose
/// earlier rows the sink already has).
pub fn run_from(
    source: Box<dyn Source>,
    mut sink: Box<dyn Sink>,
    start: u32,
    mut progress: impl FnMut(u32),
) -> Result<()> {
    let height = source.info().height - start;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Strip>>(2);
    let reader = std::thread::spawn(move || {
        let mut source = source;
        loop {
            let item = source.next_strip();
            let done = !matches!(item, Ok(Some(_)));
            let item = item.transpose();
            if let Some(item) = item {
                if tx.send(item).is_err() {
                    return;
                }
            }
            if done {
                return;
            }
        }
    });
    let mut rows = 0u32;
    let mut result = Ok(());
    for item in rx.iter() {
        match item.and_then(|strip| {
            let h = strip.height;
            sink.write(strip).map(|_| h)
        }) {
            Ok(h) => {
                rows += h;
                progress(h);
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    drop(rx);
    if let Err(panic) = reader.join() {
        std::panic::resume_unwind(panic);
    }
    result?;
    if rows != height {
        return Err(Error::Internal(format!(
            "the reader gave {rows} of {height} rows"
        )));
    }
    sink.finish()
}

/// A source whose strips pass through a function (a depth or channel conversion).
pub struct Mapped<F> {
    inner: Box<dyn Source>,
    info: ImageInfo,
    f: F,
}

impl<F: FnMut(Strip) -> Strip + Send> Mapped<F> {
    /// `info` is what the image looks like after `f`.
    pub fn new(inner: Box<dyn Source>, info: ImageInfo, f: F) -> Mapped<F> {
        Mapped { inner, info, f }
    }
}

impl<F: FnMut(Strip) -> Strip + Send> Source for Mapped<F> {
    fn info(&self) -> ImageInfo {
        self.info
    }
    fn next_strip(&mut self) -> Result<Option<Strip>> {
        Ok(self.inner.next_strip()?.map(&mut self.f))
    }
    fn warnings(&self) -> Vec<String> {
        self.inner.warnings()
    }
}

/// Crops any source by reading its strips and keeping the window; stops
/// reading as soon as the window's last row has been seen.
pub struct Crop {
    inner: Box<dyn Source>,
    rect: Rect,
    next_y: u32,
}

impl Crop {
    /// `inner` cut to `rect`.
    pub fn new(inner: Box<dyn Source>, rect: Rect) -> Crop {
        let info = inner.info();
        assert!(rect.right() <= info.width as u64 && rect.bottom() <= info.height as u64);
        Crop {
            inner,
            rect,
            next_y: 0,
        }
    }
}

impl Source for Crop {
    fn info(&self) -> ImageInfo {
        ImageInfo {
            width: self.rect.width,
            height: self.rect.height,
            ..self.inner.info()
        }
    }
    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let (top, bottom) = (self.rect.y, self.rect.y + self.rect.height);
        while self.next_y < bottom {
            let Some(strip) = self.inner.next_strip()? else {
                return Err(Error::Internal(
                    "the source ended before the crop window".into(),
                ));
            };
            self.next_y = strip.y + strip.height;
            let (from, to) = (strip.y.max(top), self.next_y.min(bottom));
            if from < to {
                return Ok(Some(strip.window(
                    self.rect.x,
                    self.rect.width,
                    from - strip.y,
                    to - from,
                    from - top,
                )));
            }
        }
        Ok(None)
    }
    fn warnings(&self) -> Vec<String> {
        self.inner.warnings()
    }
}

/// Regroups a stream of strips into blocks of a fixed number of rows (a tile
/// row for tiled writers); the last block may be shorter.
pub struct RowBlocks {
    rows: u32,
    pending: Option<Strip>,
}

impl RowBlocks {
    /// Regroups strips into blocks of `rows` rows.
    pub fn new(rows: u32) -> RowBlocks {
        RowBlocks {
            rows,
            pending: None,
        }
    }

    /// Adds a strip; returns the blocks completed by it.
    pub fn push(&mut self, strip: Strip) -> Vec<Strip> {
        let mut out = Vec::new();
        let mut row = 0;
        while row < strip.height {
            let pending = self.pending.get_or_insert_with(|| Strip {
                y: strip.y + row,
                width: strip.width,
                height: 0,
                channels: strip.channels,
                samples: Samples::with_capacity(
                    strip.samples.sample_type(),
                    self.rows as usize * strip.row_samples(),
                ),
            });
            let take = (self.rows - pending.height).min(strip.height - row);
            if pending.height == 0 && take == strip.height && take == self.rows {
                // The strip is exactly one block: pass it on without copying.
                self.pending = None;
                out.push(strip);
                return out;
            }
            let n = strip.row_samples();
            pending
                .samples
                .extend_from(&strip.samples, row as usize * n, take as usize * n);
            pending.height += take;
            row += take;
            if pending.height == self.rows {
                out.push(self.pending.take().unwrap());
            }
        }
        out
    }

    /// The last, partial block.
    pub fn finish(&mut self) -> Option<Strip> {
        self.pending.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PixelFormat, SampleType};

    /// A source of a gradient image in strips of a given height.
    struct Gradient {
        info: ImageInfo,
        strip_rows: u32,
        y: u32,
    }

    fn value(x: u32, y: u32, c: u32) -> u8 {
        (x * 7 + y * 13 + c * 3) as u8
    }

    impl Source for Gradient {
        fn info(&self) -> ImageInfo {
            self.info
        }
        fn next_strip(&mut self) -> Result<Option<Strip>> {
            if self.y >= self.info.height {
                return Ok(None);
            }
            let rows = self.strip_rows.min(self.info.height - self.y);
            let mut v = Vec::new();
            for y in self.y..self.y + rows {
                for x in 0..self.info.width {
                    for c in 0..3 {
                        v.push(value(x, y, c));
                    }
                }
            }
            let s = Strip::new(self.y, self.info.width, rows, 3, Samples::U8(v));
            self.y += rows;
            Ok(Some(s))
        }
    }

    fn gradient(w: u32, h: u32, strip_rows: u32) -> Box<dyn Source> {
        let info = ImageInfo {
            width: w,
            height: h,
            format: PixelFormat::new(3, SampleType::U8),
        };
        Box::new(Gradient {
            info,
            strip_rows,
            y: 0,
        })
    }

    fn collect(mut s: Box<dyn Source>) -> Vec<Strip> {
        std::iter::from_fn(|| s.next_strip().unwrap()).collect()
    }

    #[test]
    fn crop_matches_window() {
        for strip_rows in [1, 3, 64] {
            let rect = Rect {
                x: 2,
                y: 5,
                width: 4,
                height: 7,
            };
            let strips = collect(crate::crop(gradient(11, 20, strip_rows), rect));
            let mut y = 0;
            for s in strips {
                assert_eq!(s.y, y);
                let Samples::U8(v) = &s.samples else { panic!() };
                for r in 0..s.height {
                    for x in 0..4 {
                        for c in 0..3 {
                            assert_eq!(
                                v[((r * 4 + x) * 3 + c) as usize],
                                value(x + 2, y + r + 5, c)
                            );
                        }
                    }
                }
                y += s.height;
            }
            assert_eq!(y, 7);
        }
    }

    #[test]
    fn row_blocks_regroup_exactly() {
        for (strip_rows, block) in [(1, 4), (4, 4), (5, 4), (3, 8), (64, 16)] {
            let mut blocks = RowBlocks::new(block);
            let mut out = Vec::new();
            for s in collect(gradient(5, 37, strip_rows)) {
                out.extend(blocks.push(s));
            }
            out.extend(blocks.finish());
            let heights: Vec<u32> = out.iter().map(|s| s.height).collect();
            assert!(heights[..heights.len() - 1].iter().all(|&h| h == block));
            assert_eq!(heights.iter().sum::<u32>(), 37);
            let whole = collect(gradient(5, 37, 37)).remove(0);
            let mut joined = Vec::new();
            for s in &out {
                let Samples::U8(v) = &s.samples else { panic!() };
                joined.extend_from_slice(v);
            }
            assert_eq!(Samples::U8(joined), whole.samples);
        }
    }
}
