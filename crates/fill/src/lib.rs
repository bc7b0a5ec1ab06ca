//! Transparent areas of stitched panoramas, handled out of core.
//!
//! [`autocrop`] finds the largest rectangle without transparency in one
//! streaming pass (memory: a few integers per column).

pub mod autocrop;

pub use autocrop::{largest_rectangle, Aspect, Finder};
