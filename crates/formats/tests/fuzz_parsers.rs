//! Property tests standing in for a fuzzer: mutated and random headers of
//! every format must give an error or an image, never a panic or a hang.
//! The corpus is generated (a few valid small files), so nothing is committed.

use proptest::prelude::*;
use raster::{ImageInfo, PixelFormat, SampleType, Samples, Strip};

/// A small valid file of `format`, written by giga.
fn valid_file(format: formats::Format, dir: &std::path::Path) -> Vec<u8> {
    let info = ImageInfo {
        width: 37,
        height: 19,
        format: PixelFormat::new(4, SampleType::U8),
    };
    let ext = match format {
        formats::Format::Tiff => "tif",
        formats::Format::Psd => "psd",
        formats::Format::Kro => "kro",
        formats::Format::Png => "png",
        _ => unreachable!(),
    };
    let path = dir.join(format!("seed.{ext}"));
    // With a (dummy) ICC profile, so that mutations reach the profile readers too.
    let opts = formats::WriteOptions {
        icc: Some((0..60u8).collect()),
        ..Default::default()
    };
    let mut sink = formats::create(&path, format, &info, &opts).unwrap();
    let v: Vec<u8> = (0..37 * 19 * 4).map(|i| (i * 7 % 251) as u8).collect();
    sink.write(Strip::new(0, 37, 19, 4, Samples::U8(v)))
        .unwrap();
    sink.finish().unwrap();
    std::fs::read(&path).unwrap()
}

/// Opens and reads `bytes` completely; only a panic fails the test.
fn read_all(bytes: &[u8], dir: &std::path::Path, name: &str) {
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
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn mutated_files_never_panic(
        which in 0usize..4,
        // Edits concentrated in the headers, where the parsers are.
        edits in proptest::collection::vec((0usize..300, any::<u8>()), 1..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let format = [formats::Format::Tiff, formats::Format::Psd, formats::Format::Kro, formats::Format::Png][which];
        let seed = valid_file(format, dir.path());
        let b = mutate(&seed, &edits, cut);
        read_all(&b, dir.path(), "mutated");
    }

    #[test]
    fn tiff_headers_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..400), big in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let mut b = if big { b"II+\0\x08\0\0\0".to_vec() } else { b"II*\0".to_vec() };
        b.extend_from_slice(&tail);
        read_all(&b, dir.path(), "random.tif");
    }
}
