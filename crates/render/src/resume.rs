//! Resumable renders: straight into a KRO (raw rows at fixed offsets), so an
//! interrupted render continues from the last band that reached the disk. The
//! rows go into `.OUT.giga-partial`; after every band the data is synced and
//! `.OUT.giga-partial.checkpoint` records how many rows are complete and what
//! they were rendered from. The partial file becomes OUT when the last row is in.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use raster::{Result, SampleType, Source};

use crate::Render;

fn partial_paths(out: &Path) -> (PathBuf, PathBuf) {
    (
        crate::beside(out, "giga-partial"),
        crate::beside(out, "giga-partial.checkpoint"),
    )
}

/// The partial file a resumable render of `out` keeps while it runs.
pub fn partial_path(out: &Path) -> PathBuf {
    partial_paths(out).0
}

/// Renders into the KRO `out`, continuing a previous interrupted run when its
/// checkpoint matches `key` (a digest of the project and the options). Returns
/// the row it started from. `progress` gets the number of rows complete after each band.
pub fn render_kro(
    mut render: Render,
    out: &Path,
    key: &str,
    mut progress: impl FnMut(u32),
) -> Result<u32> {
    let info = render.info();
    let depth = if info.format.sample == SampleType::U8 {
        kro::Depth::U8
    } else {
        kro::Depth::U16
    };
    let header = kro::Header::new(info.width, info.height, depth, 4)
        .map_err(|e| raster::Error::invalid(out, e.to_string()))?;
    let (partial, checkpoint) = partial_paths(out);
    let stamp = format!(
        "giga-render-checkpoint 1\n{key}\n{}x{} {}\n",
        info.width, info.height, info.format
    );
    let row_len = header.row_len();
    let start = std::fs::read_to_string(&checkpoint)
        .ok()
        .and_then(|text| {
            let rows: u32 = text
                .strip_prefix(&stamp)?
                .trim()
                .strip_prefix("rows ")?
                .parse()
                .ok()?;
            let len = std::fs::metadata(&partial).ok()?.len();
            (rows <= info.height && len >= kro::HEADER_LEN + rows as u64 * row_len).then_some(rows)
        })
        .unwrap_or(0);
    let io = |e| raster::Error::io(&partial, e);
    let file: File = if start > 0 {
        OpenOptions::new().write(true).open(&partial).map_err(io)?
    } else {
        let _ = std::fs::remove_file(&checkpoint);
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&partial)
            .map_err(io)?;
        f.write_all_at(&header.to_bytes(), 0).map_err(io)?;
        f
    };
    render.skip_to(start);
    let mut bytes = Vec::new();
    while let Some(strip) = render.next_strip()? {
        bytes.clear();
        strip.samples.extend_be_bytes(&mut bytes);
        file.write_all_at(&bytes, header.pixel_offset(0, strip.y))
            .map_err(io)?;
        file.sync_data().map_err(io)?;
        write_atomic(
            &checkpoint,
            &format!("{stamp}rows {}\n", strip.y + strip.height),
        )?;
        progress(strip.y + strip.height);
    }
    file.set_len(header.file_len().expect("fits")).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&partial, out).map_err(|e| raster::Error::io(out, e))?;
    let _ = std::fs::remove_file(&checkpoint);
    Ok(start)
}

/// Writes `text` to `path` through a synced temporary file and a rename: all or nothing.
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp).map_err(|e| raster::Error::io(&tmp, e))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_data())
        .map_err(|e| raster::Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| raster::Error::io(path, e))
}
