//! Small per-strip operations: depth and channel conversion, alpha flattening.
//!
//! Integer samples are scaled so that 0 and the type's maximum map onto 0.0
//! and 1.0 of a float; floats outside 0..1 are clamped (NaN becomes 0).

use rayon::prelude::*;

use crate::{Color, ImageInfo, Mapped, PixelFormat, SampleType, Samples, Source, Strip};

/// Samples per parallel work item: big enough to amortise scheduling.
const CHUNK: usize = 1 << 16;

/// 16-bit to 8-bit with correct rounding: round(v * 255 / 65535).
#[inline]
pub fn u16_to_u8(v: u16) -> u8 {
    ((v as u32 * 255 + 32767) / 65535) as u8
}

#[inline]
fn clamp01(v: f32) -> f32 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(0.0, 1.0)
    }
}

#[inline]
/// A float sample (0..1) as 8-bit, rounded; NaN is 0.
pub fn f32_to_u8(v: f32) -> u8 {
    (clamp01(v) * 255.0 + 0.5) as u8
}

#[inline]
/// A float sample (0..1) as 16-bit, rounded; NaN is 0.
pub fn f32_to_u16(v: f32) -> u16 {
    (clamp01(v) * 65535.0 + 0.5) as u16
}

fn map_par<A: Sync, B: Send + Default + Clone>(src: &[A], f: impl Fn(&A) -> B + Sync) -> Vec<B> {
    let mut out = vec![B::default(); src.len()];
    out.par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK))
        .for_each(|(o, s)| {
            for (o, s) in o.iter_mut().zip(s) {
                *o = f(s);
            }
        });
    out
}

/// Converts samples to another type (8, 16 or 32-bit float).
pub fn convert_samples(samples: &Samples, to: SampleType) -> Samples {
    match (samples, to) {
        (Samples::U8(_), SampleType::U8)
        | (Samples::U16(_), SampleType::U16)
        | (Samples::F32(_), SampleType::F32) => samples.clone(),
        (Samples::U8(v), SampleType::U16) => Samples::U16(map_par(v, |&s| s as u16 * 257)),
        (Samples::U8(v), SampleType::F32) => Samples::F32(map_par(v, |&s| s as f32 / 255.0)),
        (Samples::U16(v), SampleType::U8) => Samples::U8(map_par(v, |&s| u16_to_u8(s))),
        (Samples::U16(v), SampleType::F32) => Samples::F32(map_par(v, |&s| s as f32 / 65535.0)),
        (Samples::F32(v), SampleType::U8) => Samples::U8(map_par(v, |&s| f32_to_u8(s))),
        (Samples::F32(v), SampleType::U16) => Samples::U16(map_par(v, |&s| f32_to_u16(s))),
    }
}

/// A sample type seen as a fraction of its maximum, for channel arithmetic.
trait Sample: Copy + Send + Sync + Default {
    const MAX: f32;
    fn to_f(self) -> f32;
    fn from_f(v: f32) -> Self;
}
impl Sample for u8 {
    const MAX: f32 = 255.0;
    fn to_f(self) -> f32 {
        self as f32
    }
    fn from_f(v: f32) -> u8 {
        (v + 0.5).clamp(0.0, 255.0) as u8
    }
}
impl Sample for u16 {
    const MAX: f32 = 65535.0;
    fn to_f(self) -> f32 {
        self as f32
    }
    fn from_f(v: f32) -> u16 {
        (v + 0.5).clamp(0.0, 65535.0) as u16
    }
}
impl Sample for f32 {
    const MAX: f32 = 1.0;
    fn to_f(self) -> f32 {
        self
    }
    fn from_f(v: f32) -> f32 {
        v
    }
}

/// Maps every pixel of `src` (`cin` channels) to `cout` channels with `f`,
/// which sees and writes values on the scale 0..MAX.
fn map_pixels<T: Sample>(
    src: &[T],
    cin: usize,
    cout: usize,
    f: impl Fn(&[f32], &mut [f32]) + Sync,
) -> Vec<T> {
    let pixels = src.len() / cin;
    let mut out = vec![T::default(); pixels * cout];
    let per = CHUNK / 4;
    out.par_chunks_mut(per * cout)
        .zip(src.par_chunks(per * cin))
        .for_each(|(o, s)| {
            let (mut a, mut b) = ([0f32; 4], [0f32; 4]);
            for (o, s) in o.chunks_exact_mut(cout).zip(s.chunks_exact(cin)) {
                for (a, s) in a.iter_mut().zip(s) {
                    *a = s.to_f();
                }
                f(&a[..cin], &mut b[..cout]);
                for (o, b) in o.iter_mut().zip(&b[..cout]) {
                    *o = T::from_f(*b);
                }
            }
        });
    out
}

/// Converts between gray, gray+alpha, RGB and RGBA. Colour to gray uses
/// Rec. 601 luma; removing alpha flattens onto `background`; adding alpha
/// makes every pixel opaque.
fn convert_channels<T: Sample>(src: &[T], cin: u8, cout: u8, background: Color) -> Vec<T> {
    let max = T::MAX;
    let bg = background.0.map(|c| c * max);
    let bg_gray = background.luma() * max;
    let in_alpha = cin == 2 || cin == 4;
    let out_alpha = cout == 2 || cout == 4;
    let (cin_u, cout_u) = (cin as usize, cout as usize);
    map_pixels(src, cin_u, cout_u, |p, o| {
        let colour_in = if in_alpha { cin_u - 1 } else { cin_u };
        let alpha = if in_alpha { p[cin_u - 1] } else { max };
        let mut rgb = if colour_in == 1 {
            [p[0]; 3]
        } else {
            [p[0], p[1], p[2]]
        };
        if in_alpha && !out_alpha {
            let a = alpha / max;
            let bgv = if cout == 1 { [bg_gray; 3] } else { bg };
            for (c, b) in rgb.iter_mut().zip(bgv) {
                *c = *c * a + b * (1.0 - a);
            }
        }
        let colour_out = if out_alpha { cout_u - 1 } else { cout_u };
        if colour_out == 1 {
            o[0] = if colour_in == 1 {
                rgb[0]
            } else {
                0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
            };
        } else {
            o[..3].copy_from_slice(&rgb);
        }
        if out_alpha {
            o[cout_u - 1] = alpha;
        }
    })
}

/// Halves a strip: each output pixel averages a 2x2 block (a last odd row or
/// column pairs with itself), weighted by alpha where there is alpha so
/// transparent pixels don't darken edges. `out_width` is ceil(width / 2).
pub fn reduce_2x2(strip: &Strip, out_width: u32, out_y: u32) -> Strip {
    fn go<T: Sample>(v: &[T], w: usize, h: usize, c: usize, ow: usize) -> Vec<T> {
        let oh = h.div_ceil(2);
        let alpha = c == 2 || c == 4;
        let mut out = vec![T::default(); ow * oh * c];
        out.par_chunks_mut(ow * c)
            .enumerate()
            .for_each(|(oy, orow)| {
                let (y0, y1) = (2 * oy, (2 * oy + 1).min(h - 1));
                for ox in 0..ow {
                    let (x0, x1) = (2 * ox, (2 * ox + 1).min(w - 1));
                    let px = [(y0, x0), (y0, x1), (y1, x0), (y1, x1)]
                        .map(|(y, x)| &v[(y * w + x) * c..(y * w + x + 1) * c]);
                    let o = &mut orow[ox * c..(ox + 1) * c];
                    if alpha {
                        let a = c - 1;
                        let total: f32 = px.iter().map(|p| p[a].to_f()).sum();
                        o[a] = T::from_f(total / 4.0);
                        for ch in 0..a {
                            let sum: f32 = px.iter().map(|p| p[ch].to_f() * p[a].to_f()).sum();
                            o[ch] = if total > 0.0 {
                                T::from_f(sum / total)
                            } else {
                                T::default()
                            };
                        }
                    } else {
                        for ch in 0..c {
                            o[ch] = T::from_f(px.iter().map(|p| p[ch].to_f()).sum::<f32>() / 4.0);
                        }
                    }
                }
            });
        out
    }
    let (w, h, c, ow) = (
        strip.width as usize,
        strip.height as usize,
        strip.channels as usize,
        out_width as usize,
    );
    let samples = match &strip.samples {
        Samples::U8(v) => Samples::U8(go(v, w, h, c, ow)),
        Samples::U16(v) => Samples::U16(go(v, w, h, c, ow)),
        Samples::F32(v) => Samples::F32(go(v, w, h, c, ow)),
    };
    Strip::new(
        out_y,
        out_width,
        strip.height.div_ceil(2),
        strip.channels,
        samples,
    )
}

/// Converts a strip to `format`: channels first (at the source depth), then depth.
pub fn convert_strip(strip: Strip, format: PixelFormat, background: Color) -> Strip {
    let mut strip = strip;
    if strip.channels != format.channels {
        let (cin, cout) = (strip.channels, format.channels);
        strip.samples = match &strip.samples {
            Samples::U8(v) => Samples::U8(convert_channels(v, cin, cout, background)),
            Samples::U16(v) => Samples::U16(convert_channels(v, cin, cout, background)),
            Samples::F32(v) => Samples::F32(convert_channels(v, cin, cout, background)),
        };
        strip.channels = cout;
    }
    if strip.samples.sample_type() != format.sample {
        strip.samples = convert_samples(&strip.samples, format.sample);
    }
    strip
}

/// Wraps `source` so that it yields `format`; returns it unchanged if it already does.
pub fn convert(source: Box<dyn Source>, format: PixelFormat, background: Color) -> Box<dyn Source> {
    let info = source.info();
    if info.format == format {
        return source;
    }
    let out = ImageInfo { format, ..info };
    Box::new(Mapped::new(source, out, move |s| {
        convert_strip(s, format, background)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn u16_to_u8_rounds() {
        assert_eq!(u16_to_u8(0), 0);
        assert_eq!(u16_to_u8(65535), 255);
        assert_eq!(u16_to_u8(128), 0);
        assert_eq!(u16_to_u8(129), 1); // 129*255/65535 = 0.502
        for v in 0..=255u16 {
            assert_eq!(u16_to_u8(v * 257), v as u8);
        }
    }

    proptest! {
        #[test]
        fn u16_to_u8_is_nearest(v: u16) {
            let exact = v as f64 * 255.0 / 65535.0;
            prop_assert!((u16_to_u8(v) as f64 - exact).abs() <= 0.5 + 1e-9);
        }
    }

    #[test]
    fn floats_clamp() {
        let s = Samples::F32(vec![-1.0, 0.0, 0.5, 1.0, 7.0, f32::NAN, f32::INFINITY]);
        assert_eq!(
            convert_samples(&s, SampleType::U8),
            Samples::U8(vec![0, 0, 128, 255, 255, 0, 255])
        );
        assert_eq!(
            convert_samples(&s, SampleType::U16),
            Samples::U16(vec![0, 0, 32768, 65535, 65535, 0, 65535])
        );
    }

    #[test]
    fn flatten_onto_background() {
        // Half-transparent red over white; transparent over white; opaque blue.
        let s = Strip::new(
            0,
            3,
            1,
            4,
            Samples::U8(vec![255, 0, 0, 128, 9, 9, 9, 0, 0, 0, 255, 255]),
        );
        let out = convert_strip(s, PixelFormat::new(3, SampleType::U8), Color::WHITE);
        assert_eq!(
            out.samples,
            Samples::U8(vec![255, 127, 127, 255, 255, 255, 0, 0, 255])
        );
    }

    #[test]
    fn reduce_weights_by_alpha() {
        // Opaque red beside transparent black, over two rows; then an odd third row.
        let s = Strip::new(
            0,
            2,
            3,
            4,
            Samples::U8(vec![
                255, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 255, 0, 0, 0, 0, 10, 20, 30, 255, 10, 20,
                30, 255,
            ]),
        );
        let r = reduce_2x2(&s, 1, 0);
        assert_eq!(r.height, 2);
        assert_eq!(
            r.samples,
            Samples::U8(vec![255, 0, 0, 128, 10, 20, 30, 255])
        );
    }

    #[test]
    fn gray_rgb_round_trip() {
        let s = Strip::new(0, 2, 1, 1, Samples::U16(vec![0, 40000]));
        let rgba = convert_strip(
            s.clone(),
            PixelFormat::new(4, SampleType::U16),
            Color::WHITE,
        );
        assert_eq!(
            rgba.samples,
            Samples::U16(vec![0, 0, 0, 65535, 40000, 40000, 40000, 65535])
        );
        let back = convert_strip(rgba, PixelFormat::new(1, SampleType::U16), Color::WHITE);
        assert_eq!(back.samples, s.samples);
    }
}
