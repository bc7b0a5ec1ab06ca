//! `giga tile`: checks the arguments, plans the layout, runs the pyramid
//! build with a progress bar, and reports.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use pyramid::{Counts, Kind, Layout, Options, Settings, TileFormat};
use raster::Color;

use crate::cli::{TileArgs, TileFormatArg};

use crate::{Failure, Result};

/// What the tiling options ask for, checked before anything is read.
pub struct Checked {
    kind: Kind,
    archive: bool,
    overlay: Option<serde_json::Value>,
    tile: u32,
    overlap: u32,
    format: TileFormat,
    background: Color,
    name: String,
}

pub fn check(input: &Path, args: &TileArgs) -> Result<Checked> {
    let archive = args.archive.is_some();
    let kind = layout_kind(args)?;
    let (tile, overlap) = tile_geometry(kind, args)?;
    let format = tile_format(kind, archive, args)?;
    let background = Color::parse(&args.background).ok_or_else(|| {
        Failure::Usage(format!(
            "--background {:?} is not a colour (white, black, #rrggbb or r,g,b)",
            args.background
        ))
    })?;
    let name = base_name(input, args)?;
    let overlay = args.overlay.as_deref().map(read_overlay).transpose()?;
    Ok(Checked {
        kind,
        archive,
        overlay,
        tile,
        overlap,
        format,
        background,
        name,
    })
}

/// The layout asked for (dzi by default; an archive holds the xyz layout's tiles).
fn layout_kind(args: &TileArgs) -> Result<Kind> {
    let archive = args.archive.is_some();
    let kind = match (args.layout, archive) {
        (None, true) => Kind::Xyz,
        (None, false) => Kind::Dzi,
        (Some(l), true) if Kind::from(l) != Kind::Xyz => {
            return Err(Failure::Usage(format!(
                "--archive pmtiles holds the xyz layout's tiles, not {}",
                pyramid::Kind::from(l).name()
            )))
        }
        (Some(l), _) => l.into(),
    };
    if archive && args.resume {
        return Err(Failure::Usage(
            "--resume continues folders of tiles; an archive is written in one go".into(),
        ));
    }
    Ok(kind)
}

/// Tile side and overlap, the layout's defaults where not given.
fn tile_geometry(kind: Kind, args: &TileArgs) -> Result<(u32, u32)> {
    let usage = |m: String| Err(Failure::Usage(m));
    let (default_tile, default_overlap) = kind.defaults();
    let tile = args.tile_size.unwrap_or(default_tile);
    let overlap = args.overlap.unwrap_or(default_overlap);
    if tile == 0 || tile > 8192 {
        return usage(format!("--tile-size {tile} must be between 1 and 8192"));
    }
    if overlap >= tile {
        return usage(format!(
            "--overlap {overlap} must be smaller than the tile size {tile}"
        ));
    }
    if overlap > 0 && !matches!(kind, Kind::Dzi | Kind::Custom) {
        return usage(format!(
            "--overlap is for the dzi and custom layouts; {} tiles don't overlap",
            kind.name()
        ));
    }
    Ok((tile, overlap))
}

/// The tile encoding, checked against what the layout's viewer opens.
fn tile_format(kind: Kind, archive: bool, args: &TileArgs) -> Result<TileFormat> {
    let usage = |m: String| Err(Failure::Usage(m));
    let ext = match args.format {
        Some(TileFormatArg::Jpg) => "jpg",
        Some(TileFormatArg::Png) => "png",
        Some(TileFormatArg::Webp) => "webp",
        None if archive => "jpg",
        None => kind.default_format(),
    };
    if matches!(kind, Kind::Xyz | Kind::Tms) && ext != "png" && !archive {
        return usage(format!(
            "the {} layout needs --format png: OpenSeadragon requests its tiles as .png",
            kind.name()
        ));
    }
    if ext == "webp" && !archive && !matches!(kind, Kind::Dzi | Kind::Zoomify | Kind::Custom) {
        return usage(format!(
            "--format webp is offered for the dzi, zoomify and custom layouts; {} needs jpg or png",
            kind.name()
        ));
    }
    let quality = args.quality;
    let format = match ext {
        "png" => TileFormat::Png,
        "webp" => TileFormat::Webp { quality },
        _ => TileFormat::Jpeg { quality },
    };
    Ok(format)
}

/// The pyramid's base name (the input's stem by default), and the custom template,
/// which must stay inside OUTDIR/NAME/.
fn base_name(input: &Path, args: &TileArgs) -> Result<String> {
    let usage = |m: String| Err(Failure::Usage(m));
    let name = match &args.name {
        Some(n) => n.clone(),
        None => input
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into()),
    };
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return usage(format!("--name {name:?} must be a plain file name"));
    }
    if let Some(t) = &args.template {
        if !(t.contains("{z}") && t.contains("{x}") && t.contains("{y}")) {
            return usage(format!(
                "--template {t:?} must contain {{z}}, {{x}} and {{y}}"
            ));
        }
        if t.starts_with('/') || t.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return usage(format!(
                "--template {t:?} must be a relative path inside OUTDIR/{name}/ (no '..', '.', empty or leading '/' parts)"
            ));
        }
    }
    Ok(name)
}

pub fn run(input: &Path, outdir: &Path, args: &TileArgs) -> Result<()> {
    let checked = check(input, args)?;
    let opened = formats::open(input)?;
    for w in opened.source.warnings() {
        eprintln!("giga: warning: {w}");
    }
    // --fill: analyse first (one read), then the filled stream feeds the tiles (a second read).
    let source = if args.fill {
        crate::open_filled(input, false, args.quiet)?.0
    } else {
        opened.source
    };
    let source = match &opened.icc {
        Some(icc) if !args.keep_colors => to_srgb(source, input, icc, args.quiet),
        _ => source,
    };
    build(
        source,
        input,
        &[input.to_path_buf()],
        outdir,
        args,
        checked,
        None,
    )
}

/// `source` converted from its ICC profile to sRGB, what browsers assume for
/// tiles without one (see `color::to_srgb`), saying what was done.
pub fn to_srgb(
    source: Box<dyn raster::Source>,
    input: &Path,
    icc: &[u8],
    quiet: bool,
) -> Box<dyn raster::Source> {
    let (source, outcome) = color::to_srgb(source, icc);
    match outcome {
        Ok(Some(name)) if !quiet => {
            eprintln!("giga: converting the colours from the ICC profile \"{name}\" to sRGB (--keep-colors to keep them)")
        }
        Err(why) => eprintln!(
            "giga: warning: {}: {why}; the stored values are tiled as sRGB",
            input.display()
        ),
        _ => {}
    }
    source
}

/// Tiles any source into OUTDIR as `checked` says, with a progress bar over rows;
/// with `resume`, saving checkpoints and continuing from the one given (see
/// `pyramid::build_resumed`).
pub fn build(
    source: Box<dyn raster::Source>,
    input: &Path,
    inputs: &[std::path::PathBuf],
    outdir: &Path,
    args: &TileArgs,
    checked: Checked,
    resume: Option<(
        pyramid::checkpoint::Checkpoints,
        Option<pyramid::checkpoint::Saved>,
    )>,
) -> Result<()> {
    let Checked {
        kind,
        archive,
        overlay,
        tile,
        overlap,
        format,
        background,
        name,
    } = checked;
    let info = source.info();
    let settings = Settings {
        name: name.clone(),
        tile,
        overlap,
        ext: format.ext().to_string(),
        id: args.id.clone(),
        template: args.template.clone(),
    };
    let layout = Layout::plan(kind, info.width, info.height, &settings)
        .map_err(|m| raster::Error::invalid(input, m))?;
    let written = written_names(&layout, archive, args.no_viewer);
    check_inputs_outside(&written, outdir, inputs)?;
    if !args.no_viewer {
        check_viewer_is_ours(outdir)?;
    }
    let created = prepare_outdir(outdir)?;
    let key = pyramid_key(&layout, inputs, args, info);
    claim_outdir(&layout.name, &written, outdir, &key, args.resume)?;

    let counts = Arc::new(Counts::default());
    let total_tiles = layout.tile_count();
    let levels = layout.levels.len();
    let pb = crate::progress::rows_bar(info.height as u64, args.quiet);
    let (checkpoints, saved) = resume.map_or((None, None), |(cp, saved)| (Some(cp), saved));
    pb.inc(saved.as_ref().map_or(0, |s| s.rows() as u64));
    let start = Instant::now();
    let c = counts.clone();
    let opts = Options {
        format,
        background,
        skip_blank: args.skip_blank,
        resume: args.resume,
        viewer: !args.no_viewer,
        threads: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        checkpoints,
        archive,
        overlay,
    };
    let built = pyramid::build_resumed(
        source,
        outdir,
        layout,
        &opts,
        counts.clone(),
        saved,
        |rows| {
            pb.inc(rows as u64);
            let done = c.written.load(Ordering::Relaxed)
                + c.blank.load(Ordering::Relaxed)
                + c.kept.load(Ordering::Relaxed);
            let rate = done as f64 / start.elapsed().as_secs_f64().max(1e-3);
            pb.set_message(format!("{done}/{total_tiles} tiles, {rate:.0} tiles/s"));
        },
    );
    if built.is_err() && created && !args.resume {
        // A folder this run made holds nothing worth keeping: it can't be resumed.
        pb.finish_and_clear();
        let _ = std::fs::remove_dir_all(outdir);
    }
    built?;
    pb.finish_and_clear();
    if !args.quiet {
        report(
            &counts,
            levels,
            start.elapsed().as_secs_f64(),
            outdir,
            !args.no_viewer,
        );
    }
    Ok(())
}

/// The summary line of a finished pyramid (and where its page is).
fn report(counts: &Counts, levels: usize, secs: f64, outdir: &Path, viewer: bool) {
    let (w, b, k) = (
        counts.written.load(Ordering::Relaxed),
        counts.blank.load(Ordering::Relaxed),
        counts.kept.load(Ordering::Relaxed),
    );
    let mut extra = String::new();
    if b > 0 {
        extra += &format!(", {b} blank left out");
    }
    if k > 0 {
        extra += &format!(", {k} kept from before");
    }
    eprintln!(
        "giga: {w} tiles in {levels} levels{extra}, {secs:.1} s ({:.0} tiles/s) -> {}",
        w as f64 / secs.max(1e-3),
        outdir.display()
    );
    if viewer {
        eprintln!("giga: open {}", outdir.join("index.html").display());
    }
}

/// What a pyramid's tiles depend on, as plain text: the inputs (path, size,
/// modification time), the image's size and format, and every tiling option.
fn pyramid_key(
    layout: &Layout,
    inputs: &[std::path::PathBuf],
    args: &TileArgs,
    info: raster::ImageInfo,
) -> String {
    use std::os::unix::fs::MetadataExt;
    let mut key = String::from("giga pyramid 1\n");
    for p in inputs {
        let abs = p.canonicalize().unwrap_or_else(|_| p.clone());
        let (len, mtime) = std::fs::metadata(p).map_or((0, 0), |m| {
            (m.len(), m.mtime_nsec() + m.mtime() * 1_000_000_000)
        });
        key += &format!("input {} {len} {mtime}\n", abs.display());
    }
    key += &format!(
        "image {}x{} {}\nlayout {:?} tile {} overlap {} ext {} id {} template {}\n",
        info.width,
        info.height,
        info.format,
        layout.kind,
        layout.tile,
        layout.overlap,
        layout.ext,
        layout.id,
        layout.template
    );
    key += &format!(
        "quality {} background {} skip-blank {} fill {} keep-colors {}\n",
        args.quality, args.background, args.skip_blank, args.fill, args.keep_colors
    );
    key
}

/// Makes OUTDIR's pyramid NAME this run's: `--resume` continues only a pyramid of the
/// same inputs and options (its key in `.NAME.giga-pyramid`); otherwise a pyramid giga
/// made before is removed first, so no stale tile survives (a tile now blank, a level
/// the new image lacks). Files giga has no record of are never deleted.
fn claim_outdir(
    name: &str,
    written: &std::collections::BTreeSet<String>,
    outdir: &Path,
    key: &str,
    resume: bool,
) -> Result<()> {
    let record = outdir.join(format!(".{name}.giga-pyramid"));
    let old_key = std::fs::read_to_string(&record).ok();
    let present: Vec<std::path::PathBuf> = written
        .iter()
        .filter(|e| !matches!(e.as_str(), "index.html" | "openseadragon"))
        .map(|e| outdir.join(e))
        .filter(|p| p.symlink_metadata().is_ok())
        .collect();
    let usage = |m: String| Err(Failure::Usage(m));
    match (&old_key, resume) {
        (Some(old), true) if old == key => return Ok(()),
        (Some(_), true) => {
            return usage(format!(
                "{}: --resume: the pyramid {name} there was made from another input or with other options; run without --resume to replace it",
                outdir.display(),
            ))
        }
        (None, true) if !present.is_empty() => {
            return usage(format!(
                "{}: --resume: giga has no record of the run that wrote {}; run without --resume to start over",
                outdir.display(),
                present[0].display()
            ))
        }
        (None, false) if !present.is_empty() => {
            return usage(format!(
                "{}: exists and giga has no record of writing it; move it away or choose another --name",
                present[0].display()
            ))
        }
        (Some(_), false) => {
            for p in &present {
                let r = if p.is_dir() { std::fs::remove_dir_all(p) } else { std::fs::remove_file(p) };
                r.map_err(|e| raster::Error::io(p, e))?;
            }
        }
        _ => {}
    }
    pyramid::tiles::write_atomic(&record, key.as_bytes())?;
    Ok(())
}

/// Refuses to replace an `index.html` in OUTDIR that giga did not write.
fn check_viewer_is_ours(outdir: &Path) -> Result<()> {
    const MARK: &[u8] = br#"<meta name="generator" content="giga">"#;
    let page = outdir.join("index.html");
    match std::fs::read(&page) {
        Ok(text) if !text.windows(MARK.len()).any(|w| w == MARK) => Err(Failure::Usage(format!(
            "{}: a page giga did not write; move it away, or add --no-viewer",
            page.display()
        ))),
        _ => Ok(()),
    }
}

/// A `giga preview --sidecar` file, without the seam labels (the viewer draws the seams
/// from their outlines).
fn read_overlay(path: &Path) -> Result<serde_json::Value> {
    let bad = |m: String| Failure::Usage(format!("{}: {m}", path.display()));
    let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut v: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    if !(v["width"].is_u64() && v["height"].is_u64() && v["frames"].is_array()) {
        return Err(bad(
            "not a giga preview sidecar (giga preview PROJECT OUT.png --sidecar FILE.json)".into(),
        ));
    }
    if let Some(m) = v.as_object_mut() {
        m.remove("labels");
    }
    Ok(v)
}

/// The names directly under OUTDIR that the run writes.
fn written_names(
    layout: &Layout,
    archive: bool,
    no_viewer: bool,
) -> std::collections::BTreeSet<String> {
    let mut names = if archive {
        [layout.archive_name()].into_iter().collect()
    } else {
        layout.top_entries()
    };
    if !no_viewer {
        names.extend(["index.html".to_string(), "openseadragon".to_string()]);
    }
    names
}

/// Refuses a pyramid that would write over one of its inputs: an input inside
/// the tile folder, or named like a description file or the viewer page.
fn check_inputs_outside(
    written: &std::collections::BTreeSet<String>,
    outdir: &Path,
    inputs: &[std::path::PathBuf],
) -> Result<()> {
    let Ok(out) = outdir.canonicalize() else {
        return Ok(()); // OUTDIR doesn't exist yet: no input is inside
    };
    for input in inputs {
        let Ok(p) = input.canonicalize() else {
            continue;
        };
        let Ok(rel) = p.strip_prefix(&out) else {
            continue;
        };
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        if let Some(first) = first.filter(|f| written.contains(f)) {
            return Err(Failure::Usage(format!(
                "{}: the input lies where the pyramid writes ({}); giga never overwrites its input: choose another OUTDIR or --name",
                input.display(),
                outdir.join(first).display()
            )));
        }
    }
    Ok(())
}

/// Creates OUTDIR if needed and checks that it can be written, before any tile
/// is; returns whether this run created it.
fn prepare_outdir(outdir: &Path) -> Result<bool> {
    if outdir.exists() && !outdir.is_dir() {
        return Err(Failure::Usage(format!(
            "{}: is a file; the pyramid goes into a folder",
            outdir.display()
        )));
    }
    let created = !outdir.exists();
    std::fs::create_dir_all(outdir).map_err(|e| raster::Error::io(outdir, e))?;
    let probe = outdir.join(format!(".giga-write-test-{}", std::process::id()));
    if let Err(e) = std::fs::write(&probe, b"") {
        if created {
            let _ = std::fs::remove_dir_all(outdir);
        }
        return Err(raster::Error::io(outdir, e).into());
    }
    let _ = std::fs::remove_file(&probe);
    Ok(created)
}
