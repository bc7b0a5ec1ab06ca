//! Planning a render: each frame's header checked against the project, where
//! it lands on the output (its footprint), how it is sampled (its valid area,
//! shrink factor, photometry, masks), and where it covers one point (`hit`).

use std::path::{Path, PathBuf};

use raster::{Result, SampleType};

use crate::blend::Hit;
use crate::geometry::{CanvasMap, FrameMap};
use crate::photometry::Photometry;
use crate::{invalid, pto, Project};

/// One frame, planned: where it lands on the output and how it is sampled.
pub(crate) struct Planned {
    /// The frame's number in the project.
    pub(crate) number: usize,
    pub(crate) path: PathBuf,
    pub(crate) size: (u32, u32),
    pub(crate) map: FrameMap,
    /// Footprint on the output: columns x0..x1, rows y0..y1 (exclusive ends).
    pub(crate) footprint: [u32; 4],
    /// Integer shrink factor for anti-aliasing.
    pub(crate) factor: u32,
    pub(crate) bytes: u64,
    /// Valid source area [left, right, top, bottom] (inclusive pixel centres) and whether it is the inscribed ellipse.
    pub(crate) bounds: [f64; 4],
    pub(crate) ellipse: bool,
    pub(crate) centre: [f64; 2],
    pub(crate) half_diagonal: f64,
    /// Source pixels per output pixel near the frame's centre.
    pub(crate) scale: f64,
    pub(crate) photometry: Photometry,
    pub(crate) masks: Vec<FrameMask>,
}

/// A mask acting on a frame. A stack mask drawn on another frame (t2, t3) brings
/// that frame's mapping and valid area along, as that frame may not be rendered.
pub(crate) struct FrameMask {
    pub(crate) mask: pto::Mask,
    pub(crate) drawn_on: Option<(FrameMap, [f64; 4])>,
}

impl Planned {
    /// Reads frame `i`'s header (checking it against the project) and works out how it is
    /// sampled; the footprint is filled in later. Also says whether the frame is 16-bit,
    /// and gives its ICC profile.
    pub(crate) fn new(
        project: &Project,
        i: usize,
        dir: &Path,
        canvas: &CanvasMap,
        (antialias, quick): (bool, bool),
    ) -> Result<(Planned, bool, Option<Vec<u8>>)> {
        let f = &project.frames[i];
        let path = dir.join(&f.file);
        let opened = formats::open(&path)?;
        let info = opened.source.info();
        if (info.width, info.height) != (f.width, f.height) {
            return Err(invalid(
                &path,
                format!(
                    "the frame is {}x{} but the project says {}x{}",
                    info.width, info.height, f.width, f.height
                ),
            ));
        }
        let map = FrameMap::new(f);
        let (bounds, ellipse) = source_bounds(f);
        let centre = [(bounds[0] + bounds[1]) / 2.0, (bounds[2] + bounds[3]) / 2.0];
        let half_diagonal =
            ((bounds[1] - bounds[0]).powi(2) + (bounds[3] - bounds[2]).powi(2)).sqrt() / 2.0;
        let scale = source_scale(canvas, &map, centre);
        let factor = match antialias && scale >= 1.5 {
            // Quick (previews): a power of two, which JPEG frames are decoded at directly.
            true if quick => 1 << (scale.round() as u32).ilog2(),
            true => scale.round() as u32,
            false => 1,
        };
        let channels = if info.format.has_alpha() { 4 } else { 3 };
        let wide = info.format.sample != SampleType::U8;
        let bytes = (f.width.div_ceil(factor) as u64)
            * (f.height.div_ceil(factor) as u64)
            * channels
            * if wide { 2 } else { 1 };
        let photometry = Photometry::new(f, project.canvas.exposure, project.frames[0].emor);
        let masks = project
            .masks
            .iter()
            .filter(|m| m.frame == i)
            .map(|m| {
                let g = &project.frames[m.from];
                FrameMask {
                    mask: m.clone(),
                    drawn_on: (m.from != i).then(|| (FrameMap::new(g), source_bounds(g).0)),
                }
            })
            .collect();
        let planned = Planned {
            number: i,
            path,
            size: (f.width, f.height),
            map,
            footprint: [0; 4],
            factor,
            bytes,
            bounds,
            ellipse,
            centre,
            half_diagonal,
            scale,
            photometry,
            masks,
        };
        Ok((planned, wide, opened.icc))
    }

    /// None inside an exclude mask (the frame is not used there); otherwise whether
    /// the point (`xs`, `ys` in this frame, `ray` on the canvas) is inside an include
    /// mask (t1: the frame is used there, other frames not).
    pub(crate) fn masked(&self, xs: f64, ys: f64, ray: [f64; 3]) -> Option<bool> {
        let inside = |m: &FrameMask| match &m.drawn_on {
            None => m.mask.contains(xs, ys),
            // Drawn on another frame: where the canvas point lands in that frame, within
            // its pixels (Hugin clips the polygon to them, 2 px in).
            Some((map, [l, r, t, b])) => map.pixel(ray).is_some_and(|(x, y)| {
                x >= l + 1.5
                    && x <= r - 1.5
                    && y >= t + 1.5
                    && y <= b - 1.5
                    && m.mask.contains(x, y)
            }),
        };
        if self.masks.iter().any(|m| !m.mask.include && inside(m)) {
            return None;
        }
        Some(self.masks.iter().any(|m| m.mask.include && inside(m)))
    }

    /// Where the frame lands at (`xs`, `ys`), seen by canvas ray `ray`; None where it
    /// does not cover the point (outside its area, or masked out).
    pub(crate) fn hit(&self, xs: f64, ys: f64, ray: [f64; 3]) -> Option<Hit> {
        let edge = self.edge_distance(xs, ys)?;
        let include = match self.masks.is_empty() {
            true => false,
            false => self.masked(xs, ys, ray)?,
        };
        let d = (((xs - self.centre[0]).powi(2) + (ys - self.centre[1]).powi(2)).sqrt()
            / self.half_diagonal) as f32;
        Some(Hit {
            xs,
            ys,
            d,
            seam: d,
            edge: edge as f32,
            include,
        })
    }

    /// Distance inside the valid area in source pixels, None outside. A frame covers
    /// the area of its pixels, half a pixel beyond the outer pixel centres (nona reaches
    /// a little further still).
    pub(crate) fn edge_distance(&self, xs: f64, ys: f64) -> Option<f64> {
        let [l, r, t, b] = self.bounds;
        let e = if self.ellipse {
            let (ax, ay) = ((r - l) / 2.0, (b - t) / 2.0);
            let (nx, ny) = ((xs - self.centre[0]) / ax, (ys - self.centre[1]) / ay);
            (1.0 - (nx * nx + ny * ny).sqrt()) * ax.min(ay)
        } else {
            (xs - l).min(r - xs).min(ys - t).min(b - ys) + 0.5
        };
        (e >= 0.0).then_some(e)
    }
}

/// A frame's valid area [left, right, top, bottom] (inclusive pixel centres: its
/// `S` crop or all of it) and whether it is the inscribed ellipse (circular fisheye).
pub(crate) fn source_bounds(f: &pto::Frame) -> ([f64; 4], bool) {
    let (w, h) = (f.width as f64, f.height as f64);
    match f.crop {
        Some(k) => (
            [
                k.left.max(0.0),
                (k.right - 1.0).min(w - 1.0),
                k.top.max(0.0),
                (k.bottom - 1.0).min(h - 1.0),
            ],
            f.lens == pto::Lens::CircularFisheye,
        ),
        None => ([0.0, w - 1.0, 0.0, h - 1.0], false),
    }
}

/// Source pixels per canvas pixel around the canvas point where the frame's centre lands.
pub(crate) fn source_scale(canvas: &CanvasMap, map: &FrameMap, centre: [f64; 2]) -> f64 {
    let Some((cx, cy)) = canvas.pixel(map.ray(centre[0], centre[1])) else {
        return 1.0;
    };
    let at = |x: f64, y: f64| map.pixel(canvas.ray(x, y));
    match (
        at(cx - 0.5, cy),
        at(cx + 0.5, cy),
        at(cx, cy - 0.5),
        at(cx, cy + 0.5),
    ) {
        (Some(a), Some(b), Some(c), Some(d)) => {
            let sx = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
            let sy = ((d.0 - c.0).powi(2) + (d.1 - c.1).powi(2)).sqrt();
            sx.max(sy)
        }
        _ => 1.0,
    }
}

/// The output rectangle (x0, x1, y0, y1) a frame may touch, from its outline
/// and an interior grid mapped onto the canvas, padded; None when it misses
/// the output. Wrapping round the +-180 degree seam or over a pole widens it
/// to the full width or to the top or bottom edge.
pub(crate) fn footprint(
    canvas: &CanvasMap,
    c: &pto::Canvas,
    f: &Planned,
    out: (u32, u32, u32, u32),
) -> Option<[u32; 4]> {
    let [l, r, t, b] = f.bounds;
    let n = 64;
    let mut outline = Vec::new();
    for k in 0..n {
        let s = k as f64 / n as f64;
        outline.push((l + s * (r - l), t));
        outline.push((r, t + s * (b - t)));
    }
    for k in 0..n {
        let s = k as f64 / n as f64;
        outline.push((r - s * (r - l), b));
        outline.push((l, b - s * (b - t)));
    }
    let mut points: Vec<(f64, f64)> = Vec::new();
    for j in 0..=8 {
        for i in 0..=8 {
            points.push((l + (r - l) * i as f64 / 8.0, t + (b - t) * j as f64 / 8.0));
        }
    }
    let (w, h) = (c.width as f64, c.height as f64);
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    let mut whole = false;
    let mut last: Option<f64> = None;
    for (k, &(sx, sy)) in outline.iter().chain(points.iter()).enumerate() {
        if f.edge_distance(sx, sy).is_none() && f.ellipse {
            continue;
        }
        match canvas.pixel(f.map.ray(sx, sy)) {
            Some((px, py)) => {
                if k < outline.len() {
                    if let Some(lx) = last {
                        if (px - lx).abs() > w / 2.0 {
                            whole = true; // crosses the +-180 degree seam
                        }
                    }
                    last = Some(px);
                }
                x0 = x0.min(px);
                x1 = x1.max(px);
                y0 = y0.min(py);
                y1 = y1.max(py);
            }
            None => whole = true, // partly behind a rectilinear canvas: its extent is unbounded
        }
    }
    if whole {
        x0 = 0.0;
        x1 = w;
    }
    if c.projection != pto::Projection::Rectilinear {
        // A frame that sees a pole covers the whole width next to it.
        for (pole, edge) in [([0.0, -1.0, 0.0], 0.0), ([0.0, 1.0, 0.0], h)] {
            if let Some((px, py)) = f.map.pixel(pole) {
                if f.edge_distance(px, py).is_some() {
                    x0 = 0.0;
                    x1 = w;
                    if edge == 0.0 {
                        y0 = 0.0
                    } else {
                        y1 = h
                    }
                }
            }
        }
    }
    if whole && c.projection == pto::Projection::Rectilinear {
        y0 = y0.min(0.0);
        y1 = y1.max(h);
    }
    if !x0.is_finite() || !y0.is_finite() {
        return None;
    }
    let pad_x = 3.0 + 0.01 * (x1 - x0);
    let pad_y = 3.0 + 0.01 * (y1 - y0);
    let (ox, oy, ow, oh) = (out.0 as f64, out.1 as f64, out.2 as f64, out.3 as f64);
    let fx0 = (x0 - pad_x - ox).floor().clamp(0.0, ow);
    let fx1 = (x1 + pad_x - ox).ceil().clamp(0.0, ow);
    let fy0 = (y0 - pad_y - oy).floor().clamp(0.0, oh);
    let fy1 = (y1 + pad_y - oy).ceil().clamp(0.0, oh);
    (fx1 > fx0 && fy1 > fy0).then_some([fx0 as u32, fx1 as u32, fy0 as u32, fy1 as u32])
}

#[cfg(test)]
mod tests {
    use crate::{Options, Render, Seams};

    /// The footprints of one 400x300, 50-degree frame per yaw on a 360-degree canvas.
    fn footprints(yaws: &[f64]) -> Vec<[u32; 4]> {
        let dir = tempfile::tempdir().unwrap();
        let mut file = b"P6 400 300 255\n".to_vec();
        file.extend(std::iter::repeat_n(90, 400 * 300 * 3));
        std::fs::write(dir.path().join("f.ppm"), file).unwrap();
        let mut text = String::from("p f2 w1000 h500 v360\n");
        for y in yaws {
            text += &format!("i w400 h300 f0 v50 y{y} Rt1 n\"f.ppm\"\n");
        }
        let opts = Options {
            seams: Seams::Voronoi,
            ..Options::default()
        };
        let project = crate::pto::parse(&text).unwrap();
        let r = Render::from_project(project, &dir.path().join("p.pto"), &opts).unwrap();
        r.frames.iter().map(|f| f.footprint).collect()
    }

    #[test]
    fn a_footprint_covers_the_frame_and_little_more() {
        let [x0, x1, y0, y1] = footprints(&[0.0])[0];
        // 50 degrees of 360 on 1000 px: 139 px wide, centred; padded by 3 px + 1%.
        let (c, half) = (500.0, 139.0 / 2.0);
        assert!(
            (x0 as f64) < c - half && (x0 as f64) > c - half - 20.0,
            "{x0}"
        );
        assert!(
            (x1 as f64) > c + half && (x1 as f64) < c + half + 20.0,
            "{x1}"
        );
        assert!(y0 < 250 && y1 > 250 && y1 - y0 < 130, "{y0}..{y1}");
    }

    #[test]
    fn a_frame_across_the_back_seam_spans_the_width() {
        let fp = footprints(&[179.0, 90.0]);
        assert_eq!((fp[0][0], fp[0][1]), (0, 1000), "{:?}", fp[0]);
        assert!(fp[1][1] - fp[1][0] < 200, "{:?}", fp[1]);
    }
}
