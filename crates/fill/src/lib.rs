//! Transparent areas of stitched panoramas, handled out of core.
//!
//! [`pushpull`] fills transparent pixels with a smooth continuation of the
//! colour around them (push-pull, two reads, bounded memory); [`autocrop`] finds the largest rectangle without transparency in one
//! streaming pass (memory: a few integers per column).

#![deny(missing_docs)]

pub mod autocrop;
pub mod pushpull;

pub use autocrop::{largest_rectangle, Aspect, Finder};
pub use pushpull::{fill, Outcome};
