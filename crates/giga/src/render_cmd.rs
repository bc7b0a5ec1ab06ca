//! `giga render`: checks the options, opens the project, and streams the
//! render into a file, a resumable file, or a tile pyramid.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use formats::Format;

use crate::cli::{BlendArg, CompressionArg, InterpolatorArg, OutputArgs, SeamsArg, TileArgs};
use crate::{human_bytes, output_choice, progress, tile, write_source, Failure, Result, RESUMABLE};

pub struct RenderHow {
    pub interpolator: Option<InterpolatorArg>,
    pub feather: f64,
    pub blend: BlendArg,
    pub seams: SeamsArg,
    pub memory: f64,
    pub temp: Option<PathBuf>,
    pub frames: Option<Vec<usize>>,
    pub region: Option<raster::Rect>,
    pub no_antialias: bool,
    pub pyramid: bool,
    pub bigtiff: bool,
}

pub fn run(
    project: &Path,
    output: Option<&Path>,
    tiles: Option<&Path>,
    how: &RenderHow,
    tile: &TileArgs,
) -> Result<()> {
    let opts = options(how, output, tiles)?;
    if tile.fill {
        return Err(Failure::Usage("--fill is not offered while rendering; render to a file, then giga fill or giga tile --fill".into()));
    }
    // Check the output options before the (slower) project and frame checks.
    let checked = match tiles {
        Some(_) => Some(tile::check(project, tile)?),
        None => None,
    };
    let out_args = OutputArgs {
        format: None,
        depth: None,
        background: tile.background.clone(),
        no_alpha: false,
        gray: false,
        bigtiff: how.bigtiff,
        pyramid: how.pyramid,
        compression: CompressionArg::Deflate,
        tile_size: tile.tile_size.unwrap_or(256),
        quality: tile.quality,
        quiet: tile.quiet,
    };
    let choice = match output {
        Some(out) => Some(output_choice(project, out, &out_args)?),
        None => None,
    };
    if let Some(dir) = tiles {
        std::fs::create_dir_all(dir).map_err(|e| raster::Error::io(dir, e))?;
    }
    let (mut r, parsed) = render::Render::open_planned(project, &opts)?;
    if !tile.quiet && r.needs_seams(&opts) {
        eprintln!("giga: finding seams: every frame is read at reduced size first (--seams voronoi skips this)");
    }
    r.find_seams(&parsed, project, &opts)?;
    for w in raster::Source::warnings(&r) {
        eprintln!("giga: warning: {w}");
    }
    if !tile.quiet {
        let info = raster::Source::info(&r);
        eprintln!(
            "giga: rendering {} frames onto {}x{} ({}), at most {} of decoded frames at once",
            r.frame_count(),
            info.width,
            info.height,
            info.format,
            human_bytes(r.peak_frame_bytes())
        );
        if r.peak_frame_bytes() as f64 > how.memory * 1e9 {
            eprintln!("giga: that is more than --memory {} GB: the frames past it are decoded into a scratch file in {}", how.memory, r.scratch().display());
        }
    }
    let icc = r.icc().map(<[u8]>::to_vec);
    let frames = r.frame_files().to_vec();
    if let Some(out) = output {
        if let Some(i) = frames.iter().position(|f| crate::same_file(f, out)) {
            return Err(Failure::Usage(format!(
                "{}: the output is frame {i} of the project; giga never overwrites its input",
                out.display()
            )));
        }
    }
    match (output, tiles) {
        (Some(out), _) if tile.resume => {
            let choice = choice.expect("checked");
            // Other formats than KRO: the rows go to a raw KRO beside the output, converted at the end.
            let convert = (choice.0 != Format::Kro).then_some(|rows: &Path| {
                write_source(
                    "KRO",
                    formats::open(rows)?.source,
                    out,
                    choice,
                    &out_args,
                    icc.as_deref(),
                )
            });
            resumable(r, project, out, &opts, tile.quiet, convert)
        }
        (Some(out), _) => write_source(
            "pto",
            Box::new(r),
            out,
            choice.expect("checked"),
            &out_args,
            icc.as_deref(),
        ),
        (None, Some(dir)) => {
            let mut r = r;
            // With --resume, the pyramid saves checkpoints and continues from the last one.
            let resume = match tile.resume {
                true => {
                    let more = format!(
                        "{:?} {:?} {:?} {:?} {} {} {} {:?} {} {:?} {}",
                        tile.layout,
                        tile.format,
                        tile.tile_size,
                        tile.overlap,
                        tile.quality,
                        tile.background,
                        tile.skip_blank,
                        tile.name,
                        tile.id,
                        tile.template,
                        tile.keep_colors
                    );
                    let key = job_key(project, &opts, &more)?;
                    let saved = pyramid::checkpoint::load(dir, &key);
                    if let Some(s) = &saved {
                        r.skip_to(s.rows());
                        if !tile.quiet {
                            eprintln!(
                                "giga: resumed at row {} of {}",
                                s.rows(),
                                raster::Source::info(&r).height
                            );
                        }
                    }
                    Some((
                        pyramid::checkpoint::Checkpoints {
                            key,
                            every: checkpoint_every(),
                        },
                        saved,
                    ))
                }
                false => None,
            };
            let source: Box<dyn raster::Source> = Box::new(r);
            let source = match &icc {
                Some(icc) if !tile.keep_colors => tile::to_srgb(source, project, icc, tile.quiet),
                _ => source,
            };
            let mut inputs = frames.clone();
            inputs.push(project.to_path_buf());
            tile::build(
                source,
                project,
                &inputs,
                dir,
                tile,
                checked.expect("checked"),
                resume,
            )
        }
        (None, None) => unreachable!("clap requires one"),
    }
}

/// The render's options from the command line, checked.
fn options(
    how: &RenderHow,
    output: Option<&Path>,
    tiles: Option<&Path>,
) -> Result<render::Options> {
    if !(how.feather >= 0.0 && how.feather <= 10_000.0) {
        return Err(Failure::Usage(format!(
            "--feather {} must be between 0 and 10000 pixels",
            how.feather
        )));
    }
    if !(how.memory > 0.0) {
        return Err(Failure::Usage(format!(
            "--memory {} must be a positive number of GB",
            how.memory
        )));
    }
    Ok(render::Options {
        interpolator: how.interpolator.map(Into::into),
        feather: how.feather,
        memory: (how.memory * 1e9) as u64,
        scratch: how.temp.clone().or_else(|| {
            let dest = tiles.or(output)?;
            let dir = if tiles.is_some() {
                dest
            } else {
                dest.parent()?
            };
            Some(if dir.as_os_str().is_empty() {
                Path::new(".").to_path_buf()
            } else {
                dir.to_path_buf()
            })
        }),
        only: how.frames.clone(),
        region: how.region,
        antialias: !how.no_antialias,
        blend: how.blend.into(),
        quick_decode: false,
        seams: how.seams.into(),
    })
}

/// What a resumable render's saved rows depend on: the project's text, the
/// options that change pixels, and `more` (the tiling options, for tiles).
fn job_key(project: &Path, opts: &render::Options, more: &str) -> Result<String> {
    let mut text = std::fs::read(project).map_err(|e| raster::Error::io(project, e))?;
    // The whole options struct (a field added later changes the key by itself), less
    // where frames are held, which changes no pixel.
    let pixels = render::Options {
        memory: 0,
        scratch: None,
        ..opts.clone()
    };
    text.extend_from_slice(format!("{pixels:?} {more}").as_bytes());
    Ok(format!("{} {:016x}", project.display(), fnv1a(&text)))
}

/// FNV-1a, 64-bit: a hash fixed by its definition (std's may change between releases,
/// which would orphan every saved checkpoint).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Seconds between checkpoints of `render --tiles --resume` (GIGA_CHECKPOINT_SECONDS
/// overrides, for tests): each waits for the queued tiles, flushes the file system and
/// writes the levels' bands, about twice the full-resolution band (700 MB at 350,000 px).
fn checkpoint_every() -> std::time::Duration {
    let secs = std::env::var("GIGA_CHECKPOINT_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300.0f64);
    std::time::Duration::from_secs_f64(secs.max(0.0))
}

/// A render that survives interruptions: rows go into a KRO with a checkpoint per band:
/// the output itself, or with `convert` `.OUT.giga-rows.kro`, which `convert` turns into
/// the output and which is then deleted. A finished rows file whose key matches is not
/// rendered again, so an interrupted conversion resumes too.
fn resumable(
    r: render::Render,
    project: &Path,
    out: &Path,
    opts: &render::Options,
    quiet: bool,
    convert: Option<impl FnOnce(&Path) -> Result<()>>,
) -> Result<()> {
    let key = job_key(project, opts, "")?;
    let rows = match convert {
        None => out.to_path_buf(),
        Some(_) => {
            let name = out
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.with_file_name(format!(".{name}.giga-rows.kro"))
        }
    };
    let key_file = rows.with_extension("kro.key");
    let done = convert.is_some()
        && rows.exists()
        && std::fs::read_to_string(&key_file).is_ok_and(|k| k == key);
    RESUMABLE.store(true, Ordering::Relaxed);
    if done {
        if !quiet {
            eprintln!(
                "giga: the rows were all rendered before; converting {}",
                rows.display()
            );
        }
    } else {
        let height = raster::Source::info(&r).height as u64;
        let pb = progress::rows_bar(height, quiet);
        let start =
            render::resume::render_kro(r, &rows, &key, |done| pb.set_position(done as u64))?;
        pb.finish_and_clear();
        if start > 0 && !quiet {
            eprintln!("giga: resumed at row {start} of {height}");
        }
        if convert.is_some() {
            std::fs::write(&key_file, &key).map_err(|e| raster::Error::io(&key_file, e))?;
        }
    }
    if let Some(convert) = convert {
        convert(&rows)?;
        let _ = std::fs::remove_file(&rows);
        let _ = std::fs::remove_file(&key_file);
    }
    RESUMABLE.store(false, Ordering::Relaxed);
    Ok(())
}

/// `giga info PROJECT.pto`: what a render would make, before running it.
pub fn info(project: &Path, json: bool) -> Result<()> {
    let p = render::pto::read(project)?;
    // Voronoi: the plan without running the seam pre-pass, whose cost is reported instead.
    let opts = render::Options {
        seams: render::Seams::Voronoi,
        ..render::Options::default()
    };
    let r = render::Render::from_project(p.clone(), project, &opts)?;
    let (cell, cells) = r.seam_cells();
    let i = raster::Source::info(&r);
    let c = &p.canvas;
    let projection = format!("{:?}", c.projection).to_lowercase();
    let crop = c
        .crop
        .map(|k| format!("{},{},{},{}", k.left, k.right, k.top, k.bottom));
    if json {
        let o = serde_json::json!({
            "file": project.display().to_string(),
            "format": "PanoTools project",
            "width": i.width,
            "height": i.height,
            "channels": 4,
            "bits": i.format.sample.bits(),
            "sample": "uint",
            "alpha": true,
            "projection": projection,
            "hfov": c.hfov,
            "canvas_width": c.width,
            "canvas_height": c.height,
            "crop": crop,
            "frames": p.frames.len(),
            "frames_on_canvas": r.frame_count(),
            "peak_frame_bytes": r.peak_frame_bytes(),
            "seam_cell_px": cell,
            "seam_cells": cells,
        });
        println!("{o}");
    } else {
        let mp = i.width as f64 * i.height as f64 / 1e6;
        let size = if mp >= 1000.0 {
            format!("{:.2} gigapixels", mp / 1000.0)
        } else {
            format!("{mp:.1} megapixels")
        };
        println!("file:       {}", project.display());
        println!("format:     PanoTools project (rendered by giga render)");
        println!(
            "size:       {} x {} ({size}), {}",
            i.width, i.height, i.format
        );
        println!(
            "canvas:     {projection}, {} degrees wide, {} x {}{}",
            c.hfov,
            c.width,
            c.height,
            crop.map(|k| format!(", crop S{k}")).unwrap_or_default()
        );
        println!(
            "frames:     {} ({} on the rendered area)",
            p.frames.len(),
            r.frame_count()
        );
        println!(
            "memory:     at most {} of decoded frames at once",
            human_bytes(r.peak_frame_bytes())
        );
        println!(
            "seams:      content: a pre-pass over {cells} cells of {cell} px, every frame read twice at reduced size"
        );
        println!(
            "output:     {} as raw RGBA ({} bytes a pixel)",
            human_bytes(i.height as u64 * i.row_bytes() as u64),
            i.format.pixel_bytes()
        );
    }
    for w in raster::Source::warnings(&r) {
        eprintln!("giga: warning: {w}");
    }
    Ok(())
}

/// One step of a sharded render (`--plan N`, `--shard I/N|auto`, `--finish`).
#[derive(Clone, Copy, Debug)]
pub enum ShardStep {
    Plan(u32),
    /// Shard I of N (N checked against the plan), or I alone from a Kubernetes index.
    Shard(u32, Option<u32>),
    Finish,
}

/// The step the flags ask for, if any; `auto` reads the cluster's environment.
pub fn shard_step(
    plan: Option<u32>,
    shard: Option<&str>,
    finish: bool,
) -> Result<Option<ShardStep>> {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
    Ok(match (plan, shard, finish) {
        (Some(0), _, _) | (Some(100_001..), _, _) => {
            return Err(Failure::Usage("--plan N needs 1 to 100000 shards".into()))
        }
        (Some(n), _, _) => Some(ShardStep::Plan(n)),
        (None, Some("auto"), _) => {
            let slurm = env("SLURM_ARRAY_TASK_ID").zip(env("SLURM_ARRAY_TASK_COUNT"));
            let min = env("SLURM_ARRAY_TASK_MIN").unwrap_or(0);
            match (slurm, env("JOB_COMPLETION_INDEX")) {
                (Some((id, n)), _) if id >= min => Some(ShardStep::Shard(id - min, Some(n))),
                (None, Some(i)) => Some(ShardStep::Shard(i, None)),
                _ => return Err(Failure::Usage(
                    "--shard auto: no SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT, nor JOB_COMPLETION_INDEX, in the environment".into(),
                )),
            }
        }
        (None, Some(spec), _) => {
            let parsed = spec
                .split_once('/')
                .and_then(|(i, n)| Some((i.parse::<u32>().ok()?, n.parse::<u32>().ok()?)));
            match parsed {
                Some((i, n)) if i < n => Some(ShardStep::Shard(i, Some(n))),
                _ => {
                    return Err(Failure::Usage(format!(
                        "--shard {spec}: expected I/N with I from 0 to N-1, or auto"
                    )))
                }
            }
        }
        (None, None, true) => Some(ShardStep::Finish),
        (None, None, false) => None,
    })
}

/// `giga render PROJECT OUT.kro --plan N | --shard I/N | --finish`: see `render::shard`.
pub fn sharded(
    project: &Path,
    out: &Path,
    how: &RenderHow,
    tile: &TileArgs,
    step: ShardStep,
) -> Result<()> {
    let is_kro = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("kro"));
    if !is_kro || tile.resume {
        return Err(Failure::Usage(
            "shards write a KRO output (OUT.kro), without --resume (a shard run again redoes its band); convert it afterwards".into(),
        ));
    }
    let opts = options(how, Some(out), None)?;
    let (mut r, parsed) = render::Render::open_planned(project, &opts)?;
    if let Some(i) = r
        .frame_files()
        .iter()
        .position(|f| crate::same_file(f, out))
    {
        return Err(Failure::Usage(format!(
            "{}: the output is frame {i} of the project; giga never overwrites its input",
            out.display()
        )));
    }
    let key = job_key(project, &opts, "shards")?;
    match step {
        ShardStep::Plan(n) => {
            // The seams once for every shard (they are global: each would find the same),
            // before anything is written, so a frame that fails leaves no plan behind.
            if r.needs_seams(&opts) && !tile.quiet {
                eprintln!(
                    "giga: finding seams once for every shard: each frame is read at reduced size"
                );
            }
            r.find_seams(&parsed, project, &opts)?;
            let plan = render::shard::plan(&r, out, &key, n)?;
            if let Some(map) = r.seam_map() {
                map.save(&render::shard::seams_path(out), &key)?;
            }
            if !tile.quiet {
                eprintln!(
                    "giga: planned {} shards of {} rows each (about); run --shard I/{} for I = 0..{}, then --finish",
                    plan.count(),
                    raster::Source::info(&r).height / plan.count(),
                    plan.count(),
                    plan.count() - 1
                );
            }
        }
        ShardStep::Shard(i, n) => {
            let plan = render::shard::read_plan(&r, out, &key)?;
            if n.is_some_and(|n| n != plan.count()) || i >= plan.count() {
                return Err(Failure::Usage(format!(
                    "--shard {i}/{}: the plan has {} shards",
                    n.unwrap_or(plan.count()),
                    plan.count()
                )));
            }
            match render::seam::SeamMap::load(&render::shard::seams_path(out), &key) {
                Some(map) if r.needs_seams(&opts) => r.set_seam_map(map),
                _ => {
                    if !tile.quiet && r.needs_seams(&opts) {
                        eprintln!("giga: finding seams: every frame is read at reduced size first");
                    }
                    r.find_seams(&parsed, project, &opts)?;
                }
            }
            let rows = plan.bands[i as usize + 1] - plan.bands[i as usize];
            let pb = progress::rows_bar(rows as u64, tile.quiet);
            render::shard::shard(r, out, &plan, i, |done| pb.set_position(done as u64))?;
            pb.finish_and_clear();
            if !tile.quiet {
                eprintln!("giga: shard {i} of {} done ({rows} rows)", plan.count());
            }
        }
        ShardStep::Finish => render::shard::finish(&r, out, &key)?,
    }
    Ok(())
}

/// `giga info OUT.kro` while shards render it: which are done.
pub fn shard_info(out: &Path, done: &[bool], count: u32, json: bool) -> Result<()> {
    let missing: Vec<usize> = (0..done.len()).filter(|&i| !done[i]).collect();
    if json {
        let o = serde_json::json!({
            "file": out.display().to_string(),
            "format": "giga shard plan",
            "shards": count,
            "done": done.iter().filter(|&&d| d).count(),
            "missing": missing,
        });
        println!("{o}");
    } else {
        let list: Vec<String> = missing.iter().map(usize::to_string).collect();
        println!(
            "file:       {} (not finished: shards are rendering it)",
            out.display()
        );
        println!(
            "shards:     {} of {count} done",
            count as usize - missing.len()
        );
        if !missing.is_empty() {
            println!("missing:    {}", list.join(", "));
        }
    }
    Ok(())
}
