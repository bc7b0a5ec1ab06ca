//! The 2x2 box reduction between levels, weighted by alpha so that
//! transparent pixels never darken the edges of the image.

use rayon::prelude::*;

/// Reduces one pair of rows (`top`, `bottom`, `width` pixels of `channels`
/// 8-bit samples; RGBA and gray+alpha carry alpha last) into `out`, which
/// holds `out_width` pixels. A last odd column is paired with itself.
pub fn reduce_rows(top: &[u8], bottom: &[u8], width: usize, channels: usize, out: &mut [u8]) {
    let out_width = out.len() / channels;
    if channels == 4 {
        // The common case, RGBA: runs of opaque or transparent pixels take a fast path.
        let full = (width / 2).min(out_width);
        let mut ox = 0;
        while ox < full {
            #[cfg(target_arch = "x86_64")]
            if ox + 4 <= full
                && uniform_x4(
                    &top[ox * 8..ox * 8 + 32],
                    &bottom[ox * 8..ox * 8 + 32],
                    &mut out[ox * 4..ox * 4 + 16],
                )
            {
                ox += 4;
                continue;
            }
            // Four pixels one by one (or the last few of the row).
            for x in ox..(ox + 4).min(full) {
                let (t, b) = (&top[x * 8..x * 8 + 8], &bottom[x * 8..x * 8 + 8]);
                reduce_pixel(
                    &[&t[..4], &t[4..], &b[..4], &b[4..]],
                    4,
                    &mut out[x * 4..x * 4 + 4],
                );
            }
            ox = (ox + 4).min(full);
        }
        if out_width > full {
            let x = 2 * full;
            let (t, b) = (&top[x * 4..x * 4 + 4], &bottom[x * 4..x * 4 + 4]);
            reduce_pixel(&[t, t, b, b], 4, &mut out[full * 4..full * 4 + 4]);
        }
        return;
    }
    match channels {
        3 => return reduce_plain::<3>(top, bottom, width, out),
        1 => return reduce_plain::<1>(top, bottom, width, out),
        _ => {}
    }
    // Gray + alpha, pixel by pixel.
    for ox in 0..out_width {
        let x0 = 2 * ox;
        let x1 = (x0 + 1).min(width - 1);
        let px = [
            &top[x0 * channels..],
            &top[x1 * channels..],
            &bottom[x0 * channels..],
            &bottom[x1 * channels..],
        ];
        reduce_pixel(&px, channels, &mut out[ox * channels..(ox + 1) * channels]);
    }
}

/// Rows without alpha (RGB, gray): a plain rounded average, the two rows
/// summed first (a loop the compiler vectorises), then neighbouring pixels.
fn reduce_plain<const CH: usize>(top: &[u8], bottom: &[u8], width: usize, out: &mut [u8]) {
    const CHUNK: usize = 64; // output pixels per pass
    const { assert!(CH <= 3, "the sums below hold three channels") };
    let out_width = out.len() / CH;
    let full = (width / 2).min(out_width);
    let mut sums = [0u16; 2 * CHUNK * 3];
    let mut ox = 0;
    while ox < full {
        let n = CHUNK.min(full - ox);
        let (at, len) = (2 * ox * CH, 2 * n * CH);
        for (s, (&t, &b)) in sums[..len]
            .iter_mut()
            .zip(top[at..at + len].iter().zip(&bottom[at..at + len]))
        {
            *s = t as u16 + b as u16;
        }
        for (k, o) in out[ox * CH..(ox + n) * CH].chunks_exact_mut(CH).enumerate() {
            for c in 0..CH {
                o[c] = ((sums[2 * k * CH + c] + sums[(2 * k + 1) * CH + c] + 2) >> 2) as u8;
            }
        }
        ox += n;
    }
    if out_width > full {
        // A last odd column pairs with itself.
        let x = 2 * full * CH;
        for c in 0..CH {
            out[full * CH + c] = ((2 * (top[x + c] as u16 + bottom[x + c] as u16) + 2) >> 2) as u8;
        }
    }
}

/// Four RGBA output pixels from eight pixel pairs (32 bytes of each row),
/// if all sixteen are opaque (a plain rounded average, sixteen bytes at a
/// time with SSE2, part of every x86-64) or all transparent. False, writing
/// nothing, otherwise.
#[cfg(target_arch = "x86_64")]
fn uniform_x4(top: &[u8], bottom: &[u8], out: &mut [u8]) -> bool {
    use std::arch::x86_64::*;
    assert!(top.len() >= 32 && bottom.len() >= 32 && out.len() >= 16);
    // SAFETY: SSE2 is always present on x86-64; the loads and the store stay
    // within the slices checked above.
    unsafe {
        let (t0, t1) = (
            _mm_loadu_si128(top.as_ptr().cast()),
            _mm_loadu_si128(top.as_ptr().add(16).cast()),
        );
        let (b0, b1) = (
            _mm_loadu_si128(bottom.as_ptr().cast()),
            _mm_loadu_si128(bottom.as_ptr().add(16).cast()),
        );
        let all = _mm_and_si128(_mm_and_si128(t0, t1), _mm_and_si128(b0, b1));
        if _mm_movemask_epi8(_mm_cmpeq_epi8(all, _mm_set1_epi8(-1))) & 0x8888 != 0x8888 {
            // Not opaque; wholly transparent reduces to transparent black.
            let any = _mm_or_si128(_mm_or_si128(t0, t1), _mm_or_si128(b0, b1));
            if _mm_movemask_epi8(_mm_cmpeq_epi8(any, _mm_setzero_si128())) & 0x8888 != 0x8888 {
                return false;
            }
            _mm_storeu_si128(out.as_mut_ptr().cast(), _mm_setzero_si128());
            return true;
        }
        let z = _mm_setzero_si128();
        // Column sums as 16-bit lanes, two pixels per register.
        let p01 = _mm_add_epi16(_mm_unpacklo_epi8(t0, z), _mm_unpacklo_epi8(b0, z));
        let p23 = _mm_add_epi16(_mm_unpackhi_epi8(t0, z), _mm_unpackhi_epi8(b0, z));
        let p45 = _mm_add_epi16(_mm_unpacklo_epi8(t1, z), _mm_unpacklo_epi8(b1, z));
        let p67 = _mm_add_epi16(_mm_unpackhi_epi8(t1, z), _mm_unpackhi_epi8(b1, z));
        // Neighbouring pixels added: (p0 + p1, p2 + p3) and (p4 + p5, p6 + p7).
        let two = _mm_set1_epi16(2);
        let lo = _mm_add_epi16(
            _mm_add_epi16(_mm_unpacklo_epi64(p01, p23), _mm_unpackhi_epi64(p01, p23)),
            two,
        );
        let hi = _mm_add_epi16(
            _mm_add_epi16(_mm_unpacklo_epi64(p45, p67), _mm_unpackhi_epi64(p45, p67)),
            two,
        );
        let packed = _mm_packus_epi16(_mm_srli_epi16(lo, 2), _mm_srli_epi16(hi, 2));
        _mm_storeu_si128(out.as_mut_ptr().cast(), packed);
    }
    true
}

/// One output pixel from four input pixels, alpha last.
fn reduce_pixel(px: &[&[u8]; 4], channels: usize, o: &mut [u8]) {
    let a = channels - 1;
    let weights = px.map(|p| p[a] as u32);
    let total: u32 = weights.iter().sum();
    if total == 4 * 255 {
        // Opaque: a plain average, no division.
        for c in 0..channels {
            o[c] = ((px[0][c] as u32 + px[1][c] as u32 + px[2][c] as u32 + px[3][c] as u32 + 2)
                >> 2) as u8;
        }
        return;
    }
    o[a] = ((total + 2) / 4) as u8;
    for c in 0..a {
        o[c] = if total == 0 {
            0
        } else {
            let sum: u32 = px.iter().zip(weights).map(|(p, w)| p[c] as u32 * w).sum();
            ((sum + total / 2) / total) as u8
        };
    }
}

/// Reduces `rows` (consecutive full rows, an even count unless
/// `pair_last` says the last row pairs with itself) into half as many rows.
pub fn reduce_band(
    rows: &[u8],
    width: usize,
    channels: usize,
    out_width: usize,
    pair_last: bool,
) -> Vec<u8> {
    let row_len = width * channels;
    let n = rows.len() / row_len;
    let out_rows = if pair_last { n.div_ceil(2) } else { n / 2 };
    let out_len = out_width * channels;
    let mut out = vec![0u8; out_rows * out_len];
    let pair = |(i, o): (usize, &mut [u8])| {
        let t = 2 * i;
        let b = (t + 1).min(n - 1);
        reduce_rows(
            &rows[t * row_len..(t + 1) * row_len],
            &rows[b * row_len..(b + 1) * row_len],
            width,
            channels,
            o,
        );
    };
    // With two cores the tile encoders already keep both busy, and waking
    // rayon's threads for every strip cost more than it saved (measured).
    if rayon::current_num_threads() > 2 {
        out.par_chunks_mut(out_len).enumerate().for_each(pair);
    } else {
        out.chunks_mut(out_len).enumerate().for_each(pair);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transparent_pixels_do_not_darken() {
        // One opaque red pixel among three transparent black ones.
        let top = [255, 0, 0, 255, 0, 0, 0, 0];
        let bottom = [0, 0, 0, 0, 0, 0, 0, 0];
        let mut out = [0u8; 4];
        reduce_rows(&top, &bottom, 2, 4, &mut out);
        assert_eq!(out, [255, 0, 0, 64]);
    }

    #[test]
    fn odd_width_pairs_last_column_with_itself() {
        let top = [10, 20, 30];
        let bottom = [11, 21, 31];
        let mut out = [0u8; 2];
        reduce_rows(&top, &bottom, 3, 1, &mut out);
        assert_eq!(out, [16, 31]); // (10+20+11+21)/4 = 15.5 -> 16; (30+30+31+31)/4 = 30.5 -> 31
    }

    #[test]
    fn rgba_fast_path_equals_per_pixel() {
        // Opaque and transparent runs, a few translucent pixels, odd widths.
        for width in [1usize, 2, 7, 8, 9, 16, 17, 33, 64, 71, 200] {
            let px = |seed: usize| -> Vec<u8> {
                (0..width * 4)
                    .map(|i| {
                        if i % 4 == 3 {
                            if (i / 4 + seed) % 64 >= 48 {
                                0
                            } else {
                                [0, 128, 7].get((i / 4 + seed) % 29).copied().unwrap_or(255)
                            }
                        } else {
                            ((i * 31 + seed * 7) % 256) as u8
                        }
                    })
                    .collect()
            };
            let (top, bottom) = (px(1), px(4));
            let out_w = width.div_ceil(2);
            let mut fast = vec![0u8; out_w * 4];
            reduce_rows(&top, &bottom, width, 4, &mut fast);
            for ox in 0..out_w {
                let (x0, x1) = (2 * ox, (2 * ox + 1).min(width - 1));
                let p = [
                    &top[x0 * 4..],
                    &top[x1 * 4..],
                    &bottom[x0 * 4..],
                    &bottom[x1 * 4..],
                ];
                let mut want = [0u8; 4];
                reduce_pixel(&p, 4, &mut want);
                assert_eq!(fast[ox * 4..ox * 4 + 4], want, "width {width}, pixel {ox}");
            }
        }
    }

    #[test]
    fn rgb_and_gray_equal_the_plain_average() {
        for channels in [1usize, 3] {
            for width in [1usize, 2, 3, 127, 128, 129, 300] {
                let row = |seed: usize| -> Vec<u8> {
                    (0..width * channels)
                        .map(|i| ((i * 37 + seed * 11) % 256) as u8)
                        .collect()
                };
                let (top, bottom) = (row(1), row(2));
                let out_w = width.div_ceil(2);
                let mut fast = vec![0u8; out_w * channels];
                reduce_rows(&top, &bottom, width, channels, &mut fast);
                for ox in 0..out_w {
                    let (x0, x1) = (2 * ox, (2 * ox + 1).min(width - 1));
                    for c in 0..channels {
                        let sum = [
                            top[x0 * channels + c],
                            top[x1 * channels + c],
                            bottom[x0 * channels + c],
                            bottom[x1 * channels + c],
                        ]
                        .iter()
                        .map(|&v| v as u32)
                        .sum::<u32>();
                        assert_eq!(
                            fast[ox * channels + c] as u32,
                            (sum + 2) / 4,
                            "{channels} channels, width {width}, pixel {ox}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn band_with_odd_row_count() {
        let rows: Vec<u8> = (0..3 * 2).map(|v| v as u8 * 10).collect(); // 3 rows of 2 gray pixels
        let out = reduce_band(&rows, 2, 1, 1, true);
        assert_eq!(out, vec![15, 45]); // rows 0+1, then row 2 with itself
        assert_eq!(reduce_band(&rows, 2, 1, 1, false), vec![15]);
    }
}
