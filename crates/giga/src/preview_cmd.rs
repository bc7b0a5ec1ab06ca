//! `giga preview`: a project rendered small, with its frames, seams and control
//! points drawn over it, and optionally a JSON sidecar of the same overlays.

use std::path::Path;
use std::time::Instant;

use formats::{Format, WriteOptions};
use raster::{ImageInfo, PixelFormat, SampleType, Samples, Source, Strip};
use render::overlay::Layers;
use render::preview::Preview;

use crate::{Failure, Result};

/// What `giga preview` was asked for.
pub struct Ask<'a> {
    pub width: u32,
    pub layers: Layers,
    pub sidecar: Option<&'a Path>,
    pub quiet: bool,
}

pub fn run(project: &Path, output: &Path, ask: &Ask) -> Result<()> {
    let format = Format::from_path(output)
        .filter(|f| matches!(f, Format::Png | Format::Jpeg | Format::Tiff))
        .ok_or_else(|| {
            Failure::Usage(format!(
                "{}: write the preview as .png, .jpg or .tif",
                output.display()
            ))
        })?;
    if !(64..=16_384).contains(&ask.width) {
        return Err(Failure::Usage(format!(
            "--width {} must be between 64 and 16384 pixels",
            ask.width
        )));
    }
    let start = Instant::now();
    let mut p = render::preview::preview(project, ask.width, &render::Options::default())?;
    for w in &p.warnings {
        crate::say(&format!("giga: warning: {w}"));
    }
    if let Some(path) = ask.sidecar {
        formats::output::write_file(path, sidecar(&p).to_string().as_bytes())?;
    }
    render::overlay::draw(&mut p, ask.layers);
    write(&p, output, format)?;
    if !ask.quiet {
        let worst = p.points.iter().map(|c| c.residual).fold(0.0, f64::max);
        crate::say(&format!(
            "giga: preview {}x{} of a {}x{} panorama ({} frames, {} control points, worst residual {worst:.1} px) in {:.1} s -> {}",
            p.width, p.height, p.full.0, p.full.1, p.outlines.len(), p.points.len(),
            start.elapsed().as_secs_f64(), output.display()
        ));
    }
    Ok(())
}

/// The overlays as data for viewers and tests: outlines, centres and control points in
/// the full render's pixels (residuals too), the seam labels at preview size.
fn sidecar(p: &Preview) -> serde_json::Value {
    let full = |q: (f64, f64)| {
        let (x, y) = p.to_full.map(q);
        [x, y]
    };
    let labels: Vec<Vec<[i32; 2]>> = p.labels.chunks(p.width as usize).map(runs).collect();
    serde_json::json!({
        "width": p.full.0, "height": p.full.1,
        "preview": {"width": p.width, "height": p.height, "scale": p.scale},
        "frames": p.outlines.iter().map(|o| serde_json::json!({
            "frame": o.frame, "centre": o.centre.map(full),
            "colour": hex(render::overlay::colour(o.frame)),
            "outline": o.pieces.iter().map(|piece| piece.iter().map(|&q| full(q)).collect::<Vec<_>>()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "points": p.points.iter().map(|c| serde_json::json!({
            "frames": [c.frames.0, c.frames.1], "a": full(c.a), "b": full(c.b), "residual": c.residual,
        })).collect::<Vec<_>>(),
        // Pixel centres sit at whole coordinates: the edge between two is half a pixel off.
        "seams": seam_segments(p).iter().map(|&(a, b)| [full((a.0 - 0.5, a.1 - 0.5)), full((b.0 - 0.5, b.1 - 0.5))]).collect::<Vec<_>>(),
        "labels": labels,
    })
}

/// The boundaries between pixels of different frames, as preview-pixel segments
/// (vertical ones joined down the rows, horizontal ones along them).
fn seam_segments(p: &Preview) -> Vec<((f64, f64), (f64, f64))> {
    let (w, h) = (p.width as usize, p.height as usize);
    let l = |x: usize, y: usize| p.labels[y * w + x];
    let mut out = Vec::new();
    let mut open: std::collections::HashMap<usize, usize> = Default::default(); // x -> first row
    for y in 0..=h {
        let edges: Vec<usize> = (1..w)
            .filter(|&x| y < h && l(x, y) != l(x - 1, y) && l(x, y).max(l(x - 1, y)) >= 0)
            .collect();
        open.retain(|&x, &mut y0| {
            let goes_on = edges.contains(&x);
            if !goes_on {
                out.push(((x as f64, y0 as f64), (x as f64, y as f64)));
            }
            goes_on
        });
        edges.iter().for_each(|&x| {
            open.entry(x).or_insert(y);
        });
        if y > 0 && y < h {
            let mut x0 = None;
            for x in 0..=w {
                let differs = x < w && l(x, y) != l(x, y - 1) && l(x, y).max(l(x, y - 1)) >= 0;
                match (differs, x0) {
                    (true, None) => x0 = Some(x),
                    (false, Some(a)) => {
                        out.push(((a as f64, y as f64), (x as f64, y as f64)));
                        x0 = None;
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// A row of labels as runs of [label, length].
fn runs(row: &[i32]) -> Vec<[i32; 2]> {
    let mut out: Vec<[i32; 2]> = Vec::new();
    for &l in row {
        match out.last_mut() {
            Some(r) if r[0] == l => r[1] += 1,
            _ => out.push([l, 1]),
        }
    }
    out
}

/// The preview as one strip through giga's writers (JPEG flattened onto white).
fn write(p: &Preview, output: &Path, format: Format) -> Result<()> {
    let info = ImageInfo {
        width: p.width,
        height: p.height,
        format: PixelFormat::new(4, SampleType::U8),
    };
    let strip = Strip::new(0, p.width, p.height, 4, Samples::U8(p.rgba.clone()));
    let held: Box<dyn Source> = Box::new(Held(info, Some(strip)));
    let channels = if format.has_alpha() { 4 } else { 3 };
    let source = raster::ops::convert(
        held,
        PixelFormat::new(channels, SampleType::U8),
        raster::Color::WHITE,
    );
    let sink = formats::create(output, format, &source.info(), &WriteOptions::default())?;
    raster::run(source, sink, |_| {})?;
    Ok(())
}

/// An image already in memory, as a source of one strip.
struct Held(ImageInfo, Option<Strip>);

impl Source for Held {
    fn info(&self) -> ImageInfo {
        self.0
    }
    fn next_strip(&mut self) -> raster::Result<Option<Strip>> {
        Ok(self.1.take())
    }
}
