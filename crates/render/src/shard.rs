//! Shards: one render split into horizontal bands that separate processes, on
//! any machines sharing the output's folder (Slurm array tasks, Kubernetes
//! indexed pods), render into the same KRO, byte for byte what one run writes.
//!
//! `plan` makes `.OUT.giga-partial` (the KRO's header, its full length sparse)
//! and `.OUT.giga-plan` (the job's key, the size and each band's first row,
//! aligned to 256 rows); each `shard` renders its band's rows into their place
//! (a pixel never depends on where a band starts) and then leaves
//! `.OUT.giga-shard-I.done` (the seam pre-pass runs once, at the plan, and its map
//! waits in `.OUT.giga-seams`); `finish` checks that every shard is done, naming
//! those that are not, and renames the partial file to OUT. A shard run again
//! (a requeue, a retried pod) writes the same rows again.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use raster::{Result, SampleType, Source};

use crate::Render;

/// Bands start on multiples of this many rows (a coarse tile grid's).
const ALIGN: u32 = 256;

/// A sharded render's plan, as written beside the output.
#[derive(Debug, PartialEq)]
pub struct Plan {
    /// The job's key: the project and the options that change pixels.
    pub key: String,
    /// The output's size and sample format, as `raster::ImageInfo` prints it.
    pub size: String,
    /// Each shard's first row, then the height: `count + 1` numbers.
    pub bands: Vec<u32>,
}

impl Plan {
    /// Shards in the plan.
    pub fn count(&self) -> u32 {
        self.bands.len() as u32 - 1
    }

    fn text(&self) -> String {
        let bands: Vec<String> = self.bands.iter().map(u32::to_string).collect();
        format!(
            "giga-shard-plan 1\n{}\n{}\nbands {}\n",
            self.key,
            self.size,
            bands.join(" ")
        )
    }

    fn parse(text: &str) -> Option<Plan> {
        let mut lines = text.lines();
        (lines.next()? == "giga-shard-plan 1").then_some(())?;
        let (key, size) = (lines.next()?.to_string(), lines.next()?.to_string());
        let bands = lines
            .next()?
            .strip_prefix("bands ")?
            .split(' ')
            .map(|v| v.parse().ok())
            .collect::<Option<Vec<u32>>>()?;
        (bands.len() >= 2).then_some(Plan { key, size, bands })
    }
}

/// Band boundaries for `n` shards over `height` rows: even shares rounded to `ALIGN`
/// (plain even shares when the image is too short for that).
pub fn bands(height: u32, n: u32) -> Vec<u32> {
    let align = if height >= n * ALIGN { ALIGN } else { 1 };
    let mut out: Vec<u32> = (0..n)
        .map(|i| ((height as u64 * i as u64 / n as u64) as u32 / align) * align)
        .collect();
    out.push(height);
    out
}

fn paths(out: &Path) -> (PathBuf, PathBuf) {
    (
        crate::beside(out, "giga-partial"),
        crate::beside(out, "giga-plan"),
    )
}

/// Where the plan keeps the seam map it found, for the shards to load.
pub fn seams_path(out: &Path) -> PathBuf {
    crate::beside(out, "giga-seams")
}

fn done_path(out: &Path, i: u32) -> PathBuf {
    crate::beside(out, &format!("giga-shard-{i}.done"))
}

fn header(render: &Render, out: &Path) -> Result<kro::Header> {
    let info = render.info();
    let depth = match info.format.sample {
        SampleType::U8 => kro::Depth::U8,
        _ => kro::Depth::U16,
    };
    kro::Header::new(info.width, info.height, depth, 4)
        .map_err(|e| raster::Error::invalid(out, e.to_string()))
}

fn size(render: &Render) -> String {
    let info = render.info();
    format!("{}x{} {}", info.width, info.height, info.format)
}

/// Writes the plan for `n` shards of the render into KRO `out`, and the partial
/// file the shards fill; any earlier plan, part or done marker is replaced.
pub fn plan(render: &Render, out: &Path, key: &str, n: u32) -> Result<Plan> {
    let header = header(render, out)?;
    let (partial, plan_file) = paths(out);
    let plan = Plan {
        key: key.to_string(),
        size: size(render),
        bands: bands(render.info().height, n),
    };
    clear_markers(out);
    let _ = std::fs::remove_file(seams_path(out));
    let io = |e| raster::Error::io(&partial, e);
    let file = File::create(&partial).map_err(io)?;
    file.write_all_at(&header.to_bytes(), 0).map_err(io)?;
    file.set_len(header.file_len().expect("fits")).map_err(io)?;
    file.sync_all().map_err(io)?;
    crate::resume::write_atomic(&plan_file, &plan.text())?;
    Ok(plan)
}

/// Reads the plan of `out`, checking it was made for this job.
pub fn read_plan(render: &Render, out: &Path, key: &str) -> Result<Plan> {
    let (_, plan_file) = paths(out);
    let text = std::fs::read_to_string(&plan_file).map_err(|_| {
        raster::Error::invalid(
            out,
            "there is no plan for shards of this output: run giga render with --plan N first",
        )
    })?;
    let plan = Plan::parse(&text)
        .ok_or_else(|| raster::Error::invalid(&plan_file, "not a giga shard plan"))?;
    if plan.key != key || plan.size != size(render) {
        return Err(raster::Error::invalid(
            out,
            "the plan was made for another project or other options: run --plan again",
        ));
    }
    Ok(plan)
}

/// Renders shard `i` of the plan into its rows of the partial file, then marks it
/// done. `progress` gets the rows done so far in the band.
pub fn shard(
    mut render: Render,
    out: &Path,
    plan: &Plan,
    i: u32,
    mut progress: impl FnMut(u32),
) -> Result<()> {
    let header = header(&render, out)?;
    let (partial, _) = paths(out);
    let (y0, y1) = (plan.bands[i as usize], plan.bands[i as usize + 1]);
    let _ = std::fs::remove_file(done_path(out, i));
    let io = |e| raster::Error::io(&partial, e);
    let file = OpenOptions::new().write(true).open(&partial).map_err(io)?;
    render.skip_to(y0);
    let row_len = header.row_len() as usize;
    let mut bytes = Vec::new();
    while let Some(strip) = render.next_strip()? {
        if strip.y >= y1 {
            break;
        }
        bytes.clear();
        strip.samples.extend_be_bytes(&mut bytes);
        let rows = (strip.y + strip.height).min(y1) - strip.y;
        file.write_all_at(
            &bytes[..rows as usize * row_len],
            header.pixel_offset(0, strip.y),
        )
        .map_err(io)?;
        progress(strip.y + rows - y0);
    }
    file.sync_data().map_err(io)?;
    crate::resume::write_atomic(&done_path(out, i), "done\n")
}

/// Joins the shards: checks that every one is done (naming those that are not),
/// then the partial file becomes `out` and the plan and markers go.
pub fn finish(render: &Render, out: &Path, key: &str) -> Result<()> {
    let plan = read_plan(render, out, key)?;
    let missing: Vec<String> = (0..plan.count())
        .filter(|&i| !done_path(out, i).exists())
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(raster::Error::invalid(
            out,
            format!(
                "shard{} {} of {} not done yet (run giga render --shard I/{} for each)",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", "),
                plan.count(),
                plan.count()
            ),
        ));
    }
    let (partial, plan_file) = paths(out);
    std::fs::rename(&partial, out).map_err(|e| raster::Error::io(out, e))?;
    clear_markers(out);
    let _ = std::fs::remove_file(seams_path(out));
    let _ = std::fs::remove_file(plan_file);
    Ok(())
}

/// Which shards of `out`'s plan are done, as (done, count); None without a plan.
pub fn status(out: &Path) -> Option<(Vec<bool>, u32)> {
    let plan = Plan::parse(&std::fs::read_to_string(paths(out).1).ok()?)?;
    let done = (0..plan.count())
        .map(|i| done_path(out, i).exists())
        .collect();
    Some((done, plan.count()))
}

/// Removes every shard's done marker of `out` (from any earlier plan).
fn clear_markers(out: &Path) {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.giga-shard-");
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with(&prefix) && file.ends_with(".done") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_cover_the_rows_aligned() {
        assert_eq!(bands(1000, 1), vec![0, 1000]);
        assert_eq!(bands(2000, 3), vec![0, 512, 1280, 2000]);
        assert_eq!(bands(100, 7), vec![0, 14, 28, 42, 57, 71, 85, 100]);
        for n in 1..20 {
            let b = bands(10_000, n);
            assert!(b.windows(2).all(|w| w[0] < w[1]), "{n}: {b:?}");
        }
    }

    #[test]
    fn plans_read_back() {
        let plan = Plan {
            key: "p.pto 0123".into(),
            size: "10x20 RGBA 8-bit".into(),
            bands: vec![0, 8, 20],
        };
        assert_eq!(Plan::parse(&plan.text()), Some(plan));
        assert_eq!(Plan::parse("giga-shard-plan 1\nk\ns\nbands 5\n"), None);
    }
}
