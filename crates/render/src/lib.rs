//! `render`: turns an aligned PanoTools/Hugin project into a stream of strips.
//!
//! [`Render`] is a [`raster::Source`]: any of giga's writers or the tile
//! pyramid consumes it, so a panorama goes straight from its frames to a tiled
//! BigTIFF, a KRO or a tile folder. Rows are made top to bottom in bands; only
//! the frames whose footprint on the canvas touches the band are decoded, and
//! a frame is dropped as soon as the band passes its footprint, so memory
//! depends on the frames and the width, never on the canvas's area.
//!
//! Per output pixel: the exact PanoTools transform to every frame that covers
//! it ([`geometry`]), the frame whose centre is nearest wins (a Voronoi seam,
//! exact at full resolution) unless the seam pre-pass ([`seam`]) gave the place
//! to another frame because something moved there, with a narrow linear feather
//! for the detail and wider ones for the low bands; the chosen frames are
//! interpolated and corrected for exposure, white balance and vignetting.

#![deny(missing_docs)]

mod frame;
pub mod geometry;
pub mod overlay;
mod photometry;
pub mod preview;
pub mod pto;
pub mod resume;
pub mod seam;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use raster::{ImageInfo, PixelFormat, Rect, Result, SampleType, Samples, Source, Strip};
use rayon::prelude::*;

use frame::FrameImage;
use geometry::{CanvasMap, FrameMap};
use photometry::Photometry;
pub use pto::{Interpolator, Project};

/// Choices that are not in the project.
#[derive(Clone, Debug)]
pub struct Options {
    /// Overrides the project's interpolator.
    pub interpolator: Option<Interpolator>,
    /// Width of the seam transition, in output pixels.
    pub feather: f64,
    /// Cap on decoded frames held in memory at once, in bytes; frames past it go
    /// to a mapped scratch file in `scratch`.
    pub memory: u64,
    /// Folder for that scratch file (default: the system's temporary folder).
    pub scratch: Option<PathBuf>,
    /// Render only these frames (numbered as in the project), like `nona -i`.
    pub only: Option<Vec<usize>>,
    /// Render only this rectangle of the canvas (instead of the p-line's S crop).
    pub region: Option<Rect>,
    /// Anti-alias frames that are shrunk onto the canvas (box-reduce them first).
    pub antialias: bool,
    /// How overlapping frames are joined.
    pub blend: Blend,
    /// Decode shrunk JPEG frames at reduced size (DCT scaling): previews.
    pub quick_decode: bool,
    /// Where seams run.
    pub seams: Seams,
}

/// Where the seams between overlapping frames run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seams {
    /// Nearest frame centre, except where the frames disagree (something moved):
    /// there one frame keeps the whole place (`seam`).
    Content,
    /// Nearest frame centre everywhere: geometry only.
    Voronoi,
}

/// How much wider than the feather each low band's transition is: the low-pass
/// copies' shrink factors (`frame::LOW_BANDS`), so each band's transition is
/// about eight times its scale.
const BAND_WIDTHS: [f32; 2] = [16.0, 128.0];

/// How many low bands every frame can hold: a band needs its low-pass copy to keep
/// at least 4 pixels on the shorter side of the smallest frame (as sampled), or it
/// would be little more than the frame's mean smeared over its edges, and its
/// transition (`BAND_WIDTHS` times the feather) to fit within that side, or it would
/// only cost time: the overlap and the frames' edges bound the blend anyway.
fn band_count(frames: &[Planned], feather: f64) -> usize {
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

/// How overlapping frames are joined at their seams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blend {
    /// Nearest frame centre, with a `feather`-wide linear transition.
    Feather,
    /// One low band (Brown and Lowe's two-band blend, as AutoStitch): detail finer
    /// than 16 frame pixels changes frames across the feather, coarser structure
    /// across 16 times its width, so exposure and vignetting left over after the
    /// photometric correction fade out instead of stepping at the seam, without
    /// ghosting the detail. About as fast as the feather on large frames.
    TwoBand,
    /// As many low bands as the frames hold (up to two: also structure coarser than
    /// 128 frame pixels, across 128 times the feather): steps fade over ~1,000 px
    /// instead of ~128, at ~1.5x the time of the two-band blend on 24-MP frames.
    Multiband,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            interpolator: None,
            feather: 8.0,
            memory: 8 << 30,
            scratch: None,
            only: None,
            region: None,
            antialias: true,
            blend: Blend::TwoBand,
            quick_decode: false,
            seams: Seams::Content,
        }
    }
}

/// One frame, planned: where it lands on the output and how it is sampled.
struct Planned {
    /// The frame's number in the project.
    number: usize,
    path: PathBuf,
    size: (u32, u32),
    map: FrameMap,
    /// Footprint on the output: columns x0..x1, rows y0..y1 (exclusive ends).
    footprint: [u32; 4],
    /// Integer shrink factor for anti-aliasing.
    factor: u32,
    bytes: u64,
    /// Valid source area [left, right, top, bottom] (inclusive pixel centres) and whether it is the inscribed ellipse.
    bounds: [f64; 4],
    ellipse: bool,
    centre: [f64; 2],
    half_diagonal: f64,
    /// Source pixels per output pixel near the frame's centre.
    scale: f64,
    photometry: Photometry,
    masks: Vec<FrameMask>,
}

/// Where a frame lands at one output pixel.
struct Hit {
    xs: f64,
    ys: f64,
    /// Distance from the frame's centre, in half diagonals.
    d: f32,
    /// `d` plus the seam pre-pass's penalty where another frame keeps the place.
    seam: f32,
    /// Distance from the frame's valid edge, in frame pixels (negative: outside).
    edge: f32,
    /// Inside one of the frame's include masks: other frames give way here.
    include: bool,
}

impl Hit {
    const MISS: Hit = Hit {
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
struct RowHits {
    /// (frame, first column, a hit per column from there).
    hits: Vec<(usize, usize, Vec<Hit>)>,
    forced: bool,
    only_included: Vec<bool>,
    d_min: Vec<f32>,
    /// The least seam distance per column.
    s_min: Vec<f32>,
    /// The nearest allowed frame per column (`usize::MAX`: none).
    chosen: Vec<usize>,
}

impl RowHits {
    /// Whether a frame may take pixel `x`: inside it, and not kept out by an include mask.
    fn allowed(&self, x: usize, hit: &Hit) -> bool {
        hit.edge >= 0.0 && (!self.forced || !self.only_included[x] || hit.include)
    }
}

/// A mask acting on a frame. A stack mask drawn on another frame (t2, t3) brings
/// that frame's mapping and valid area along, as that frame may not be rendered.
struct FrameMask {
    mask: pto::Mask,
    drawn_on: Option<(FrameMap, [f64; 4])>,
}

/// A project being rendered: a `raster::Source` of its rows, band by band.
pub struct Render {
    info: ImageInfo,
    canvas: CanvasMap,
    /// Canvas position of output pixel (0, 0): the p-line's S crop.
    origin: (u32, u32),
    frames: Vec<Planned>,
    loaded: Vec<Option<Arc<FrameImage>>>,
    interpolator: Interpolator,
    feather: f64,
    /// Low bands of the multiband blend (0: feather only).
    bands: usize,
    /// Per-column terms of the canvas rays of the output's columns.
    columns: Vec<[f64; 2]>,
    next_row: u32,
    band_rows: u32,
    warnings: Vec<String>,
    peak_bytes: u64,
    memory: u64,
    /// Bytes of frames held in memory (not in the scratch file).
    resident: u64,
    scratch: PathBuf,
    quick_decode: bool,
    /// The first frame's ICC profile: the colour space of the output's values.
    icc: Option<Vec<u8>>,
    /// Every frame file the project names (rendered or not): inputs an output must never be.
    frame_files: Vec<PathBuf>,
    /// The seam pre-pass's result (`Seams::Content` with overlapping frames).
    seams: Option<Arc<seam::SeamMap>>,
}

fn invalid(path: &Path, m: impl Into<String>) -> raster::Error {
    raster::Error::invalid(path, m)
}

impl Render {
    /// Reads and checks the project and every frame's header, and plans the render.
    pub fn open(project_path: &Path, opts: &Options) -> Result<Render> {
        Render::from_project(pto::read(project_path)?, project_path, opts)
    }

    /// Plans the render of an already parsed project; frame paths are relative to
    /// `project_path`'s folder, and errors name it.
    pub fn from_project(project: Project, project_path: &Path, opts: &Options) -> Result<Render> {
        let whole = project.clone();
        let mut render = Render::plan(project, project_path, opts)?;
        render.find_seams(whole, project_path, opts)?;
        Ok(render)
    }

    /// Reads and checks the project and every frame's header and plans the render,
    /// without the seam pre-pass: [`Render::find_seams`] runs it (callers that report
    /// progress say so in between).
    pub fn open_planned(project_path: &Path, opts: &Options) -> Result<(Render, Project)> {
        let project = pto::read(project_path)?;
        Ok((Render::plan(project.clone(), project_path, opts)?, project))
    }

    /// Whether [`Render::find_seams`] has work to do (content seams, overlapping frames).
    pub fn needs_seams(&self, opts: &Options) -> bool {
        opts.seams == Seams::Content && self.frames.len() > 1
    }

    /// The seam pre-pass (`seam`), for `Seams::Content`. Seams are decided on the whole
    /// area, so a region gets the full render's pixels.
    pub fn find_seams(&mut self, project: Project, project_path: &Path, opts: &Options) -> Result<()> {
        if !self.needs_seams(opts) {
            return Ok(());
        }
        let seams = match opts.region {
            Some(_) => {
                let all = Options {
                    region: None,
                    seams: Seams::Voronoi,
                    ..opts.clone()
                };
                seam::SeamMap::build(&Render::plan(project, project_path, &all)?)?
            }
            None => seam::SeamMap::build(self)?,
        };
        self.seams = Some(Arc::new(seams));
        Ok(())
    }

    /// Plans the render: frames' headers, footprints, bands; no seams yet.
    fn plan(project: Project, project_path: &Path, opts: &Options) -> Result<Render> {
        let dir = project_path.parent().unwrap_or(Path::new("."));
        let c = &project.canvas;
        let canvas = CanvasMap::new(c);
        let (x0, x1, y0, y1) = match (opts.region, c.crop) {
            (Some(r), _) => {
                if r.width == 0
                    || r.height == 0
                    || r.right() > c.width as u64
                    || r.bottom() > c.height as u64
                {
                    return Err(invalid(
                        project_path,
                        format!(
                            "the region {r} is empty or outside the {}x{} canvas",
                            c.width, c.height
                        ),
                    ));
                }
                (r.x, r.x + r.width, r.y, r.y + r.height)
            }
            (None, Some(k)) => (k.left as u32, k.right as u32, k.top as u32, k.bottom as u32),
            (None, None) => (0, c.width, 0, c.height),
        };
        let (width, height) = (x1 - x0, y1 - y0);
        let mut warnings = project.warnings.clone();
        let chosen: Vec<usize> = match &opts.only {
            Some(list) => {
                if let Some(&bad) = list.iter().find(|&&i| i >= project.frames.len()) {
                    return Err(invalid(
                        project_path,
                        format!(
                            "there is no frame {bad}: the project has {}",
                            project.frames.len()
                        ),
                    ));
                }
                list.clone()
            }
            None => (0..project.frames.len()).collect(),
        };
        let mut frames = Vec::new();
        let mut sixteen = false;
        let mut icc: Option<Option<Vec<u8>>> = None;
        for &i in &chosen {
            let (planned, wide, profile) = Planned::new(
                &project,
                i,
                dir,
                &canvas,
                (opts.antialias, opts.quick_decode),
            )?;
            sixteen |= wide;
            // As nona: the output takes the first frame's profile.
            match &icc {
                None => icc = Some(profile),
                Some(first) if *first != profile => warnings.push(format!(
                    "frame {i} ({}) has another ICC profile than frame {}; the output takes frame {}'s",
                    project.frames[i].file, chosen[0], chosen[0]
                )),
                Some(_) => {}
            }
            let f = &project.frames[i];
            match footprint(&canvas, c, &planned, (x0, y0, width, height)) {
                Some(fp) => frames.push(Planned {
                    footprint: fp,
                    ..planned
                }),
                None => warnings.push(format!(
                    "frame {i} ({}) lies outside the rendered canvas",
                    f.file
                )),
            }
        }
        let sample = if sixteen {
            SampleType::U16
        } else {
            SampleType::U8
        };
        let info = ImageInfo {
            width,
            height,
            format: PixelFormat::new(4, sample),
        };
        let band_rows = info.rows_for_bytes(8 << 20).clamp(8, 128);
        let bands = match opts.blend {
            Blend::Feather => 0,
            Blend::TwoBand => band_count(&frames, opts.feather.max(0.5)).min(1),
            Blend::Multiband => band_count(&frames, opts.feather.max(0.5)),
        };
        let mut render = Render {
            info,
            canvas: canvas.clone(),
            origin: (x0, y0),
            loaded: (0..frames.len()).map(|_| None).collect(),
            frames,
            interpolator: opts.interpolator.unwrap_or(project.interpolator),
            feather: opts.feather.max(0.5),
            bands,
            columns: canvas.columns(x0, width),
            next_row: 0,
            band_rows,
            warnings,
            peak_bytes: 0,
            memory: opts.memory,
            resident: 0,
            scratch: opts.scratch.clone().unwrap_or_else(std::env::temp_dir),
            quick_decode: opts.quick_decode,
            icc: icc.flatten(),
            frame_files: project.frames.iter().map(|f| dir.join(&f.file)).collect(),
            seams: None,
        };
        render.peak_bytes = render.plan_peak();
        if render.peak_bytes > opts.memory {
            // Frames will spill: check now that the scratch folder takes files.
            tempfile::tempfile_in(&render.scratch).map_err(|e| {
                invalid(
                    &render.scratch,
                    format!("can't hold the scratch file for frames past --memory here ({e}); name a folder on a disk with --temp DIR"),
                )
            })?;
        }
        Ok(render)
    }

    /// The most decoded-frame bytes any band holds at once.
    fn plan_peak(&self) -> u64 {
        let mut peak = 0;
        let mut y = 0;
        while y < self.info.height {
            let end = (y + self.band_rows).min(self.info.height);
            let sum: u64 = self
                .frames
                .iter()
                .filter(|f| f.footprint[2] < end && f.footprint[3] > y)
                .map(|f| f.bytes)
                .sum();
            peak = peak.max(sum);
            y = end;
        }
        peak
    }

    /// Decoded frames held at the busiest band, in bytes.
    pub fn peak_frame_bytes(&self) -> u64 {
        self.peak_bytes
    }

    /// Where frames past the memory cap go.
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// Starts the stream at `row` (rows above it are never rendered): resuming.
    pub fn skip_to(&mut self, row: u32) {
        self.next_row = row.min(self.info.height);
    }

    /// The ICC profile of the output's values (the first frame's), if it has one.
    pub fn icc(&self) -> Option<&[u8]> {
        self.icc.as_deref()
    }

    /// The files of every frame of the project, as paths from the working folder.
    pub fn frame_files(&self) -> &[PathBuf] {
        &self.frame_files
    }

    /// The seam pre-pass's cell size (output pixels) and cell count on this area.
    pub fn seam_cells(&self) -> (u32, u64) {
        let cell = seam::cell_size(&self.frames);
        let cols = self.info.width.div_ceil(cell) as u64;
        (cell, cols * self.info.height.div_ceil(cell) as u64)
    }

    /// Frames that land on the rendered area.
    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    /// Loads the frames the band needs and drops those it has passed.
    fn prepare(&mut self, y0: u32, y1: u32) -> Result<Vec<usize>> {
        for (i, f) in self.frames.iter().enumerate() {
            if f.footprint[3] <= y0 {
                if let Some(img) = self.loaded[i].take() {
                    if !img.is_mapped() {
                        self.resident -= img.bytes();
                    }
                }
            }
        }
        let needed: Vec<usize> = (0..self.frames.len())
            .filter(|&i| self.frames[i].footprint[2] < y1 && self.frames[i].footprint[3] > y0)
            .collect();
        // Frames go to memory while they fit under the cap, past it to the scratch file.
        let mut missing = Vec::new();
        for &i in &needed {
            if self.loaded[i].is_none() {
                let fits = self.resident + self.frames[i].bytes <= self.memory;
                if fits {
                    self.resident += self.frames[i].bytes;
                }
                missing.push((i, !fits));
            }
        }
        let scratch = &self.scratch;
        let bands = self.bands;
        let quick = self.quick_decode;
        let seams = self.seams.as_deref();
        let images: Vec<Result<(usize, FrameImage)>> = missing
            .par_iter()
            .map(|&(i, spill)| {
                let f = &self.frames[i];
                let mut img = FrameImage::load(&f.path, f.size, f.factor, quick)?;
                if bands > 0 {
                    let transient = seams.map_or(&[][..], |s| s.transient(f.number));
                    img.low = frame::LowBand::all(&img, &f.photometry, bands, transient);
                }
                Ok((i, if spill { img.spill(scratch)? } else { img }))
            })
            .collect();
        for r in images {
            let (i, img) = r?;
            self.loaded[i] = Some(Arc::new(img));
        }
        Ok(needed)
    }

    /// Where each frame that covers row `y` lands: its pixel, distance from its centre
    /// and from its edge, per output column, and where include masks decide.
    fn hits(&self, y: u32, candidates: &[usize]) -> RowHits {
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
    fn render_row(&self, y: u32, candidates: &[usize], out: &mut [f32]) {
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

impl Planned {
    /// Reads frame `i`'s header (checking it against the project) and works out how it is
    /// sampled; the footprint is filled in later. Also says whether the frame is 16-bit,
    /// and gives its ICC profile.
    fn new(
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
    fn masked(&self, xs: f64, ys: f64, ray: [f64; 3]) -> Option<bool> {
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
    fn hit(&self, xs: f64, ys: f64, ray: [f64; 3]) -> Option<Hit> {
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
    fn edge_distance(&self, xs: f64, ys: f64) -> Option<f64> {
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
fn source_bounds(f: &pto::Frame) -> ([f64; 4], bool) {
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
fn source_scale(canvas: &CanvasMap, map: &FrameMap, centre: [f64; 2]) -> f64 {
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
fn footprint(
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

impl Source for Render {
    fn info(&self) -> ImageInfo {
        self.info
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let y0 = self.next_row;
        if y0 >= self.info.height {
            self.loaded.iter_mut().for_each(|f| *f = None);
            return Ok(None);
        }
        let y1 = (y0 + self.band_rows).min(self.info.height);
        let candidates = self.prepare(y0, y1)?;
        let width = self.info.width as usize;
        let row_len = width * 4;
        let this = &*self;
        let mut samples = Samples::zeros(self.info.format.sample, row_len * (y1 - y0) as usize);
        macro_rules! fill {
            ($v:expr, $max:expr) => {
                $v.par_chunks_mut(row_len).enumerate().for_each_init(
                    || vec![0f32; row_len],
                    |tmp, (k, out)| {
                        this.render_row(y0 + k as u32, &candidates, tmp);
                        for (o, v) in out.iter_mut().zip(tmp.iter()) {
                            *o = (v.clamp(0.0, 1.0) * $max + 0.5) as _;
                        }
                    },
                )
            };
        }
        match &mut samples {
            Samples::U8(v) => fill!(v, 255.0),
            Samples::U16(v) => fill!(v, 65535.0),
            Samples::F32(_) => unreachable!("output is 8 or 16-bit"),
        }
        self.next_row = y1;
        Ok(Some(Strip::new(y0, self.info.width, y1 - y0, 4, samples)))
    }

    fn restrict(&mut self, _rect: Rect) -> bool {
        false
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}
