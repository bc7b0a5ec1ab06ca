//! The floor for `giga tile` on this machine: the time to read the input
//! once plus the time to JPEG-encode every tile of the pyramid, divided by
//! the cores. Used by bench/tile.py; not part of giga.
//!
//!   cargo run --release --example floor -- IN.kro TILE QUALITY

use std::time::Instant;

use raster::{RowBlocks, Samples};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = std::path::Path::new(&args[1]);
    let tile: u32 = args.get(2).map_or(256, |t| t.parse().unwrap());
    let quality: u8 = args.get(3).map_or(85, |q| q.parse().unwrap());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    // 1. Read the file once, strip by strip, as giga does.
    let t = Instant::now();
    let mut src = formats::open(path).expect("open").source;
    let info = src.info();
    let mut bytes = 0u64;
    while let Some(s) = src.next_strip().expect("read") {
        bytes += s.samples.as_bytes().len() as u64;
    }
    let read = t.elapsed().as_secs_f64();

    // 2. Encode every full-resolution tile on one core (sampling every 4th
    //    tile row to keep this short), then scale to the whole pyramid.
    let mut src = formats::open(path).expect("open").source;
    let ch = info.format.channels as usize;
    let mut blocks = RowBlocks::new(tile);
    let (mut encode, mut encoded_px) = (0f64, 0u64);
    let mut block_index = 0;
    let mut handle = |block: raster::Strip| {
        block_index += 1;
        if block_index % 4 != 1 {
            return;
        }
        let Samples::U8(v) = &block.samples else {
            panic!("8-bit input expected")
        };
        let row = block.width as usize * ch;
        for x0 in (0..block.width).step_by(tile as usize) {
            let w = tile.min(block.width - x0);
            let mut px = Vec::with_capacity(w as usize * block.height as usize * ch);
            for r in 0..block.height as usize {
                px.extend_from_slice(
                    &v[r * row + x0 as usize * ch..r * row + (x0 + w) as usize * ch],
                );
            }
            let rgb = if ch == 4 {
                formats::encode::flatten(&px, raster::Color::WHITE)
            } else {
                px
            };
            let t = Instant::now();
            formats::encode::encode_jpeg(&rgb, w, block.height, quality).expect("encode");
            encode += t.elapsed().as_secs_f64();
            encoded_px += w as u64 * block.height as u64;
        }
    };
    while let Some(s) = src.next_strip().expect("read") {
        for b in blocks.push(s) {
            handle(b);
        }
    }
    if let Some(b) = blocks.finish() {
        handle(b);
    }
    let full = info.width as f64 * info.height as f64;
    let (mut pyramid_px, mut w, mut h) = (0f64, info.width as f64, info.height as f64);
    while w > 1.0 || h > 1.0 {
        pyramid_px += w * h;
        w = (w / 2.0).ceil();
        h = (h / 2.0).ceil();
    }
    let encode_all = encode / encoded_px as f64 * pyramid_px;

    // 3. Create the pyramid's number of tile files (of the mean JPEG size) in
    //    one folder per level, from all cores, as giga writes them.
    let tiles: u64 = {
        let (mut n, mut w, mut h) = (0u64, info.width as u64, info.height as u64);
        loop {
            n += w.div_ceil(tile as u64) * h.div_ceil(tile as u64);
            if w == 1 && h == 1 {
                break n;
            }
            w = w.div_ceil(2);
            h = h.div_ceil(2);
        }
    };
    // The folder (4th argument) is left for the caller to delete later: ext4 allocates
    // inodes slowly right after mass deletions, which would be charged to the next run.
    let dir = args.get(4).map_or_else(
        || path.with_extension("floor-tiles"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    let payload = vec![0x55u8; 15_000];
    let t = Instant::now();
    std::thread::scope(|s| {
        for c in 0..cores as u64 {
            let (dir, payload) = (&dir, &payload);
            s.spawn(move || {
                for i in (c..tiles).step_by(cores) {
                    pyramid::tiles::write_atomic(&dir.join(format!("{i}.jpg")), payload).unwrap();
                }
            });
        }
    });
    let create = t.elapsed().as_secs_f64();
    if args.get(4).is_none() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let floor = read + encode_all / cores as f64;
    let floor_files = floor + create;
    println!(
        "{{\"read_s\": {read:.3}, \"read_gb\": {:.2}, \"encode_mp_per_s\": {:.0}, \"pyramid_mp\": {:.0}, \"encode_all_s\": {encode_all:.3}, \"cores\": {cores}, \"floor_s\": {floor:.3}, \"tiles\": {tiles}, \"create_files_s\": {create:.3}, \"floor_with_files_s\": {floor_files:.3}, \"full_mp\": {:.0}}}",
        bytes as f64 / 1e9,
        encoded_px as f64 / 1e6 / encode,
        pyramid_px / 1e6,
        full / 1e6
    );
}
