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
        let row_hits = self.hits(y, candidates);
        let (hits, d_min, s_min) = (
            row_hits.hits.as_slice(),
            row_hits.d_min.as_slice(),
            row_hits.s_min.as_slice(),
        );
        let allowed = |x: usize, hit: &Hit| row_hits.allowed(x, hit);
        // Per frame: the transition's width in centre-distance units, and the ramp at its border.
        let widths = |i: usize| {
            let f = &self.frames[i];
            (
                (self.feather * f.scale / f.half_diagonal) as f32,
                (self.feather * f.scale) as f32,
            )
        };
        // The detail follows the seams; the low bands, patched to carry the keepers'
        // colours where something moved (`seam`), fade across the geometry alone, as
        // wide as they can, so exposure left between frames fades as with Voronoi seams.
        let weight_at = |(delta, ramp): (f32, f32), hit: &Hit, x: usize, wide: f32| {
            let beyond = match wide > 1.0 {
                true => hit.d - d_min[x],
                false => hit.seam - s_min[x],
            };
            (1.0 - beyond / (delta * wide)).max(0.0)
                * ((hit.edge + 0.5) / (ramp * wide)).clamp(1e-3, 1.0)
        };
        let bands = self.bands;
        // Bands only where the widest transition has more than one frame: elsewhere they
        // would add up to the full sample again.
        let mut shared = vec![false; if bands > 0 { width } else { 0 }];
        if bands > 0 {
            let mut seen = vec![0u8; width];
            for (i, x0, row) in hits {
                let (delta, _) = widths(*i);
                let reach = delta * BAND_WIDTHS[bands - 1];
                for (k, hit) in row.iter().enumerate() {
                    let x = x0 + k;
                    // A frame counts if a low band or its detail (a seam moved there) reaches.
                    let near = hit.d - d_min[x] < reach || hit.seam - s_min[x] < delta;
                    if allowed(x, hit) && near {
                        seen[x] = seen[x].saturating_add(1);
                    }
                }
            }
            shared.iter_mut().zip(&seen).for_each(|(s, &n)| *s = n > 1);
        }
        let mut weight = vec![0f32; width];
        let mut cover = vec![0f32; width];
        // Where bands are blended, `out` gathers the detail (full minus the first low
        // band) across the feather, and `low[b]` band b (low b minus low b+1; the last
        // low band whole) across its own width.
        let mut low = vec![vec![0f32; width * 4]; bands];
        let mut low_weight = vec![vec![0f32; width]; bands];
        out.iter_mut().for_each(|v| *v = 0.0);
        let mut px = [0f32; 4];
        let mut lp = [[0f32; 4]; BAND_WIDTHS.len()];
        for (i, x0, row) in hits {
            let f = &self.frames[*i];
            let image = self.loaded[*i].as_ref().expect("prepared");
            let width_i = widths(*i);
            for (k, hit) in row.iter().enumerate() {
                let x = x0 + k;
                if !allowed(x, hit) {
                    continue;
                }
                let w = weight_at(width_i, hit, x, 1.0);
                let split = bands > 0 && shared[x];
                if split {
                    let wl: [f32; BAND_WIDTHS.len()] =
                        std::array::from_fn(|b| weight_at(width_i, hit, x, BAND_WIDTHS[b]));
                    // The widest band reaches furthest: nothing of this frame beyond it
                    // (but its detail, where a seam gave it the place).
                    if wl[bands - 1] <= 0.0 && w <= 0.0 {
                        continue;
                    }
                    for (b, l) in image.low.iter().enumerate() {
                        l.sample(hit.xs, hit.ys, &mut lp[b]);
                    }
                    for b in 0..bands {
                        let wl = wl[b];
                        if wl <= 0.0 {
                            continue;
                        }
                        let wa = wl * lp[b][3];
                        for ch in 0..3 {
                            let next = if b + 1 < bands { lp[b + 1][ch] } else { 0.0 };
                            low[b][x * 4 + ch] += wa * (lp[b][ch] - next);
                        }
                        low_weight[b][x] += wa;
                    }
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
                weight[x] += wa;
                cover[x] = cover[x].max(px[3]);
            }
        }
        // Pixels no frame took keep the zeros they started with: transparent.
        for x in (0..width).filter(|&x| weight[x] > 0.0) {
            for ch in 0..3 {
                out[x * 4 + ch] /= weight[x];
                if bands > 0 && shared[x] {
                    for b in 0..bands {
                        if low_weight[b][x] > 0.0 {
                            out[x * 4 + ch] += low[b][x * 4 + ch] / low_weight[b][x];
                        }
                    }
                }
            }
            out[x * 4 + 3] = cover[x];
        }
    }
}
