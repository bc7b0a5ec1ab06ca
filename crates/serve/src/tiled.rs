//! Multi-resolution tiled TIFFs (`giga convert --pyramid`, libvips'
//! `pyramid`, what IIPImage serves) read tile by tile: a request decodes
//! only the tiles under its region, on the page closest to its scale, and
//! decoded tiles are kept in a cache with a memory cap.

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

pub struct TiledPages {
    path: PathBuf,
    /// (width, height) of each page, full resolution first.
    pub levels: Vec<(u32, u32)>,
    /// Channels served: 3 (RGB) or 4 (RGBA), 8-bit.
    pub channels: usize,
    stored: PixelFormat,
    tiles: Vec<(u32, u32)>,
    /// Decoders positioned on each page, one per concurrent request.
    pools: Vec<Mutex<Vec<Dec>>>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    map: HashMap<(usize, u32), Arc<Vec<u8>>>,
    order: VecDeque<(usize, u32)>,
    bytes: usize,
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
        let served = pyramid::working_format(stored).channels as usize;
        let pools = (0..levels.len()).map(|_| Mutex::new(Vec::new())).collect();
        Ok(Some(TiledPages { path: path.to_path_buf(), levels, channels: served, stored, tiles, pools, cache: Mutex::new(Cache::default()) }))
    }

    /// Tile `index` of page `k`, decoded to 8-bit RGB(A), with its size.
    fn tile(&self, k: usize, index: u32) -> std::result::Result<Arc<Vec<u8>>, String> {
        if let Some(t) = self.cache.lock().unwrap().map.get(&(k, index)) {
            return Ok(t.clone());
        }
        let popped = self.pools[k].lock().unwrap().pop();
        let mut d = match popped {
            Some(d) => d,
            None => decoder(&self.path, k)?,
        };
        let (tw, th) = d.chunk_data_dimensions(index);
        let r = d.read_chunk(index).map_err(|e| format!("{}: {e}", self.path.display()));
        self.pools[k].lock().unwrap().push(d);
        let samples = match r? {
            DecodingResult::U8(v) => Samples::U8(v),
            DecodingResult::U16(v) => Samples::U16(v),
            DecodingResult::F32(v) => Samples::F32(v),
            _ => return Err("unsupported TIFF samples".into()),
        };
        let strip = Strip::new(0, tw, th, self.stored.channels, samples);
        let work = PixelFormat::new(self.channels as u8, SampleType::U8);
        let Samples::U8(px) = raster::ops::convert_strip(strip, work, Color::WHITE).samples else { unreachable!() };
        let px = Arc::new(px);
        let mut cache = self.cache.lock().unwrap();
        cache.bytes += px.len();
        cache.map.insert((k, index), px.clone());
        cache.order.push_back((k, index));
        while cache.bytes > CACHE_BYTES {
            let Some(old) = cache.order.pop_front() else { break };
            if let Some(v) = cache.map.remove(&old) {
                cache.bytes -= v.len();
            }
        }
        Ok(px)
    }

    /// Pixels `[x0, x1) x [y0, y1)` of page `k`, 8-bit RGB(A).
    pub fn window(&self, k: usize, x0: u32, y0: u32, x1: u32, y1: u32) -> std::result::Result<Vec<u8>, String> {
        let (tw, th) = self.tiles[k];
        let across = self.levels[k].0.div_ceil(tw);
        let c = self.channels;
        let ww = (x1 - x0) as usize;
        let mut out = vec![0u8; ww * (y1 - y0) as usize * c];
        // Decode the tiles not cached yet on all cores, then copy.
        let wanted: Vec<(u32, u32)> = (y0 / th..=(y1 - 1) / th).flat_map(|ty| (x0 / tw..=(x1 - 1) / tw).map(move |tx| (tx, ty))).collect();
        let decoded: Vec<std::result::Result<Arc<Vec<u8>>, String>> = {
            use rayon::prelude::*;
            wanted.par_iter().map(|&(tx, ty)| self.tile(k, ty * across + tx)).collect()
        };
        for (&(tx, ty), tile) in wanted.iter().zip(decoded) {
            let tile = tile?;
            {
                // The tile's data size (edge tiles are clipped by the decoder).
                let dw = tw.min(self.levels[k].0 - tx * tw) as usize;
                let (ax0, ax1) = (x0.max(tx * tw), x1.min(tx * tw + tw));
                let (ay0, ay1) = (y0.max(ty * th), y1.min(ty * th + th));
                for y in ay0..ay1 {
                    let src = ((y - ty * th) as usize * dw + (ax0 - tx * tw) as usize) * c;
                    let dst = ((y - y0) as usize * ww + (ax0 - x0) as usize) * c;
                    let n = (ax1 - ax0) as usize * c;
                    out[dst..dst + n].copy_from_slice(&tile[src..src + n]);
                }
            }
        }
        Ok(out)
    }
}
