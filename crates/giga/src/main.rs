//! `giga`: the command line on top of the `formats` and `raster` crates.
//! This file only parses arguments, wires sources to sinks and reports.

mod cli;
mod preview_cmd;
mod progress;
mod render_cmd;
mod tile;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use formats::{Format, Opened, WriteOptions};
use raster::{Color, ImageInfo, PixelFormat, Rect, SampleType};

use cli::{Cli, Command, OutputArgs};

/// Why giga stopped: bad usage (exit 2) or a problem with the files (exit 1).
pub(crate) enum Failure {
    Usage(String),
    Run(raster::Error),
}

impl From<raster::Error> for Failure {
    fn from(e: raster::Error) -> Self {
        Failure::Run(e)
    }
}

pub(crate) type Result<T> = std::result::Result<T, Failure>;

/// Set while a resumable render runs: an interruption keeps its partial output.
pub(crate) static RESUMABLE: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn main() -> ExitCode {
    formats::set_quiet_panics();
    formats::keep_freed_memory();
    let _ = ctrlc::set_handler(|| {
        formats::output::remove_temporaries();
        if RESUMABLE.load(std::sync::atomic::Ordering::Relaxed) {
            say("giga: interrupted; the rows rendered so far are kept: run the same command again to continue");
        } else {
            say("giga: interrupted; no output was left behind");
        }
        std::process::exit(130);
    });
    let cli = Cli::parse();
    formats::set_decode_budget((cli.max_memory * 1e9) as u64);
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            say(&format!("giga: {m}"));
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            say(&format!("giga: {e}"));
            ExitCode::from(1)
        }
    }
}

/// One line to stderr, ignoring a closed stderr (eprintln! would panic, and a
/// panic in the signal handler's thread would leave giga running).
pub(crate) fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Open connections `giga serve` keeps: half the file descriptors it may open
/// (the rest are for its images and the connections it refuses), at most 4096.
fn connection_cap() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we own.
    let soft = match unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } {
        0 => lim.rlim_cur as usize,
        _ => 1024,
    };
    (soft / 2).saturating_sub(16).clamp(16, 4096)
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info { file, json } => info(&file, json),
        Command::Crop {
            input,
            output,
            rect,
            rel,
            out,
        } => {
            let window = match (rect, rel) {
                (Some(r), _) => Window::Pixels(parse_numbers(&r, "--rect")?),
                (None, Some(r)) => Window::Fractions(parse_numbers(&r, "--rel")?),
                (None, None) => unreachable!("clap requires one"),
            }
            .into();
            transform(&input, &output, window, &out)
        }
        Command::Convert { input, output, out } => transform(&input, &output, None, &out),
        Command::Preview {
            project,
            output,
            width,
            outlines,
            numbers,
            seams,
            points,
            sidecar,
            quiet,
        } => {
            let layers = render::overlay::Layers {
                outlines,
                numbers,
                seams,
                points,
            };
            let ask = preview_cmd::Ask {
                width,
                layers,
                sidecar: sidecar.as_deref(),
                quiet,
            };
            preview_cmd::run(&project, &output, &ask)
        }
        Command::Tile {
            input,
            outdir,
            tile,
        } => tile::run(&input, &outdir, &tile),
        Command::Serve {
            paths,
            bind,
            max_area,
            memory,
        } => {
            let threads = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2);
            let opts = serve::Options {
                limits: serve::iiif::Limits {
                    max_width: 65_500,
                    max_height: 65_500,
                    max_area: max_area * 1_000_000,
                },
                workers: threads * 2,
                queue: 64,
                connections: connection_cap(),
                header_timeout: std::time::Duration::from_secs(10),
                memory: (memory * 1e9) as u64,
            };
            serve::serve(&bind, &paths, opts, |m| say(&format!("giga: {m}"))).map_err(Failure::Run)
        }
        Command::Render {
            project,
            output,
            tiles,
            interpolator,
            feather,
            blend,
            seams,
            memory,
            temp,
            frames,
            region,
            no_antialias,
            pyramid,
            bigtiff,
            plan,
            shard,
            finish,
            tile,
        } => {
            let region = match region {
                Some(r) => {
                    let [x, y, w, h] = parse_numbers(&r, "--region")?;
                    Some(Rect {
                        x: x as u32,
                        y: y as u32,
                        width: w as u32,
                        height: h as u32,
                    })
                }
                None => None,
            };
            let how = render_cmd::RenderHow {
                interpolator,
                feather,
                blend,
                seams,
                memory,
                temp,
                frames,
                region,
                no_antialias,
                pyramid,
                bigtiff,
            };
            let step = render_cmd::shard_step(plan, shard.as_deref(), finish)?;
            match (step, output.as_deref()) {
                (Some(step), Some(out)) => render_cmd::sharded(&project, out, &how, &tile, step),
                (Some(_), None) => Err(Failure::Usage(
                    "--plan, --shard and --finish need an output KRO (not --tiles)".into(),
                )),
                (None, _) => {
                    render_cmd::run(&project, output.as_deref(), tiles.as_deref(), &how, &tile)
                }
            }
        }
        Command::Fill {
            input,
            output,
            keep_alpha,
            out,
        } => fill_command(&input, &output, keep_alpha, &out),
        Command::Autocrop {
            input,
            output,
            threshold,
            aspect,
            print,
            out,
        } => autocrop(
            &input,
            output.as_deref(),
            threshold,
            aspect.as_deref(),
            print,
            &out,
        ),
    }
}

fn info(path: &Path, json: bool) -> Result<()> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pto"))
    {
        return render_cmd::info(path, json);
    }
    if !path.exists() {
        if let Some((done, count)) = render::shard::status(path) {
            return render_cmd::shard_info(path, &done, count, json);
        }
    }
    let Opened {
        source,
        format,
        file_size,
        mut details,
        icc,
    } = formats::open(path)?;
    if let Some(icc) = &icc {
        let name = color::Icc::parse(icc)
            .map(|p| format!("\"{}\"", p.description()))
            .unwrap_or_else(|e| e);
        details.push(("icc profile", format!("{name}, {} bytes", icc.len())));
    }
    let i = source.info();
    let bits = i.format.sample.bits();
    let sample = if i.format.sample.is_float() {
        "float"
    } else {
        "uint"
    };
    if json {
        let mut o = serde_json::json!({
            "file": path.display().to_string(),
            "format": format.name(),
            "width": i.width,
            "height": i.height,
            "channels": i.format.channels,
            "bits": bits,
            "sample": sample,
            "alpha": i.format.has_alpha(),
            "file_size": file_size,
        });
        for (k, v) in &details {
            let key = k.replace(' ', "_");
            o[key] = v
                .parse::<u64>()
                .map(serde_json::Value::from)
                .unwrap_or_else(|_| v.clone().into());
        }
        println!("{o}");
    } else {
        let mp = i.width as f64 * i.height as f64 / 1e6;
        println!("file:       {}", path.display());
        println!("format:     {}", format.name());
        println!(
            "size:       {} x {} ({})",
            i.width,
            i.height,
            if mp >= 1000.0 {
                format!("{:.2} gigapixels", mp / 1000.0)
            } else {
                format!("{mp:.1} megapixels")
            }
        );
        println!("channels:   {} ({})", i.format.channels, i.format.name());
        println!(
            "bits:       {bits} per sample ({})",
            if sample == "float" {
                "floating point"
            } else {
                "unsigned integer"
            }
        );
        println!("file size:  {file_size} bytes ({})", human_bytes(file_size));
        for (k, v) in &details {
            println!("{:<11} {v}", format!("{k}:"));
        }
    }
    for w in source.warnings() {
        eprintln!("giga: warning: {w}");
    }
    Ok(())
}

/// Opens `input` for filling: the filled stream, or the input itself (with a note) when
/// there is nothing to fill; and the input's ICC profile.
pub(crate) fn open_filled(
    input: &Path,
    keep_alpha: bool,
    quiet: bool,
) -> Result<(Box<dyn raster::Source>, Option<Vec<u8>>)> {
    let opened = formats::open(input)?;
    let (first, icc) = (opened.source, opened.icc);
    let second = formats::open(input)?.source;
    let info = first.info();
    let pb = progress::bar(
        info.height as u64 * info.row_bytes() as u64,
        quiet,
        "analysing",
    );
    let row_bytes = info.row_bytes() as u64;
    let outcome = fill::fill(first, second, keep_alpha, |rows| {
        pb.inc(rows as u64 * row_bytes)
    })
    .map_err(|e| e.at(input))?;
    pb.finish_and_clear();
    let source = match outcome {
        fill::Outcome::Filled(s) => s,
        fill::Outcome::Opaque => {
            let why = if info.format.has_alpha() {
                "no transparent pixel"
            } else {
                "no alpha channel"
            };
            eprintln!(
                "giga: note: {} has {why}: nothing to fill, copied unchanged",
                input.display()
            );
            formats::open(input)?.source
        }
    };
    Ok((source, icc))
}

fn fill_command(input: &Path, output: &Path, keep_alpha: bool, args: &OutputArgs) -> Result<()> {
    let choice = output_choice(input, output, args)?;
    let (source, icc) = open_filled(input, keep_alpha, args.quiet)?;
    write_source("filled", source, output, choice, args, icc.as_deref())
}

fn autocrop(
    input: &Path,
    output: Option<&Path>,
    threshold: f64,
    aspect: Option<&str>,
    print: bool,
    args: &OutputArgs,
) -> Result<()> {
    if !(0.0..=1.0).contains(&threshold) {
        return Err(Failure::Usage(format!(
            "--threshold {threshold} must be between 0 and 1"
        )));
    }
    let aspect = match aspect {
        Some(a) => Some(
            fill::Aspect::parse(a)
                .ok_or_else(|| Failure::Usage(format!("--aspect {a:?} must be W:H, e.g. 16:9")))?,
        ),
        None => None,
    };
    if let Some(out) = output {
        output_choice(input, out, args)?;
    }
    let opened = formats::open(input)?;
    let info = opened.source.info();
    if !info.format.has_alpha() {
        eprintln!(
            "giga: note: {} has no alpha channel: the whole image is opaque",
            input.display()
        );
    }
    let pb = progress::bar(
        info.height as u64 * info.row_bytes() as u64,
        args.quiet || print,
        "finding the rectangle",
    );
    let row_bytes = info.row_bytes() as u64;
    let rect = fill::largest_rectangle(opened.source, threshold, aspect, |rows| {
        pb.inc(rows as u64 * row_bytes)
    })?;
    pb.finish_and_clear();
    let rect = rect.ok_or_else(|| {
        let why = match aspect {
            Some(a) => format!(
                "no rectangle of aspect {}:{} fits the opaque part of the {}x{} image",
                a.w, a.h, info.width, info.height
            ),
            None => "no pixel is opaque enough: there is nothing to keep".to_string(),
        };
        raster::Error::invalid(input, why)
    })?;
    if print {
        println!("{rect}");
        if output.is_none() {
            return Ok(());
        }
    }
    let window = Window::Pixels([
        rect.x as f64,
        rect.y as f64,
        rect.width as f64,
        rect.height as f64,
    ]);
    transform(
        input,
        output.expect("required without --print"),
        Some(window),
        args,
    )
}

pub(crate) fn human_bytes(n: u64) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

enum Window {
    Pixels([f64; 4]),
    Fractions([f64; 4]),
}

fn parse_numbers(s: &str, flag: &str) -> Result<[f64; 4]> {
    let v: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Failure::Usage(format!("{flag} wants four numbers X,Y,W,H, got {s:?}")))?;
    let v: [f64; 4] = v
        .try_into()
        .map_err(|_| Failure::Usage(format!("{flag} wants four numbers X,Y,W,H, got {s:?}")))?;
    if v.iter().any(|x| !x.is_finite() || *x < 0.0) {
        return Err(Failure::Usage(format!(
            "{flag} values must be non-negative, got {s:?}"
        )));
    }
    if flag == "--rel" && v.iter().any(|x| *x > 1.0) {
        return Err(Failure::Usage(format!(
            "--rel values are fractions between 0 and 1, got {s:?}"
        )));
    }
    if (flag == "--rect" || flag == "--region") && v.iter().any(|x| x.fract() != 0.0) {
        return Err(Failure::Usage(format!(
            "{flag} values are whole pixels, got {s:?}"
        )));
    }
    Ok(v)
}

/// The crop window inside an image of `info`'s size, clamped; `None` if nothing is left.
fn window_rect(w: &Window, info: &ImageInfo) -> Option<Rect> {
    let (iw, ih) = (info.width as f64, info.height as f64);
    let [x, y, ww, hh] = match w {
        Window::Pixels(v) => *v,
        Window::Fractions(v) => [
            (v[0] * iw).floor(),
            (v[1] * ih).floor(),
            (v[2] * iw).floor(),
            (v[3] * ih).floor(),
        ],
    };
    let x0 = x.min(iw);
    let y0 = y.min(ih);
    let width = ww.min(iw - x0);
    let height = hh.min(ih - y0);
    if width < 1.0 || height < 1.0 {
        return None;
    }
    Some(Rect {
        x: x0 as u32,
        y: y0 as u32,
        width: width as u32,
        height: height as u32,
    })
}

pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// The output format and background colour the options ask for, checked
/// (with the output not being the input) before anything is read.
pub(crate) fn output_choice(
    input: &Path,
    output: &Path,
    args: &OutputArgs,
) -> Result<(Format, Color)> {
    let format = match &args.format {
        Some(name) => Format::from_name(name).ok_or_else(|| Failure::Usage(format!("unknown --format {name:?} (kro, tif, psd, psb, png, jpg, ppm)")))?,
        None => Format::from_path(output).ok_or_else(|| {
            Failure::Usage(format!("{}: can't tell the output format from the extension; use .kro .tif .psd .psb .png .jpg .ppm or --format", output.display()))
        })?,
    };
    let background = Color::parse(&args.background).ok_or_else(|| {
        Failure::Usage(format!(
            "--background {:?} is not a colour (white, black, #rrggbb or r,g,b)",
            args.background
        ))
    })?;
    if same_file(input, output) {
        return Err(Failure::Usage(format!(
            "{}: the output is the input; giga never overwrites its input",
            output.display()
        )));
    }
    Ok((format, background))
}

/// Reads `input`, optionally crops it, converts it to what the output wants and writes `output`.
fn transform(input: &Path, output: &Path, window: Option<Window>, args: &OutputArgs) -> Result<()> {
    let choice = output_choice(input, output, args)?;
    let opened = formats::open(input)?;
    let mut source = opened.source;
    for w in source.warnings() {
        eprintln!("giga: warning: {w}");
    }
    if let Some(w) = window {
        let info = source.info();
        let rect = window_rect(&w, &info).ok_or_else(|| {
            raster::Error::invalid(
                input,
                format!(
                    "the crop window is empty or outside the {}x{} image",
                    info.width, info.height
                ),
            )
        })?;
        source = raster::crop(source, rect);
    }
    write_source(
        opened.format.name(),
        source,
        output,
        choice,
        args,
        opened.icc.as_deref(),
    )
}

/// Converts `source` to what the output format and options ask for, and
/// writes it with the input's ICC profile `icc` where the output can hold it.
pub(crate) fn write_source(
    from: &str,
    mut source: Box<dyn raster::Source>,
    output: &Path,
    (format, background): (Format, Color),
    args: &OutputArgs,
    icc: Option<&[u8]>,
) -> Result<()> {
    let info = source.info();
    let target = target_format(info.format, format, args);
    source = raster::ops::convert(source, target, background);
    let out_info = source.info();
    if let Some(why) = format.cannot_hold(&out_info) {
        return Err(raster::Error::invalid(output, why).into());
    }
    let icc = icc.filter(|p| !p.is_empty()).and_then(|bytes| {
        let kept = match color::Icc::parse(bytes) {
            Ok(p) if !format.holds_icc() => Err(format!(
                "the ICC profile \"{}\" is not kept: {} has no place for one",
                p.description(),
                format.name()
            )),
            Ok(p) if !p.fits(&out_info) => Err(format!(
                "the ICC profile \"{}\" is not kept: it is not for {} images",
                p.description(),
                out_info.format.name()
            )),
            Ok(_) => Ok(bytes.to_vec()),
            Err(e) => Err(format!("the input's ICC profile is not kept: {e}")),
        };
        kept.map_err(|w| eprintln!("giga: warning: {w}")).ok()
    });
    let opts = WriteOptions {
        bigtiff: args.bigtiff.then_some(true),
        compression: args.compression.into(),
        tile_size: args.tile_size,
        quality: args.quality,
        pyramid: args.pyramid,
        icc,
    };
    if args.pyramid && format != Format::Tiff {
        return Err(Failure::Usage(format!(
            "--pyramid is for TIFF output, not {}",
            format.name()
        )));
    }
    let sink = formats::create(output, format, &out_info, &opts)?;
    let total = out_info.height as u64 * out_info.row_bytes() as u64;
    let pb = progress::bar(total, args.quiet, &format!("{from} -> {}", format.name()));
    let row_bytes = out_info.row_bytes() as u64;
    raster::run(source, sink, |rows| pb.inc(rows as u64 * row_bytes))?;
    pb.finish_and_clear();
    Ok(())
}

/// The output pixel format: the input's, changed only where asked or where
/// the output format cannot store it (alpha in JPEG).
fn target_format(input: PixelFormat, format: Format, args: &OutputArgs) -> PixelFormat {
    let mut colour = input.color_channels();
    let mut alpha = input.has_alpha();
    if args.no_alpha || !format.has_alpha() {
        alpha = false;
    }
    if args.gray {
        colour = 1;
    }
    let sample = args.depth.map_or(input.sample, SampleType::from);
    PixelFormat::new(colour + alpha as u8, sample)
}
