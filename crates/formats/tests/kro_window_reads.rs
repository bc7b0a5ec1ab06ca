//! Cropping a KRO must read only the window: one positioned read per row.
//! Measured with the kernel's count of bytes this process read (/proc/self/io),
//! on a sparse 40 GB file that would take minutes to read whole. This file
//! holds a single test so that no other test reads in the same process.

use std::io::Write;

use raster::Rect;

fn bytes_read() -> u64 {
    let s = std::fs::read_to_string("/proc/self/io").unwrap();
    let line = s.lines().find(|l| l.starts_with("rchar:")).unwrap();
    line[6..].trim().parse().unwrap()
}

#[test]
fn crop_reads_only_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.kro");
    let (w, h) = (100_000u32, 100_000u32);
    let header = kro::Header::new(w, h, kro::Depth::U8, 4).unwrap();
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&header.to_bytes()).unwrap();
    f.set_len(header.file_len().unwrap()).unwrap(); // sparse: no disk used
                                                    // A marker pixel inside the window, to check the data is right.
    use std::os::unix::fs::FileExt;
    f.write_all_at(&[1, 2, 3, 4], header.pixel_offset(50_010, 60_020))
        .unwrap();
    drop(f);

    let before = bytes_read();
    let opened = formats::open(&path).unwrap();
    let rect = Rect {
        x: 50_000,
        y: 60_000,
        width: 1000,
        height: 1000,
    };
    let mut src = raster::crop(opened.source, rect);
    let mut rows = 0;
    let mut marker = None;
    while let Some(s) = src.next_strip().unwrap() {
        if (s.y..s.y + s.height).contains(&20) {
            let i = (((20 - s.y) * 1000 + 10) * 4) as usize;
            marker = Some(s.samples.as_bytes()[i..i + 4].to_vec());
        }
        rows += s.height;
    }
    let read = bytes_read() - before;
    assert_eq!(rows, 1000);
    assert_eq!(marker.unwrap(), vec![1, 2, 3, 4]);
    let window = 1000 * 1000 * 4;
    // The window plus the header and a little slack for the signature probe.
    assert!(
        read >= window && read < window + 4096,
        "read {read} bytes for a {window}-byte window"
    );
}
