//! A decoded frame (8 or 16-bit RGB or RGBA), optionally shrunk by an integer
//! box factor for anti-aliasing, and its interpolators. Frames live in memory,
//! or, past the `--memory` cap, in a mapped scratch file that the kernel pages
//! in and out (an unnamed file: it disappears with the process, even on a crash).

use std::path::Path;

use raster::{Color, PixelFormat, Result, SampleType, Samples};

use crate::pto::Interpolator;

pub enum Pixels {
    U8(Vec<u8>),
    U16(Vec<u16>),
    /// Samples in a mapped scratch file; `wide` for 16-bit.
    Mapped {
        map: memmap2::MmapMut,
        wide: bool,
    },
}

pub struct FrameImage {
    pub width: usize,
    pub height: usize,
    /// 3 (RGB) or 4 (RGBA).
    pub channels: usize,
    pub pixels: Pixels,
    /// 1/255 or 1/65535: turns stored samples into 0..1.
    pub unit: f32,
    /// The box factor this copy was shrunk by (1 = full resolution).
    pub factor: u32,
    /// The low-pass copies of multiband blending (finest first), if asked for.
    pub low: Vec<LowBand>,
}

/// How much coarser each low-pass copy of multiband blending is than the one
/// before (the first: than the frame as sampled).
pub const LOW_BANDS: [u32; 2] = [16, 8];

/// A frame shrunk more, with its colours already corrected (photometry
/// applied at each pixel's centre): a low-pass copy for multiband blending,
/// sampled bilinearly without further work.
pub struct LowBand {
    width: usize,
    height: usize,
    /// Box factor from the full-resolution frame.
    factor: u32,
    pixels: Vec<[f32; 4]>,
}

impl LowBand {
    /// The first `n` low-pass copies of `image` (see `LOW_BANDS`), finest first.
    /// `transient`: where something moved, the keeper's colours replace this
    /// frame's (`seam`), so no band carries what the output does not show.
    pub fn all(
        image: &FrameImage,
        photometry: &crate::photometry::Photometry,
        n: usize,
        transient: &[crate::seam::Patch],
    ) -> Vec<LowBand> {
        let mut bands = Vec::new();
        let mut coarser: Option<FrameImage> = None;
        // Each copy shrinks the one before, not the frame again.
        for &k in LOW_BANDS.iter().take(n) {
            let small = coarser.as_ref().unwrap_or(image).shrink(k);
            let mut band = LowBand::corrected(&small, photometry);
            band.patch(transient);
            // [1 4 6 4 1] / 16: the box means alone depend on where the grid falls, so two
            // frames' copies of the same place differed near sharp edges (a faint halo).
            band.smooth();
            band.smooth();
            bands.push(band);
            coarser = Some(small);
        }
        bands
    }

    /// Moves each cell by the patches inside it (`seam::Patch`: the keeper's
    /// colours instead of this frame's where something moved).
    fn patch(&mut self, patches: &[crate::seam::Patch]) {
        let k = self.factor as f32;
        for p in patches {
            // The patch is a square of its area around its point; each cell it overlaps
            // takes the overlapping share. Cell i spans k*i - 0.5 .. k*(i+1) - 0.5.
            let half = p.area.sqrt() / 2.0;
            let span = |c: f32, n: usize| {
                let (a, b) = ((c - half + 0.5) / k, (c + half + 0.5) / k);
                let first = a.floor().max(0.0) as usize;
                let last = (b.ceil() as usize).min(n);
                (first..last).map(move |i| (i, ((i + 1) as f32).min(b) - (i as f32).max(a)))
            };
            for (j, hy) in span(p.at[1], self.height) {
                for (i, hx) in span(p.at[0], self.width) {
                    // hx, hy: overlap in cell widths, so hx * hy is the share of a cell.
                    let share = hx.max(0.0) * hy.max(0.0);
                    let cell = &mut self.pixels[j * self.width + i];
                    for c in 0..3 {
                        cell[c] += p.diff[c] * share;
                    }
                }
            }
        }
    }

    /// A [1 2 1] / 4 blur each way.
    fn smooth(&mut self) {
        let (w, h) = (self.width, self.height);
        let pass = |src: &[[f32; 4]], step: usize, len: usize, at: &dyn Fn(usize) -> usize| {
            let mut out = src.to_vec();
            for p in 0..w * h {
                let i = at(p);
                let (a, b) = (
                    if i > 0 { p - step } else { p },
                    if i + 1 < len { p + step } else { p },
                );
                for c in 0..4 {
                    out[p][c] = 0.25 * src[a][c] + 0.5 * src[p][c] + 0.25 * src[b][c];
                }
            }
            out
        };
        let across = pass(&self.pixels, 1, w, &|p| p % w);
        self.pixels = pass(&across, w, h, &|p| p / w);
    }

    fn corrected(small: &FrameImage, photometry: &crate::photometry::Photometry) -> LowBand {
        let k = small.factor as f64;
        let mut pixels = Vec::with_capacity(small.width * small.height);
        for j in 0..small.height {
            for i in 0..small.width {
                let (x, y) = (
                    k * i as f64 + (k - 1.0) / 2.0,
                    k * j as f64 + (k - 1.0) / 2.0,
                );
                let mut px = [0f32; 4];
                small.sample(x, y, Interpolator::Nearest, &mut px);
                photometry.apply(&mut px, x, y);
                pixels.push(px);
            }
        }
        LowBand {
            width: small.width,
            height: small.height,
            factor: small.factor,
            pixels,
        }
    }

    /// Bilinear at full-resolution frame coordinates (x, y).
    pub fn sample(&self, x: f64, y: f64, out: &mut [f32; 4]) {
        let k = self.factor as f64;
        let (x, y) = ((x - (k - 1.0) / 2.0) / k, (y - (k - 1.0) / 2.0) / k);
        let (fx, fy) = (x.floor(), y.floor());
        let (tx, ty) = ((x - fx) as f32, (y - fy) as f32);
        let at = |i: f64, j: f64| {
            let (i, j) = (
                i.clamp(0.0, (self.width - 1) as f64) as usize,
                j.clamp(0.0, (self.height - 1) as f64) as usize,
            );
            &self.pixels[j * self.width + i]
        };
        let (a, b, c, d) = (
            at(fx, fy),
            at(fx + 1.0, fy),
            at(fx, fy + 1.0),
            at(fx + 1.0, fy + 1.0),
        );
        for ch in 0..4 {
            let top = a[ch] + (b[ch] - a[ch]) * tx;
            let bottom = c[ch] + (d[ch] - c[ch]) * tx;
            out[ch] = top + (bottom - top) * ty;
        }
    }
}

impl FrameImage {
    /// Reads `path` whole, as RGB(A) of its own depth (floats become 16-bit), and shrinks it by `factor`.
    /// With `quick`, a JPEG shrunk by a multiple of 2, 4 or 8 is decoded that much smaller
    /// to begin with (libjpeg's DCT scaling: nearly the same block means, several times
    /// faster; previews use it, renders don't, so their pixels stay exact).
    pub fn load(path: &Path, expect: (u32, u32), factor: u32, quick: bool) -> Result<FrameImage> {
        let power_of_two = if quick {
            (factor & factor.wrapping_neg()).clamp(1, 8)
        } else {
            1
        };
        let (opened, reduced) = formats::open_reduced(path, power_of_two)?;
        let info = opened.source.info();
        let full = (info.width, info.height);
        let seen = (expect.0.div_ceil(reduced), expect.1.div_ceil(reduced));
        if full != seen {
            return Err(raster::Error::invalid(
                path,
                format!(
                    "the frame is {}x{} (at 1/{reduced} of its size) but the project says {}x{}",
                    info.width, info.height, expect.0, expect.1
                ),
            ));
        }
        let channels = if info.format.has_alpha() { 4 } else { 3 };
        let sample = if info.format.sample == SampleType::U8 {
            SampleType::U8
        } else {
            SampleType::U16
        };
        let mut source = raster::ops::convert(
            opened.source,
            PixelFormat::new(channels, sample),
            Color::WHITE,
        );
        let len = info.width as usize * info.height as usize * channels as usize;
        let mut samples = Samples::with_capacity(sample, len);
        while let Some(strip) = source.next_strip()? {
            samples.extend_from(&strip.samples, 0, strip.samples.len());
        }
        if samples.len() != len {
            return Err(raster::Error::invalid(path, "the frame ended early"));
        }
        let (pixels, unit) = match samples {
            Samples::U8(v) => (Pixels::U8(v), 1.0 / 255.0),
            Samples::U16(v) => (Pixels::U16(v), 1.0 / 65535.0),
            Samples::F32(_) => unreachable!("converted to integers above"),
        };
        let image = FrameImage {
            width: info.width as usize,
            height: info.height as usize,
            channels: channels as usize,
            pixels,
            unit,
            factor: reduced,
            low: Vec::new(),
        };
        Ok(if factor > reduced {
            image.shrink(factor / reduced)
        } else {
            image
        })
    }

    /// Bytes of the samples.
    pub fn bytes(&self) -> u64 {
        match &self.pixels {
            Pixels::U8(v) => v.len() as u64,
            Pixels::U16(v) => v.len() as u64 * 2,
            Pixels::Mapped { map, .. } => map.len() as u64,
        }
    }

    pub fn is_mapped(&self) -> bool {
        matches!(self.pixels, Pixels::Mapped { .. })
    }

    /// Moves the samples into an unnamed scratch file in `dir`, mapped.
    pub fn spill(self, dir: &Path) -> Result<FrameImage> {
        let bytes: &[u8] = match &self.pixels {
            Pixels::U8(v) => v,
            Pixels::U16(v) => bytemuck::cast_slice(v),
            Pixels::Mapped { .. } => return Ok(self),
        };
        let io = |e| raster::Error::io(dir, e);
        let file = tempfile::tempfile_in(dir).map_err(io)?;
        file.set_len(bytes.len().max(1) as u64).map_err(io)?;
        // SAFETY: the file is ours alone (unnamed, never shared), so nothing else changes it under the map.
        let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }.map_err(io)?;
        map[..bytes.len()].copy_from_slice(bytes);
        let wide = matches!(self.pixels, Pixels::U16(_));
        Ok(FrameImage {
            pixels: Pixels::Mapped { map, wide },
            ..self
        })
    }

    /// Box-averages `factor` x `factor` blocks (partial blocks at the edges average what they have).
    fn shrink(&self, factor: u32) -> FrameImage {
        let k = factor as usize;
        let (w, h, c) = (
            self.width.div_ceil(k),
            self.height.div_ceil(k),
            self.channels,
        );
        fn go<T: Copy + Into<f32>>(
            src: &[T],
            (sw, sh, c): (usize, usize, usize),
            k: usize,
            (w, h): (usize, usize),
            back: impl Fn(f32) -> T,
        ) -> Vec<T> {
            let mut out = Vec::with_capacity(w * h * c);
            let mut acc = vec![0f32; w * c];
            for by in 0..h {
                acc.iter_mut().for_each(|a| *a = 0.0);
                let rows = (by * k..((by + 1) * k).min(sh)).len();
                for y in by * k..((by + 1) * k).min(sh) {
                    let row = &src[y * sw * c..(y + 1) * sw * c];
                    // Block by block (no division per pixel).
                    for (a, block) in acc.chunks_exact_mut(c).zip(row.chunks(k * c)) {
                        for px in block.chunks_exact(c) {
                            for ch in 0..c {
                                a[ch] += px[ch].into();
                            }
                        }
                    }
                }
                for bx in 0..w {
                    let cols = (bx * k..((bx + 1) * k).min(sw)).len();
                    let n = (rows * cols) as f32;
                    for ch in 0..c {
                        out.push(back(acc[bx * c + ch] / n));
                    }
                }
            }
            out
        }
        let pixels = match &self.pixels {
            Pixels::U8(v) => Pixels::U8(go(v, (self.width, self.height, c), k, (w, h), |x| {
                (x + 0.5) as u8
            })),
            Pixels::U16(v) => Pixels::U16(go(v, (self.width, self.height, c), k, (w, h), |x| {
                (x + 0.5) as u16
            })),
            Pixels::Mapped { .. } => unreachable!("frames are shrunk before they are spilled"),
        };
        FrameImage {
            width: w,
            height: h,
            channels: c,
            pixels,
            unit: self.unit,
            // Pixel centres stay at F*i + (F-1)/2 in full-resolution pixels for a compound F.
            factor: self.factor * factor,
            low: Vec::new(),
        }
    }

    /// Interpolates all channels at full-resolution frame coordinates (x, y), 0..1 each.
    pub fn sample(&self, x: f64, y: f64, how: Interpolator, out: &mut [f32; 4]) {
        // Pixel centres of the shrunk copy sit at k*i + (k-1)/2 in full-resolution pixels.
        let k = self.factor as f64;
        let (x, y) = if self.factor > 1 {
            ((x - (k - 1.0) / 2.0) / k, (y - (k - 1.0) / 2.0) / k)
        } else {
            (x, y)
        };
        let (w, h, c) = (self.width, self.height, self.channels);
        match &self.pixels {
            Pixels::U8(v) => interpolate(v, w, h, c, x, y, how, out),
            Pixels::U16(v) => interpolate(v, w, h, c, x, y, how, out),
            Pixels::Mapped { map, wide: false } => interpolate(&map[..], w, h, c, x, y, how, out),
            Pixels::Mapped { map, wide: true } => {
                interpolate::<u16>(bytemuck::cast_slice(&map[..]), w, h, c, x, y, how, out)
            }
        }
        for o in out.iter_mut().take(self.channels) {
            *o = (*o * self.unit).clamp(0.0, 1.0);
        }
        if self.channels == 3 {
            out[3] = 1.0;
        }
    }
}

/// Keys' cubic convolution kernel with a = -0.75, the "poly3" cubic of PanoTools and nona.
fn cubic_weights(t: f64) -> [f32; 4] {
    const A: f64 = -0.75;
    let w0 = ((A * (t + 1.0) - 5.0 * A) * (t + 1.0) + 8.0 * A) * (t + 1.0) - 4.0 * A;
    let w1 = ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0;
    let u = 1.0 - t;
    let w2 = ((A + 2.0) * u - (A + 3.0)) * u * u + 1.0;
    let w3 = 1.0 - w0 - w1 - w2;
    [w0 as f32, w1 as f32, w2 as f32, w3 as f32]
}

#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
fn interpolate<T: Copy + Into<f32>>(
    v: &[T],
    w: usize,
    h: usize,
    c: usize,
    x: f64,
    y: f64,
    how: Interpolator,
    out: &mut [f32; 4],
) {
    let clampi = |i: i64, n: usize| i.clamp(0, n as i64 - 1) as usize;
    *out = [0.0; 4];
    match how {
        Interpolator::Nearest => {
            let (ix, iy) = (clampi(x.round() as i64, w), clampi(y.round() as i64, h));
            let p = (iy * w + ix) * c;
            for ch in 0..c {
                out[ch] = v[p + ch].into();
            }
        }
        Interpolator::Bilinear => {
            let (fx, fy) = (x.floor(), y.floor());
            let (tx, ty) = ((x - fx) as f32, (y - fy) as f32);
            let xs = [clampi(fx as i64, w), clampi(fx as i64 + 1, w)];
            let ys = [clampi(fy as i64, h), clampi(fy as i64 + 1, h)];
            let wx = [1.0 - tx, tx];
            let wy = [1.0 - ty, ty];
            for (j, &yy) in ys.iter().enumerate() {
                for (i, &xx) in xs.iter().enumerate() {
                    let p = (yy * w + xx) * c;
                    let k = wx[i] * wy[j];
                    for ch in 0..c {
                        out[ch] += k * v[p + ch].into();
                    }
                }
            }
        }
        Interpolator::Bicubic => {
            let (fx, fy) = (x.floor(), y.floor());
            let wx = cubic_weights(x - fx);
            let wy = cubic_weights(y - fy);
            let (x0, y0) = (fx as i64 - 1, fy as i64 - 1);
            let inside = x0 >= 0 && y0 >= 0 && x0 + 3 < w as i64 && y0 + 3 < h as i64;
            if inside {
                // The common case, away from the edges: fixed channel counts unroll.
                let base = (y0 as usize * w + x0 as usize) * c;
                match c {
                    3 => bicubic_inside::<T, 3>(v, base, w * 3, &wx, &wy, out),
                    _ => bicubic_inside::<T, 4>(v, base, w * 4, &wx, &wy, out),
                }
                return;
            }
            for j in 0..4 {
                let yy = clampi(y0 + j as i64, h);
                let mut row = [0f32; 4];
                for i in 0..4 {
                    let xx = if inside {
                        (x0 + i as i64) as usize
                    } else {
                        clampi(x0 + i as i64, w)
                    };
                    let p = (yy * w + xx) * c;
                    for ch in 0..c {
                        row[ch] += wx[i] * v[p + ch].into();
                    }
                }
                for ch in 0..c {
                    out[ch] += wy[j] * row[ch];
                }
            }
        }
    }
}

/// Bicubic on the 4x4 block starting at `base` (rows `stride` samples apart), C channels.
#[inline]
fn bicubic_inside<T: Copy + Into<f32>, const C: usize>(
    v: &[T],
    base: usize,
    stride: usize,
    wx: &[f32; 4],
    wy: &[f32; 4],
    out: &mut [f32; 4],
) {
    let mut acc = [0f32; C];
    for (j, &ky) in wy.iter().enumerate() {
        let row = &v[base + j * stride..base + j * stride + 4 * C];
        let mut r = [0f32; C];
        for (i, &kx) in wx.iter().enumerate() {
            for ch in 0..C {
                r[ch] += kx * row[i * C + ch].into();
            }
        }
        for ch in 0..C {
            acc[ch] += ky * r[ch];
        }
    }
    out[..C].copy_from_slice(&acc);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> FrameImage {
        let mut v = Vec::new();
        for y in 0..h {
            for x in 0..w {
                v.extend([(x * 10) as u8, (y * 10) as u8, 100]);
            }
        }
        FrameImage {
            width: w,
            height: h,
            channels: 3,
            pixels: Pixels::U8(v),
            unit: 1.0 / 255.0,
            factor: 1,
            low: Vec::new(),
        }
    }

    #[test]
    fn kernels_reproduce_pixels_and_linear_ramps() {
        let f = ramp(12, 10);
        let mut o = [0.0; 4];
        for how in [
            Interpolator::Nearest,
            Interpolator::Bilinear,
            Interpolator::Bicubic,
        ] {
            f.sample(5.0, 4.0, how, &mut o);
            assert!(
                (o[0] * 255.0 - 50.0).abs() < 1e-3 && (o[1] * 255.0 - 40.0).abs() < 1e-3,
                "{how:?} {o:?}"
            );
        }
        // Bilinear is exact on a ramp; Keys' cubic with a = -0.75 (not -0.5) bends it slightly.
        for (how, tol) in [(Interpolator::Bilinear, 1e-3), (Interpolator::Bicubic, 0.6)] {
            f.sample(5.25, 4.5, how, &mut o);
            assert!(
                (o[0] * 255.0 - 52.5).abs() < tol && (o[1] * 255.0 - 45.0).abs() < tol,
                "{how:?} {o:?}"
            );
        }
        let w = cubic_weights(0.3);
        assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        // the unrolled inside path and the clamped general path agree
        let (mut a, mut b) = ([0.0; 4], [0.0; 4]);
        f.sample(5.37, 4.81, Interpolator::Bicubic, &mut a);
        if let Pixels::U8(v) = &f.pixels {
            let (wx, wy) = (cubic_weights(0.37), cubic_weights(0.81));
            for j in 0..4 {
                for i in 0..4 {
                    for ch in 0..3 {
                        b[ch] += wy[j] * wx[i] * v[((3 + j) * 12 + 4 + i) * 3 + ch] as f32 / 255.0;
                    }
                }
            }
        }
        assert!((0..3).all(|ch| (a[ch] - b[ch]).abs() < 1e-5), "{a:?} {b:?}");
    }

    #[test]
    fn spilled_frames_sample_the_same() {
        let f = ramp(12, 10);
        let mut a = [0.0; 4];
        f.sample(5.3, 4.6, Interpolator::Bicubic, &mut a);
        let g = f.spill(&std::env::temp_dir()).unwrap();
        assert!(matches!(g.pixels, Pixels::Mapped { .. }));
        let mut b = [0.0; 4];
        g.sample(5.3, 4.6, Interpolator::Bicubic, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn shrink_keeps_coordinates() {
        let f = ramp(12, 10).shrink(2);
        assert_eq!((f.width, f.height, f.factor), (6, 5, 2));
        let mut o = [0.0; 4];
        f.sample(5.0, 4.0, Interpolator::Bilinear, &mut o);
        assert!(
            (o[0] * 255.0 - 50.0).abs() < 0.6 && (o[1] * 255.0 - 40.0).abs() < 0.6,
            "{o:?}"
        );
    }
}
