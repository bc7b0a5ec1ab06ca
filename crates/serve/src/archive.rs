//! PMTiles archives written by `giga tile --archive pmtiles`, served tile by
//! tile like Deep Zoom pyramids: level k is zoom `max - k` of the archive.

use std::path::Path;

use formats::pmtiles::Archive;
use raster::{Error, Result};

use crate::tiled::{Tile, TileSource};

/// A giga PMTiles archive as a tile source.
pub struct Pmtiles {
    archive: Archive,
    levels: Vec<(u32, u32)>,
}

impl Pmtiles {
    /// Opens an archive (its header, root directory and metadata).
    pub fn open(path: &Path) -> Result<Pmtiles> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let archive = Archive::open(path, file)?;
        let (w, h) = (archive.width, archive.height);
        let levels = (0..=archive.max_zoom())
            .map(|k| (w.div_ceil(1 << k), h.div_ceil(1 << k)))
            .collect();
        Ok(Pmtiles { archive, levels })
    }
}

impl TileSource for Pmtiles {
    fn levels(&self) -> &[(u32, u32)] {
        &self.levels
    }

    fn channels(&self) -> usize {
        self.archive.channels()
    }

    fn grid(&self, _k: usize) -> (u32, u32) {
        (self.archive.tile, self.archive.tile)
    }

    fn decode(&self, k: usize, tx: u32, ty: u32) -> std::result::Result<Tile, String> {
        let (w, h) = self.levels[k];
        let t = self.archive.tile;
        let (tw, th) = (t.min(w - tx * t), t.min(h - ty * t));
        let c = self.channels();
        let z = self.archive.max_zoom() - k as u32;
        let pixels = match self
            .archive
            .tile_bytes(z, tx, ty)
            .map_err(|e| e.to_string())?
        {
            Some(bytes) => {
                let (dw, dh, px) = self.archive.decode(&bytes).map_err(|e| e.to_string())?;
                if (dw, dh) != (tw, th) {
                    return Err(format!(
                        "tile {z}/{tx}/{ty} is {dw}x{dh}, the pyramid says {tw}x{th}"
                    ));
                }
                px
            }
            // Left out as blank: transparent, or white where tiles are JPEG.
            None => vec![if c == 4 { 0 } else { 255 }; tw as usize * th as usize * c],
        };
        Ok(Tile {
            pixels,
            x0: tx * t,
            y0: ty * t,
            width: tw,
        })
    }
}
