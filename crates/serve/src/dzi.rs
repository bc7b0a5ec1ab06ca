//! Deep Zoom pyramids (`NAME.dzi` + `NAME_files/LEVEL/COL_ROW.EXT`, as
//! `giga tile` and libvips' dzsave write them) served as a tile source: a
//! request reads only the tiles under its region, on the closest level.
//! Tiles left out as blank (`--skip-blank`) read as transparent (PNG) or
//! white (JPEG, giga's default background).

use std::path::{Path, PathBuf};

use raster::{Color, Error, PixelFormat, Result, SampleType, Samples};

use crate::tiled::{Tile, TileSource};

/// A Deep Zoom pyramid (`NAME.dzi` and `NAME_files/`) as a tile source.
pub struct DeepZoom {
    files: PathBuf,
    format: String,
    tile: u32,
    overlap: u32,
    /// Served levels, full resolution first (DZI level `top - k`).
    levels: Vec<(u32, u32)>,
    top: u32,
    channels: usize,
}

/// The value of `name="..."` in the descriptor.
fn attribute(xml: &str, name: &str) -> Option<String> {
    let at = xml.find(&format!("{name}=\""))? + name.len() + 2;
    let end = xml[at..].find('"')?;
    Some(xml[at..at + end].to_string())
}

impl DeepZoom {
    /// Reads the descriptor and checks the tile folder is there.
    pub fn open(path: &Path) -> Result<DeepZoom> {
        let bad = |m: &str| Error::invalid(path, m.to_string());
        let xml = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let number = |name: &str| attribute(&xml, name).and_then(|v| v.parse::<u32>().ok());
        let (Some(tile), Some(overlap), Some(width), Some(height)) = (
            number("TileSize"),
            number("Overlap"),
            number("Width"),
            number("Height"),
        ) else {
            return Err(bad(
                "not a Deep Zoom descriptor (TileSize, Overlap, Width and Height are needed)",
            ));
        };
        let format = attribute(&xml, "Format")
            .unwrap_or_else(|| "jpg".into())
            .to_ascii_lowercase();
        if tile == 0 || width == 0 || height == 0 {
            return Err(bad("the descriptor gives an empty image or tile"));
        }
        let channels = match format.as_str() {
            "jpg" | "jpeg" => 3,
            "png" => 4,
            other => {
                return Err(bad(&format!(
                    "{other} tiles can't be served yet (jpg and png can)"
                )))
            }
        };
        let top = 32 - (width.max(height) - 1).leading_zeros(); // ceil(log2(max side))
        let levels = (0..=top)
            .map(|k| (width.div_ceil(1 << k), height.div_ceil(1 << k)))
            .collect();
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let files = path.with_file_name(format!("{stem}_files"));
        if !files.is_dir() {
            return Err(Error::invalid(
                &files,
                "the pyramid's tile folder is missing",
            ));
        }
        Ok(DeepZoom {
            files,
            format,
            tile,
            overlap,
            levels,
            top,
            channels,
        })
    }
}

impl TileSource for DeepZoom {
    fn levels(&self) -> &[(u32, u32)] {
        &self.levels
    }

    fn channels(&self) -> usize {
        self.channels
    }

    fn grid(&self, _k: usize) -> (u32, u32) {
        (self.tile, self.tile)
    }

    fn decode(&self, k: usize, tx: u32, ty: u32) -> std::result::Result<Tile, String> {
        let (w, h) = self.levels[k];
        let (t, o) = (self.tile, self.overlap);
        // A tile carries `overlap` extra pixels on every side that has a neighbour.
        let x0 = (tx * t).saturating_sub(o);
        let y0 = (ty * t).saturating_sub(o);
        let x1 = ((tx + 1) * t + o).min(w);
        let y1 = ((ty + 1) * t + o).min(h);
        let (tw, th) = (x1 - x0, y1 - y0);
        let path = self.files.join(format!(
            "{}/{tx}_{ty}.{}",
            self.top as usize - k,
            self.format
        ));
        let work = PixelFormat::new(self.channels as u8, SampleType::U8);
        let pixels = if path.exists() {
            let opened = formats::open(&path).map_err(|e| e.to_string())?;
            let info = opened.source.info();
            if (info.width, info.height) != (tw, th) {
                return Err(format!(
                    "{}: {}x{}, the descriptor says {tw}x{th}",
                    path.display(),
                    info.width,
                    info.height
                ));
            }
            let mut source = raster::ops::convert(opened.source, work, Color::WHITE);
            let mut px = Vec::with_capacity(tw as usize * th as usize * self.channels);
            while let Some(s) = source.next_strip().map_err(|e| e.to_string())? {
                if let Samples::U8(v) = s.samples {
                    px.extend_from_slice(&v);
                }
            }
            px
        } else {
            // Left out as blank.
            vec![
                if self.channels == 4 { 0 } else { 255 };
                tw as usize * th as usize * self.channels
            ]
        };
        Ok(Tile {
            pixels,
            x0,
            y0,
            width: tw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_descriptor() {
        let xml = "<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\" Format=\"png\" Overlap=\"1\" TileSize=\"254\">\n  <Size Width=\"3000\" Height=\"2000\"/>\n</Image>";
        assert_eq!(attribute(xml, "TileSize").as_deref(), Some("254"));
        assert_eq!(attribute(xml, "Width").as_deref(), Some("3000"));
        assert_eq!(attribute(xml, "Format").as_deref(), Some("png"));
        assert_eq!(attribute(xml, "Missing"), None);
        assert_eq!(32 - (3000u32 - 1).leading_zeros(), 12);
        assert_eq!(32 - (1u32.max(1) - 1).leading_zeros(), 0);
    }
}
