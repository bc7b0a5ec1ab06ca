//! A lenient LZW decoder for TIFF chunks the `tiff` crate refuses with "no
//! lzw end code found": some writers (imagecodecs, under tifffile) end a
//! chunk without the end code and with its last code cut short, inside the
//! padding of an edge tile. libtiff and imagecodecs read such files; so does
//! giga, as long as every byte the image uses was decoded.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Where a chunk lies in the file and what it holds.
pub(crate) struct Chunk {
    pub offset: u64,
    pub length: u64,
    /// Full chunk size (tiles are stored padded), in pixels.
    pub width: usize,
    pub height: usize,
    /// The part of it inside the image.
    pub used_width: usize,
    pub used_height: usize,
    /// Bytes a pixel: samples per pixel times bytes a sample.
    pub pixel_bytes: usize,
    /// Bytes a sample (1, 2 or 4) and the file's byte order, for the predictor.
    pub sample_bytes: usize,
    pub big_endian: bool,
    /// TIFF predictor: 1 none, 2 horizontal differencing.
    pub predictor: u16,
}

/// The used part of the chunk (rows of `used_width` pixels), in the file's byte order.
pub(crate) fn decode(file: &File, c: &Chunk) -> Result<Vec<u8>, String> {
    // Sizes come from the file: check them before allocating anything.
    let file_len = file.metadata().map_err(|e| e.to_string())?.len();
    let full_len = c
        .width
        .checked_mul(c.height)
        .and_then(|n| n.checked_mul(c.pixel_bytes));
    if c.used_width == 0 || c.used_height == 0 || c.used_width > c.width || c.used_height > c.height
    {
        return Err("chunk has no pixels".into());
    }
    if c.length > file_len.saturating_sub(c.offset) || full_len.is_none_or(|n| n > 1 << 30) {
        return Err("chunk size or position out of range".into());
    }
    let mut packed = vec![0u8; c.length as usize];
    file.read_exact_at(&mut packed, c.offset)
        .map_err(|e| e.to_string())?;
    let row = c.width * c.pixel_bytes;
    let mut full = vec![0u8; row * c.height];
    let mut dec = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
    let (mut read, mut written) = (0, 0);
    while written < full.len() {
        let r = dec.decode_bytes(&packed[read..], &mut full[written..]);
        read += r.consumed_in;
        written += r.consumed_out;
        match r.status {
            Ok(weezl::LzwStatus::Ok) if r.consumed_in + r.consumed_out > 0 => {}
            Ok(_) => break, // done, or the data ran out
            Err(e) => return Err(format!("bad LZW data: {e}")),
        }
    }
    // Everything up to the last used pixel must be there; the rest is padding.
    let needed = (c.used_height - 1) * row + c.used_width * c.pixel_bytes;
    if written < needed {
        return Err(format!(
            "LZW data ends after {written} of the {needed} bytes the image uses"
        ));
    }
    if c.predictor == 2 {
        undo_horizontal_differencing(&mut full, row, c);
    }
    let used = c.used_width * c.pixel_bytes;
    Ok(full
        .chunks_exact(row)
        .take(c.used_height)
        .flat_map(|r| &r[..used])
        .copied()
        .collect())
}

/// Predictor 2: each sample was stored as the difference from the same sample
/// of the pixel to its left.
fn undo_horizontal_differencing(full: &mut [u8], row: usize, c: &Chunk) {
    let spp = c.pixel_bytes / c.sample_bytes;
    for r in full.chunks_exact_mut(row) {
        match c.sample_bytes {
            1 => {
                for i in spp..r.len() {
                    r[i] = r[i].wrapping_add(r[i - spp]);
                }
            }
            2 => {
                let get = |b: &[u8], i: usize| {
                    if c.big_endian {
                        u16::from_be_bytes([b[2 * i], b[2 * i + 1]])
                    } else {
                        u16::from_le_bytes([b[2 * i], b[2 * i + 1]])
                    }
                };
                for i in spp..r.len() / 2 {
                    let v = get(r, i).wrapping_add(get(r, i - spp));
                    let bytes = if c.big_endian {
                        v.to_be_bytes()
                    } else {
                        v.to_le_bytes()
                    };
                    r[2 * i..2 * i + 2].copy_from_slice(&bytes);
                }
            }
            _ => {} // 32-bit samples with predictor 2 never get here (tiff_read.rs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lzw(data: &[u8], end_code: bool) -> Vec<u8> {
        let mut enc = weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
        let mut out = enc.encode(data).unwrap();
        if !end_code {
            out.truncate(out.len() - 2); // the end code and the last code's tail
        }
        out
    }

    #[test]
    fn short_streams_are_fine_when_only_padding_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        // A 4x4 tile of 1-byte gray with only its left 2x3 pixels inside the image.
        let data: Vec<u8> = (0..16u8).map(|i| i.wrapping_mul(37)).collect();
        let chunk = |length| Chunk {
            offset: 0,
            length,
            width: 4,
            height: 4,
            used_width: 2,
            used_height: 3,
            pixel_bytes: 1,
            sample_bytes: 1,
            big_endian: false,
            predictor: 1,
        };
        for end in [true, false] {
            let packed = lzw(&data, end);
            std::fs::write(&path, &packed).unwrap();
            let got = decode(&File::open(&path).unwrap(), &chunk(packed.len() as u64)).unwrap();
            assert_eq!(got, [data[0], data[1], data[4], data[5], data[8], data[9]]);
        }
        // Sizes from a corrupt file: errors before any allocation.
        let big = Chunk {
            width: 1 << 20,
            height: 1 << 20,
            ..chunk(3)
        };
        assert!(decode(&File::open(&path).unwrap(), &big)
            .unwrap_err()
            .contains("out of range"));
        assert!(decode(&File::open(&path).unwrap(), &chunk(1 << 40))
            .unwrap_err()
            .contains("out of range"));
        // Cut into the used part: an error, not zeros.
        let packed = lzw(&data, true);
        std::fs::write(&path, &packed[..3]).unwrap();
        assert!(decode(&File::open(&path).unwrap(), &chunk(3))
            .unwrap_err()
            .contains("ends after"));
    }

    #[test]
    fn horizontal_differencing_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        // Two RGB pixels a row, 8-bit: (10,20,30) (15,25,35) stored as differences.
        let stored = [10u8, 20, 30, 5, 5, 5];
        let packed = lzw(&stored, true);
        std::fs::write(&path, &packed).unwrap();
        let c = Chunk {
            offset: 0,
            length: packed.len() as u64,
            width: 2,
            height: 1,
            used_width: 2,
            used_height: 1,
            pixel_bytes: 3,
            sample_bytes: 1,
            big_endian: false,
            predictor: 2,
        };
        assert_eq!(
            decode(&File::open(&path).unwrap(), &c).unwrap(),
            [10, 20, 30, 15, 25, 35]
        );
    }
}
