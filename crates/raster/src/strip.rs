use crate::{PixelFormat, SampleType};

/// Samples of a strip in native byte order, interleaved (RGBA RGBA ...).
#[derive(Clone, Debug, PartialEq)]
pub enum Samples {
    /// 8-bit samples.
    U8(Vec<u8>),
    /// 16-bit samples.
    U16(Vec<u16>),
    /// Float samples.
    F32(Vec<f32>),
}

impl Samples {
    /// `len` zero samples of `sample`.
    pub fn zeros(sample: SampleType, len: usize) -> Samples {
        match sample {
            SampleType::U8 => Samples::U8(vec![0; len]),
            SampleType::U16 => Samples::U16(vec![0; len]),
            SampleType::F32 => Samples::F32(vec![0.0; len]),
        }
    }
    /// An empty buffer for `len` samples of `sample`.
    pub fn with_capacity(sample: SampleType, len: usize) -> Samples {
        match sample {
            SampleType::U8 => Samples::U8(Vec::with_capacity(len)),
            SampleType::U16 => Samples::U16(Vec::with_capacity(len)),
            SampleType::F32 => Samples::F32(Vec::with_capacity(len)),
        }
    }
    /// The samples' type.
    pub fn sample_type(&self) -> SampleType {
        match self {
            Samples::U8(_) => SampleType::U8,
            Samples::U16(_) => SampleType::U16,
            Samples::F32(_) => SampleType::F32,
        }
    }
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Samples::U8(v) => v.len(),
            Samples::U16(v) => v.len(),
            Samples::F32(v) => v.len(),
        }
    }
    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The samples as bytes in native order.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Samples::U8(v) => v,
            Samples::U16(v) => bytemuck::cast_slice(v),
            Samples::F32(v) => bytemuck::cast_slice(v),
        }
    }
    /// The samples as bytes, to read into (native byte order).
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Samples::U8(v) => v,
            Samples::U16(v) => bytemuck::cast_slice_mut(v),
            Samples::F32(v) => bytemuck::cast_slice_mut(v),
        }
    }
    /// Decodes big-endian bytes (KRO, PSD, PNG, PNM) into native samples.
    pub fn from_be_bytes(sample: SampleType, bytes: &[u8]) -> Samples {
        let mut s = Samples::zeros(sample, bytes.len() / sample.bytes());
        let n = s.len() * sample.bytes();
        s.as_bytes_mut().copy_from_slice(&bytes[..n]);
        s.swap_if_little_endian();
        s
    }
    /// Appends the samples to `out` as big-endian bytes.
    pub fn extend_be_bytes(&self, out: &mut Vec<u8>) {
        match self {
            Samples::U8(v) => out.extend_from_slice(v),
            Samples::U16(v) => out.extend(v.iter().flat_map(|s| s.to_be_bytes())),
            Samples::F32(v) => out.extend(v.iter().flat_map(|s| s.to_be_bytes())),
        }
    }
    /// Appends the samples to `out` as little-endian bytes (TIFF).
    pub fn extend_le_bytes(&self, out: &mut Vec<u8>) {
        match self {
            Samples::U8(v) => out.extend_from_slice(v),
            Samples::U16(v) => out.extend(v.iter().flat_map(|s| s.to_le_bytes())),
            Samples::F32(v) => out.extend(v.iter().flat_map(|s| s.to_le_bytes())),
        }
    }
    /// Swaps each multi-byte sample in place on little-endian machines: big-endian files then read in place.
    pub fn swap_if_little_endian(&mut self) {
        if cfg!(target_endian = "little") {
            match self {
                Samples::U8(_) => {}
                Samples::U16(v) => v.iter_mut().for_each(|s| *s = s.swap_bytes()),
                Samples::F32(v) => v
                    .iter_mut()
                    .for_each(|s| *s = f32::from_bits(s.to_bits().swap_bytes())),
            }
        }
    }
    /// A copy of `len` samples from `start`.
    pub fn slice(&self, start: usize, len: usize) -> Samples {
        match self {
            Samples::U8(v) => Samples::U8(v[start..start + len].to_vec()),
            Samples::U16(v) => Samples::U16(v[start..start + len].to_vec()),
            Samples::F32(v) => Samples::F32(v[start..start + len].to_vec()),
        }
    }
    /// Appends `len` samples of `other` from `start`; both must have the same type.
    pub fn extend_from(&mut self, other: &Samples, start: usize, len: usize) {
        match (self, other) {
            (Samples::U8(a), Samples::U8(b)) => a.extend_from_slice(&b[start..start + len]),
            (Samples::U16(a), Samples::U16(b)) => a.extend_from_slice(&b[start..start + len]),
            (Samples::F32(a), Samples::F32(b)) => a.extend_from_slice(&b[start..start + len]),
            _ => panic!("sample types differ"),
        }
    }
}

/// A band of `height` full-width rows starting at row `y`.
#[derive(Clone, Debug, PartialEq)]
pub struct Strip {
    /// The strip's first row in the image.
    pub y: u32,
    /// Pixels a row (the image's width).
    pub width: u32,
    /// Rows in the strip.
    pub height: u32,
    /// Channels a pixel.
    pub channels: u8,
    /// The samples, interleaved, rows top to bottom.
    pub samples: Samples,
}

impl Strip {
    /// A strip of rows `y..y + height`.
    pub fn new(y: u32, width: u32, height: u32, channels: u8, samples: Samples) -> Strip {
        debug_assert_eq!(
            samples.len(),
            width as usize * height as usize * channels as usize
        );
        Strip {
            y,
            width,
            height,
            channels,
            samples,
        }
    }
    /// The strip's pixel format.
    pub fn format(&self) -> PixelFormat {
        PixelFormat::new(self.channels, self.samples.sample_type())
    }
    /// Samples a row.
    pub fn row_samples(&self) -> usize {
        self.width as usize * self.channels as usize
    }
    /// The window `x..x+width` of rows `row..row+rows` (relative to this strip), as a new strip at `y`.
    pub fn window(&self, x: u32, width: u32, row: u32, rows: u32, y: u32) -> Strip {
        let c = self.channels as usize;
        let stride = self.row_samples();
        let n = width as usize * c;
        if x == 0 && width == self.width {
            let s = self
                .samples
                .slice(row as usize * stride, rows as usize * stride);
            return Strip::new(y, width, rows, self.channels, s);
        }
        let mut s = Samples::with_capacity(self.samples.sample_type(), n * rows as usize);
        for r in row..row + rows {
            s.extend_from(&self.samples, r as usize * stride + x as usize * c, n);
        }
        Strip::new(y, width, rows, self.channels, s)
    }
}
