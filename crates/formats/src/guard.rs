//! Turns panics inside third-party decoders and encoders into errors.
//!
//! mozjpeg reports every libjpeg error by unwinding, and a malformed file
//! should never crash giga, so calls into codecs run under [`guard`]. A
//! panic hook installed by the binary stays silent while a guard is active.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use raster::{Error, Result};

thread_local! {
    static GUARDED: Cell<u32> = const { Cell::new(0) };
}

/// Installs a panic hook that says nothing for panics caught by a guard and
/// one line for any other (a bug in giga).
pub fn set_quiet_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if GUARDED.with(|g| g.get()) == 0 {
            default(info);
        }
    }));
}

/// Runs `f`; a panic becomes an error naming `path` and `what` failed.
pub fn guard<T>(path: &Path, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    GUARDED.with(|g| g.set(g.get() + 1));
    let r = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(g.get() - 1));
    r.unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<String>()
            .map(|s| s.as_str())
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("unknown error");
        Err(Error::invalid(path, format!("{what}: {}", msg.trim())))
    })
}
