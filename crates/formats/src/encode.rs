//! Encoding 8-bit pixels into web images in memory (tiles, IIIF responses):
//! JPEG (mozjpeg), PNG, lossy WebP, and flattening alpha onto a background for JPEG.
//! Shared by the tile pyramid and the IIIF server.

use raster::Color;

/// RGBA flattened onto `background` as RGB.
pub fn flatten(pixels: &[u8], background: Color) -> Vec<u8> {
    let bg = background.0.map(|c| (c * 255.0 + 0.5) as u32);
    let mut out = vec![0u8; pixels.len() / 4 * 3];
    for (o, p) in out.chunks_exact_mut(3).zip(pixels.chunks_exact(4)) {
        let a = p[3] as u32;
        if a == 255 {
            o.copy_from_slice(&p[..3]);
        } else {
            for c in 0..3 {
                o[c] = ((p[c] as u32 * a + bg[c] * (255 - a) + 127) / 255) as u8;
            }
        }
    }
    out
}

/// Composites RGBA onto `background` in place (alpha is left as it was).
pub fn flatten_in_place(pixels: &mut [u8], background: Color) {
    let bg = background.0.map(|c| (c * 255.0 + 0.5) as u32);
    let bg8 = bg.map(|c| c as u8);
    let one = |p: &mut [u8]| match p[3] {
        255 => {}
        0 => p[..3].copy_from_slice(&bg8),
        a => {
            let a = a as u32;
            for c in 0..3 {
                p[c] = ((p[c] as u32 * a + bg[c] * (255 - a) + 127) / 255) as u8;
            }
        }
    };
    // Sixteen pixels at a time: most runs are wholly opaque (no work) or transparent.
    let clear = [bg8[0], bg8[1], bg8[2], 0].repeat(16);
    let mut blocks = pixels.chunks_exact_mut(64);
    for b in &mut blocks {
        match alpha_run(b) {
            Some(255) => {}
            Some(0) => b.copy_from_slice(&clear),
            _ => b.chunks_exact_mut(4).for_each(one),
        }
    }
    blocks.into_remainder().chunks_exact_mut(4).for_each(one);
}

/// An RGB tile as JPEG.
/// RGB pixels as a JPEG of `quality`.
pub fn encode_jpeg(
    rgb: &[u8],
    width: u32,
    height: u32,
    quality: u8,
) -> std::result::Result<Vec<u8>, String> {
    encode_jpeg_with(rgb, width, height, quality, mozjpeg::ColorSpace::JCS_RGB)
}

/// JPEG from RGB (`JCS_RGB`) or RGBA whose alpha is ignored (`JCS_EXT_RGBA`).
pub fn encode_jpeg_with(
    pixels: &[u8],
    width: u32,
    height: u32,
    quality: u8,
    space: mozjpeg::ColorSpace,
) -> std::result::Result<Vec<u8>, String> {
    std::panic::catch_unwind(|| {
        let mut c = mozjpeg::Compress::new(space);
        c.set_size(width as usize, height as usize);
        c.set_fastest_defaults();
        c.set_quality(quality as f32);
        c.set_color_space(mozjpeg::ColorSpace::JCS_YCbCr);
        let mut s = c
            .start_compress(Vec::with_capacity(pixels.len() / 8))
            .map_err(|e| e.to_string())?;
        s.write_scanlines(pixels).map_err(|e| e.to_string())?;
        s.finish().map_err(|e| e.to_string())
    })
    .unwrap_or_else(|_| Err("JPEG encoder failed".into()))
}

/// An RGB or RGBA tile as PNG (fast compression).
/// RGB or RGBA pixels as a PNG (fast compression).
pub fn encode_png(
    pixels: &[u8],
    width: u32,
    height: u32,
    channels: usize,
) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(pixels.len() / 2);
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(if channels == 4 {
            png::ColorType::Rgba
        } else {
            png::ColorType::Rgb
        });
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut w = enc.write_header().map_err(|e| e.to_string())?;
        w.write_image_data(pixels).map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// An RGB or RGBA tile as lossy WebP (method 0).
/// RGB or RGBA pixels as a lossy WebP of `quality` (method 0, the fastest).
pub fn encode_webp(
    pixels: &[u8],
    width: u32,
    height: u32,
    channels: usize,
    quality: u8,
) -> std::result::Result<Vec<u8>, String> {
    let enc = if channels == 4 {
        webp::Encoder::from_rgba(pixels, width, height)
    } else {
        webp::Encoder::from_rgb(pixels, width, height)
    };
    let mut config =
        webp::WebPConfig::new().map_err(|_| "WebP encoder setup failed".to_string())?;
    config.quality = quality as f32;
    config.method = 0;
    config.alpha_compression = 1;
    enc.encode_advanced(&config)
        .map(|m| m.to_vec())
        .map_err(|e| format!("WebP encoder: {e:?}"))
}

/// 255 or 0 if all sixteen RGBA pixels of `px` (64 bytes) have that alpha.
fn alpha_run(px: &[u8]) -> Option<u8> {
    assert!(px.len() >= 64);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of every x86-64; the loads stay within the 64 bytes checked.
    unsafe {
        use std::arch::x86_64::*;
        let v = [0, 16, 32, 48].map(|o| _mm_loadu_si128(px.as_ptr().add(o).cast()));
        let all = _mm_and_si128(_mm_and_si128(v[0], v[1]), _mm_and_si128(v[2], v[3]));
        if _mm_movemask_epi8(_mm_cmpeq_epi8(all, _mm_set1_epi8(-1))) & 0x8888 == 0x8888 {
            return Some(255);
        }
        let any = _mm_or_si128(_mm_or_si128(v[0], v[1]), _mm_or_si128(v[2], v[3]));
        return (_mm_movemask_epi8(_mm_cmpeq_epi8(any, _mm_setzero_si128())) & 0x8888 == 0x8888)
            .then_some(0);
    }
    #[allow(unreachable_code)]
    {
        let alphas = || px[..64].iter().skip(3).step_by(4);
        if alphas().all(|&a| a == 255) {
            Some(255)
        } else {
            alphas().all(|&a| a == 0).then_some(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_in_place_is_flatten() {
        assert_eq!(
            flatten(&[255, 0, 0, 128, 0, 0, 0, 0], Color::WHITE),
            vec![255, 127, 127, 255, 255, 255]
        );
        // Across opaque, transparent and mixed sixteen-pixel blocks and the remainder.
        let px: Vec<u8> = (0..149 * 4)
            .map(|i| {
                if i % 4 == 3 {
                    if i / 4 < 64 {
                        [255, 0][i / 64 % 2]
                    } else {
                        [255, 0, 128, 7][i / 4 % 4]
                    }
                } else {
                    (i * 37 % 251) as u8
                }
            })
            .collect();
        let mut inplace = px.clone();
        flatten_in_place(&mut inplace, Color([0.2, 0.5, 0.9]));
        let rgb: Vec<u8> = inplace
            .chunks_exact(4)
            .flat_map(|p| p[..3].to_vec())
            .collect();
        assert_eq!(rgb, flatten(&px, Color([0.2, 0.5, 0.9])));
    }
}
