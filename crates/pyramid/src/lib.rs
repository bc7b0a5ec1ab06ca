//! Tile pyramids for OpenSeadragon from one streaming pass.
//!
//! [`build`] takes any [`raster::Source`], plans the levels of a
//! [`layout::Layout`], streams the image once through the level
//! [`cascade`] (2x2 alpha-weighted reductions, one band of rows per level),
//! encodes tiles on all cores ([`tiles`]) and writes the description files
//! and the viewer page last, so a folder with a description is complete.

#![deny(missing_docs)]

pub mod archive;
pub mod assets;
pub mod cascade;
pub mod checkpoint;
pub mod geometry;
pub mod layout;
pub mod tiles;
pub mod viewer;

use std::path::Path;
use std::sync::Arc;

use raster::{Color, Error, PixelFormat, Result, Source};

pub use layout::{Kind, Layout, Settings};
pub use tiles::{Counts, TileFormat};

/// How a pyramid is written.
pub struct Options {
    /// Tile image format.
    pub format: TileFormat,
    /// What alpha is flattened onto (JPEG tiles, the page).
    pub background: Color,
    /// Leave out tiles that are blank (transparent or the background).
    pub skip_blank: bool,
    /// Keep the tiles already there (an interrupted run's).
    pub resume: bool,
    /// Write `index.html` and OpenSeadragon.
    pub viewer: bool,
    /// Encoder threads.
    pub threads: usize,
    /// Save checkpoints (for slow sources, see `build_resumed`).
    pub checkpoints: Option<checkpoint::Checkpoints>,
    /// Write the (xyz) pyramid as one PMTiles archive, OUTDIR/NAME.pmtiles.
    pub archive: bool,
    /// Overlays for the viewer page (a `giga preview` sidecar), drawn over the image.
    pub overlay: Option<serde_json::Value>,
}

/// The pixel format the cascade works in: 8-bit RGB, or RGBA when there is alpha.
pub fn working_format(input: PixelFormat) -> PixelFormat {
    input.for_web()
}

/// Builds the pyramid of `layout` from `source` into `outdir` (which must exist).
/// `progress(rows)` is called as full-resolution rows are consumed; tile
/// counts can be read from `counts` meanwhile.
pub fn build(
    source: Box<dyn Source>,
    outdir: &Path,
    layout: Layout,
    opts: &Options,
    counts: Arc<Counts>,
    progress: impl FnMut(u32),
) -> Result<()> {
    build_resumed(source, outdir, layout, opts, counts, None, progress)
}

/// [`build`] continuing from a checkpoint (`opts.checkpoints` set): `source`
/// starts at `saved.rows()` (its earlier rows are in the checkpoint and the
/// tiles already written). The checkpoint files go once the pyramid is complete.
pub fn build_resumed(
    source: Box<dyn Source>,
    outdir: &Path,
    layout: Layout,
    opts: &Options,
    counts: Arc<Counts>,
    saved: Option<checkpoint::Saved>,
    progress: impl FnMut(u32),
) -> Result<()> {
    let info = source.info();
    if (info.width, info.height) != (layout.width, layout.height) {
        return Err(Error::Internal(
            "the layout was planned for another size".into(),
        ));
    }
    let work = working_format(info.format);
    let source = raster::ops::convert(source, work, opts.background);
    let archive = match opts.archive {
        true => Some(Arc::new(archive::Archive::create(
            &outdir.join(layout.archive_name()),
        )?)),
        false => {
            make_dirs(outdir, &layout)?;
            None
        }
    };
    let enc = tiles::Encoding {
        format: opts.format,
        background: opts.background,
        skip_blank: opts.skip_blank,
        archive: archive.clone(),
    };
    let writer = tiles::TileWriter::new(enc, opts.threads, counts);
    let mut cascade = cascade::Cascade::new(
        layout.clone(),
        outdir,
        work.channels as usize,
        writer,
        opts.format,
        opts.background,
        opts.resume,
    )?;
    let start = saved.as_ref().map_or(0, |s| s.rows());
    if let Some(cp) = &opts.checkpoints {
        cascade = cascade.with_checkpoints(cp.clone(), saved)?;
    }
    raster::run_from(source, Box::new(cascade), start, progress)?;
    match archive {
        Some(a) => finish_archive(a, &layout, opts.format)?,
        // Descriptions last: their presence says the pyramid is complete.
        None => {
            for (rel, text) in layout.descriptions() {
                tiles::write_atomic(&outdir.join(rel), text.as_bytes())?;
            }
        }
    }
    if opts.viewer {
        viewer::write(
            outdir,
            &layout,
            opts.background,
            opts.archive,
            opts.overlay.as_ref(),
        )?;
    }
    if opts.checkpoints.is_some() {
        checkpoint::remove(outdir, layout.levels.len());
    }
    Ok(())
}

/// Completes the archive the tile writers filled: directories, metadata, header, name.
fn finish_archive(a: Arc<archive::Archive>, layout: &Layout, format: TileFormat) -> Result<()> {
    let a = Arc::into_inner(a).expect("the tile writers are done");
    let top = layout.levels[0].number as u8;
    let bottom = layout.levels.last().map_or(0, |l| l.number) as u8;
    a.finish(
        archive::TileType::from(format),
        (bottom, top),
        &layout.archive_metadata(),
    )
}

/// Creates the layout's folders under OUTDIR, parents first.
fn make_dirs(outdir: &Path, layout: &Layout) -> Result<()> {
    for dir in layout.dirs() {
        let p = outdir.join(dir);
        match std::fs::create_dir(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(&p, e)),
        }
    }
    Ok(())
}
