//! Joining the frames at one output row: where every frame lands (`hits`), the
//! seams (nearest centre, or the seam pre-pass's penalties), and the blend: the
//! detail across the feather, each low band across its own wider transition.

use crate::plan::Planned;
use crate::{frame, geometry, Render};

/// How much wider than the feather each low band's transition is: the low-pass
/// copies' shrink factors (`frame::LOW_BANDS`), so each band's transition is
/// about eight times its scale.
pub(crate) const BAND_WIDTHS: [f32; 2] = [16.0, 128.0];

/// How many low bands every frame can hold: a band needs its low-pass copy to keep
/// at least 4 pixels on the shorter side of the smallest frame (as sampled), or it
/// would be little more than the frame's mean smeared over its edges, and its
/// transition (`BAND_WIDTHS` times the feather) to fit within that side, or it would
/// only cost time: the overlap and the frames' edges bound the blend anyway.
pub(crate) fn band_count(frames: &[Planned], feather: f64) -> usize {
    let shortest = frames
        .iter()
        .map(|f| f.size.0.min(f.size.1) / f.factor.max(1))
        .min()
        .unwrap_or(0);
    let mut factor = 1;
    frame::LOW_BANDS
        .iter()
        .zip(BAND_WIDTHS)
        .take_while(|&(&k, wide)| {
            factor *= k;
            shortest / factor >= 4 && (wide as f64 * feather) <= shortest as f64
        })
        .count()
}

/// Where a frame lands at one output pixel.
pub(crate) struct Hit {
    pub(crate) xs: f64,
    pub(crate) ys: f64,
    /// Distance from the frame's centre, in half diagonals.
    pub(crate) d: f32,
    /// `d` plus the seam pre-pass's penalty where another frame keeps the place.
    pub(crate) seam: f32,
    /// Distance from the frame's valid edge, in frame pixels (negative: outside).
    pub(crate) edge: f32,
    /// Inside one of the frame's include masks: other frames give way here.
    pub(crate) include: bool,
}

impl Hit {
    pub(crate) const MISS: Hit = Hit {
        xs: 0.0,
        ys: 0.0,
        d: f32::INFINITY,
        seam: f32::INFINITY,
        edge: -1.0,
        include: false,
    };
}

/// The hits of every frame covering one output row, and the nearest allowed one.
#[derive(Default)]
pub(crate) struct RowHits {
    /// (frame, first column, a hit per column from there).
    pub(crate) hits: Vec<(usize, usize, Vec<Hit>)>,
    pub(crate) forced: bool,
    pub(crate) only_included: Vec<bool>,
    pub(crate) d_min: Vec<f32>,
    /// The least seam distance per column.
    pub(crate) s_min: Vec<f32>,
    /// The nearest allowed frame per column (`usize::MAX`: none).
    pub(crate) chosen: Vec<usize>,
}

impl RowHits {
    /// Whether a frame may take pixel `x`: inside it, and not kept out by an include mask.
    pub(crate) fn allowed(&self, x: usize, hit: &Hit) -> bool {
        hit.edge >= 0.0 && (!self.forced || !self.only_included[x] || hit.include)
    }
}

impl Render {
    /// Where each frame that covers row `y` lands: its pixel, distance from its centre
    /// and from its edge, per output column, and where include masks decide.
    pub(crate) fn hits(&self, y: u32, candidates: &[usize]) -> RowHits {
        let width = self.info.width as usize;
        let yc = (y + self.origin.1) as f64;
        let mut hits: Vec<(usize, usize, Vec<Hit>)> = Vec::new();
        let mut rays = Vec::with_capacity(width);
        self.canvas.row_rays(yc, &self.columns, &mut rays);
        let mut forced = false;
        let mut penalty = Vec::new();
        if let Some(seams) = self.seams.as_ref().filter(|s| s.touches(yc)) {
            penalty = vec![(usize::MAX, 0f32); width];
            seams.row(self.origin.0, yc, &mut penalty);
        }
        for &i in candidates {
            let f = &self.frames[i];
            if y < f.footprint[2] || y >= f.footprint[3] {
                continue;
            }
            let (x0, x1) = (f.footprint[0] as usize, f.footprint[1] as usize);
            let mut row = Vec::with_capacity(x1 - x0);
            let mut coords = Vec::with_capacity(x1 - x0);
            let at = (self.origin.0 as usize + x0, yc);
            geometry::map_row(&f.map, &self.canvas, at, &rays[x0..x1], &mut coords);
            for (x, (ray, at)) in (x0..x1).zip(rays[x0..x1].iter().zip(&coords)) {
                let hit = at.and_then(|(xs, ys)| f.hit(xs, ys, *ray));
                let mut hit = hit.unwrap_or(Hit::MISS);
                forced |= hit.include;
                if let Some(&(keeper, p)) = penalty.get(x) {
                    if keeper != f.number {
                        hit.seam += p;
                    }
                }
                row.push(hit);
            }
            hits.push((i, x0, row));
        }
        // Where a frame's include mask covers a pixel, only such frames may take it.
        let mut only_included = vec![false; if forced { width } else { 0 }];
        if forced {
            for (_, x0, row) in &hits {
                for (k, hit) in row.iter().enumerate() {
                    only_included[x0 + k] |= hit.include;
                }
            }
        }
        let mut d_min = vec![f32::INFINITY; width];
        let mut s_min = vec![f32::INFINITY; width];
        let mut chosen = vec![usize::MAX; width];
        let r = RowHits {
            hits,
            forced,
            only_included,
            ..Default::default()
        };
        for (i, x0, row) in &r.hits {
            for (k, hit) in row.iter().enumerate() {
                let x = x0 + k;
                if r.allowed(x, hit) {
                    d_min[x] = d_min[x].min(hit.d);
                    if hit.seam < s_min[x] {
                        s_min[x] = hit.seam;
                        chosen[x] = *i;
                    }
                }
            }
        }
        RowHits {
            d_min,
            s_min,
            chosen,
            ..r
        }
    }

    /// The project's number of the frame each pixel of output row `y` takes its detail
    /// from (the nearest centre among the frames allowed there: the seam `render_row`
    /// feathers), or -1 where no frame covers it. Needs no frame decoded.
    pub fn chosen_frames(&self, y: u32) -> Vec<i32> {
        let candidates: Vec<usize> = (0..self.frames.len()).collect();
        self.hits(y, &candidates)
            .chosen
            .iter()
            .map(|&i| self.frames.get(i).map_or(-1, |f| f.number as i32))
            .collect()
    }

    /// One output row: seams, interpolation and photometry, as RGBA in 0..1.
    pub(crate) fn render_row(&self, y: u32, candidates: &[usize], out: &mut [f32]) {
        let width = self.info.width as usize;
        let row = self.hits(y, candidates);
        let weights = Weights {
            render: self,
            row: &row,
        };
        let shared = weights.shared(width);
        let mut sums = Sums::new(width, self.bands);
        out.iter_mut().for_each(|v| *v = 0.0);
        for (i, x0, hits) in &row.hits {
            self.accumulate(&weights, (*i, *x0, hits), &shared, &mut sums, out);
        }
        sums.finish(&shared, out);
    }

    /// Adds one frame's detail (into `out`) and low bands (into `sums`) where it reaches.
    fn accumulate(
        &self,
        weights: &Weights,
        (i, x0, hits): (usize, usize, &[Hit]),
        shared: &[bool],
        sums: &mut Sums,
        out: &mut [f32],
    ) {
        let (f, bands) = (&self.frames[i], self.bands);
        let image = self.loaded[i].as_ref().expect("prepared");
        let widths = weights.widths(i);
        let mut px = [0f32; 4];
        let mut lp = [[0f32; 4]; BAND_WIDTHS.len()];
        for (k, hit) in hits.iter().enumerate() {
            let x = x0 + k;
            if !weights.row.allowed(x, hit) {
                continue;
            }
            let w = weights.at(widths, hit, x, 1.0);
            let split = bands > 0 && shared[x];
            if split {
                let wl: [f32; BAND_WIDTHS.len()] =
                    std::array::from_fn(|b| weights.at(widths, hit, x, BAND_WIDTHS[b]));
                // The widest band reaches furthest: nothing of this frame beyond it
                // (but its detail, where a seam gave it the place).
                if wl[bands - 1] <= 0.0 && w <= 0.0 {
                    continue;
                }
                for (b, l) in image.low.iter().enumerate() {
                    l.sample(hit.xs, hit.ys, &mut lp[b]);
                }
                sums.add_low(x, &wl[..bands], &lp[..bands]);
            }
            if w <= 0.0 {
                continue;
            }
            image.sample(hit.xs, hit.ys, self.interpolator, &mut px);
            f.photometry.apply(&mut px, hit.xs, hit.ys);
            let wa = w * px[3];
            for ch in 0..3 {
                out[x * 4 + ch] += wa * (px[ch] - if split { lp[0][ch] } else { 0.0 });
            }
            sums.weight[x] += wa;
            sums.cover[x] = sums.cover[x].max(px[3]);
        }
    }
}

/// The weights of one row's frames: the detail across the feather along the seams,
/// each low band across its own wider transition along the geometry.
struct Weights<'a> {
    render: &'a Render,
    row: &'a RowHits,
}

impl Weights<'_> {
    /// Frame `i`'s transition width in centre-distance units, and its ramp at its border.
    fn widths(&self, i: usize) -> (f32, f32) {
        let (f, feather) = (&self.render.frames[i], self.render.feather);
        (
            (feather * f.scale / f.half_diagonal) as f32,
            (feather * f.scale) as f32,
        )
    }

    /// The weight of a hit at column `x` in a band `wide` times the feather (1: the
    /// detail). The detail follows the seams; the low bands, patched to carry the
    /// keepers' colours where something moved (`seam`), fade across the geometry
    /// alone, as wide as they can, so exposure left between frames fades as with
    /// Voronoi seams.
    fn at(&self, (delta, ramp): (f32, f32), hit: &Hit, x: usize, wide: f32) -> f32 {
        let beyond = match wide > 1.0 {
            true => hit.d - self.row.d_min[x],
            false => hit.seam - self.row.s_min[x],
        };
        (1.0 - beyond / (delta * wide)).max(0.0)
            * ((hit.edge + 0.5) / (ramp * wide)).clamp(1e-3, 1.0)
    }

    /// Columns where bands are blended: more than one frame within the widest
    /// transition (a low band's, or the detail's where a seam moved); elsewhere the
    /// bands would add up to the full sample again.
    fn shared(&self, width: usize) -> Vec<bool> {
        let bands = self.render.bands;
        if bands == 0 {
            return Vec::new();
        }
        let mut seen = vec![0u8; width];
        for (i, x0, row) in &self.row.hits {
            let (delta, _) = self.widths(*i);
            let reach = delta * BAND_WIDTHS[bands - 1];
            for (k, hit) in row.iter().enumerate() {
                let x = x0 + k;
                let near =
                    hit.d - self.row.d_min[x] < reach || hit.seam - self.row.s_min[x] < delta;
                if self.row.allowed(x, hit) && near {
                    seen[x] = seen[x].saturating_add(1);
                }
            }
        }
        seen.iter().map(|&n| n > 1).collect()
    }
}

/// One row's running sums: the detail's weight and coverage per column, and per low
/// band its colour (band b minus band b+1; the last whole) and weight.
struct Sums {
    weight: Vec<f32>,
    cover: Vec<f32>,
    low: Vec<Vec<f32>>,
    low_weight: Vec<Vec<f32>>,
}

impl Sums {
    fn new(width: usize, bands: usize) -> Sums {
        Sums {
            weight: vec![0.0; width],
            cover: vec![0.0; width],
            low: vec![vec![0.0; width * 4]; bands],
            low_weight: vec![vec![0.0; width]; bands],
        }
    }

    /// Adds a frame's low-band samples `lp` at column `x` with weights `wl`.
    fn add_low(&mut self, x: usize, wl: &[f32], lp: &[[f32; 4]]) {
        let bands = lp.len();
        for b in 0..bands {
            if wl[b] <= 0.0 {
                continue;
            }
            let wa = wl[b] * lp[b][3];
            for ch in 0..3 {
                let next = if b + 1 < bands { lp[b + 1][ch] } else { 0.0 };
                self.low[b][x * 4 + ch] += wa * (lp[b][ch] - next);
            }
            self.low_weight[b][x] += wa;
        }
    }

    /// Normalises the detail in `out` and adds the bands. Pixels no frame took keep
    /// the zeros they started with: transparent.
    fn finish(&self, shared: &[bool], out: &mut [f32]) {
        for x in (0..self.weight.len()).filter(|&x| self.weight[x] > 0.0) {
            for ch in 0..3 {
                out[x * 4 + ch] /= self.weight[x];
                if shared.get(x) == Some(&true) {
                    for (low, weight) in self.low.iter().zip(&self.low_weight) {
                        if weight[x] > 0.0 {
                            out[x * 4 + ch] += low[x * 4 + ch] / weight[x];
                        }
                    }
                }
            }
            out[x * 4 + 3] = self.cover[x];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Blend, Options, Seams};
    use raster::Source;

    /// Two flat frames (colours `a` and `b`, 400x300, 50 degrees) side by side on an
    /// equirectangular canvas, overlapping by about a third; returns the middle row.
    fn middle_row(a: u8, b: u8, blend: Blend) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        for (name, v) in [("a.ppm", a), ("b.ppm", b)] {
            let mut file = b"P6 400 300 255\n".to_vec();
            file.extend(std::iter::repeat_n(v, 400 * 300 * 3));
            std::fs::write(dir.path().join(name), file).unwrap();
        }
        let text = "p f2 w900 h300 v120\n\
                    i w400 h300 f0 v50 y-16 Rt1 n\"a.ppm\"\n\
                    i w400 h300 f0 v=0 y16 Rt1 n\"b.ppm\"\n";
        let opts = Options {
            blend,
            seams: Seams::Voronoi,
            ..Options::default()
        };
        let project = crate::pto::parse(text).unwrap();
        let mut r = Render::from_project(project, &dir.path().join("p.pto"), &opts).unwrap();
        let mut rows = Vec::new();
        while let Some(strip) = r.next_strip().unwrap() {
            if (strip.y..strip.y + strip.height).contains(&150) {
                let raster::Samples::U8(v) = &strip.samples else {
                    panic!("8-bit")
                };
                let at = (150 - strip.y) as usize * 900 * 4;
                rows = v[at..at + 900 * 4].to_vec();
            }
        }
        rows
    }

    #[test]
    fn a_seam_fades_from_one_frame_to_the_other() {
        for blend in [Blend::Feather, Blend::TwoBand] {
            let row = middle_row(60, 200, blend);
            let grey: Vec<u8> = row
                .chunks(4)
                .filter(|p| p[3] == 255)
                .map(|p| p[0])
                .collect();
            // Each frame alone at its side, then a monotonic change between.
            assert_eq!(grey[0], 60, "{blend:?}");
            assert_eq!(*grey.last().unwrap(), 200, "{blend:?}");
            assert!(grey.windows(2).all(|w| w[0] <= w[1]), "{blend:?}: {grey:?}");
            let between = grey.iter().filter(|&&g| g > 60 && g < 200).count();
            // The feather spans about 8 px; the two-band blend's low band 16 times that.
            let expect = if blend == Blend::Feather {
                4..40
            } else {
                60..400
            };
            assert!(expect.contains(&between), "{blend:?}: {between} px between");
        }
    }

    #[test]
    fn frames_that_agree_blend_into_themselves() {
        let row = middle_row(128, 128, Blend::TwoBand);
        assert!(row
            .chunks(4)
            .filter(|p| p[3] == 255)
            .all(|p| p[..3] == [128, 128, 128]));
        // Transparent beyond the frames.
        assert_eq!(&row[..4], &[0, 0, 0, 0]);
    }

    #[test]
    fn sums_add_bands_as_differences() {
        let mut sums = Sums::new(2, 2);
        let lp = [[0.6, 0.6, 0.6, 1.0], [0.5, 0.5, 0.5, 1.0]];
        sums.add_low(0, &[1.0, 1.0], &lp);
        sums.weight[0] = 1.0;
        sums.cover[0] = 1.0;
        let mut out = vec![0.1, 0.1, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0];
        sums.finish(&[true, false], &mut out);
        // Detail 0.1 + (0.6 - 0.5) + 0.5; column 1 took nothing: transparent.
        assert!((out[0] - 0.7).abs() < 1e-6, "{out:?}");
        assert_eq!(out[3], 1.0);
        assert_eq!(&out[4..], &[0.0; 4]);
    }
}
