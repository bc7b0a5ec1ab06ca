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

mod blend;
mod frame;
pub mod geometry;
pub mod overlay;
mod photometry;
mod plan;
pub mod preview;
pub mod pto;
pub mod resume;
pub mod seam;
pub mod shard;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use raster::{ImageInfo, PixelFormat, Rect, Result, SampleType, Samples, Source, Strip};
use rayon::prelude::*;

use blend::band_count;
use frame::FrameImage;
use geometry::CanvasMap;
use plan::{footprint, Planned};
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

/// The hidden file `.NAME.SUFFIX` beside `out` (NAME: `out`'s file name): where renders
/// keep what they need until `out` is complete.
pub(crate) fn beside(out: &Path, suffix: &str) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!(".{name}.{suffix}"))
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
        let mut render = Render::plan(&project, project_path, opts)?;
        render.find_seams(&project, project_path, opts)?;
        Ok(render)
    }

    /// Reads and checks the project and every frame's header and plans the render,
    /// without the seam pre-pass: [`Render::find_seams`] runs it (callers that report
    /// progress say so in between).
    pub fn open_planned(project_path: &Path, opts: &Options) -> Result<(Render, Project)> {
        let project = pto::read(project_path)?;
        Ok((Render::plan(&project, project_path, opts)?, project))
    }

    /// The seam pre-pass's result, once found.
    pub fn seam_map(&self) -> Option<&seam::SeamMap> {
        self.seams.as_deref()
    }

    /// Uses a seam map found before (by a shard plan) instead of running the pre-pass.
    pub fn set_seam_map(&mut self, map: seam::SeamMap) {
        self.seams = Some(Arc::new(map));
    }

    /// Whether [`Render::find_seams`] has work to do (content seams, overlapping frames).
    pub fn needs_seams(&self, opts: &Options) -> bool {
        opts.seams == Seams::Content && self.frames.len() > 1
    }

    /// The seam pre-pass (`seam`), for `Seams::Content`. Seams are decided on the whole
    /// area, so a region gets the full render's pixels.
    pub fn find_seams(
        &mut self,
        project: &Project,
        project_path: &Path,
        opts: &Options,
    ) -> Result<()> {
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
    fn plan(project: &Project, project_path: &Path, opts: &Options) -> Result<Render> {
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
