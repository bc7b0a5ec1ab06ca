//! giga's streaming raster core.
//!
//! Every reader yields the same thing: a [`Source`] of [`Strip`]s, bands of
//! full-width rows from top to bottom. Every writer is a [`Sink`] consuming
//! them, and every operation maps strips to strips. Nothing here ever holds a
//! whole image, so memory is bounded by the width times a few strip heights.

#![deny(missing_docs)]

mod error;
pub mod ops;
mod pipeline;
mod pixel;
pub mod reduce;
mod strip;

pub use error::{Error, Result};
pub use pipeline::{run, run_from, Crop, Mapped, RowBlocks};
pub use pixel::{Color, ImageInfo, PixelFormat, Rect, SampleType};
pub use strip::{Samples, Strip};

/// A stream of strips, top to bottom, covering the image exactly once.
pub trait Source: Send {
    /// The image's size and pixel format, known before any strip.
    fn info(&self) -> ImageInfo;
    /// The next strip, or `None` after the last row.
    fn next_strip(&mut self) -> Result<Option<Strip>>;
    /// Restrict the stream to `rect` natively (seeking instead of reading
    /// everything). Called before the first strip; returns false if the
    /// source can't, in which case a generic [`Crop`] is wrapped around it.
    fn restrict(&mut self, _rect: Rect) -> bool {
        false
    }
    /// Things worth telling the user that don't stop the work.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Consumes strips in order; `finish` completes the output (and makes it
/// visible under its final name).
pub trait Sink: Send {
    /// Takes the next strip (strips arrive in order, top to bottom).
    fn write(&mut self, strip: Strip) -> Result<()>;
    /// Completes the output once every row has been written.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Crops any source to `rect` (which must lie inside the image), seeking where the source allows.
pub fn crop(mut source: Box<dyn Source>, rect: Rect) -> Box<dyn Source> {
    if source.restrict(rect) {
        source
    } else {
        Box::new(Crop::new(source, rect))
    }
}
