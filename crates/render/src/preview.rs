//! Previews: a project rendered small, in seconds, to look at before an
//! hour-long render. The canvas is scaled down (same field of view), so every
//! frame is shrunk onto it and JPEG frames are decoded at 1/2 to 1/8 of their
//! size (DCT scaling); the seams, photometry and blend are the real render's.
//! Also what to draw over it: each frame's outline and centre, the frame each
//! pixel comes from, and the control points with their residuals.

use std::path::Path;

use raster::{Result, Source};

use crate::{Options, Project, Render};

/// A polyline on the preview, in its pixels; one frame's outline may be cut in
/// pieces where it leaves the canvas or wraps around a full circle.
pub type Polyline = Vec<(f64, f64)>;

/// One frame's outline and centre, in preview pixels.
pub struct Outline {
    /// The frame's number in the project.
    pub frame: usize,
    /// The outline's pieces.
    pub pieces: Vec<Polyline>,
    /// The frame's centre, if the canvas shows it.
    pub centre: Option<(f64, f64)>,
}

/// A control point's two ends on the preview, and how far apart they land on
/// the full-resolution canvas (the residual of the alignment).
pub struct PointPair {
    /// The two frames (project numbers).
    pub frames: (usize, usize),
    /// The end in the first frame, on the preview.
    pub a: (f64, f64),
    /// The end in the second frame, on the preview.
    pub b: (f64, f64),
    /// How far apart the ends land on the full canvas, in pixels.
    pub residual: f64,
}

/// The preview image and what can be drawn over it.
pub struct Preview {
    /// Preview width.
    pub width: u32,
    /// Preview height.
    pub height: u32,
    /// 8-bit RGBA, row by row.
    pub rgba: Vec<u8>,
    /// The frame each pixel comes from (-1: none), as the full render chooses it.
    pub labels: Vec<i32>,
    /// Preview pixels per canvas pixel.
    pub scale: f64,
    /// The full render's size (the project's S crop, or the canvas).
    pub full: (u32, u32),
    /// Preview pixel -> full-resolution output pixel.
    pub to_full: ToFull,
    /// Every rendered frame's outline.
    pub outlines: Vec<Outline>,
    /// The control points between rendered frames.
    pub points: Vec<PointPair>,
    /// What the render warned about.
    pub warnings: Vec<String>,
}

/// Maps preview pixels to the full render's pixels: both canvases share their
/// centre and field of view, the small one `scale` times the pixels a degree.
#[derive(Clone, Copy, Debug)]
pub struct ToFull {
    /// Preview pixels per full canvas pixel.
    pub scale: f64,
    /// Canvas centres (small, full) and output origins (small, full: the S crops' corners).
    centres: [(f64, f64); 2],
    origins: [(f64, f64); 2],
}

impl ToFull {
    fn new(small: &crate::pto::Canvas, full: &crate::pto::Canvas) -> ToFull {
        let centre =
            |c: &crate::pto::Canvas| ((c.width as f64 - 1.0) / 2.0, (c.height as f64 - 1.0) / 2.0);
        let origin = |c: &crate::pto::Canvas| c.crop.map_or((0.0, 0.0), |k| (k.left, k.top));
        ToFull {
            scale: small.width as f64 / full.width as f64,
            centres: [centre(small), centre(full)],
            origins: [origin(small), origin(full)],
        }
    }

    /// The full render's pixel coordinates of preview point `p`.
    pub fn map(&self, p: (f64, f64)) -> (f64, f64) {
        let [(cx, cy), (fx, fy)] = self.centres;
        let [(ox, oy), (gx, gy)] = self.origins;
        (
            (p.0 + ox - cx) / self.scale + fx - gx,
            (p.1 + oy - cy) / self.scale + fy - gy,
        )
    }
}

/// `project` with its canvas scaled so that the rendered area is at most `width`
/// pixels wide; and the scale.
pub fn scaled(project: &Project, width: u32) -> (Project, f64) {
    let c = &project.canvas;
    let full = c.crop.map_or(c.width as f64, |k| k.right - k.left);
    let scale = (width as f64 / full).min(1.0);
    let mut p = project.clone();
    p.canvas.width = ((c.width as f64 * scale).round() as u32).max(1);
    p.canvas.height = ((c.height as f64 * scale).round() as u32).max(1);
    let scale = p.canvas.width as f64 / c.width as f64;
    p.canvas.crop = c.crop.map(|mut k| {
        k.left = (k.left * scale).floor();
        k.top = (k.top * scale).floor();
        k.right = (k.right * scale).ceil().min(p.canvas.width as f64);
        k.bottom = (k.bottom * scale).ceil().min(p.canvas.height as f64);
        k
    });
    (p, scale)
}

/// Renders the preview of the project at `path`, at most `width` pixels wide.
pub fn preview(path: &Path, width: u32, opts: &Options) -> Result<Preview> {
    let project = crate::pto::read(path)?;
    let c = &project.canvas;
    let full = match c.crop {
        Some(k) => ((k.right - k.left) as u32, (k.bottom - k.top) as u32),
        None => (c.width, c.height),
    };
    let (small, scale) = scaled(&project, width);
    let to_full = ToFull::new(&small.canvas, &project.canvas);
    let opts = Options {
        // The seam's transition and the bands scale with the canvas, as in the full
        // render seen from afar.
        feather: (opts.feather * scale).max(0.5),
        quick_decode: true,
        region: None,
        ..opts.clone()
    };
    let render = Render::from_project(small, path, &opts)?;
    let info = render.info();
    let labels = (0..info.height)
        .flat_map(|y| render.chosen_frames(y))
        .collect();
    let outlines = render.outlines();
    let points = render.point_pairs(&project.points, scale);
    let warnings = Source::warnings(&render);
    let mut rgba = Vec::with_capacity(info.width as usize * info.height as usize * 4);
    let mut source = raster::ops::convert(
        Box::new(render),
        raster::PixelFormat::new(4, raster::SampleType::U8),
        raster::Color::WHITE,
    );
    while let Some(strip) = source.next_strip()? {
        if let raster::Samples::U8(v) = strip.samples {
            rgba.extend_from_slice(&v);
        }
    }
    Ok(Preview {
        width: info.width,
        height: info.height,
        rgba,
        labels,
        scale,
        full,
        to_full,
        outlines,
        points,
        warnings,
    })
}

impl Render {
    /// Where a frame pixel lands on the output, if the canvas shows it.
    fn frame_to_output(&self, k: usize, px: f64, py: f64) -> Option<(f64, f64)> {
        let (x, y) = self.canvas.pixel(self.frames[k].map.ray(px, py))?;
        Some((x - self.origin.0 as f64, y - self.origin.1 as f64))
    }

    /// Every rendered frame's outline (its valid area's edge) and centre, in output pixels.
    pub fn outlines(&self) -> Vec<Outline> {
        (0..self.frames.len())
            .map(|k| {
                let f = &self.frames[k];
                let [l, r, t, b] = f.bounds;
                let (l, r, t, b) = (l - 0.5, r + 0.5, t - 0.5, b + 0.5);
                let n = 96;
                let edge: Vec<(f64, f64)> = if f.ellipse {
                    let (cx, cy, ax, ay) =
                        ((l + r) / 2.0, (t + b) / 2.0, (r - l) / 2.0, (b - t) / 2.0);
                    (0..=4 * n)
                        .map(|i| {
                            let a = i as f64 / (4 * n) as f64 * std::f64::consts::TAU;
                            (cx + ax * a.cos(), cy + ay * a.sin())
                        })
                        .collect()
                } else {
                    let lerp = |a: f64, b: f64, i: usize| a + (b - a) * i as f64 / n as f64;
                    let top = (0..n).map(|i| (lerp(l, r, i), t));
                    let right = (0..n).map(|i| (r, lerp(t, b, i)));
                    let bottom = (0..n).map(|i| (lerp(r, l, i), b));
                    let left = (0..=n).map(|i| (l, lerp(b, t, i)));
                    top.chain(right).chain(bottom).chain(left).collect()
                };
                let mapped: Vec<Option<(f64, f64)>> = edge
                    .iter()
                    .map(|&(x, y)| self.frame_to_output(k, x, y))
                    .collect();
                Outline {
                    frame: f.number,
                    pieces: pieces(&mapped, self.info.width as f64 / 2.0),
                    centre: self.frame_to_output(k, f.centre[0], f.centre[1]),
                }
            })
            .collect()
    }

    /// The control points between rendered frames, on the output; residuals in
    /// full-resolution canvas pixels (`scale`: output pixels per canvas pixel).
    pub fn point_pairs(&self, points: &[crate::pto::ControlPoint], scale: f64) -> Vec<PointPair> {
        let index = |n: usize| self.frames.iter().position(|f| f.number == n);
        points
            .iter()
            .filter_map(|p| {
                let (ka, kb) = (index(p.frames.0)?, index(p.frames.1)?);
                let a = self.frame_to_output(ka, p.a.0, p.a.1)?;
                let b = self.frame_to_output(kb, p.b.0, p.b.1)?;
                let residual = ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt() / scale;
                Some(PointPair {
                    frames: p.frames,
                    a,
                    b,
                    residual,
                })
            })
            .collect()
    }
}

/// Splits a mapped outline where points are missing or jump by more than `jump`
/// (an outline crossing the ±180° seam of a full circle).
fn pieces(points: &[Option<(f64, f64)>], jump: f64) -> Vec<Polyline> {
    let mut out: Vec<Polyline> = Vec::new();
    let mut current: Polyline = Vec::new();
    for p in points {
        match p {
            Some(q) => {
                let far = current.last().is_some_and(|l: &(f64, f64)| {
                    (l.0 - q.0).abs() > jump || (l.1 - q.1).abs() > jump
                });
                if far {
                    out.push(std::mem::take(&mut current));
                }
                current.push(*q);
            }
            None => out.push(std::mem::take(&mut current)),
        }
    }
    out.push(current);
    out.retain(|p| p.len() > 1);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlines_break_where_they_leave_or_wrap() {
        let p = |x: f64| Some((x, 0.0));
        let got = pieces(
            &[p(0.0), p(1.0), None, p(2.0), p(3.0), p(500.0), p(501.0)],
            100.0,
        );
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], vec![(0.0, 0.0), (1.0, 0.0)]);
        assert_eq!(got[2], vec![(500.0, 0.0), (501.0, 0.0)]);
    }
}
