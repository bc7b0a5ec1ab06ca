//! Multi-resolution sources read tile by tile: a request decodes only the
//! tiles under its region, on the level closest to its scale, and decoded
//! tiles are kept in a cache with a memory cap. Two sources: tiled TIFFs with
//! reduced-resolution pages (`giga convert --pyramid`, libvips' `pyramid`,
//! what IIPImage serves) and Deep Zoom pyramids (`giga tile`, [`crate::dzi`]).

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use raster::{Color, Error, PixelFormat, Result, SampleType, Samples, Strip};
use tiff::decoder::{ChunkType, Decoder, DecodingResult, Limits};
use tiff::ColorType;

/// Decoded tiles kept across requests, at most this many bytes.
pub const CACHE_BYTES: usize = 256 << 20;

type Dec = Decoder<BufReader<File>>;

/// A decoded tile: 8-bit RGB(A) pixels covering `width` columns from level
/// column `x0` and rows from level row `y0` (a DZI tile carries its overlap).
pub struct Tile {
    /// 8-bit RGB(A), row by row.
    pub pixels: Vec<u8>,
    /// Level column of the first pixel.
    pub x0: u32,
    /// Level row of the first pixel.
    pub y0: u32,
    /// Columns.
    pub width: u32,
}

/// Something made of levels (full resolution first) cut into a grid of tiles.
pub trait TileSource: Send + Sync {
    /// (width, height) of each level, full resolution first.
    fn levels(&self) -> &[(u32, u32)];
    /// Channels served: 3 (RGB) or 4 (RGBA), 8-bit.
    fn channels(&self) -> usize;
    /// The grid step of level `k`'s tiles.
    fn grid(&self, k: usize) -> (u32, u32);
    /// Tile (tx, ty) of level `k`, decoded.
    fn decode(&self, k: usize, tx: u32, ty: u32) -> std::result::Result<Tile, String>;
    /// What became of an ICC profile, for the log.
    fn colour(&self) -> Option<String> {
        None
    }
}

/// A tile source with the cache in front of it.
pub struct Tiled {
    /// Where tiles come from.
    pub source: Box<dyn TileSource>,
    cache: Mutex<Cache>,
}

/// A multi-resolution tiled TIFF: its pages as levels.
pub struct TiledPages {
    path: PathBuf,
    levels: Vec<(u32, u32)>,
    channels: usize,
    stored: PixelFormat,
    tiles: Vec<(u32, u32)>,
    /// Decoders positioned on each page, one per concurrent request.
    pools: Vec<Mutex<Vec<Dec>>>,
    /// The conversion of the file's ICC profile to sRGB, applied to each decoded tile.
    to_srgb: Option<color::ToSrgb>,
    colour: Option<String>,
}

/// Decoded tiles, least recently used evicted first: `order` holds (key, use stamp)
/// for every use; an entry whose stamp is not the tile's latest is stale and skipped.
#[derive(Default)]
struct Cache {
    map: HashMap<TileKey, (Arc<Tile>, u64)>,
    order: VecDeque<(TileKey, u64)>,
    bytes: usize,
    clock: u64,
}

type TileKey = (usize, u32, u32);

impl Cache {
    /// The tile, marked as just used.
    fn get(&mut self, key: TileKey) -> Option<Arc<Tile>> {
        self.clock += 1;
        let clock = self.clock;
        let (tile, stamp) = self.map.get_mut(&key)?;
        *stamp = clock;
        let tile = tile.clone();
        self.order.push_back((key, clock));
        Some(tile)
    }

    /// Adds a tile (once, whoever decoded it first) and evicts the least recently used past the cap.
    fn insert(&mut self, key: TileKey, tile: Arc<Tile>, cap: usize) -> Arc<Tile> {
        if let Some(t) = self.get(key) {
            return t;
        }
        self.clock += 1;
        self.bytes += tile.pixels.len();
        self.map.insert(key, (tile.clone(), self.clock));
        self.order.push_back((key, self.clock));
        while self.bytes > cap {
            let Some((old, stamp)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|(_, s)| *s == stamp) {
                let (v, _) = self.map.remove(&old).expect("just seen");
                self.bytes -= v.pixels.len();
            }
        }
        tile
    }
}

fn decoder(path: &Path, page: usize) -> std::result::Result<Dec, String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut d = Decoder::new(BufReader::new(f)).map_err(|e| e.to_string())?;
    let mut limits = Limits::unlimited();
    limits.ifd_value_size = 1 << 30;
    d = d.with_limits(limits);
    if page > 0 {
        d.seek_to_image(page).map_err(|e| e.to_string())?;
    }
    Ok(d)
}

impl TiledPages {
    /// The pages of `path` if it is a tiled TIFF with reduced-resolution pages; `None` otherwise.
    pub fn open(path: &Path) -> Result<Option<TiledPages>> {
        let mut head = [0u8; 4];
        if let Ok(mut f) = File::open(path) {
            use std::io::Read;
            let _ = f.read(&mut head);
        }
        if !(head.starts_with(b"II") || head.starts_with(b"MM")) {
            return Ok(None);
        }
        let bad = |m: String| Error::invalid(path, m);
        let mut d = decoder(path, 0).map_err(bad)?;
        let icc = d.get_tag_u8_vec(tiff::tags::Tag::IccProfile).ok();
        let mut levels = Vec::new();
        let mut tiles = Vec::new();
        let mut color = None;
        loop {
            if d.get_chunk_type() != ChunkType::Tile {
                return Ok(None);
            }
            let (w, h) = d.dimensions().map_err(|e| bad(e.to_string()))?;
            let c = d.colortype().map_err(|e| bad(e.to_string()))?;
            if *color.get_or_insert(c) != c {
                return Ok(None);
            }
            if let Some(&(pw, ph)) = levels.last() {
                // Each page about half the one before (rounded either way).
                let ok = |p: u32, v: u32| v == p.div_ceil(2) || v == p / 2;
                if !ok(pw, w) || !ok(ph, h) {
                    break;
                }
            }
            levels.push((w, h));
            tiles.push(d.chunk_dimensions());
            if !d.more_images() {
                break;
            }
            if d.next_image().is_err() {
                break;
            }
        }
        if levels.len() < 2 {
            return Ok(None);
        }
        let (channels, bits) = match color.unwrap() {
            ColorType::Gray(b) => (1, b),
            ColorType::GrayA(b) => (2, b),
            ColorType::RGB(b) => (3, b),
            ColorType::RGBA(b) => (4, b),
            other => return Err(bad(format!("unsupported TIFF colour type {other:?}"))),
        };
        let sample = match bits {
            8 => SampleType::U8,
            16 => SampleType::U16,
            32 => SampleType::F32,
            b => return Err(bad(format!("unsupported TIFF depth {b}"))),
        };
        let stored = PixelFormat::new(channels, sample);
        let served = stored.for_web().channels as usize;
        // Tiles are converted one by one as they are decoded (and then cached).
        let kind = raster::ImageInfo {
            width: 1,
            height: 1,
            format: PixelFormat::new(channels, SampleType::U8),
        };
        let (to_srgb, colour) = match icc.map(|icc| color::ToSrgb::from_icc(&icc, &kind)) {
            Some(Ok(Some((c, name)))) => (Some(c), crate::image::colour_note(Ok(Some(name)))),
            Some(Err(why)) => (None, crate::image::colour_note(Err(why))),
            _ => (None, None),
        };
        let pools = (0..levels.len()).map(|_| Mutex::new(Vec::new())).collect();
        Ok(Some(TiledPages {
            path: path.to_path_buf(),
            levels,
            channels: served,
            stored,
            tiles,
            pools,
            to_srgb,
            colour,
        }))
    }
}

impl TileSource for TiledPages {
    fn levels(&self) -> &[(u32, u32)] {
        &self.levels
    }

    fn channels(&self) -> usize {
        self.channels
    }

    fn grid(&self, k: usize) -> (u32, u32) {
        self.tiles[k]
    }

    fn colour(&self) -> Option<String> {
        self.colour.clone()
    }

    fn decode(&self, k: usize, tx: u32, ty: u32) -> std::result::Result<Tile, String> {
        let (gw, gh) = self.tiles[k];
        let index = ty * self.levels[k].0.div_ceil(gw) + tx;
        let popped = self.pools[k].lock().unwrap().pop();
        let mut d = match popped {
            Some(d) => d,
            None => decoder(&self.path, k)?,
        };
        let (tw, th) = d.chunk_data_dimensions(index);
        let r = d
            .read_chunk(index)
            .map_err(|e| format!("{}: {e}", self.path.display()));
        self.pools[k].lock().unwrap().push(d);
        let samples = match r? {
            DecodingResult::U8(v) => Samples::U8(v),
            DecodingResult::U16(v) => Samples::U16(v),
            DecodingResult::F32(v) => Samples::F32(v),
            _ => return Err("unsupported TIFF samples".into()),
        };
        let mut strip = Strip::new(0, tw, th, self.stored.channels, samples);
        if let Some(c) = &self.to_srgb {
            let eight = PixelFormat::new(self.stored.channels, SampleType::U8);
            strip = c.apply(raster::ops::convert_strip(strip, eight, Color::WHITE));
        }
        let work = PixelFormat::new(self.channels as u8, SampleType::U8);
        let Samples::U8(pixels) = raster::ops::convert_strip(strip, work, Color::WHITE).samples
        else {
            unreachable!()
        };
        // Edge tiles come clipped by the decoder.
        Ok(Tile {
            pixels,
            x0: tx * gw,
            y0: ty * gh,
            width: tw,
        })
    }
}

impl Tiled {
    /// A source behind an empty cache.
    pub fn new(source: Box<dyn TileSource>) -> Tiled {
        Tiled {
            source,
            cache: Mutex::new(Cache::default()),
        }
    }

    fn tile(&self, k: usize, tx: u32, ty: u32) -> std::result::Result<Arc<Tile>, String> {
        if let Some(t) = self.cache.lock().unwrap().get((k, tx, ty)) {
            return Ok(t);
        }
        let tile = Arc::new(self.source.decode(k, tx, ty)?);
        Ok(self
            .cache
            .lock()
            .unwrap()
            .insert((k, tx, ty), tile, CACHE_BYTES))
    }

    /// Pixels `[x0, x1) x [y0, y1)` of level `k`, 8-bit RGB(A).
    pub fn window(
        &self,
        k: usize,
        x0: u32,
        y0: u32,
        x1: u32,
        y1: u32,
    ) -> std::result::Result<Vec<u8>, String> {
        let (tw, th) = self.source.grid(k);
        let c = self.source.channels();
        let ww = (x1 - x0) as usize;
        let mut out = vec![0u8; ww * (y1 - y0) as usize * c];
        // Decode the tiles not cached yet on all cores, then copy each one's grid cell.
        let wanted: Vec<(u32, u32)> = (y0 / th..=(y1 - 1) / th)
            .flat_map(|ty| (x0 / tw..=(x1 - 1) / tw).map(move |tx| (tx, ty)))
            .collect();
        let decoded: Vec<std::result::Result<Arc<Tile>, String>> = {
            use rayon::prelude::*;
            wanted
                .par_iter()
                .map(|&(tx, ty)| self.tile(k, tx, ty))
                .collect()
        };
        for (&(tx, ty), tile) in wanted.iter().zip(decoded) {
            let tile = tile?;
            let (ax0, ax1) = (x0.max(tx * tw), x1.min(tx * tw + tw));
            let (ay0, ay1) = (y0.max(ty * th), y1.min(ty * th + th));
            let dw = tile.width as usize;
            for y in ay0..ay1 {
                let src = ((y - tile.y0) as usize * dw + (ax0 - tile.x0) as usize) * c;
                let dst = ((y - y0) as usize * ww + (ax0 - x0) as usize) * c;
                let n = (ax1 - ax0) as usize * c;
                out[dst..dst + n].copy_from_slice(&tile.pixels[src..src + n]);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    fn tile(n: usize) -> Arc<Tile> {
        Arc::new(Tile {
            pixels: vec![0; n],
            x0: 0,
            y0: 0,
            width: 1,
        })
    }

    #[test]
    fn counts_a_tile_once_and_evicts_the_least_recently_used() {
        let mut c = Cache::default();
        c.insert((0, 0, 0), tile(10), 30);
        // A second request that decoded the same tile meanwhile: counted once.
        c.insert((0, 0, 0), tile(10), 30);
        assert_eq!(c.bytes, 10);
        c.insert((0, 1, 0), tile(10), 30);
        c.insert((0, 2, 0), tile(10), 30);
        assert!(c.get((0, 0, 0)).is_some()); // (0,0,0) is now the most recent
        c.insert((0, 3, 0), tile(10), 30); // over the cap: (0,1,0) goes, not (0,0,0)
        assert!(c.map.contains_key(&(0, 0, 0)) && !c.map.contains_key(&(0, 1, 0)));
        assert_eq!(c.bytes, 30);
    }
}
