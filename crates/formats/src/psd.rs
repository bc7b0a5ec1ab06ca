//! PSD and PSB, flat: only the merged composite is read or written.
//!
//! The composite is planar (all of red, then all of green, ...), so a strip
//! is gathered with one positioned read per channel. Raw and RLE (PackBits)
//! composites are read; giga writes raw, which streams without buffering.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use raster::{Error, ImageInfo, PixelFormat, Result, SampleType, Samples, Sink, Source, Strip};

use crate::io::{next_rows, read_up_to};
use crate::output::AtomicFile;

/// PSD allows at most 30,000 px a side; PSB 300,000.
pub const PSD_MAX_SIDE: u32 = 30_000;
pub const PSB_MAX_SIDE: u32 = 300_000;

type Details = Vec<(&'static str, String)>;

/// The parsed header and section positions of a PSD/PSB file.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub psb: bool,
    pub width: u32,
    pub height: u32,
    /// Channels stored in the file (the composite may use fewer).
    pub stored_channels: u16,
    pub channels: u8,
    pub sample: SampleType,
    pub rle: bool,
    /// Where the composite's compression field ends and its data (or RLE table) starts.
    pub data_start: u64,
    /// The image resources section: where its blocks start, and their length.
    pub resources: (u64, u64),
}

/// The ICC profile among the image resources (block 1039), if there is one.
/// Blocks are `8BIM`, an id, a padded Pascal name, a length and padded data;
/// a malformed section just has no profile.
pub fn read_icc(
    read: &dyn Fn(u64, &mut [u8]) -> std::io::Result<usize>,
    (start, len): (u64, u64),
) -> Option<Vec<u8>> {
    let end = start + len;
    let mut pos = start;
    while pos + 12 <= end {
        let mut head = [0u8; 8];
        (read(pos, &mut head).ok()? == 8 && &head[..4] == b"8BIM").then_some(())?;
        let id = u16::from_be_bytes([head[4], head[5]]);
        let name_len = head[6] as u64;
        pos += 6 + (1 + name_len).next_multiple_of(2);
        let mut size = [0u8; 4];
        (read(pos, &mut size).ok()? == 4).then_some(())?;
        let size = u32::from_be_bytes(size) as u64;
        pos += 4;
        if pos + size > end {
            return None;
        }
        if id == 1039 {
            let mut icc = vec![0u8; size as usize];
            return (read(pos, &mut icc).ok()? == icc.len()).then_some(icc);
        }
        pos += size.next_multiple_of(2);
    }
    None
}

/// Parses everything up to the composite image data. `read` reads bytes at
/// an offset (short at end of file); `len` is the file length.
pub fn parse_layout(
    read: &dyn Fn(u64, &mut [u8]) -> std::io::Result<usize>,
    len: u64,
) -> std::result::Result<Layout, String> {
    let mut h = [0u8; 26];
    let n = read(0, &mut h).map_err(|e| e.to_string())?;
    if n < 26 {
        return Err(format!(
            "not a PSD file: {n} bytes, shorter than the 26-byte header"
        ));
    }
    if &h[..4] != b"8BPS" {
        return Err("not a PSD file: no 8BPS signature".into());
    }
    let be16 = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let version = be16(&h[4..]);
    let psb = match version {
        1 => false,
        2 => true,
        v => return Err(format!("unsupported PSD version {v} (1 is PSD, 2 is PSB)")),
    };
    let stored_channels = be16(&h[12..]);
    let (height, width) = (be32(&h[14..]), be32(&h[18..]));
    let (depth, mode) = (be16(&h[22..]), be16(&h[24..]));
    if width == 0 || height == 0 {
        return Err(format!(
            "invalid PSD: size {width}x{height} has a zero side"
        ));
    }
    let max = if psb { PSB_MAX_SIDE } else { PSD_MAX_SIDE };
    if width > max || height > max {
        return Err(format!(
            "invalid PSD: {width}x{height} exceeds {max} px a side"
        ));
    }
    if stored_channels == 0 || stored_channels > 56 {
        return Err(format!(
            "invalid PSD: {stored_channels} channels (1 to 56 allowed)"
        ));
    }
    let sample = match depth {
        8 => SampleType::U8,
        16 => SampleType::U16,
        32 => SampleType::F32,
        d => {
            return Err(format!(
                "unsupported PSD depth {d} bits (giga reads 8, 16 and 32)"
            ))
        }
    };
    let channels = match mode {
        1 => stored_channels.min(2) as u8,
        3 if stored_channels >= 3 => stored_channels.min(4) as u8,
        3 => return Err(format!("invalid PSD: RGB with {stored_channels} channels")),
        m => {
            let name = match m {
                0 => "bitmap",
                2 => "indexed",
                4 => "CMYK",
                7 => "multichannel",
                8 => "duotone",
                9 => "Lab",
                _ => "unknown",
            };
            return Err(format!(
                "unsupported PSD colour mode {m} ({name}); giga reads grayscale and RGB"
            ));
        }
    };
    // Three length-prefixed sections: colour mode data, image resources, layers and masks.
    let mut pos = 26u64;
    let mut resources = (0, 0);
    for (i, wide) in [(0, false), (1, false), (2, psb)] {
        let mut b = [0u8; 8];
        let n = if wide { 8 } else { 4 };
        if read(pos, &mut b[..n]).map_err(|e| e.to_string())? < n {
            return Err(format!("truncated PSD: ends inside section {}", i + 1));
        }
        let l = if wide {
            u64::from_be_bytes(b)
        } else {
            be32(&b) as u64
        };
        if i == 1 {
            resources = (pos + n as u64, l);
        }
        pos = pos.checked_add(n as u64 + l).filter(|&p| p <= len).ok_or_else(|| {
            let name = ["colour mode data", "image resources", "layer and mask information"][i];
            format!("truncated or corrupt PSD: the {name} section ({l} bytes) runs past the end of the file")
        })?;
    }
    let mut c = [0u8; 2];
    if read(pos, &mut c).map_err(|e| e.to_string())? < 2 {
        return Err("truncated PSD: no composite image data".into());
    }
    let rle = match be16(&c) {
        0 => false,
        1 => true,
        2 | 3 => {
            return Err(
                "unsupported PSD: ZIP-compressed composite (save it uncompressed or with RLE)"
                    .into(),
            )
        }
        m => return Err(format!("corrupt PSD: unknown compression {m}")),
    };
    Ok(Layout {
        psb,
        width,
        height,
        stored_channels,
        channels,
        sample,
        rle,
        data_start: pos + 2,
        resources,
    })
}

pub(crate) fn open(path: &Path, file: File) -> Result<(Box<dyn Source>, Details, Option<Vec<u8>>)> {
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let read = |at: u64, buf: &mut [u8]| read_up_to(&file, buf, at);
    let layout = parse_layout(&read, len).map_err(|m| Error::invalid(path, m))?;
    let icc = read_icc(&read, layout.resources);
    let row_bytes = layout.width as u64 * layout.sample.bytes() as u64;
    let plane = row_bytes * layout.height as u64;
    let (w, h) = (layout.width, layout.height);
    // Start of each (channel, row) in the file, plus one past the end.
    let rows: Vec<u64> = if layout.rle {
        let n = layout.stored_channels as u64 * h as u64;
        let size = if layout.psb { 4 } else { 2 };
        if layout.data_start + n * size > len {
            return Err(Error::invalid(
                path,
                "truncated PSD: the RLE row table is cut off",
            ));
        }
        let mut table = vec![0u8; (n * size) as usize];
        if read_up_to(&file, &mut table, layout.data_start).map_err(|e| Error::io(path, e))?
            < table.len()
        {
            return Err(Error::invalid(
                path,
                "truncated PSD: the RLE row table is cut off",
            ));
        }
        let count = layout.channels as usize * h as usize;
        let row_len = |c: &[u8]| {
            if size == 2 {
                u16::from_be_bytes([c[0], c[1]]) as u64
            } else {
                u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64
            }
        };
        let mut at = layout.data_start + n * size;
        let mut offsets = Vec::with_capacity(count + 1);
        for c in table.chunks_exact(size as usize).take(count) {
            offsets.push(at);
            at += row_len(c);
        }
        offsets.push(at);
        let end = table
            .chunks_exact(size as usize)
            .skip(count)
            .fold(at, |a, c| a + row_len(c));
        if end > len {
            return Err(Error::invalid(
                path,
                format!("truncated PSD: the composite needs {end} bytes, the file has {len}"),
            ));
        }
        offsets
    } else {
        let end = layout.data_start + plane * layout.stored_channels as u64;
        if end > len {
            return Err(Error::invalid(
                path,
                format!("truncated PSD: the composite needs {end} bytes, the file has {len}"),
            ));
        }
        Vec::new()
    };
    let info = ImageInfo {
        width: w,
        height: h,
        format: PixelFormat::new(layout.channels, layout.sample),
    };
    let mut details = vec![
        (
            "container",
            if layout.psb {
                "PSB (large document)"
            } else {
                "PSD"
            }
            .to_string(),
        ),
        (
            "compression",
            if layout.rle { "RLE" } else { "none" }.to_string(),
        ),
    ];
    if layout.stored_channels as u8 != layout.channels {
        details.push(("stored channels", layout.stored_channels.to_string()));
    }
    Ok((
        Box::new(PsdReader {
            path: path.to_path_buf(),
            file,
            layout,
            info,
            rows,
            next: 0,
        }),
        details,
        icc,
    ))
}

struct PsdReader {
    path: PathBuf,
    file: File,
    layout: Layout,
    info: ImageInfo,
    rows: Vec<u64>,
    next: u32,
}

/// Expands PackBits `src` into exactly `dst.len()` bytes; false if malformed.
fn unpackbits(mut src: &[u8], dst: &mut [u8]) -> bool {
    let mut o = 0;
    while o < dst.len() {
        let Some((&n, rest)) = src.split_first() else {
            return false;
        };
        let n = n as i8;
        if n >= 0 {
            let k = n as usize + 1;
            if rest.len() < k || o + k > dst.len() {
                return false;
            }
            dst[o..o + k].copy_from_slice(&rest[..k]);
            o += k;
            src = &rest[k..];
        } else if n != -128 {
            let k = (1 - n as i32) as usize;
            if rest.is_empty() || o + k > dst.len() {
                return false;
            }
            dst[o..o + k].fill(rest[0]);
            o += k;
            src = &rest[1..];
        } else {
            src = rest;
        }
    }
    true
}

impl Source for PsdReader {
    fn info(&self) -> ImageInfo {
        self.info
    }

    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let info = self.info;
        let Some(rows) = next_rows(&info, self.next) else {
            return Ok(None);
        };
        let (y0, h) = (self.next as u64, info.height as u64);
        let sz = info.format.sample.bytes();
        let row_bytes = info.width as usize * sz;
        let c = info.format.channels as usize;
        let io = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                Error::invalid(&self.path, "file ended early (truncated PSD)")
            }
            _ => Error::io(&self.path, e),
        };
        // Planar bytes for this strip: channel after channel.
        let mut planes = vec![0u8; c * rows as usize * row_bytes];
        for (ch, plane) in planes
            .chunks_exact_mut(rows as usize * row_bytes)
            .enumerate()
        {
            if self.layout.rle {
                let first = ch * info.height as usize + y0 as usize;
                let (start, end) = (self.rows[first], self.rows[first + rows as usize]);
                let mut packed = vec![0u8; (end - start) as usize];
                self.file.read_exact_at(&mut packed, start).map_err(io)?;
                let mut p = 0usize;
                for r in 0..rows as usize {
                    let n = (self.rows[first + r + 1] - self.rows[first + r]) as usize;
                    if !unpackbits(
                        &packed[p..p + n],
                        &mut plane[r * row_bytes..(r + 1) * row_bytes],
                    ) {
                        return Err(Error::invalid(
                            &self.path,
                            format!(
                                "corrupt PSD: bad RLE data in channel {ch}, row {}",
                                y0 + r as u64
                            ),
                        ));
                    }
                    p += n;
                }
            } else {
                let at = self.layout.data_start + (ch as u64 * h + y0) * row_bytes as u64;
                self.file.read_exact_at(plane, at).map_err(io)?;
            }
        }
        let n = rows as usize * info.width as usize;
        let planes: Vec<&[u8]> = planes.chunks_exact(n * sz).collect();
        let samples = interleave(&planes, n, info.format.sample);
        let strip = Strip::new(self.next, info.width, rows, c as u8, samples);
        self.next += rows;
        Ok(Some(strip))
    }
}

/// Interleaves `planes` (one per channel, `n` big-endian samples each) into
/// native pixels, with the channel count and sample size known at compile
/// time (a generic per-sample copy was most of the time reading a PSB).
fn interleave(planes: &[&[u8]], n: usize, sample: SampleType) -> Samples {
    fn go<const C: usize, T: Copy + Default>(
        planes: &[&[u8]],
        n: usize,
        get: impl Fn(&[u8], usize) -> T,
    ) -> Vec<T> {
        let planes: [&[u8]; C] = std::array::from_fn(|ch| planes[ch]);
        let mut out = vec![T::default(); n * C];
        for (i, px) in out.chunks_exact_mut(C).enumerate() {
            for ch in 0..C {
                px[ch] = get(planes[ch], i);
            }
        }
        out
    }
    macro_rules! by_channels {
        ($t:ty, $get:expr) => {
            match planes.len() {
                1 => go::<1, $t>(planes, n, $get),
                2 => go::<2, $t>(planes, n, $get),
                3 => go::<3, $t>(planes, n, $get),
                _ => go::<4, $t>(planes, n, $get),
            }
        };
    }
    match sample {
        SampleType::U8 => Samples::U8(by_channels!(u8, |p: &[u8], i| p[i])),
        SampleType::U16 => Samples::U16(by_channels!(u16, |p: &[u8], i| u16::from_be_bytes([
            p[2 * i],
            p[2 * i + 1]
        ]))),
        SampleType::F32 => Samples::F32(by_channels!(f32, |p: &[u8], i| f32::from_be_bytes([
            p[4 * i],
            p[4 * i + 1],
            p[4 * i + 2],
            p[4 * i + 3]
        ]))),
    }
}

/// The header and empty sections of a flat, uncompressed PSD (or PSB if `psb`).
pub fn header_bytes(info: &ImageInfo, psb: bool, icc: Option<&[u8]>) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(b"8BPS");
    h.extend_from_slice(&(if psb { 2u16 } else { 1 }).to_be_bytes());
    h.extend_from_slice(&[0; 6]);
    h.extend_from_slice(&(info.format.channels as u16).to_be_bytes());
    h.extend_from_slice(&info.height.to_be_bytes());
    h.extend_from_slice(&info.width.to_be_bytes());
    h.extend_from_slice(&(info.format.sample.bits() as u16).to_be_bytes());
    h.extend_from_slice(&(if info.format.channels <= 2 { 1u16 } else { 3 }).to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes()); // colour mode data
    match icc {
        // One image resource: the ICC profile (block 1039, empty name, data padded to even).
        Some(icc) => {
            let padded = icc.len().next_multiple_of(2);
            h.extend_from_slice(&(12 + padded as u32).to_be_bytes());
            h.extend_from_slice(b"8BIM");
            h.extend_from_slice(&1039u16.to_be_bytes());
            h.extend_from_slice(&[0, 0]);
            h.extend_from_slice(&(icc.len() as u32).to_be_bytes());
            h.extend_from_slice(icc);
            h.resize(h.len() + padded - icc.len(), 0);
        }
        None => h.extend_from_slice(&0u32.to_be_bytes()),
    }
    if psb {
        h.extend_from_slice(&0u64.to_be_bytes()); // layers and masks
    } else {
        h.extend_from_slice(&0u32.to_be_bytes());
    }
    h.extend_from_slice(&0u16.to_be_bytes()); // raw composite
    h
}

pub(crate) fn create(path: &Path, info: &ImageInfo, icc: Option<&[u8]>) -> Result<Box<dyn Sink>> {
    // PSB when asked for by name, or when PSD can't hold the size.
    let named_psb = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("psb"));
    let psb = named_psb || info.width > PSD_MAX_SIDE || info.height > PSD_MAX_SIDE;
    let out = AtomicFile::create(path)?;
    let header = header_bytes(info, psb, icc);
    out.file()
        .write_all_at(&header, 0)
        .map_err(|e| out.err(e))?;
    Ok(Box::new(PsdWriter {
        out,
        info: *info,
        data_start: header.len() as u64,
    }))
}

struct PsdWriter {
    out: AtomicFile,
    info: ImageInfo,
    data_start: u64,
}

impl Sink for PsdWriter {
    fn write(&mut self, strip: Strip) -> Result<()> {
        let sz = self.info.format.sample.bytes();
        let c = strip.channels as usize;
        let row_bytes = self.info.width as u64 * sz as u64;
        let plane = row_bytes * self.info.height as u64;
        let mut buf = Vec::with_capacity(strip.samples.len() / c * sz);
        for ch in 0..c {
            // One channel's samples, big-endian (typed loops: no copy call per sample).
            buf.clear();
            match &strip.samples {
                Samples::U8(v) => buf.extend(v.chunks_exact(c).map(|p| p[ch])),
                Samples::U16(v) => buf.extend(v.chunks_exact(c).flat_map(|p| p[ch].to_be_bytes())),
                Samples::F32(v) => buf.extend(v.chunks_exact(c).flat_map(|p| p[ch].to_be_bytes())),
            }
            let at = self.data_start + ch as u64 * plane + strip.y as u64 * row_bytes;
            self.out
                .file()
                .write_all_at(&buf, at)
                .map_err(|e| self.out.err(e))?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.out.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(bytes: &[u8]) -> std::result::Result<Layout, String> {
        let read = |at: u64, buf: &mut [u8]| -> std::io::Result<usize> {
            let at = (at as usize).min(bytes.len());
            let n = buf.len().min(bytes.len() - at);
            buf[..n].copy_from_slice(&bytes[at..at + n]);
            Ok(n)
        };
        parse_layout(&read, bytes.len() as u64)
    }

    #[test]
    fn header_round_trip() {
        let info = ImageInfo {
            width: 40_000,
            height: 3,
            format: PixelFormat::new(4, SampleType::U16),
        };
        let h = header_bytes(&info, true, None);
        let l = parse(&h).unwrap();
        assert!(l.psb);
        assert_eq!(
            (l.width, l.height, l.channels, l.sample, l.rle),
            (40_000, 3, 4, SampleType::U16, false)
        );
        assert_eq!(l.data_start, h.len() as u64);
    }

    #[test]
    fn icc_profile_round_trip() {
        let info = ImageInfo {
            width: 5,
            height: 3,
            format: PixelFormat::new(3, SampleType::U8),
        };
        let bytes = |h: &[u8]| {
            let h = h.to_vec();
            move |at: u64, buf: &mut [u8]| -> std::io::Result<usize> {
                let at = (at as usize).min(h.len());
                let n = buf.len().min(h.len() - at);
                buf[..n].copy_from_slice(&h[at..at + n]);
                Ok(n)
            }
        };
        for icc in [&b"odd"[..], &b"even"[..]] {
            let h = header_bytes(&info, false, Some(icc));
            let l = parse(&h).unwrap();
            assert_eq!(l.data_start, h.len() as u64);
            assert_eq!(read_icc(&bytes(&h), l.resources).as_deref(), Some(icc));
        }
        let h = header_bytes(&info, false, None);
        assert_eq!(read_icc(&bytes(&h), parse(&h).unwrap().resources), None);
    }

    #[test]
    fn refuses_bad_headers() {
        let info = ImageInfo {
            width: 5,
            height: 3,
            format: PixelFormat::new(3, SampleType::U8),
        };
        let good = header_bytes(&info, false, None);
        let mut b = good.clone();
        b[0] = b'X';
        assert!(parse(&b).unwrap_err().contains("8BPS"));
        let mut b = good.clone();
        b[5] = 3;
        assert!(parse(&b).unwrap_err().contains("version 3"));
        let mut b = good.clone();
        b[25] = 4;
        assert!(parse(&b).unwrap_err().contains("CMYK"));
        let mut b = good.clone();
        b[29] = 200; // colour mode data longer than the file
        assert!(parse(&b).unwrap_err().contains("past the end"));
        assert!(parse(&good[..10]).unwrap_err().contains("shorter"));
    }

    proptest! {
        /// Whatever the bytes, parsing returns, never panics.
        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80), psb in any::<bool>()) {
            let mut b = b"8BPS".to_vec();
            b.extend_from_slice(&[0, if psb { 2 } else { 1 }]);
            b.extend_from_slice(&bytes);
            let _ = parse(&b);
            let _ = parse(&bytes);
        }

        /// Image resources of any content: a profile or none, never a panic or a read past the section.
        #[test]
        fn resources_never_panic(body in proptest::collection::vec(any::<u8>(), 0..120), start in 0u64..8, len in 0u64..200) {
            let mut bytes = b"8BIM".to_vec();
            bytes.extend_from_slice(&body);
            let read = |at: u64, buf: &mut [u8]| -> std::io::Result<usize> {
                let at = (at as usize).min(bytes.len());
                let n = buf.len().min(bytes.len() - at);
                buf[..n].copy_from_slice(&bytes[at..at + n]);
                Ok(n)
            };
            if let Some(icc) = read_icc(&read, (start, len)) {
                prop_assert!(icc.len() as u64 <= len);
            }
        }

        #[test]
        fn unpackbits_never_overruns(src in proptest::collection::vec(any::<u8>(), 0..200), n in 0usize..300) {
            let mut dst = vec![0u8; n];
            let _ = unpackbits(&src, &mut dst);
        }
    }
}
