//! Push-pull hole filling in premultiplied colour, out of core.
//!
//! Pull: halve the image repeatedly, each pixel's premultiplied colour and
//! weight summed over its 2x2 children, the weight capped at 1 (the colour
//! kept as the weighted mean). Push: from the coarsest level down, every
//! pixel with weight w < 1 becomes `c·w + (1 − w)·U`, where U is the filled
//! coarser level upsampled bilinearly. At full resolution w is alpha, so
//! opaque pixels keep their colour and holes of any size get a smooth
//! continuation of their surroundings, in time linear in the image.
//!
//! Out of core, with two reads of the input and no temporary files: the
//! first read reduces the image down to the first level that fits in memory
//! (level K, at most `MEMORY_PIXELS`), and everything coarser is filled in
//! memory. The second read rebuilds levels 1..K−1 row by row as the input
//! streams, and fills each row as soon as the coarser rows it needs exist,
//! so only about 2^K rows per level are held: memory grows with the width
//! (and with sqrt(area / MEMORY_PIXELS) rows), never with the whole image.

use std::collections::VecDeque;

use raster::{Error, ImageInfo, PixelFormat, Result, Samples, Source, Strip};

/// Levels at or below this many pixels are held whole in memory.
pub const MEMORY_PIXELS: u64 = 4 << 20;

/// [`MEMORY_PIXELS`], or `GIGA_FILL_MEMORY_PIXELS` (tests use a tiny value to
/// force streamed levels on small images and check the result is the same).
fn memory_pixels() -> u64 {
    std::env::var("GIGA_FILL_MEMORY_PIXELS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MEMORY_PIXELS)
}

/// One row of a level: `nc` premultiplied colours then the weight, per pixel.
type Row = Vec<f32>;

/// Sizes of levels 0..: halved, rounded up, down to 1x1.
fn sizes(w: u32, h: u32) -> Vec<(u32, u32)> {
    let mut s = vec![(w, h)];
    let (mut w, mut h) = (w, h);
    while w > 1 || h > 1 {
        w = w.div_ceil(2);
        h = h.div_ceil(2);
        s.push((w, h));
    }
    s
}

/// Reduces two rows (premultiplied + weight, `n = nc + 1` floats a pixel)
/// of width `w` into one of width `ceil(w / 2)`.
fn pull_rows(a: &[f32], b: &[f32], w: usize, n: usize) -> Row {
    let ow = w.div_ceil(2);
    let mut out = vec![0f32; ow * n];
    let pairs = w / 2;
    for (ox, o) in out.chunks_exact_mut(n).enumerate() {
        let x0 = 2 * ox;
        // A last odd column pairs with itself (edge replication, as in the tile pyramid).
        let x1 = if ox < pairs { x0 + 1 } else { x0 };
        let (p0, p1, p2, p3) = (
            &a[x0 * n..x0 * n + n],
            &a[x1 * n..x1 * n + n],
            &b[x0 * n..x0 * n + n],
            &b[x1 * n..x1 * n + n],
        );
        let weight = p0[n - 1] + p1[n - 1] + p2[n - 1] + p3[n - 1];
        if weight > 0.0 {
            let capped = weight.min(1.0);
            let k = capped / weight;
            for c in 0..n - 1 {
                o[c] = (p0[c] + p1[c] + p2[c] + p3[c]) * k;
            }
            o[n - 1] = capped;
        }
    }
    out
}

/// Colour of a pulled pixel (premultiplied / weight), or 0 where the weight is 0.
fn colour(p: &[f32], n: usize, out: &mut [f32]) {
    let w = p[n - 1];
    for c in 0..n - 1 {
        out[c] = if w > 0.0 { p[c] / w } else { 0.0 };
    }
}

/// Bilinear 2x upsampling of one coarse row (colours, `nc` a pixel) to `w` fine pixels.
fn upsample_row(coarse: &[f32], cw: usize, w: usize, nc: usize) -> Vec<f32> {
    let mut out = vec![0f32; w * nc];
    for x in 0..w {
        let i = x / 2;
        let j = if x % 2 == 0 {
            i.saturating_sub(1)
        } else {
            (i + 1).min(cw - 1)
        };
        for c in 0..nc {
            out[x * nc + c] = 0.75 * coarse[i * nc + c] + 0.25 * coarse[j * nc + c];
        }
    }
    out
}

/// The two coarse rows (near, far) that fine row `r` blends, 3:1.
fn coarse_rows(r: u32, coarse_h: u32) -> (u32, u32) {
    let i = r / 2;
    let j = if r % 2 == 0 {
        i.saturating_sub(1)
    } else {
        (i + 1).min(coarse_h - 1)
    };
    (i, j)
}

/// Fills one fine row: `c·w + (1 − w)·U`, from its pulled row and the two filled coarse rows.
fn push_row(pulled: &[f32], near: &[f32], far: &[f32], cw: usize, w: usize, nc: usize) -> Vec<f32> {
    let n = nc + 1;
    let un = upsample_row(near, cw, w, nc);
    let uf = upsample_row(far, cw, w, nc);
    let mut out = vec![0f32; w * nc];
    let mut col = [0f32; 4];
    for x in 0..w {
        let p = &pulled[x * n..(x + 1) * n];
        let wt = p[n - 1];
        colour(p, n, &mut col);
        for c in 0..nc {
            let u = 0.75 * un[x * nc + c] + 0.25 * uf[x * nc + c];
            out[x * nc + c] = col[c] * wt + u * (1.0 - wt);
        }
    }
    out
}

/// A strip row as premultiplied colour + weight (alpha), floats 0..1.
fn premultiplied(strip: &Strip, row: u32) -> Row {
    let c = strip.channels as usize;
    let w = strip.width as usize;
    let range = row as usize * w * c..(row as usize + 1) * w * c;
    let mut out = vec![0f32; w * c];
    fn go<T: Copy>(src: &[T], out: &mut [f32], c: usize, f: impl Fn(T) -> f32) {
        for (o, p) in out.chunks_exact_mut(c).zip(src.chunks_exact(c)) {
            let a = f(p[c - 1]).clamp(0.0, 1.0);
            if a > 0.0 {
                for ch in 0..c - 1 {
                    o[ch] = f(p[ch]) * a;
                }
            }
            o[c - 1] = a;
        }
    }
    match &strip.samples {
        Samples::U8(v) => go(&v[range], &mut out, c, |x| x as f32 * (1.0 / 255.0)),
        Samples::U16(v) => go(&v[range], &mut out, c, |x| x as f32 * (1.0 / 65535.0)),
        Samples::F32(v) => go(&v[range], &mut out, c, |x| if x.is_nan() { 0.0 } else { x }),
    }
    out
}

/// What pass one learned: the filled levels K and coarser, in memory.
struct Coarse {
    /// Whether any pixel of the image is not fully opaque.
    any_transparent: bool,
    /// Index of the first in-memory level.
    k: usize,
    /// Filled colours of level K, row-major, `nc` a pixel.
    filled: Vec<f32>,
}

/// Pass one: reduce the whole image to level K (streaming), then pull and
/// push the in-memory levels. Fails if no pixel has any alpha.
fn pass_one(
    mut source: Box<dyn Source>,
    levels: &[(u32, u32)],
    n: usize,
    mut progress: impl FnMut(u32),
) -> Result<Coarse> {
    let budget = memory_pixels();
    let k = levels
        .iter()
        .position(|&(w, h)| w as u64 * h as u64 <= budget)
        .unwrap_or(levels.len() - 1)
        .max(1);
    // Streaming reduction from level 0 to level K; `pending[l]` holds an unpaired row of level l.
    let mut pending: Vec<Option<Row>> = vec![None; k];
    let mut level_k: Vec<f32> = Vec::with_capacity(levels[k].0 as usize * levels[k].1 as usize * n);
    let mut rows_seen = vec![0u32; k];
    fn feed(
        l: usize,
        row: Row,
        k: usize,
        levels: &[(u32, u32)],
        n: usize,
        pending: &mut [Option<Row>],
        rows_seen: &mut [u32],
        out: &mut Vec<f32>,
    ) {
        if l == k {
            out.extend_from_slice(&row);
            return;
        }
        rows_seen[l] += 1;
        let last = rows_seen[l] == levels[l].1;
        let w = levels[l].0 as usize;
        match pending[l].take() {
            Some(prev) => feed(
                l + 1,
                pull_rows(&prev, &row, w, n),
                k,
                levels,
                n,
                pending,
                rows_seen,
                out,
            ),
            None if last => feed(
                l + 1,
                pull_rows(&row, &row, w, n),
                k,
                levels,
                n,
                pending,
                rows_seen,
                out,
            ),
            None => pending[l] = Some(row),
        }
    }
    let mut any_transparent = false;
    while let Some(strip) = source.next_strip()? {
        any_transparent = any_transparent || has_transparency(&strip);
        for r in 0..strip.height {
            feed(
                0,
                premultiplied(&strip, r),
                k,
                levels,
                n,
                &mut pending,
                &mut rows_seen,
                &mut level_k,
            );
        }
        progress(strip.height);
    }
    // In memory: pull down to 1x1, then push back up to level K.
    let mut pulled = vec![level_k];
    for l in k..levels.len() - 1 {
        let (w, h) = (levels[l].0 as usize, levels[l].1 as usize);
        let src = pulled.last().unwrap();
        let mut next = Vec::with_capacity(levels[l + 1].0 as usize * levels[l + 1].1 as usize * n);
        for r in (0..h).step_by(2) {
            let a = &src[r * w * n..(r + 1) * w * n];
            let b = if r + 1 < h {
                &src[(r + 1) * w * n..(r + 2) * w * n]
            } else {
                a
            };
            next.extend_from_slice(&pull_rows(a, b, w, n));
        }
        pulled.push(next);
    }
    let top = pulled.last().unwrap();
    if top[n - 1] <= 0.0 {
        return Err(Error::Image(
            "the image is entirely transparent: there is no colour to fill with".into(),
        ));
    }
    let nc = n - 1;
    let mut filled = vec![0f32; nc];
    colour(top, n, &mut filled);
    for l in (k..levels.len() - 1).rev() {
        let (w, h) = (levels[l].0 as usize, levels[l].1 as usize);
        let (cw, ch) = (levels[l + 1].0 as usize, levels[l + 1].1);
        let p = &pulled[l - k];
        let mut f = Vec::with_capacity(w * h * nc);
        for r in 0..h {
            let (i, j) = coarse_rows(r as u32, ch);
            let near = &filled[i as usize * cw * nc..(i as usize + 1) * cw * nc];
            let far = &filled[j as usize * cw * nc..(j as usize + 1) * cw * nc];
            f.extend_from_slice(&push_row(
                &p[r * w * n..(r + 1) * w * n],
                near,
                far,
                cw,
                w,
                nc,
            ));
        }
        filled = f;
    }
    Ok(Coarse {
        any_transparent,
        k,
        filled,
    })
}

/// Rows of one streamed level in pass two.
#[derive(Default)]
struct Level {
    /// Pulled rows, the first being row `pulled_base`.
    pulled: VecDeque<Row>,
    pulled_base: u32,
    /// Filled rows, the first being row `filled_base`; `filled_base + len` is the next to fill.
    filled: VecDeque<Vec<f32>>,
    filled_base: u32,
    pending: Option<Row>,
    rows_in: u32,
}

/// The filled image as a stream: pass two.
pub struct Filled {
    source: Box<dyn Source>,
    info: ImageInfo,
    out_format: PixelFormat,
    keep_alpha: bool,
    levels: Vec<(u32, u32)>,
    n: usize,
    coarse: Coarse,
    /// Levels 1..K (index 0 unused: level 0 rows are `input`).
    streamed: Vec<Level>,
    /// Input rows not yet written, the first being row `next_out`.
    input: VecDeque<(Strip, u32)>,
    next_out: u32,
    done_reading: bool,
}

impl Filled {
    fn nc(&self) -> usize {
        self.n - 1
    }

    /// Adds a pulled row to level `l` (1..K) and reduces pairs further down.
    fn add_pulled(&mut self, l: usize, row: Row) {
        if l >= self.coarse.k {
            return; // level K and coarser are already filled in memory
        }
        let n = self.n;
        let w = self.levels[l].0 as usize;
        let lv = &mut self.streamed[l];
        lv.rows_in += 1;
        let last = lv.rows_in == self.levels[l].1;
        lv.pulled.push_back(row.clone());
        let reduced = match lv.pending.take() {
            Some(prev) => Some(pull_rows(&prev, &row, w, n)),
            None if last => Some(pull_rows(&row, &row, w, n)),
            None => {
                lv.pending = Some(row);
                None
            }
        };
        if let Some(r) = reduced {
            self.add_pulled(l + 1, r);
        }
    }

    /// Level-0 rows arrive: reduce them into level 1.
    fn add_input_rows(&mut self, strip: &Strip) {
        let w = self.levels[0].0 as usize;
        for r in 0..strip.height {
            let row = premultiplied(strip, r);
            let y = strip.y + r;
            let last = y + 1 == self.levels[0].1;
            let lv = &mut self.streamed[0];
            let reduced = match lv.pending.take() {
                Some(prev) => Some(pull_rows(&prev, &row, w, self.n)),
                None if last => Some(pull_rows(&row, &row, w, self.n)),
                None => {
                    lv.pending = Some(row);
                    None
                }
            };
            if let Some(red) = reduced {
                self.add_pulled(1, red);
            }
        }
    }

    /// Makes filled row `r` of level `l` (1..=K) available; false if its inputs aren't there yet.
    fn ensure(&mut self, l: usize, r: u32) -> bool {
        if l >= self.coarse.k {
            return true;
        }
        loop {
            let lv = &self.streamed[l];
            let next = lv.filled_base + lv.filled.len() as u32;
            if next > r {
                return true;
            }
            // Fill row `next`: needs its pulled row and two filled coarse rows.
            if next >= lv.pulled_base + lv.pulled.len() as u32 {
                return false;
            }
            let ch = self.levels[l + 1].1;
            let (i, j) = coarse_rows(next, ch);
            if !self.ensure(l + 1, i.max(j)) {
                return false;
            }
            let nc = self.nc();
            let (w, cw) = (self.levels[l].0 as usize, self.levels[l + 1].0 as usize);
            let near = self.filled_row(l + 1, i);
            let far = self.filled_row(l + 1, j);
            let lv = &self.streamed[l];
            let pulled = &lv.pulled[(next - lv.pulled_base) as usize];
            let row = push_row(pulled, &near, &far, cw, w, nc);
            let lv = &mut self.streamed[l];
            lv.filled.push_back(row);
            // The pulled row has served its only purpose.
            while lv.pulled_base <= next && !lv.pulled.is_empty() {
                lv.pulled.pop_front();
                lv.pulled_base += 1;
            }
            // Coarse rows below what the next fine row needs are no longer needed.
            let keep_from = coarse_rows(next + 1, ch).0.min(coarse_rows(next + 1, ch).1);
            if l + 1 < self.coarse.k {
                let c = &mut self.streamed[l + 1];
                while c.filled_base < keep_from && !c.filled.is_empty() {
                    c.filled.pop_front();
                    c.filled_base += 1;
                }
            }
        }
    }

    fn filled_row(&self, l: usize, r: u32) -> Vec<f32> {
        let nc = self.nc();
        if l >= self.coarse.k {
            let w = self.levels[l].0 as usize;
            return self.coarse.filled[r as usize * w * nc..(r as usize + 1) * w * nc].to_vec();
        }
        let lv = &self.streamed[l];
        lv.filled[(r - lv.filled_base) as usize].clone()
    }

    /// Writes output row `y` from the input row and level 1's filled rows.
    fn output_row(&self, strip: &Strip, row: u32, y: u32, out: &mut Samples) {
        let nc = self.nc();
        let c = strip.channels as usize;
        let w = strip.width as usize;
        let (cw, ch) = (self.levels[1].0 as usize, self.levels[1].1);
        let (i, j) = coarse_rows(y, ch);
        let (near, far) = (self.filled_ref(1, i), self.filled_ref(1, j));
        let oc = self.out_format.channels as usize;
        let start = row as usize * w * c;
        // The fill at pixel x: bilinear from the two coarse rows, computed only where needed.
        let fill_at = |x: usize, ch: usize| -> f32 {
            let (xi, xj) = (
                x / 2,
                if x % 2 == 0 {
                    (x / 2).saturating_sub(1)
                } else {
                    (x / 2 + 1).min(cw - 1)
                },
            );
            let n_ = 0.75 * near[xi * nc + ch] + 0.25 * near[xj * nc + ch];
            let f_ = 0.75 * far[xi * nc + ch] + 0.25 * far[xj * nc + ch];
            0.75 * n_ + 0.25 * f_
        };
        // Opaque pixels are copied; others blend their colour with the fill by alpha.
        macro_rules! blend {
            ($v:expr, $o:expr, $max:expr, $to:expr) => {{
                for x in 0..w {
                    let p = &$v[start + x * c..start + (x + 1) * c];
                    let a = p[c - 1];
                    let o = &mut $o[x * oc..(x + 1) * oc];
                    if a == $max {
                        o[..c - 1].copy_from_slice(&p[..c - 1]);
                    } else {
                        let af = (a as f32 / $max as f32).clamp(0.0, 1.0);
                        let af = if af.is_nan() { 0.0 } else { af };
                        for ch in 0..nc {
                            let col = p[ch] as f32 / $max as f32;
                            let col = if col.is_nan() { 0.0 } else { col };
                            o[ch] = $to(col * af + fill_at(x, ch) * (1.0 - af));
                        }
                    }
                    if oc == c {
                        o[c - 1] = if self.keep_alpha { p[c - 1] } else { $max };
                    }
                }
            }};
        }
        match (&strip.samples, out) {
            (Samples::U8(v), Samples::U8(o)) => blend!(v, o, 255u8, |f: f32| (f * 255.0 + 0.5)
                .clamp(0.0, 255.0)
                as u8),
            (Samples::U16(v), Samples::U16(o)) => blend!(v, o, 65535u16, |f: f32| (f * 65535.0
                + 0.5)
                .clamp(0.0, 65535.0)
                as u16),
            (Samples::F32(v), Samples::F32(o)) => blend!(v, o, 1.0f32, |f: f32| f),
            _ => unreachable!("output has the input's sample type"),
        }
    }

    /// A filled row of level `l`, borrowed.
    fn filled_ref(&self, l: usize, r: u32) -> &[f32] {
        let nc = self.nc();
        if l >= self.coarse.k {
            let w = self.levels[l].0 as usize;
            return &self.coarse.filled[r as usize * w * nc..(r as usize + 1) * w * nc];
        }
        let lv = &self.streamed[l];
        &lv.filled[(r - lv.filled_base) as usize]
    }

    /// Emits as many finished rows as possible, at most `max`.
    fn emit(&mut self, max: u32) -> Option<Strip> {
        let w = self.info.width;
        let oc = self.out_format.channels as usize;
        let mut rows = Vec::new();
        while (rows.len() as u32) < max && !self.input.is_empty() {
            let y = self.next_out;
            let ch = self.levels[1].1;
            let (i, j) = coarse_rows(y, ch);
            if !self.ensure(1, i.max(j)) {
                break;
            }
            let (strip, r) = self.input.front().unwrap();
            let mut out = Samples::zeros(self.info.format.sample, w as usize * oc);
            self.output_row(strip, *r, y, &mut out);
            rows.push(out);
            self.next_out += 1;
            // Drop the input row; drop level 1 rows the next output row won't need.
            let (strip, r) = self.input.pop_front().unwrap();
            if r + 1 < strip.height {
                self.input.push_front((strip, r + 1));
            }
            let keep = {
                let (a, b) = coarse_rows(self.next_out.min(self.info.height - 1), ch);
                a.min(b)
            };
            if 1 < self.coarse.k {
                let lv = &mut self.streamed[1];
                while lv.filled_base < keep && !lv.filled.is_empty() {
                    lv.filled.pop_front();
                    lv.filled_base += 1;
                }
            }
        }
        if rows.is_empty() {
            return None;
        }
        let y = self.next_out - rows.len() as u32;
        let h = rows.len() as u32;
        let mut samples = rows.remove(0);
        for r in rows {
            samples.extend_from(&r, 0, r.len());
        }
        Some(Strip::new(y, w, h, oc as u8, samples))
    }
}

impl Source for Filled {
    fn info(&self) -> ImageInfo {
        ImageInfo {
            format: self.out_format,
            ..self.info
        }
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        loop {
            if self.next_out >= self.info.height {
                return Ok(None);
            }
            if let Some(s) = self.emit(256) {
                return Ok(Some(s));
            }
            if self.done_reading {
                return Err(Error::Internal("fill stalled".into()));
            }
            match self.source.next_strip()? {
                Some(strip) => {
                    self.add_input_rows(&strip);
                    self.input.push_back((strip, 0));
                }
                None => self.done_reading = true,
            }
        }
    }
}

/// Whether a strip holds any pixel that isn't fully opaque.
pub fn has_transparency(strip: &Strip) -> bool {
    let c = strip.channels as usize;
    match &strip.samples {
        Samples::U8(v) => v.iter().skip(c - 1).step_by(c).any(|&a| a != 255),
        Samples::U16(v) => v.iter().skip(c - 1).step_by(c).any(|&a| a != 65535),
        Samples::F32(v) => v.iter().skip(c - 1).step_by(c).any(|&a| a != 1.0),
    }
}

/// What [`fill`] made of the image.
pub enum Outcome {
    /// The filled image, to be streamed.
    Filled(Box<dyn Source>),
    /// Every pixel is opaque: nothing to fill.
    Opaque,
}

/// Fills the transparent pixels of an image read twice: `first` for the
/// analysis, `second` streamed out filled. The output is opaque (alpha
/// dropped) unless `keep_alpha`. Errors if no pixel has any alpha.
pub fn fill(
    first: Box<dyn Source>,
    second: Box<dyn Source>,
    keep_alpha: bool,
    progress: impl FnMut(u32),
) -> Result<Outcome> {
    let info = first.info();
    if !info.format.has_alpha() {
        return Ok(Outcome::Opaque);
    }
    let n = info.format.channels as usize;
    let levels = sizes(info.width, info.height);
    if levels.len() < 2 {
        // A single pixel: opaque, or nothing to fill it from.
        let mut first = first;
        let s = first
            .next_strip()?
            .ok_or_else(|| Error::Internal("no rows".into()))?;
        if has_transparency(&s) {
            return Err(Error::Image(
                "the image is entirely transparent: there is no colour to fill with".into(),
            ));
        }
        return Ok(Outcome::Opaque);
    }
    let coarse = pass_one(first, &levels, n, progress)?;
    if !coarse.any_transparent {
        return Ok(Outcome::Opaque);
    }
    let out_format = if keep_alpha {
        info.format
    } else {
        PixelFormat::new(info.format.channels - 1, info.format.sample)
    };
    let streamed = (0..coarse.k).map(|_| Level::default()).collect();
    Ok(Outcome::Filled(Box::new(Filled {
        source: second,
        info,
        out_format,
        keep_alpha,
        levels,
        n,
        coarse,
        streamed,
        input: VecDeque::new(),
        next_out: 0,
        done_reading: false,
    })))
}
