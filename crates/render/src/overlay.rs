//! Drawing a preview's overlays into its RGBA pixels: frame outlines and
//! numbers, the seam map, control points. Plain software drawing: lines are
//! stamped discs, text a 3x5 digit font, colours one hue per frame.

use crate::preview::{Polyline, Preview};

/// A frame's colour: hues a golden angle apart, so neighbours differ.
pub fn colour(frame: usize) -> [u8; 3] {
    let h = (frame as f64 * 137.507_764) % 360.0 / 60.0;
    let x = 1.0 - (h % 2.0 - 1.0).abs();
    let (r, g, b) = match h as u32 {
        0 => (1.0, x, 0.0),
        1 => (x, 1.0, 0.0),
        2 => (0.0, 1.0, x),
        3 => (0.0, x, 1.0),
        4 => (x, 0.0, 1.0),
        _ => (1.0, 0.0, x),
    };
    [r, g, b].map(|v| (55.0 + 200.0 * v) as u8)
}

/// An RGBA image being drawn on.
pub struct Canvas<'a> {
    /// Pixels a row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// 8-bit RGBA pixels.
    pub rgba: &'a mut [u8],
}

impl Canvas<'_> {
    /// Mixes `c` into pixel (x, y) by `a` (0..1); opaque afterwards.
    fn put(&mut self, x: i64, y: i64, c: [u8; 3], a: f32) {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            return;
        }
        let p = &mut self.rgba[(y as usize * self.width + x as usize) * 4..][..4];
        for ch in 0..3 {
            p[ch] = (p[ch] as f32 * (1.0 - a) + c[ch] as f32 * a + 0.5) as u8;
        }
        p[3] = 255;
    }

    /// A filled disc of radius `r` around (x, y).
    pub fn disc(&mut self, (x, y): (f64, f64), r: f64, c: [u8; 3]) {
        let reach = r.ceil() as i64 + 1;
        let (cx, cy) = (x.round() as i64, y.round() as i64);
        for dy in -reach..=reach {
            for dx in -reach..=reach {
                let (px, py) = ((cx + dx) as f64, (cy + dy) as f64);
                let d = ((px - x).powi(2) + (py - y).powi(2)).sqrt();
                let a = (r + 0.5 - d).clamp(0.0, 1.0) as f32;
                if a > 0.0 {
                    self.put(cx + dx, cy + dy, c, a);
                }
            }
        }
    }

    /// A line `width` pixels wide from `a` to `b`.
    pub fn line(&mut self, a: (f64, f64), b: (f64, f64), width: f64, c: [u8; 3]) {
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        let steps = (len * 2.0).ceil().max(1.0) as usize;
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            self.disc(
                (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t),
                width / 2.0,
                c,
            );
        }
    }

    /// Lines through the points of `p`.
    pub fn polyline(&mut self, p: &Polyline, width: f64, c: [u8; 3]) {
        for w in p.windows(2) {
            self.line(w[0], w[1], width, c);
        }
    }

    /// A number centred on (x, y), `scale` pixels a font dot, dark-outlined for contrast.
    pub fn number(&mut self, n: usize, (x, y): (f64, f64), scale: usize, c: [u8; 3]) {
        let text = n.to_string();
        let w = (text.len() * 4 - 1) * scale;
        let (x0, y0) = (x as i64 - w as i64 / 2, y as i64 - (5 * scale) as i64 / 2);
        for pass in 0..2 {
            for (k, ch) in text.bytes().enumerate() {
                let glyph = DIGITS[(ch - b'0') as usize];
                for (row, bits) in glyph.iter().enumerate() {
                    for col in 0..3 {
                        if bits >> (2 - col) & 1 == 1 {
                            let gx = x0 + ((k * 4 + col) * scale) as i64;
                            let gy = y0 + (row * scale) as i64;
                            self.dot(gx, gy, scale, pass, c);
                        }
                    }
                }
            }
        }
    }

    /// One font dot: first pass its dark surround, second pass the colour.
    fn dot(&mut self, gx: i64, gy: i64, scale: usize, pass: usize, c: [u8; 3]) {
        let s = scale as i64;
        let (pad, colour) = if pass == 0 {
            (s.max(2) / 2, [0, 0, 0])
        } else {
            (0, c)
        };
        for dy in -pad..s + pad {
            for dx in -pad..s + pad {
                self.put(gx + dx, gy + dy, colour, 1.0);
            }
        }
    }
}

/// 3x5 digits, a row a byte (bit 2 the left column).
const DIGITS: [[u8; 5]; 10] = [
    [7, 5, 5, 5, 7],
    [2, 6, 2, 2, 7],
    [7, 1, 7, 4, 7],
    [7, 1, 3, 1, 7],
    [5, 5, 7, 1, 1],
    [7, 4, 7, 1, 7],
    [7, 4, 7, 5, 7],
    [7, 1, 2, 2, 2],
    [7, 5, 7, 5, 7],
    [7, 5, 7, 1, 7],
];

/// What to draw.
#[derive(Clone, Copy, Debug, Default)]
pub struct Layers {
    /// Each frame's outline.
    pub outlines: bool,
    /// Each frame's number at its centre.
    pub numbers: bool,
    /// The seam map.
    pub seams: bool,
    /// The control points.
    pub points: bool,
}

/// Draws the chosen layers onto the preview's pixels.
pub fn draw(p: &mut Preview, layers: Layers) {
    let (w, h) = (p.width as usize, p.height as usize);
    let labels = std::mem::take(&mut p.labels);
    let mut c = Canvas {
        width: w,
        height: h,
        rgba: &mut p.rgba,
    };
    let line = (w.max(h) as f64 / 1000.0).clamp(1.0, 4.0);
    if layers.seams {
        seams(&mut c, &labels);
    }
    if layers.outlines {
        for o in &p.outlines {
            o.pieces
                .iter()
                .for_each(|piece| c.polyline(piece, line, colour(o.frame)));
        }
    }
    if layers.points {
        for pt in &p.points {
            // Green under a pixel of residual, yellow under three, red beyond.
            let col = match pt.residual {
                r if r < 1.0 => [40, 220, 60],
                r if r < 3.0 => [250, 210, 40],
                _ => [240, 40, 40],
            };
            // The residual as a short vector, exaggerated (6 preview pixels per pixel of
            // residual on the full canvas, at most 40) so that it shows at preview size.
            let (dx, dy) = (pt.b.0 - pt.a.0, pt.b.1 - pt.a.1);
            let d = (dx * dx + dy * dy).sqrt().max(1e-9);
            let reach = (pt.residual * 6.0).min(40.0);
            let end = (pt.a.0 + dx / d * reach, pt.a.1 + dy / d * reach);
            c.line(pt.a, end, line, col);
            c.disc(pt.a, line * 2.5, [0, 0, 0]);
            c.disc(pt.a, line * 1.8, col);
        }
    }
    if layers.numbers {
        let scale = (w.max(h) / 300).clamp(2, 8);
        for o in &p.outlines {
            if let Some(centre) = o.centre {
                c.number(o.frame, centre, scale, [255, 255, 255]);
            }
        }
    }
    p.labels = labels;
}

/// Tints each pixel with its frame's colour and draws the boundaries between frames.
fn seams(c: &mut Canvas, labels: &[i32]) {
    let (w, h) = (c.width, c.height);
    for y in 0..h {
        for x in 0..w {
            let l = labels[y * w + x];
            if l < 0 {
                continue;
            }
            let edge = (x + 1 < w && labels[y * w + x + 1] != l)
                || (y + 1 < h && labels[(y + 1) * w + x] != l);
            if edge {
                c.put(x as i64, y as i64, [255, 0, 255], 1.0);
            } else {
                c.put(x as i64, y as i64, colour(l as usize), 0.3);
            }
        }
    }
}
