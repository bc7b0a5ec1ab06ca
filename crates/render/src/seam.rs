//! The seam pre-pass: where overlapping frames disagree (something moved between
//! the shots), decide once which frame shows that place, so seams go around moving
//! things instead of through them.
//!
//! Every frame is sampled on a grid of cells (`cell` output pixels square) at reduced
//! size, colours corrected. Two sweeps, top to bottom, frames decoded as the sweep
//! reaches them and dropped when it has passed them:
//! 1. the exposure left between each pair of overlapping frames (the median log
//!    ratio of their luminance), so an exposure error is not taken for a change;
//! 2. cells where the frames disagree, joined into conflicts (connected runs). In
//!    a conflict, each frame's vote is how many others agree with it there.
//!
//! Each conflict is then given to one frame, its keeper: one that covers all of it
//! away from its own edge, agreeing with the majority most often (three or more
//! frames outvote an object seen by one), and among equals the lowest-numbered, so
//! every conflict between the same two frames goes the same way (a walker shown
//! twice in a two-frame overlap is shown once). The render adds a penalty to the
//! seam distance of every other frame there, fading out a few cells past the
//! conflict, so the detail's seam passes where the frames agree. The low bands keep
//! their wide geometric transitions (exposure fades as before), so every other
//! frame's low-pass copies are patched to carry the keeper's colours there
//! (`Patch`): no band spreads a colour the output does not show.
//!
//! Memory: the frames of one row of cells at reduced size, plus the conflicts
//! (runs), never a map of the panorama.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use raster::Result;
use rayon::prelude::*;

use crate::frame::FrameImage;
use crate::plan::Planned;
use crate::Render;

/// Cells: the penalty is whole within `NEAR` of a conflict and gone at `NEAR + RAMP`.
const NEAR: f32 = 2.0;
const RAMP: f32 = 4.0;
/// Distances are kept up to here (cells).
const FAR: u8 = 8;
/// Added to other frames' seam distance (in half diagonals): more than any frame's own.
const PENALTY: f32 = 4.0;
/// Two frames agree at a cell when every channel's difference, over their sum plus
/// this floor, stays under `AGREE`.
const FLOOR: f32 = 0.08;
const AGREE: f32 = 0.12;
/// Samples kept for the low bands' patches, at most (about 16 MB).
const MAX_KEPT: usize = 300_000;
/// Conflicts smaller than this (cells) are left to the Voronoi seam.
const MIN_AREA: u32 = 3;
/// Histogram of a pair's log2 luminance ratio: bins of 1/32 EV over +-4 EV.
const BINS: usize = 256;

/// The seams' result: regions where one frame must win, and the places whose
/// colours stay out of the low-pass copies.
pub struct SeamMap {
    cell: u32,
    /// Canvas position of cell (0, 0)'s corner.
    origin: (u32, u32),
    regions: Vec<Region>,
    /// Per cell row: the regions touching it.
    by_row: Vec<Vec<u32>>,
    /// Per project frame: corrections of its low-pass copies at conflicts.
    transient: HashMap<usize, Vec<Patch>>,
    /// Cells sampled per sweep.
    pub cells: u64,
}

/// What a frame's low-pass copies change at one conflicting cell so that they carry
/// the keeper's colours there, not the frame's own: the cell's position in the
/// frame's pixels, its area there, and the colour difference (keeper's, brought to
/// this frame's exposure, minus the frame's). Box means are linear, so a copy's
/// cell containing the point moves by `diff * area / its own area`.
#[derive(Clone, Copy, Debug)]
pub struct Patch {
    /// Frame pixel position.
    pub at: [f32; 2],
    /// Area in frame pixels.
    pub area: f32,
    /// Colour to add, spread over `area`.
    pub diff: [f32; 3],
}

/// One conflict: the frame that shows it and the distance of the cells around it.
struct Region {
    /// Project number of the frame that wins here.
    keeper: usize,
    /// Cell position of the box's corner, and its size.
    x0: i64,
    y0: i64,
    w: usize,
    h: usize,
    /// Cells from the conflict, capped at `FAR`.
    dist: Vec<u8>,
}

/// A frame's corrected colour at one cell.
#[derive(Clone, Copy)]
struct Sample {
    cell: u32,
    frame: u32,
    rgb: [f32; 3],
    /// Where, in the frame's pixels, and how far from its edge in cells.
    at: [f32; 2],
    edge: f32,
}

/// What one frame did in one conflict.
#[derive(Clone, Copy, Default)]
struct Vote {
    cover: u32,
    majority: u32,
    /// The nearest the conflict came to the frame's edge, in cells.
    edge: f32,
}

/// A conflict being gathered: its cells' extent and the frames' votes.
#[derive(Clone, Default)]
struct Conflict {
    parent: u32,
    area: u32,
    bounds: [i64; 4],
    votes: Vec<(u32, Vote)>,
}

/// The cell size for a render: about 128 cells over the smallest frame's shorter
/// side, 2 to 8 output pixels.
pub(crate) fn cell_size(frames: &[Planned]) -> u32 {
    let shortest = frames
        .iter()
        .map(|f| f.size.0.min(f.size.1) as f64 / f.scale.max(1e-9))
        .fold(f64::INFINITY, f64::min);
    ((shortest / 128.0) as u32).clamp(2, 8)
}

impl SeamMap {
    /// Runs the pre-pass over `render`'s frames (on its whole area).
    pub fn build(render: &Render) -> Result<SeamMap> {
        let cell = cell_size(&render.frames);
        let sweep = Sweep::new(render, cell);
        let mut pairs: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
        // Exposure is smooth: four times coarser cells measure it (frames decoded smaller).
        Sweep::new(render, cell * 4).run(|_, samples| histogram(samples, &mut pairs))?;
        let gains: HashMap<(u32, u32), f32> =
            pairs.into_iter().map(|(k, h)| (k, median(&h))).collect();
        let mut found = Found {
            cell,
            ..Found::default()
        };
        sweep.run(|j, samples| found.row(j, samples, &gains))?;
        let map = found.finish(render, &gains, sweep.cells());
        Ok(map)
    }

    /// Whether any conflict's penalty reaches canvas row `yc`.
    pub fn touches(&self, yc: f64) -> bool {
        let v = (yc - self.origin.1 as f64) / self.cell as f64 - 0.5;
        self.by_row
            .get(v.round().max(0.0) as usize)
            .is_some_and(|list| !list.is_empty())
    }

    /// Penalties on canvas row `yc` for output columns from canvas column `xc0`:
    /// per column the keeper's project number and the penalty on the others.
    pub fn row(&self, xc0: u32, yc: f64, out: &mut [(usize, f32)]) {
        out.iter_mut().for_each(|p| *p = (usize::MAX, 0.0));
        let c = self.cell as f64;
        let v = (yc - self.origin.1 as f64) / c - 0.5;
        let Some(list) = self.by_row.get(v.round().max(0.0) as usize) else {
            return;
        };
        for &r in list {
            let r = &self.regions[r as usize];
            let (rv, top) = (v - r.y0 as f64, (r.y0 - 1) as f64);
            if v < top || v > (r.y0 + r.h as i64) as f64 {
                continue;
            }
            let xa = ((r.x0 as f64 - 0.5) * c + self.origin.0 as f64).floor() as i64 - xc0 as i64;
            let xb = (((r.x0 + r.w as i64) as f64 + 0.5) * c + self.origin.0 as f64).ceil() as i64
                - xc0 as i64;
            for x in xa.max(0)..xb.min(out.len() as i64) {
                let u = (x + xc0 as i64) as f64 - self.origin.0 as f64;
                let d = r.distance(u / c - 0.5 - r.x0 as f64, rv);
                let p = PENALTY * ((NEAR + RAMP - d) / RAMP).clamp(0.0, 1.0);
                let slot = &mut out[x as usize];
                if p > slot.1 {
                    *slot = (r.keeper, p);
                }
            }
        }
    }

    /// Discs of frame `number`'s pixels whose colours stay out of its low bands.
    pub fn transient(&self, number: usize) -> &[Patch] {
        self.transient.get(&number).map_or(&[], |v| v.as_slice())
    }

    /// Conflicts found.
    pub fn conflicts(&self) -> usize {
        self.regions.len()
    }

    /// Writes the map to `path` with `key` (the job it was made for): shards load it
    /// instead of running the pre-pass again.
    pub fn save(&self, path: &Path, key: &str) -> Result<()> {
        let mut b = format!("giga-seams 1\n{key}\n").into_bytes();
        let rows = self.by_row.len() as u64;
        for v in [
            self.cell as u64,
            self.origin.0 as u64,
            self.origin.1 as u64,
            self.cells,
            rows,
        ] {
            b.extend(v.to_le_bytes());
        }
        b.extend((self.regions.len() as u64).to_le_bytes());
        for r in &self.regions {
            for v in [
                r.keeper as u64,
                r.x0 as u64,
                r.y0 as u64,
                r.w as u64,
                r.h as u64,
            ] {
                b.extend(v.to_le_bytes());
            }
            b.extend(&r.dist);
        }
        let mut frames: Vec<_> = self.transient.iter().collect();
        frames.sort_by_key(|(n, _)| **n);
        b.extend((frames.len() as u64).to_le_bytes());
        for (number, patches) in frames {
            b.extend((*number as u64).to_le_bytes());
            b.extend((patches.len() as u64).to_le_bytes());
            for p in patches {
                for v in [p.at[0], p.at[1], p.area, p.diff[0], p.diff[1], p.diff[2]] {
                    b.extend(v.to_le_bytes());
                }
            }
        }
        std::fs::write(path, b).map_err(|e| raster::Error::io(path, e))
    }

    /// Reads a map `save` wrote for `key`; None when there is none for that job (or it
    /// is damaged: the pre-pass then runs again).
    pub fn load(path: &Path, key: &str) -> Option<SeamMap> {
        let bytes = std::fs::read(path).ok()?;
        let head = format!("giga-seams 1\n{key}\n");
        let mut r = Reader(bytes.strip_prefix(head.as_bytes())?);
        let (cell, ox, oy, cells, rows) = (r.u()?, r.u()?, r.u()?, r.u()?, r.u()?);
        let mut regions = Vec::new();
        for _ in 0..r.u()? {
            let (keeper, x0, y0, w, h) = (r.u()?, r.u()? as i64, r.u()? as i64, r.u()?, r.u()?);
            let dist = r.take(w.checked_mul(h)? as usize)?.to_vec();
            let (w, h) = (w as usize, h as usize);
            regions.push(Region {
                keeper: keeper as usize,
                x0,
                y0,
                w,
                h,
                dist,
            });
        }
        let mut transient = HashMap::new();
        for _ in 0..r.u()? {
            let number = r.u()? as usize;
            let n = r.u()? as usize;
            let mut patches = Vec::with_capacity(n.min(MAX_KEPT));
            for _ in 0..n {
                let mut v = [0f32; 6];
                for x in &mut v {
                    *x = r.f()?;
                }
                patches.push(Patch {
                    at: [v[0], v[1]],
                    area: v[2],
                    diff: [v[3], v[4], v[5]],
                });
            }
            transient.insert(number, patches);
        }
        (r.0.is_empty() && rows < 1 << 32).then(|| SeamMap {
            cell: cell as u32,
            origin: (ox as u32, oy as u32),
            by_row: by_row(&regions, rows as usize),
            regions,
            transient,
            cells,
        })
    }
}

impl Region {
    /// Distance (cells) of cell (i, j), `FAR` outside the box.
    fn cell_distance(&self, i: i64, j: i64) -> u8 {
        let (u, v) = (i - self.x0, j - self.y0);
        if u < 0 || v < 0 || u >= self.w as i64 || v >= self.h as i64 {
            return FAR;
        }
        self.dist[v as usize * self.w + u as usize]
    }

    /// Bilinear distance (cells) at cell coordinates (u, v) inside the box.
    fn distance(&self, u: f64, v: f64) -> f32 {
        let at = |i: f64, j: f64| {
            if i < 0.0 || j < 0.0 || i >= self.w as f64 || j >= self.h as f64 {
                return FAR as f32;
            }
            self.dist[j as usize * self.w + i as usize] as f32
        };
        let (fu, fv) = (u.floor(), v.floor());
        let (tu, tv) = ((u - fu) as f32, (v - fv) as f32);
        let top = at(fu, fv) * (1.0 - tu) + at(fu + 1.0, fv) * tu;
        let bottom = at(fu, fv + 1.0) * (1.0 - tu) + at(fu + 1.0, fv + 1.0) * tu;
        top * (1.0 - tv) + bottom * tv
    }
}

/// Little-endian numbers off the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn f(&mut self) -> Option<f32> {
        Some(f32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

/// Adds every overlapping pair's luminance ratio at these cells to its histogram.
fn histogram(samples: &[Sample], pairs: &mut HashMap<(u32, u32), Vec<u32>>) {
    for group in samples.chunk_by(|a, b| a.cell == b.cell) {
        for (k, a) in group.iter().enumerate() {
            for b in &group[k + 1..] {
                let (la, lb) = (luminance(a.rgb), luminance(b.rgb));
                if la < 0.02 || lb < 0.02 || la > 0.98 || lb > 0.98 {
                    continue;
                }
                let bin = ((la / lb).log2() * 32.0 + BINS as f32 / 2.0) as usize;
                let h = pairs.entry((a.frame, b.frame)).or_insert(vec![0; BINS]);
                h[bin.min(BINS - 1)] += 1;
            }
        }
    }
}

fn luminance(c: [f32; 3]) -> f32 {
    0.25 * c[0] + 0.5 * c[1] + 0.25 * c[2]
}

/// The gain that takes the second frame of a pair to the first (2^median).
fn median(h: &[u32]) -> f32 {
    let total: u32 = h.iter().sum();
    let mut seen = 0;
    for (i, &n) in h.iter().enumerate() {
        seen += n;
        if seen * 2 >= total {
            return ((i as f32 + 0.5 - BINS as f32 / 2.0) / 32.0).exp2();
        }
    }
    1.0
}

/// The gain that takes frame `b`'s corrected colours to frame `a`'s.
fn gain(gains: &HashMap<(u32, u32), f32>, a: u32, b: u32) -> f32 {
    match gains.get(&(a, b)) {
        Some(&g) => g,
        None => 1.0 / gains.get(&(b, a)).copied().unwrap_or(1.0),
    }
}

/// Whether two samples agree within `limit` (see `AGREE`), the pair's gain applied.
fn agree(a: &Sample, b: &Sample, gains: &HashMap<(u32, u32), f32>, limit: f32) -> bool {
    let g = gain(gains, a.frame, b.frame);
    (0..3).all(|ch| {
        let (x, y) = (a.rgb[ch], b.rgb[ch] * g);
        (x - y).abs() / (x + y + FLOOR) < limit
    })
}

/// The conflicts found so far, as runs of cells joined row to row.
#[derive(Default)]
struct Found {
    cell: u32,
    conflicts: Vec<Conflict>,
    /// Runs of the row before: (first cell, end, conflict).
    last: Vec<(u32, u32, u32)>,
    /// Every run: (row, first cell, end, conflict).
    runs: Vec<(u32, u32, u32, u32)>,
    /// The samples of every conflicting cell, with its conflict.
    samples: Vec<(u32, u32, Vec<Sample>)>,
    /// Cells that agree only loosely (row, column, samples): patched too when they lie
    /// next to a conflict (its rim, under the threshold).
    rims: Vec<(u32, u32, Vec<Sample>)>,
    kept: usize,
}

/// One conflicting cell: its column, each frame's vote, and its samples.
type Cell = (u32, Vec<(u32, Vote)>, Vec<Sample>);

impl Found {
    /// Takes one row of cells: marks the cells where the frames disagree and votes.
    fn row(&mut self, j: u32, samples: &[Sample], gains: &HashMap<(u32, u32), f32>) {
        let mut row: Vec<Cell> = Vec::new();
        for group in samples.chunk_by(|a, b| a.cell == b.cell) {
            if group.len() < 2 {
                continue;
            }
            let votes: Vec<u32> = group
                .iter()
                .map(|a| {
                    let others = group.iter().filter(|b| b.frame != a.frame);
                    others.filter(|b| agree(a, b, gains, AGREE)).count() as u32
                })
                .collect();
            if votes.iter().all(|&v| v as usize == group.len() - 1) {
                // Agreeing, but not closely: the rim of something that moved, perhaps.
                let close = group.iter().enumerate().all(|(k, a)| {
                    group[k + 1..]
                        .iter()
                        .all(|b| agree(a, b, gains, AGREE / 3.0))
                });
                if !close && self.kept + group.len() <= MAX_KEPT {
                    self.kept += group.len();
                    self.rims.push((j, group[0].cell, group.to_vec()));
                }
                continue;
            }
            let most = *votes.iter().max().unwrap_or(&0);
            let cast = group
                .iter()
                .zip(&votes)
                .map(|(s, &v)| {
                    let vote = Vote {
                        cover: 1,
                        majority: (most > 0 && v == most) as u32,
                        edge: s.edge,
                    };
                    (s.frame, vote)
                })
                .collect();
            row.push((group[0].cell, cast, group.to_vec()));
        }
        self.join(j, row);
    }

    /// Joins this row's conflicting cells into runs and the runs into conflicts.
    fn join(&mut self, j: u32, row: Vec<Cell>) {
        let mut runs: Vec<(u32, u32, u32)> = Vec::new();
        for (i, votes, samples) in row {
            let id = match runs.last_mut() {
                Some(run) if run.1 >= i => {
                    run.1 = i + 1;
                    run.2
                }
                _ => {
                    let id = self.conflicts.len() as u32;
                    self.conflicts.push(Conflict {
                        parent: id,
                        bounds: [i as i64, j as i64, i as i64 + 1, j as i64 + 1],
                        ..Default::default()
                    });
                    runs.push((i, i + 1, id));
                    id
                }
            };
            let c = &mut self.conflicts[id as usize];
            c.area += 1;
            c.bounds[2] = c.bounds[2].max(i as i64 + 1);
            merge_votes(&mut c.votes, &votes);
            // Past the cap (a project that disagrees everywhere: misaligned, not
            // something that moved), conflicts still get seams, not patches.
            if self.kept + samples.len() <= MAX_KEPT {
                self.kept += samples.len();
                self.samples.push((id, j, samples));
            }
        }
        // Runs touching (diagonals and one cell apart included) a run of the row above join it.
        let above = std::mem::take(&mut self.last);
        for &(a0, a1, a) in &runs {
            for &(b0, b1, b) in &above {
                if a0 <= b1 + 1 && b0 <= a1 + 1 {
                    self.union(a, b);
                }
            }
        }
        self.runs
            .extend(runs.iter().map(|&(x0, x1, id)| (j, x0, x1, id)));
        self.last = runs;
    }

    fn root(&mut self, mut a: u32) -> u32 {
        while self.conflicts[a as usize].parent != a {
            let p = self.conflicts[a as usize].parent;
            self.conflicts[a as usize].parent = self.conflicts[p as usize].parent;
            a = p;
        }
        a
    }

    fn union(&mut self, a: u32, b: u32) {
        let (a, b) = (self.root(a), self.root(b));
        if a == b {
            return;
        }
        let moved = std::mem::take(&mut self.conflicts[b as usize]);
        let into = &mut self.conflicts[a as usize];
        into.area += moved.area;
        into.bounds = [
            into.bounds[0].min(moved.bounds[0]),
            into.bounds[1].min(moved.bounds[1]),
            into.bounds[2].max(moved.bounds[2]),
            into.bounds[3].max(moved.bounds[3]),
        ];
        merge_votes(&mut into.votes, &moved.votes);
        self.conflicts[b as usize].parent = a;
    }

    /// Decides every conflict's keeper and measures the distance around it.
    fn finish(mut self, render: &Render, gains: &HashMap<(u32, u32), f32>, cells: u64) -> SeamMap {
        let cell = self.cell;
        let mut members: HashMap<u32, Vec<(u32, u32, u32)>> = HashMap::new();
        for k in 0..self.runs.len() {
            let (j, x0, x1, id) = self.runs[k];
            let root = self.root(id);
            let c = &mut self.conflicts[root as usize];
            c.bounds[1] = c.bounds[1].min(j as i64);
            c.bounds[3] = c.bounds[3].max(j as i64 + 1);
            c.bounds[0] = c.bounds[0].min(x0 as i64);
            c.bounds[2] = c.bounds[2].max(x1 as i64);
            members.entry(root).or_default().push((j, x0, x1));
        }
        // A cell or two is an edge seen a little differently (parallax, a leaf), not
        // something that moved.
        let mut roots: Vec<u32> = members
            .keys()
            .copied()
            .filter(|&r| self.conflicts[r as usize].area >= MIN_AREA)
            .collect();
        roots.sort_unstable();
        let keepers: HashMap<u32, u32> = roots
            .iter()
            .map(|&r| (r, keeper(&self.conflicts[r as usize])))
            .collect();
        let regions: Vec<Region> = roots
            .iter()
            .map(|&r| {
                let c = &self.conflicts[r as usize];
                let keeper = render.frames[keepers[&r] as usize].number;
                Region::around(keeper, c.bounds, &members[&r])
            })
            .collect();
        let rows = render.info.height.div_ceil(cell) as usize + 1;
        let by_row = by_row(&regions, rows);
        let mut transient: HashMap<usize, Vec<Patch>> = HashMap::new();
        let mut add = |j: u32, group: &[Sample], keep: u32| {
            let Some(kept) = group.iter().find(|s| s.frame == keep) else {
                return;
            };
            for s in group.iter().filter(|s| s.frame != keep) {
                let f = &render.frames[s.frame as usize];
                let g = gain(gains, s.frame, keep);
                transient.entry(f.number).or_default().push(Patch {
                    at: s.at,
                    area: cell_area(render, cell, f, (s.cell, j), s.at),
                    diff: std::array::from_fn(|c| kept.rgb[c] * g - s.rgb[c]),
                });
            }
        };
        for k in 0..self.samples.len() {
            let (id, j) = (self.samples[k].0, self.samples[k].1);
            let root = self.root(id);
            if let Some(&keep) = keepers.get(&root) {
                add(j, &self.samples[k].2, keep);
            }
        }
        let index: HashMap<usize, u32> = render
            .frames
            .iter()
            .enumerate()
            .map(|(k, f)| (f.number, k as u32))
            .collect();
        for (j, i, group) in &self.rims {
            let near = by_row.get(*j as usize).and_then(|list| {
                list.iter()
                    .map(|&r| &regions[r as usize])
                    .find(|r| r.cell_distance(*i as i64, *j as i64) <= NEAR as u8)
            });
            if let Some(r) = near {
                add(*j, group, index[&r.keeper]);
            }
        }
        SeamMap {
            cell,
            origin: render.origin,
            regions,
            by_row,
            transient,
            cells,
        }
    }
}

/// The area, in frame `f`'s pixels, of cell (i, j) whose centre lands at `at`: the
/// cross product of the frame steps one cell right and one down (rectilinear frames
/// stretch towards their edges, so the frame's scale at its centre would not do).
fn cell_area(render: &Render, cell: u32, f: &Planned, (i, j): (u32, u32), at: [f32; 2]) -> f32 {
    let (ox, oy) = render.origin;
    let (x, y) = (
        (i * cell + cell / 2 + ox) as f64,
        (j * cell + cell / 2 + oy) as f64,
    );
    let step = |dx: f64, dy: f64| {
        let ray = render.canvas.ray(x + dx, y + dy);
        f.map
            .pixel(ray)
            .map(|(u, v)| (u - at[0] as f64, v - at[1] as f64))
    };
    match (step(cell as f64, 0.0), step(0.0, cell as f64)) {
        (Some(a), Some(b)) => (a.0 * b.1 - a.1 * b.0).abs() as f32,
        _ => (cell as f64 * f.scale).powi(2) as f32,
    }
}

/// Per cell row, the regions whose penalty reaches it.
fn by_row(regions: &[Region], rows: usize) -> Vec<Vec<u32>> {
    let mut by_row = vec![Vec::new(); rows];
    for (k, r) in regions.iter().enumerate() {
        for v in (r.y0 - 1).max(0)..(r.y0 + r.h as i64 + 1).min(rows as i64) {
            by_row[v as usize].push(k as u32);
        }
    }
    by_row
}

fn merge_votes(into: &mut Vec<(u32, Vote)>, from: &[(u32, Vote)]) {
    for &(f, v) in from {
        match into.iter_mut().find(|(g, _)| *g == f) {
            Some((_, w)) => {
                w.cover += v.cover;
                w.majority += v.majority;
                w.edge = w.edge.min(v.edge);
            }
            None => into.push((f, v)),
        }
    }
}

/// The frame (index in the render) a conflict goes to: among those covering all of it
/// and clear of their edges by the penalty's reach (or else the clearest), the one
/// most often in the majority, then the lowest-numbered.
fn keeper(c: &Conflict) -> u32 {
    let whole: Vec<&(u32, Vote)> = c.votes.iter().filter(|(_, v)| v.cover == c.area).collect();
    let pool = if whole.is_empty() {
        c.votes.iter().collect()
    } else {
        whole
    };
    let clear: Vec<&&(u32, Vote)> = pool.iter().filter(|(_, v)| v.edge >= NEAR + RAMP).collect();
    let pick = |set: &mut dyn Iterator<Item = &(u32, Vote)>| {
        set.min_by(|a, b| b.1.majority.cmp(&a.1.majority).then(a.0.cmp(&b.0)))
            .map(|&(f, _)| f)
    };
    if let Some(f) = pick(&mut clear.iter().map(|v| **v)) {
        return f;
    }
    pool.iter()
        .max_by(|a, b| a.1.edge.total_cmp(&b.1.edge).then(b.0.cmp(&a.0)))
        .map_or(0, |v| v.0)
}

impl Region {
    /// The box around a conflict's runs, with each cell's distance from them (chamfer).
    fn around(keeper: usize, bounds: [i64; 4], runs: &[(u32, u32, u32)]) -> Region {
        let pad = FAR as i64;
        let (x0, y0) = (bounds[0] - pad, bounds[1] - pad);
        let (w, h) = (
            (bounds[2] + pad - x0) as usize,
            (bounds[3] + pad - y0) as usize,
        );
        let mut dist = vec![FAR; w * h];
        for &(j, a, b) in runs {
            let row = (j as i64 - y0) as usize * w;
            for i in a..b {
                dist[row + (i as i64 - x0) as usize] = 0;
            }
        }
        chamfer(&mut dist, w, h);
        Region {
            keeper,
            x0,
            y0,
            w,
            h,
            dist,
        }
    }
}

/// Two passes of an 8-neighbour distance (1 across, 1 diagonally: the chessboard metric
/// rounds corners enough for a penalty).
fn chamfer(d: &mut [u8], w: usize, h: usize) {
    for y in 0..h {
        for x in 0..w {
            let mut m = d[y * w + x];
            for (dx, dy) in [(-1i64, 0i64), (-1, -1), (0, -1), (1, -1)] {
                let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                if nx >= 0 && ny >= 0 && (nx as usize) < w {
                    m = m.min(d[ny as usize * w + nx as usize].saturating_add(1));
                }
            }
            d[y * w + x] = m;
        }
    }
    for y in (0..h).rev() {
        for x in (0..w).rev() {
            let mut m = d[y * w + x];
            for (dx, dy) in [(1i64, 0i64), (1, 1), (0, 1), (-1, 1)] {
                let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                if nx >= 0 && (nx as usize) < w && (ny as usize) < h {
                    m = m.min(d[ny as usize * w + nx as usize].saturating_add(1));
                }
            }
            d[y * w + x] = m;
        }
    }
}

/// A sweep over the cells, frames decoded at reduced size as it reaches them.
struct Sweep<'a> {
    render: &'a Render,
    cell: u32,
    cols: u32,
    rows: u32,
}

impl<'a> Sweep<'a> {
    fn new(render: &'a Render, cell: u32) -> Sweep<'a> {
        Sweep {
            render,
            cell,
            cols: render.info.width.div_ceil(cell),
            rows: render.info.height.div_ceil(cell),
        }
    }

    fn cells(&self) -> u64 {
        self.cols as u64 * self.rows as u64
    }

    /// Output pixel at the centre of cell `i` (clamped inside the area).
    fn centre(&self, i: u32, size: u32) -> u32 {
        (i * self.cell + self.cell / 2).min(size - 1)
    }

    /// Calls `visit` with every row of cells, in order: the samples sorted by cell.
    fn run(&self, mut visit: impl FnMut(u32, &[Sample])) -> Result<()> {
        let r = self.render;
        let columns: Vec<[f64; 2]> = (0..self.cols)
            .map(|i| r.columns[self.centre(i, r.info.width) as usize])
            .collect();
        let mut loaded: Vec<Option<Arc<FrameImage>>> = vec![None; r.frames.len()];
        const CHUNK: u32 = 32;
        for j0 in (0..self.rows).step_by(CHUNK as usize) {
            let j1 = (j0 + CHUNK).min(self.rows);
            let (y0, y1) = (
                self.centre(j0, r.info.height),
                self.centre(j1 - 1, r.info.height) + 1,
            );
            let touching = |f: &Planned| f.footprint[2] < y1 && f.footprint[3] > y0;
            for (k, f) in r.frames.iter().enumerate() {
                if !touching(f) {
                    loaded[k] = None;
                }
            }
            let missing: Vec<usize> = (0..r.frames.len())
                .filter(|&k| loaded[k].is_none() && touching(&r.frames[k]))
                .collect();
            let images: Vec<Result<(usize, FrameImage)>> = missing
                .par_iter()
                .map(|&k| {
                    let f = &r.frames[k];
                    let factor = ((self.cell as f64 * f.scale / 2.0) as u32).max(1);
                    Ok((k, FrameImage::load(&f.path, f.size, factor, true)?))
                })
                .collect();
            for image in images {
                let (k, img) = image?;
                loaded[k] = Some(Arc::new(img));
            }
            let rows: Vec<Vec<Sample>> = (j0..j1)
                .into_par_iter()
                .map(|j| self.row(j, &columns, &loaded))
                .collect();
            for (j, samples) in (j0..j1).zip(&rows) {
                visit(j, samples);
            }
        }
        Ok(())
    }

    /// The samples of cell row `j`, sorted by cell.
    fn row(&self, j: u32, columns: &[[f64; 2]], loaded: &[Option<Arc<FrameImage>>]) -> Vec<Sample> {
        let r = self.render;
        let y = self.centre(j, r.info.height);
        let mut rays = Vec::with_capacity(columns.len());
        r.canvas
            .row_rays((y + r.origin.1) as f64, columns, &mut rays);
        let mut out = Vec::new();
        for (k, f) in r.frames.iter().enumerate() {
            let Some(image) = &loaded[k] else { continue };
            if y < f.footprint[2] || y >= f.footprint[3] {
                continue;
            }
            let per_cell = self.cell as f64 * f.scale;
            for (i, ray) in rays.iter().enumerate() {
                let x = self.centre(i as u32, r.info.width);
                if x < f.footprint[0] || x >= f.footprint[1] {
                    continue;
                }
                let Some((xs, ys)) = f.map.pixel(*ray) else {
                    continue;
                };
                let Some(hit) = f.hit(xs, ys, *ray) else {
                    continue;
                };
                let mut px = [0f32; 4];
                image.sample(xs, ys, crate::Interpolator::Bilinear, &mut px);
                if px[3] < 0.5 {
                    continue;
                }
                f.photometry.apply(&mut px, xs, ys);
                out.push(Sample {
                    cell: i as u32,
                    frame: k as u32,
                    rgb: [px[0], px[1], px[2]],
                    at: [xs as f32, ys as f32],
                    edge: (hit.edge as f64 / per_cell) as f32,
                });
            }
        }
        out.sort_by_key(|s| (s.cell, s.frame));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chamfer_measures_cells_from_the_seed() {
        let (w, h) = (9, 7);
        let mut d = vec![FAR; w * h];
        d[3 * w + 4] = 0;
        chamfer(&mut d, w, h);
        assert_eq!(d[3 * w + 4], 0);
        assert_eq!(d[3 * w + 7], 3);
        assert_eq!(d[0], 4);
        assert_eq!(d[6 * w + 8], 4);
    }

    fn conflict(votes: &[(u32, u32, u32, f32)]) -> Conflict {
        Conflict {
            area: 10,
            votes: votes
                .iter()
                .map(|&(f, cover, majority, edge)| {
                    (
                        f,
                        Vote {
                            cover,
                            majority,
                            edge,
                        },
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn keepers_follow_the_majority_then_the_lowest_number() {
        // Two frames disagree: the lower-numbered keeps it (so a walker shows once).
        assert_eq!(keeper(&conflict(&[(3, 10, 0, 20.0), (1, 10, 0, 20.0)])), 1);
        // Three or more: the majority, even over a lower number.
        let outvoted = [(0, 10, 0, 20.0), (2, 10, 10, 20.0), (4, 10, 10, 20.0)];
        assert_eq!(keeper(&conflict(&outvoted)), 2);
        // A frame whose edge runs through the conflict (it would cut the object) gives way.
        assert_eq!(keeper(&conflict(&[(0, 10, 0, 2.0), (5, 10, 0, 30.0)])), 5);
        // One that covers only part of it too.
        assert_eq!(keeper(&conflict(&[(0, 6, 0, 20.0), (5, 10, 0, 30.0)])), 5);
    }

    #[test]
    fn median_of_a_histogram_is_its_gain() {
        let mut h = vec![0; BINS];
        h[BINS / 2 + 32] = 10; // one EV
        h[BINS / 2 + 33] = 3;
        let g = median(&h);
        assert!((g - 2f32.powf(32.5 / 32.0)).abs() < 1e-4, "{g}");
    }
}
