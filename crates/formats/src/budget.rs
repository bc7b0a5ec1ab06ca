//! The decoding budget: the most memory a reader may take for what a file's
//! header declares (a whole interlaced PNG, a progressive JPEG's coefficients,
//! a TIFF strip decoded whole, one row). Readers check declared sizes here
//! before allocating, so a 100-byte file claiming terabytes is refused with
//! one line instead of aborting giga or filling the machine's memory.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use raster::{Error, ImageInfo, Result};

/// 2 GB: far above what streaming needs (a few strips), enough for an
/// interlaced PNG or a progressive JPEG of ~500 megapixels.
pub const DEFAULT_BUDGET: u64 = 2_000_000_000;

static BUDGET: AtomicU64 = AtomicU64::new(DEFAULT_BUDGET);

/// The pipeline holds a few strips of at least one row each, and a pyramid a
/// band of a few hundred rows a level: a row may take this share of the budget.
const ROWS_HELD: u64 = 64;

/// Sets the budget in bytes (`--max-memory`).
pub fn set_decode_budget(bytes: u64) {
    BUDGET.store(bytes.max(1 << 20), Ordering::Relaxed);
}

/// The budget in bytes.
pub fn decode_budget() -> u64 {
    BUDGET.load(Ordering::Relaxed)
}

/// Bytes as the user reads them: "40.0 GB", "512 MB".
pub fn human(bytes: u64) -> String {
    let gb = bytes as f64 / 1e9;
    if gb >= 1.0 {
        format!("{gb:.1} GB")
    } else {
        format!("{} MB", (bytes as f64 / 1e6).ceil())
    }
}

/// Refuses `bytes` held at once for `what` when they pass the budget;
/// `way_out` tells the user what to do instead.
pub(crate) fn check(path: &Path, what: &str, bytes: u64, way_out: &str) -> Result<()> {
    let budget = decode_budget();
    if bytes <= budget {
        return Ok(());
    }
    Err(Error::invalid(
        path,
        format!(
            "{what} needs {} of memory, above the decoding budget of {}: {way_out} (--max-memory GB raises the budget)",
            human(bytes),
            human(budget)
        ),
    ))
}

/// Refuses images whose rows are too wide to stream within the budget.
pub(crate) fn check_rows(path: &Path, info: &ImageInfo) -> Result<()> {
    check_row_width(path, info.width, info.format.pixel_bytes() as u64)
}

/// Refuses rows of `width` pixels of `pixel_bytes` each that are too wide to stream
/// (also before a reader knows its output format: PNG before expansion).
pub(crate) fn check_row_width(path: &Path, width: u32, pixel_bytes: u64) -> Result<()> {
    let row = (width as u64).saturating_mul(pixel_bytes);
    check(
        path,
        &format!("streaming rows {width} px wide"),
        row.saturating_mul(ROWS_HELD),
        "the header is probably damaged",
    )
}
