//! A served image: its levels (full size, then halved with the tile
//! pyramid's alpha-weighted reduction) and rendering a IIIF request from the
//! level closest above the requested scale.

use std::path::Path;

use raster::{Color, Result, Samples};

use crate::iiif::{Format, Quality, Request};

/// Images up to this many pixels are held in memory; larger ones need a
/// multi-resolution file (not yet served).
pub const MEMORY_PIXELS: u64 = 256 << 20;

/// JPEG and WebP quality of responses (IIPImage's default is 75, Cantaloupe's 80).
pub const JPEG_QUALITY: u8 = 80;

/// One level of an image: its size, and its pixels when held in memory.
pub struct Level {
    /// Level width.
    pub width: u32,
    /// Level height.
    pub height: u32,
    /// 8-bit RGB or RGBA, for images held in memory; empty for files read by tile.
    pub pixels: Vec<u8>,
}

/// A served image: its levels, how they are read, and what the log says about it.
pub struct Image {
    /// Full-resolution width.
    pub width: u32,
    /// Full-resolution height.
    pub height: u32,
    /// Channels served: 3 (RGB) or 4 (RGBA).
    pub channels: usize,
    /// Full resolution first, then halved.
    pub levels: Vec<Level>,
    /// Changes when the file does (for ETags).
    pub version: String,
    /// Set for multi-resolution TIFFs and Deep Zoom pyramids: levels are read tile by tile.
    pub tiled: Option<crate::tiled::Tiled>,
    /// What became of an ICC profile, for the log: converted to sRGB, or ignored and why.
    pub colour: Option<String>,
    /// A PMTiles archive's file, also served as is (byte ranges) at `/archive/ID.pmtiles`.
    pub archive: Option<std::path::PathBuf>,
}

/// The log's words for `color::to_srgb`'s outcome.
pub fn colour_note(outcome: std::result::Result<Option<String>, String>) -> Option<String> {
    match outcome {
        Ok(Some(name)) => Some(format!(
            "colours converted from the ICC profile \"{name}\" to sRGB"
        )),
        Ok(None) => None,
        Err(why) => Some(format!(
            "warning: {why}; the stored values are served as sRGB"
        )),
    }
}

impl Image {
    /// Opens `path`: a multi-resolution tiled TIFF is served page by page
    /// (any size); anything else up to `MEMORY_PIXELS` is decoded into memory
    /// with its halved levels.
    pub fn load(path: &Path) -> Result<Image> {
        let meta = std::fs::metadata(path).map_err(|e| raster::Error::io(path, e))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let version = format!("{:x}-{:x}", meta.len(), modified);
        let ext = |x: &str| path.extension().is_some_and(|e| e.eq_ignore_ascii_case(x));
        let source: Option<Box<dyn crate::tiled::TileSource>> = if ext("dzi") {
            Some(Box::new(crate::dzi::DeepZoom::open(path)?))
        } else if ext("pmtiles") {
            Some(Box::new(crate::archive::Pmtiles::open(path)?))
        } else {
            crate::tiled::TiledPages::open(path)?
                .map(|p| Box::new(p) as Box<dyn crate::tiled::TileSource>)
        };
        if let Some(source) = source {
            let (width, height) = source.levels()[0];
            let levels = source
                .levels()
                .iter()
                .map(|&(w, h)| Level {
                    width: w,
                    height: h,
                    pixels: Vec::new(),
                })
                .collect();
            let channels = source.channels();
            let colour = source.colour();
            return Ok(Image {
                width,
                height,
                channels,
                levels,
                version,
                tiled: Some(crate::tiled::Tiled::new(source)),
                colour,
                archive: ext("pmtiles").then(|| path.to_path_buf()),
            });
        }
        let opened = formats::open(path)?;
        let info = opened.source.info();
        if info.width as u64 * info.height as u64 > MEMORY_PIXELS {
            return Err(raster::Error::invalid(
                path,
                format!(
                    "{}x{} is above the {} megapixels giga serve decodes into memory: make a multi-resolution TIFF first (giga convert IN OUT.tif --pyramid) and serve that",
                    info.width,
                    info.height,
                    MEMORY_PIXELS >> 20
                ),
            ));
        }
        let work = info.format.for_web();
        // Browsers take responses without a profile as sRGB: convert, as giga tile does.
        let (source, colour) = match &opened.icc {
            Some(icc) => {
                let (s, outcome) = color::to_srgb(opened.source, icc);
                (s, colour_note(outcome))
            }
            None => (opened.source, None),
        };
        let mut source = raster::ops::convert(source, work, Color::WHITE);
        let mut pixels =
            Vec::with_capacity(info.width as usize * info.height as usize * work.channels as usize);
        while let Some(s) = source.next_strip()? {
            if let Samples::U8(v) = s.samples {
                pixels.extend_from_slice(&v);
            }
        }
        let channels = work.channels as usize;
        let mut levels = vec![Level {
            width: info.width,
            height: info.height,
            pixels,
        }];
        loop {
            let last = levels.last().unwrap();
            if last.width <= 64 && last.height <= 64 {
                break;
            }
            let (w, h) = (last.width.div_ceil(2), last.height.div_ceil(2));
            let pixels = raster::reduce::reduce_band(
                &last.pixels,
                last.width as usize,
                channels,
                w as usize,
                true,
            );
            levels.push(Level {
                width: w,
                height: h,
                pixels,
            });
        }
        Ok(Image {
            width: info.width,
            height: info.height,
            channels,
            levels,
            version,
            tiled: None,
            colour,
            archive: None,
        })
    }

    /// Pixels `[x0, x1) x [y0, y1)` of level `k`, 8-bit RGB(A), row-major.
    fn window(
        &self,
        k: usize,
        x0: usize,
        y0: usize,
        x1: usize,
        y1: usize,
    ) -> std::result::Result<Vec<u8>, String> {
        if let Some(t) = &self.tiled {
            return t.window(k, x0 as u32, y0 as u32, x1 as u32, y1 as u32);
        }
        let (l, c) = (&self.levels[k], self.channels);
        let lw = l.width as usize;
        let mut out = Vec::with_capacity((x1 - x0) * (y1 - y0) * c);
        for y in y0..y1 {
            out.extend_from_slice(&l.pixels[(y * lw + x0) * c..(y * lw + x1) * c]);
        }
        Ok(out)
    }

    /// Bytes this image holds while served: its levels in memory, or its tile cache.
    pub fn held_bytes(&self) -> u64 {
        match &self.tiled {
            Some(_) => crate::tiled::CACHE_BYTES as u64,
            None => self.levels.iter().map(|l| l.pixels.len() as u64).sum(),
        }
    }

    /// The level a request is rendered from and the window of it that is read.
    fn plan(&self, req: &Request) -> Plan {
        // The coarsest level still at least as detailed as the output.
        let scale = (req.w as f64 / req.out_w as f64).min(req.h as f64 / req.out_h as f64);
        let mut k = 0;
        while k + 1 < self.levels.len() && (1u64 << (k + 1)) as f64 <= scale {
            k += 1;
        }
        let level = &self.levels[k];
        // Level k of a file may not be exactly half of k-1: scale by the true ratio.
        let (fx, fy) = (
            self.width as f64 / level.width as f64,
            self.height as f64 / level.height as f64,
        );
        let (sx0, sy0) = (req.x as f64 / fx, req.y as f64 / fy);
        let (sw, sh) = (req.w as f64 / fx, req.h as f64 / fy);
        let (wx0, wy0) = (sx0.floor() as usize, sy0.floor() as usize);
        let wx1 = ((sx0 + sw).ceil() as usize).clamp(wx0 + 1, level.width as usize);
        let wy1 = ((sy0 + sh).ceil() as usize).clamp(wy0 + 1, level.height as usize);
        Plan {
            k,
            source: (sx0, sy0, sw, sh),
            window: (wx0, wy0, wx1, wy1),
        }
    }

    /// Bytes a request holds at its peak: the window read, the output, a rotated
    /// or flattened copy of it, and the encoded response.
    pub fn cost(&self, req: &Request) -> u64 {
        let (wx0, wy0, wx1, wy1) = self.plan(req).window;
        let c = self.channels as u64;
        let window = ((wx1 - wx0) * (wy1 - wy0)) as u64 * c;
        let out = req.out_w as u64 * req.out_h as u64 * c;
        window + 3 * out
    }

    /// Renders `req` into the encoded bytes of its format.
    pub fn render(&self, req: &Request) -> std::result::Result<Vec<u8>, String> {
        let Plan {
            k,
            source: (sx0, sy0, sw, sh),
            window: (wx0, wy0, wx1, wy1),
        } = self.plan(req);
        let c = self.channels;
        let (ow, oh) = (req.out_w as usize, req.out_h as usize);
        let win = self.window(k, wx0, wy0, wx1, wy1)?;
        let ww = wx1 - wx0;
        // Exactly one level pixel per output pixel (tiles, 1:1 regions): no resampling.
        let exact = ww == ow
            && wy1 - wy0 == oh
            && sx0.fract() == 0.0
            && sy0.fract() == 0.0
            && sw == ow as f64
            && sh == oh as f64;
        let mut out = if exact {
            win
        } else {
            average(
                &win,
                ww,
                c,
                (ow, oh),
                (sx0, sy0, sw, sh),
                (wx0, wy0, wx1, wy1),
            )
        };
        let (mut w, mut h) = (ow, oh);
        if req.mirror {
            for row in out.chunks_exact_mut(w * c) {
                for x in 0..w / 2 {
                    for ch in 0..c {
                        row.swap(x * c + ch, (w - 1 - x) * c + ch);
                    }
                }
            }
        }
        if req.rotation != 0 {
            let (rotated, nw, nh) = rotate(&out, w, h, c, req.rotation);
            out = rotated;
            w = nw;
            h = nh;
        }
        match req.quality {
            Quality::Gray | Quality::Bitonal => {
                for p in out.chunks_exact_mut(c) {
                    let l = (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32 + 0.5)
                        as u8;
                    let l = if req.quality == Quality::Bitonal {
                        if l > 127 {
                            255
                        } else {
                            0
                        }
                    } else {
                        l
                    };
                    p[..3].fill(l);
                }
            }
            Quality::Default | Quality::Color => {}
        }
        let (w, h) = (w as u32, h as u32);
        match req.format {
            Format::Jpg => {
                let rgb = if c == 4 {
                    formats::encode::flatten(&out, Color::WHITE)
                } else {
                    out
                };
                formats::encode::encode_jpeg(&rgb, w, h, JPEG_QUALITY)
            }
            Format::Png => formats::encode::encode_png(&out, w, h, c),
            Format::Webp => formats::encode::encode_webp(&out, w, h, c, JPEG_QUALITY),
        }
    }
}

/// Where a request reads: level `k`, the source box in its pixels, and the
/// window of whole pixels under it.
struct Plan {
    k: usize,
    source: (f64, f64, f64, f64),
    window: (usize, usize, usize, usize),
}

/// The area average of the source box under each output pixel (box bounds per
/// column and per row computed once); alpha-weighted for RGBA.
fn average(
    win: &[u8],
    ww: usize,
    c: usize,
    (ow, oh): (usize, usize),
    (sx0, sy0, sw, sh): (f64, f64, f64, f64),
    (wx0, wy0, wx1, wy1): (usize, usize, usize, usize),
) -> Vec<u8> {
    let mut out = vec![0u8; ow * oh * c];
    let bounds = |start: f64, span: f64, n: usize, lo: usize, hi: usize| -> Vec<(usize, usize)> {
        (0..n)
            .map(|i| {
                let a = start + span * i as f64 / n as f64;
                let b = start + span * (i + 1) as f64 / n as f64;
                let p0 = (a.floor() as usize).clamp(lo, hi - 1);
                (p0 - lo, (b.ceil() as usize).clamp(p0 + 1, hi) - lo)
            })
            .collect()
    };
    let xs = bounds(sx0, sw, ow, wx0, wx1);
    let ys = bounds(sy0, sh, oh, wy0, wy1);
    for (oy, &(y0, y1)) in ys.iter().enumerate() {
        for (ox, &(x0, x1)) in xs.iter().enumerate() {
            let o = &mut out[(oy * ow + ox) * c..(oy * ow + ox + 1) * c];
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            if c == 3 {
                let mut acc = [0u32; 3];
                for y in y0..y1 {
                    for p in win[(y * ww + x0) * 3..(y * ww + x1) * 3].chunks_exact(3) {
                        acc[0] += p[0] as u32;
                        acc[1] += p[1] as u32;
                        acc[2] += p[2] as u32;
                    }
                }
                for ch in 0..3 {
                    o[ch] = ((acc[ch] + n / 2) / n) as u8;
                }
            } else {
                let (mut acc, mut plain, mut asum) = ([0u64; 3], [0u32; 3], 0u64);
                for y in y0..y1 {
                    for p in win[(y * ww + x0) * 4..(y * ww + x1) * 4].chunks_exact(4) {
                        let a = p[3] as u64;
                        for ch in 0..3 {
                            acc[ch] += p[ch] as u64 * a;
                            plain[ch] += p[ch] as u32;
                        }
                        asum += a;
                    }
                }
                // Weighted by alpha; where everything is transparent, the plain mean keeps the colour.
                for ch in 0..3 {
                    o[ch] = if asum > 0 {
                        ((acc[ch] + asum / 2) / asum) as u8
                    } else {
                        ((plain[ch] + n / 2) / n) as u8
                    };
                }
                o[3] = ((asum + n as u64 / 2) / n as u64) as u8;
            }
        }
    }
    out
}

/// Rotates clockwise by 90, 180 or 270 degrees.
fn rotate(src: &[u8], w: usize, h: usize, c: usize, degrees: u32) -> (Vec<u8>, usize, usize) {
    let (nw, nh) = if degrees == 180 { (w, h) } else { (h, w) };
    let mut out = vec![0u8; src.len()];
    for y in 0..h {
        for x in 0..w {
            let (nx, ny) = match degrees {
                90 => (h - 1 - y, x),
                180 => (w - 1 - x, h - 1 - y),
                _ => (y, w - 1 - x),
            };
            out[(ny * nw + nx) * c..(ny * nw + nx + 1) * c]
                .copy_from_slice(&src[(y * w + x) * c..(y * w + x + 1) * c]);
        }
    }
    (out, nw, nh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_moves_corners() {
        // 2x1 image: red, blue (gray channel stand-ins).
        let src = [1u8, 1, 1, 2, 2, 2];
        let (r, w, h) = rotate(&src, 2, 1, 3, 90);
        assert_eq!((w, h), (1, 2));
        assert_eq!(r, vec![1, 1, 1, 2, 2, 2]);
        let (r, _, _) = rotate(&src, 2, 1, 3, 180);
        assert_eq!(r, vec![2, 2, 2, 1, 1, 1]);
        let (r, w, h) = rotate(&src, 2, 1, 3, 270);
        assert_eq!((w, h), (1, 2));
        assert_eq!(r, vec![2, 2, 2, 1, 1, 1]);
    }
}
