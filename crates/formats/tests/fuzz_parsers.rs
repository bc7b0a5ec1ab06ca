//! Property tests standing in for a fuzzer: mutated and random headers of
//! every format must give an error or an image, never a panic, an abort or a
//! hang. The whole binary runs under a 4 GB address-space limit (set by the
//! first test to run), so a header that makes a reader allocate what it
//! claims fails the test instead of filling the machine.
//! The corpus is generated (a few valid small files), so nothing is committed.

use proptest::prelude::*;
use raster::{ImageInfo, PixelFormat, SampleType, Samples, Strip};

/// Caps this process's address space at 4 GB (once).
fn cap_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let cap = libc::rlimit {
            rlim_cur: 4 << 30,
            rlim_max: 4 << 30,
        };
        // SAFETY: setrlimit reads the struct we own.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &cap) }, 0);
    });
}

const SEEDS: [formats::Format; 6] = [
    formats::Format::Tiff,
    formats::Format::Psd,
    formats::Format::Kro,
    formats::Format::Png,
    formats::Format::Jpeg,
    formats::Format::Pnm,
];

/// A small valid file of `format`, written by giga.
fn valid_file(format: formats::Format, dir: &std::path::Path) -> Vec<u8> {
    let channels = if format == formats::Format::Jpeg {
        3
    } else {
        4
    };
    let info = ImageInfo {
        width: 37,
        height: 19,
        format: PixelFormat::new(channels, SampleType::U8),
    };
    let ext = match format {
        formats::Format::Tiff => "tif",
        formats::Format::Psd => "psd",
        formats::Format::Kro => "kro",
        formats::Format::Png => "png",
        formats::Format::Jpeg => "jpg",
        formats::Format::Pnm => "pam",
        formats::Format::Pmtiles => unreachable!("giga tile writes archives"),
    };
    let path = dir.join(format!("seed.{ext}"));
    // With a (dummy) ICC profile, so that mutations reach the profile readers too.
    let opts = formats::WriteOptions {
        icc: Some((0..60u8).collect()),
        ..Default::default()
    };
    let mut sink = formats::create(&path, format, &info, &opts).unwrap();
    let v: Vec<u8> = (0..37 * 19 * channels as usize)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    sink.write(Strip::new(0, 37, 19, channels, Samples::U8(v)))
        .unwrap();
    sink.finish().unwrap();
    std::fs::read(&path).unwrap()
}

/// Opens and reads `bytes` completely; only a panic fails the test.
fn read_all(bytes: &[u8], dir: &std::path::Path, name: &str) {
    cap_memory();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    if let Ok(opened) = formats::open(&path) {
        let mut src = opened.source;
        let info = src.info();
        // Refuse to stream absurd sizes in a test; the header parse is what is fuzzed.
        if (info.width as u64) * (info.height as u64) > 1 << 24 {
            return;
        }
        while let Ok(Some(_)) = src.next_strip() {}
    }
}

fn mutate(seed: &[u8], edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let mut b = seed.to_vec();
    for &(i, v) in edits {
        let n = b.len();
        b[i % n] = v;
    }
    if let Some(c) = cut {
        b.truncate(c % (seed.len() + 1));
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1200, .. ProptestConfig::default() })]

    #[test]
    fn mutated_files_never_panic(
        which in 0usize..6,
        // Edits concentrated in the headers, where the parsers are.
        edits in proptest::collection::vec((0usize..300, any::<u8>()), 1..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let format = SEEDS[which];
        let seed = valid_file(format, dir.path());
        let b = mutate(&seed, &edits, cut);
        read_all(&b, dir.path(), "mutated");
    }

    /// Sizes in the headers set to extremes: the budget, not the allocator, refuses them.
    #[test]
    fn huge_sizes_never_abort(
        which in 0usize..6,
        at in 0usize..64,
        value in prop_oneof![Just(0xFFu8), Just(0x7F), Just(0x10), Just(0)],
        run in 1usize..5,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let seed = valid_file(SEEDS[which], dir.path());
        let edits: Vec<(usize, u8)> = (0..run).map(|k| (at + k, value)).collect();
        read_all(&mutate(&seed, &edits, None), dir.path(), "huge");
    }

    #[test]
    fn tiff_headers_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..400), big in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let mut b = if big { b"II+\0\x08\0\0\0".to_vec() } else { b"II*\0".to_vec() };
        b.extend_from_slice(&tail);
        read_all(&b, dir.path(), "random.tif");
    }
}
