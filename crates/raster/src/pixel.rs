use std::fmt;

/// How one sample is stored. Integers are unsigned and sRGB-encoded; floats
/// are nominally 0..1 and treated as linear by KRO.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SampleType {
    /// 8-bit unsigned.
    U8,
    /// 16-bit unsigned.
    U16,
    /// 32-bit float, 0..1 nominal.
    F32,
}

impl SampleType {
    /// Bits per sample.
    pub fn bits(self) -> u32 {
        match self {
            SampleType::U8 => 8,
            SampleType::U16 => 16,
            SampleType::F32 => 32,
        }
    }
    /// Bytes per sample.
    pub fn bytes(self) -> usize {
        self.bits() as usize / 8
    }
    /// The sample type with `bits` bits (8, 16 or 32).
    pub fn from_bits(bits: u32) -> Option<SampleType> {
        match bits {
            8 => Some(SampleType::U8),
            16 => Some(SampleType::U16),
            32 => Some(SampleType::F32),
            _ => None,
        }
    }
    /// Whether samples are floats.
    pub fn is_float(self) -> bool {
        self == SampleType::F32
    }
}

/// Channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) and sample type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PixelFormat {
    /// 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
    pub channels: u8,
    /// The samples' type.
    pub sample: SampleType,
}

impl PixelFormat {
    /// A format of `channels` channels of `sample`.
    pub fn new(channels: u8, sample: SampleType) -> PixelFormat {
        assert!((1..=4).contains(&channels), "channels must be 1..=4");
        PixelFormat { channels, sample }
    }
    /// Whether the last channel is alpha (2 or 4 channels).
    pub fn has_alpha(self) -> bool {
        self.channels == 2 || self.channels == 4
    }
    /// Channels that carry colour (1 or 3).
    pub fn color_channels(self) -> u8 {
        if self.has_alpha() {
            self.channels - 1
        } else {
            self.channels
        }
    }
    /// What browsers and web codecs take: 8-bit RGB, or RGBA when there is alpha (the
    /// tile pyramid's and the IIIF server's working format).
    pub fn for_web(self) -> PixelFormat {
        PixelFormat::new(if self.has_alpha() { 4 } else { 3 }, SampleType::U8)
    }
    /// Bytes a pixel.
    pub fn pixel_bytes(self) -> usize {
        self.channels as usize * self.sample.bytes()
    }
    /// "gray", "gray+alpha", "RGB" or "RGBA", for messages.
    pub fn name(self) -> &'static str {
        ["gray", "gray+alpha", "RGB", "RGBA"][self.channels as usize - 1]
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self.sample {
            SampleType::U8 => "8-bit",
            SampleType::U16 => "16-bit",
            SampleType::F32 => "32-bit float",
        };
        write!(f, "{} {}", s, self.name())
    }
}

/// Size and pixel format of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// Pixels a row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// What each pixel holds.
    pub format: PixelFormat,
}

impl ImageInfo {
    /// Bytes a row.
    pub fn row_bytes(&self) -> usize {
        self.width as usize * self.format.pixel_bytes()
    }
    /// Samples a row.
    pub fn row_samples(&self) -> usize {
        self.width as usize * self.format.channels as usize
    }
    /// A strip height giving strips of about `target` bytes: an even number
    /// of rows, at least two (the pyramid reduces pairs of rows, and a pair
    /// split between strips costs a copy), never more than the height.
    pub fn rows_for_bytes(&self, target: usize) -> u32 {
        let rows = (target / self.row_bytes().max(1)).max(2) & !1;
        rows.min(self.height as usize) as u32
    }
}

/// A pixel rectangle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    /// First column.
    pub x: u32,
    /// First row.
    pub y: u32,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
}

impl Rect {
    /// One past the last column.
    pub fn right(&self) -> u64 {
        self.x as u64 + self.width as u64
    }
    /// One past the last row.
    pub fn bottom(&self) -> u64 {
        self.y as u64 + self.height as u64
    }
}

impl fmt::Display for Rect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{},{},{}", self.x, self.y, self.width, self.height)
    }
}

/// An opaque colour, each component 0..1, used to flatten alpha.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Color(pub [f32; 3]);

impl Color {
    /// White: the default background.
    pub const WHITE: Color = Color([1.0; 3]);

    /// Parses `white`, `black`, `gray`, `#rgb`, `#rrggbb` or `r,g,b` (0..255).
    pub fn parse(s: &str) -> Option<Color> {
        let s = s.trim();
        match s.to_ascii_lowercase().as_str() {
            "white" => return Some(Color([1.0; 3])),
            "black" => return Some(Color([0.0; 3])),
            "gray" | "grey" => return Some(Color([128.0 / 255.0; 3])),
            _ => {}
        }
        let v: Vec<u32> = if let Some(hex) = s.strip_prefix('#') {
            let digits: Vec<u32> = hex.chars().map(|c| c.to_digit(16)).collect::<Option<_>>()?;
            match digits.len() {
                3 => digits.iter().map(|d| d * 17).collect(),
                6 => digits.chunks(2).map(|p| p[0] * 16 + p[1]).collect(),
                _ => return None,
            }
        } else {
            s.split(',')
                .map(|p| p.trim().parse().ok())
                .collect::<Option<_>>()?
        };
        if v.len() != 3 || v.iter().any(|&c| c > 255) {
            return None;
        }
        Some(Color([
            v[0] as f32 / 255.0,
            v[1] as f32 / 255.0,
            v[2] as f32 / 255.0,
        ]))
    }

    /// Rec. 601 luma, the usual weights for gray conversion.
    pub fn luma(&self) -> f32 {
        0.299 * self.0[0] + 0.587 * self.0[1] + 0.114 * self.0[2]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_colors() {
        assert_eq!(Color::parse("white"), Some(Color::WHITE));
        assert_eq!(Color::parse("#000"), Some(Color([0.0; 3])));
        assert_eq!(Color::parse("#ff0000"), Some(Color([1.0, 0.0, 0.0])));
        assert_eq!(Color::parse("0, 255,0"), Some(Color([0.0, 1.0, 0.0])));
        assert_eq!(Color::parse("256,0,0"), None);
        assert_eq!(Color::parse("#12"), None);
        assert_eq!(Color::parse("blue-ish"), None);
    }
}
