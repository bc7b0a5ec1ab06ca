//! KRO, the uncompressed raster format of the Autopano stitchers.
//!
//! A 20-byte big-endian header (`KRO`, version 1, width, height, depth in bits,
//! components) followed by interleaved pixels, rows top to bottom, no padding.
//! This crate only knows the header and where each pixel lives; reading and
//! writing pixel strips is done by the `formats` crate. Every size computation
//! is checked, because a 62-gigapixel file is about 248 GB.

#![deny(missing_docs)]

use std::fmt;

/// Bytes before the first pixel.
pub const HEADER_LEN: u64 = 20;
/// The four bytes every KRO file starts with: `K`, `R`, `O`, version 1.
pub const MAGIC: [u8; 4] = *b"KRO\x01";

/// Bits per component: 8 and 16 are unsigned integers, 32 is IEEE-754 float.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Depth {
    /// 8-bit unsigned.
    U8,
    /// 16-bit unsigned, big-endian in the file.
    U16,
    /// 32-bit IEEE-754 float, big-endian in the file.
    F32,
}

impl Depth {
    /// Bits per component.
    pub fn bits(self) -> u32 {
        match self {
            Depth::U8 => 8,
            Depth::U16 => 16,
            Depth::F32 => 32,
        }
    }
    /// Bytes per component.
    pub fn bytes(self) -> u32 {
        self.bits() / 8
    }
    /// The depth with `bits` bits per component, if KRO has one.
    pub fn from_bits(bits: u32) -> Option<Depth> {
        match bits {
            8 => Some(Depth::U8),
            16 => Some(Depth::U16),
            32 => Some(Depth::F32),
            _ => None,
        }
    }
}

/// A parsed and validated KRO header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Pixels a row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Bits per component.
    pub depth: Depth,
    /// Components per pixel, 1..=4 (gray, gray+alpha, RGB, RGBA).
    pub channels: u32,
}

/// Why a header was refused. The messages are written to follow a file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The file has only this many bytes, fewer than the header's 20.
    TooShort(usize),
    /// The first three bytes are these, not `KRO`.
    Signature([u8; 3]),
    /// A version other than 1.
    Version(u8),
    /// A width or height of zero.
    ZeroSize {
        /// As the header says.
        width: u32,
        /// As the header says.
        height: u32,
    },
    /// Bits per component other than 8, 16 or 32.
    Depth(u32),
    /// Components other than 1 to 4.
    Channels(u32),
    /// The pixel data's size doesn't fit in 64 bits.
    Overflow,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::TooShort(n) => {
                write!(
                    f,
                    "not a KRO file: {n} bytes, shorter than the 20-byte header"
                )
            }
            HeaderError::Signature(s) => write!(
                f,
                "not a KRO file: signature is {:02X} {:02X} {:02X}, expected 4B 52 4F (\"KRO\")",
                s[0], s[1], s[2]
            ),
            HeaderError::Version(v) => write!(f, "unsupported KRO version {v} (only 1 exists)"),
            HeaderError::ZeroSize { width, height } => {
                write!(
                    f,
                    "invalid KRO header: size {width}x{height} has a zero side"
                )
            }
            HeaderError::Depth(d) => {
                write!(
                    f,
                    "invalid KRO header: depth {d} bits (must be 8, 16 or 32)"
                )
            }
            HeaderError::Channels(c) => {
                write!(
                    f,
                    "unsupported KRO header: {c} components per pixel (giga reads 1 to 4)"
                )
            }
            HeaderError::Overflow => {
                write!(f, "invalid KRO header: pixel data size overflows 64 bits")
            }
        }
    }
}

impl std::error::Error for HeaderError {}

impl Header {
    /// Builds a header, checking the same rules as [`Header::parse`].
    pub fn new(
        width: u32,
        height: u32,
        depth: Depth,
        channels: u32,
    ) -> Result<Header, HeaderError> {
        if width == 0 || height == 0 {
            return Err(HeaderError::ZeroSize { width, height });
        }
        if !(1..=4).contains(&channels) {
            return Err(HeaderError::Channels(channels));
        }
        let h = Header {
            width,
            height,
            depth,
            channels,
        };
        h.data_len().ok_or(HeaderError::Overflow)?;
        Ok(h)
    }

    /// Parses the first bytes of a file (at least 20 are needed).
    pub fn parse(bytes: &[u8]) -> Result<Header, HeaderError> {
        if bytes.len() < HEADER_LEN as usize {
            return Err(HeaderError::TooShort(bytes.len()));
        }
        if bytes[..3] != MAGIC[..3] {
            return Err(HeaderError::Signature([bytes[0], bytes[1], bytes[2]]));
        }
        if bytes[3] != MAGIC[3] {
            return Err(HeaderError::Version(bytes[3]));
        }
        let word =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let (width, height, bits, channels) = (word(4), word(8), word(12), word(16));
        if width == 0 || height == 0 {
            return Err(HeaderError::ZeroSize { width, height });
        }
        let depth = Depth::from_bits(bits).ok_or(HeaderError::Depth(bits))?;
        Header::new(width, height, depth, channels)
    }

    /// The 20 header bytes.
    pub fn to_bytes(&self) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[..4].copy_from_slice(&MAGIC);
        b[4..8].copy_from_slice(&self.width.to_be_bytes());
        b[8..12].copy_from_slice(&self.height.to_be_bytes());
        b[12..16].copy_from_slice(&self.depth.bits().to_be_bytes());
        b[16..20].copy_from_slice(&self.channels.to_be_bytes());
        b
    }

    /// Bytes per pixel.
    pub fn pixel_len(&self) -> u64 {
        self.channels as u64 * self.depth.bytes() as u64
    }

    /// Bytes per row.
    pub fn row_len(&self) -> u64 {
        self.width as u64 * self.pixel_len()
    }

    /// Bytes of pixel data, or `None` if that overflows u64.
    pub fn data_len(&self) -> Option<u64> {
        (self.width as u64)
            .checked_mul(self.height as u64)?
            .checked_mul(self.pixel_len())
    }

    /// Size the file must have: header plus pixels.
    pub fn file_len(&self) -> Option<u64> {
        self.data_len()?.checked_add(HEADER_LEN)
    }

    /// Byte offset of pixel (x, y); the caller keeps x < width and y < height.
    pub fn pixel_offset(&self, x: u32, y: u32) -> u64 {
        HEADER_LEN + (y as u64 * self.width as u64 + x as u64) * self.pixel_len()
    }
}

/// How a file's actual length compares with what its header promises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LengthCheck {
    /// The file is exactly header + pixels.
    Exact,
    /// The file has this many bytes after the pixels (readable, worth a warning).
    Trailing(u64),
    /// The file is this many bytes short: truncated, must be refused.
    Truncated(u64),
}

impl Header {
    /// How `actual`, a file's length, compares with what the header promises.
    pub fn check_len(&self, actual: u64) -> LengthCheck {
        let want = self.file_len().expect("validated header");
        match actual.cmp(&want) {
            std::cmp::Ordering::Equal => LengthCheck::Exact,
            std::cmp::Ordering::Greater => LengthCheck::Trailing(actual - want),
            std::cmp::Ordering::Less => LengthCheck::Truncated(want - actual),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let h = Header::new(350_000, 177_000, Depth::U8, 4).unwrap();
        let b = h.to_bytes();
        assert_eq!(&b[..4], b"KRO\x01");
        assert_eq!(Header::parse(&b).unwrap(), h);
        assert_eq!(h.data_len(), Some(350_000 * 177_000 * 4));
        assert_eq!(h.pixel_offset(1, 1), 20 + (350_001) * 4);
    }

    #[test]
    fn refuses_bad_headers() {
        let good = Header::new(3, 2, Depth::U16, 3).unwrap().to_bytes();
        let with = |i: usize, v: u8| {
            let mut b = good;
            b[i] = v;
            Header::parse(&b)
        };
        assert_eq!(with(0, b'H'), Err(HeaderError::Signature(*b"HRO")));
        assert_eq!(with(3, 2), Err(HeaderError::Version(2)));
        assert_eq!(with(15, 12), Err(HeaderError::Depth(12)));
        assert_eq!(with(19, 5), Err(HeaderError::Channels(5)));
        assert_eq!(with(19, 0), Err(HeaderError::Channels(0)));
        assert!(matches!(with(7, 0), Err(HeaderError::ZeroSize { .. })));
        assert_eq!(Header::parse(&good[..19]), Err(HeaderError::TooShort(19)));
    }

    #[test]
    fn length_check() {
        let h = Header::new(2, 2, Depth::U8, 4).unwrap();
        assert_eq!(h.check_len(36), LengthCheck::Exact);
        assert_eq!(h.check_len(40), LengthCheck::Trailing(4));
        assert_eq!(h.check_len(30), LengthCheck::Truncated(6));
    }

    #[test]
    fn largest_header_does_not_overflow() {
        // u32::MAX squared times 16 bytes still fits u64 only up to ~2^68: must be refused, not wrap.
        let h = Header::new(u32::MAX, u32::MAX, Depth::F32, 4);
        assert_eq!(h, Err(HeaderError::Overflow));
    }

    proptest! {
        // The header parser never panics, and whatever it accepts round-trips.
        #[test]
        fn parse_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(h) = Header::parse(&bytes) {
                prop_assert_eq!(&h.to_bytes()[..], &bytes[..20]);
                prop_assert!(h.file_len().is_some());
            }
        }

        #[test]
        fn parse_mutated_headers(w in any::<u32>(), h in any::<u32>(), d in any::<u32>(), c in any::<u32>()) {
            let mut b = [0u8; 20];
            b[..4].copy_from_slice(&MAGIC);
            b[4..8].copy_from_slice(&w.to_be_bytes());
            b[8..12].copy_from_slice(&h.to_be_bytes());
            b[12..16].copy_from_slice(&d.to_be_bytes());
            b[16..20].copy_from_slice(&c.to_be_bytes());
            match Header::parse(&b) {
                Ok(hd) => {
                    prop_assert!(w > 0 && h > 0 && (1..=4).contains(&c));
                    prop_assert!(matches!(d, 8 | 16 | 32));
                    prop_assert_eq!(hd.to_bytes(), b);
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}
