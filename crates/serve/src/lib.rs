//! `giga serve`: a IIIF Image API 3.0 (and 2.1) level 2 server.
//!
//! [`iiif`] parses requests, [`image`] holds each image's levels and renders
//! a request from the closest level, [`server`] answers HTTP with a bounded
//! queue. Only the files named at start can be reached: identifiers are keys
//! of a map built then, never paths.
//!
//! Multi-resolution tiled TIFFs and Deep Zoom pyramids ([`tiled`], [`dzi`])
//! are served at any size, tile by tile; other images are decoded into
//! memory (up to 256 Mpx).

#![deny(missing_docs)]

pub mod archive;
pub mod dzi;
pub mod iiif;
pub mod image;
pub mod memory;
pub mod server;
pub mod tiled;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use raster::{Error, Result};

pub use server::Options;

/// The images under `paths` (files, or the image files directly inside folders, hidden
/// ones left out), by identifier (file stem), each saying whether it was named itself.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<(String, PathBuf, bool)>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::io(p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for e in entries {
                let dzi = e.extension().is_some_and(|x| x.eq_ignore_ascii_case("dzi"));
                let hidden = e
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                if !hidden && e.is_file() && (dzi || formats::Format::from_path(&e).is_some()) {
                    out.push((e, false));
                }
            }
        } else {
            out.push((p.clone(), true));
        }
    }
    let mut seen = HashMap::new();
    let mut list = Vec::new();
    for (path, named) in out {
        let id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(other) = seen.insert(id.clone(), path.clone()) {
            return Err(Error::invalid(
                &path,
                format!(
                    "identifier {id:?} is also {}: rename one",
                    Path::new(&other).display()
                ),
            ));
        }
        list.push((id, path, named));
    }
    Ok(list)
}

/// Loads the images and serves them on `bind` until the process ends.
pub fn serve(
    bind: &str,
    paths: &[PathBuf],
    opts: Options,
    mut log: impl FnMut(&str),
) -> Result<()> {
    let mut images = HashMap::new();
    for (id, path, named) in collect(paths)? {
        let image = match image::Image::load(&path) {
            Ok(image) => image,
            Err(e) if !named => {
                // One bad file in a folder shouldn't keep the others offline.
                log(&format!("warning: skipped: {e}"));
                continue;
            }
            Err(e) => return Err(e),
        };
        let colour = image
            .colour
            .as_ref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        log(&format!(
            "{id}: {}x{} from {}{colour}",
            image.width,
            image.height,
            path.display()
        ));
        images.insert(id, image);
    }
    if images.is_empty() {
        return Err(Error::Service("no images to serve".into()));
    }
    let held: u64 = images.values().map(image::Image::held_bytes).sum();
    let requests = opts.memory.saturating_sub(held + (64 << 20));
    if requests < 64 << 20 {
        return Err(Error::Service(format!(
            "the images held in memory and their tile caches take {} MB of the {} MB memory budget (--memory GB raises it; pyramids are read tile by tile)",
            held >> 20,
            opts.memory >> 20
        )));
    }
    log(&format!(
        "memory: {} MB held by images and tile caches, {} MB for requests in flight",
        held >> 20,
        requests >> 20
    ));
    let listener = std::net::TcpListener::bind(bind)
        .map_err(|e| Error::Service(format!("can't listen on {bind}: {e}")))?;

    log(&format!(
        "serving {} image(s) on http://{bind}/ (IIIF under /iiif/3/ID and /iiif/2/ID)",
        images.len()
    ));
    let budget = memory::Budget::new(requests);
    server::run(
        listener,
        server::State {
            images,
            opts,
            budget,
        },
    )
    .map_err(|e| Error::Service(format!("server on {bind}: {e}")))
}
