//! The 2x2 box reduction between levels, weighted by alpha so that
//! transparent pixels never darken the edges of the image.

use rayon::prelude::*;

/// Reduces one pair of rows (`top`, `bottom`, `width` pixels of `channels`
/// 8-bit samples; RGBA and gray+alpha carry alpha last) into `out`, which
/// holds `out_width` pixels. A last odd column is paired with itself.
pub fn reduce_rows(top: &[u8], bottom: &[u8], width: usize, channels: usize, out: &mut [u8]) {
    let out_width = out.len() / channels;
    if channels == 4 {
        // The common case, RGBA: whole opaque pixel pairs take a fast path.
        let full = (width / 2).min(out_width);
        for ((o, t), b) in out.chunks_exact_mut(4).zip(top.chunks_exact(8)).zip(bottom.chunks_exact(8)).take(full) {
            if t[3] & t[7] & b[3] & b[7] == 255 {
                for c in 0..3 {
                    o[c] = ((t[c] as u32 + t[c + 4] as u32 + b[c] as u32 + b[c + 4] as u32 + 2) >> 2) as u8;
                }
                o[3] = 255;
            } else {
                reduce_pixel(&[&t[..4], &t[4..], &b[..4], &b[4..]], 4, o);
            }
        }
        if out_width > full {
            let x = 2 * full;
            let (t, b) = (&top[x * 4..x * 4 + 4], &bottom[x * 4..x * 4 + 4]);
            reduce_pixel(&[t, t, b, b], 4, &mut out[full * 4..full * 4 + 4]);
        }
        return;
    }
    let alpha = channels == 2 || channels == 4;
    for ox in 0..out_width {
        let x0 = 2 * ox;
        let x1 = (x0 + 1).min(width - 1);
        let px = [&top[x0 * channels..], &top[x1 * channels..], &bottom[x0 * channels..], &bottom[x1 * channels..]];
        let o = &mut out[ox * channels..(ox + 1) * channels];
        if alpha {
            reduce_pixel(&[px[0], px[1], px[2], px[3]], channels, o);
        } else {
            for c in 0..channels {
                let sum: u32 = px.iter().map(|p| p[c] as u32).sum();
                o[c] = ((sum + 2) / 4) as u8;
            }
        }
    }
}

/// One output pixel from four input pixels, alpha last.
fn reduce_pixel(px: &[&[u8]; 4], channels: usize, o: &mut [u8]) {
    let a = channels - 1;
    let weights = px.map(|p| p[a] as u32);
    let total: u32 = weights.iter().sum();
    if total == 4 * 255 {
        // Opaque: a plain average, no division.
        for c in 0..channels {
            o[c] = ((px[0][c] as u32 + px[1][c] as u32 + px[2][c] as u32 + px[3][c] as u32 + 2) >> 2) as u8;
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
pub fn reduce_band(rows: &[u8], width: usize, channels: usize, out_width: usize, pair_last: bool) -> Vec<u8> {
    let row_len = width * channels;
    let n = rows.len() / row_len;
    let out_rows = if pair_last { n.div_ceil(2) } else { n / 2 };
    let out_len = out_width * channels;
    let mut out = vec![0u8; out_rows * out_len];
    out.par_chunks_mut(out_len).enumerate().for_each(|(i, o)| {
        let t = 2 * i;
        let b = (t + 1).min(n - 1);
        reduce_rows(&rows[t * row_len..(t + 1) * row_len], &rows[b * row_len..(b + 1) * row_len], width, channels, o);
    });
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
    fn band_with_odd_row_count() {
        let rows: Vec<u8> = (0..3 * 2).map(|v| v as u8 * 10).collect(); // 3 rows of 2 gray pixels
        let out = reduce_band(&rows, 2, 1, 1, true);
        assert_eq!(out, vec![15, 45]); // rows 0+1, then row 2 with itself
        assert_eq!(reduce_band(&rows, 2, 1, 1, false), vec![15]);
    }
}
