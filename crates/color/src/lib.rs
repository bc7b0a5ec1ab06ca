//! ICC colour profiles: what a profile is called, and converting a strip
//! stream to sRGB with LittleCMS. Browsers show images without a profile as
//! sRGB, so the tiles and IIIF responses of an Adobe RGB or ProPhoto master
//! must be converted or their colours come out dull; giga's file outputs
//! carry the profile instead.

#![deny(missing_docs)]

mod matrix;

use lcms2::{
    DisallowCache, Flags, GlobalContext, InfoType, Intent, Locale, PixelFormat as CmsFormat,
    Profile, ToneCurve, Transform,
};
use rayon::prelude::*;

use raster::{ImageInfo, SampleType, Source, Strip};

/// A parsed ICC profile.
pub struct Icc {
    profile: Profile,
}

impl Icc {
    /// Parses a profile's bytes; `Err` says why they can't be used.
    pub fn parse(bytes: &[u8]) -> Result<Icc, String> {
        // LittleCMS's own message spans lines and says little more.
        Profile::new_icc(bytes)
            .map(|profile| Icc { profile })
            .map_err(|_| format!("unreadable ICC profile ({} bytes)", bytes.len()))
    }

    /// The profile's own name (its description tag), e.g. "Adobe RGB (1998)".
    pub fn description(&self) -> String {
        self.profile
            .info(InfoType::Description, Locale::none())
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "unnamed".into())
    }

    fn is_gray(&self) -> bool {
        self.profile.color_space() == lcms2::ColorSpaceSignature::GrayData
    }

    fn is_rgb(&self) -> bool {
        self.profile.color_space() == lcms2::ColorSpaceSignature::RgbData
    }

    /// Whether the profile describes the colours of an image of `info`'s kind.
    pub fn fits(&self, info: &ImageInfo) -> bool {
        if info.format.color_channels() == 1 {
            self.is_gray()
        } else {
            self.is_rgb()
        }
    }
}

/// The sRGB tone curve (IEC 61966-2-1) as LittleCMS's parametric type 4.
fn srgb_curve() -> ToneCurve {
    ToneCurve::new_parametric(4, &[2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045])
        .expect("a valid parametric curve")
}

fn cms_format(info: &ImageInfo) -> CmsFormat {
    match (info.format.color_channels(), info.format.has_alpha()) {
        (1, false) => CmsFormat::GRAY_8,
        (1, true) => CmsFormat::GRAYA_8,
        (_, false) => CmsFormat::RGB_8,
        (_, true) => CmsFormat::RGBA_8,
    }
}

/// A conversion of 8-bit pixels from a profile to sRGB (gray images: to gray
/// with sRGB's tone curve), in place, shareable between threads. 8-bit only:
/// LittleCMS's optimised 8-bit transforms are within a level of the exact
/// result, its 16-bit ones up to 3 levels off unless unoptimised (7 MP/s).
pub struct ToSrgb {
    method: Method,
    channels: usize,
}

enum Method {
    /// Gray: the result for each of the 256 levels, from LittleCMS.
    Table(Box<[u8; 256]>),
    /// RGB matrix/TRC profiles (Adobe RGB, ProPhoto, Display P3...): about
    /// four times LittleCMS's speed, checked against it when made.
    Matrix(Box<matrix::MatrixShaper>),
    /// Other profiles (lookup tables): LittleCMS for every pixel.
    Cms(Transform<u8, u8, GlobalContext, DisallowCache>),
}

impl ToSrgb {
    /// `None` when the conversion changes no 8-bit value by more than one
    /// level (the profile is sRGB, whatever its name), so nothing needs doing.
    pub fn new(icc: &Icc, info: &ImageInfo) -> Result<Option<ToSrgb>, String> {
        if info.format.sample != SampleType::U8 {
            return Err(format!(
                "internal error: colour conversion takes 8-bit pixels, not {}",
                info.format.name()
            ));
        }
        if !icc.fits(info) {
            return Err(format!(
                "the ICC profile \"{}\" is not for {} images",
                icc.description(),
                info.format.name()
            ));
        }
        let target = if icc.is_gray() {
            let d65 = lcms2::CIExyY {
                x: 0.3127,
                y: 0.3290,
                Y: 1.0,
            };
            Profile::new_gray(&d65, &srgb_curve()).map_err(|e| e.to_string())?
        } else {
            Profile::new_srgb()
        };
        let make = |format| {
            Transform::new_flags_context(
                GlobalContext::new(),
                &icc.profile,
                format,
                &target,
                format,
                Intent::Perceptual,
                Flags::COPY_ALPHA | Flags::NO_CACHE,
            )
            .map_err(|e| {
                format!(
                    "can't convert from the ICC profile \"{}\": {e}",
                    icc.description()
                )
            })
        };
        // Colour without alpha, to probe with: a ramp of every level on each channel.
        let colour = ImageInfo {
            format: raster::PixelFormat::new(info.format.color_channels(), SampleType::U8),
            ..*info
        };
        let cms = make(cms_format(&colour))?;
        let ch = colour.format.channels as usize;
        let ramp: Vec<u8> = (0..=255u8)
            .flat_map(|v| {
                (0..ch).flat_map(move |c| (0..ch).map(move |k| if k == c { v } else { v / 2 }))
            })
            .collect();
        let mut want = ramp.clone();
        cms.transform_in_place(&mut want);
        if ramp.iter().zip(&want).all(|(a, b)| a.abs_diff(*b) <= 1) {
            return Ok(None);
        }
        let channels = info.format.channels as usize;
        let method = if ch == 1 {
            let mut table = Box::new([0u8; 256]);
            table.iter_mut().enumerate().for_each(|(v, t)| *t = v as u8);
            cms.transform_in_place(&mut table[..]);
            Method::Table(table)
        } else {
            match matrix::MatrixShaper::new(&icc.profile, &target).filter(|m| agrees(m, &cms)) {
                Some(m) => Method::Matrix(Box::new(m)),
                None => Method::Cms(make(cms_format(info))?),
            }
        };
        Ok(Some(ToSrgb { method, channels }))
    }

    /// [`ToSrgb::new`] from the profile's bytes, with the profile's name.
    pub fn from_icc(icc: &[u8], info: &ImageInfo) -> Result<Option<(ToSrgb, String)>, String> {
        let profile = Icc::parse(icc)?;
        Ok(ToSrgb::new(&profile, info)?.map(|c| (c, profile.description())))
    }

    /// Converts a strip in place, its rows spread over the cores.
    pub fn apply(&self, mut strip: Strip) -> Strip {
        let row = strip.width as usize * self.channels;
        let rows_per_job = (256 * 1024 / row.max(1)).max(1);
        strip
            .samples
            .as_bytes_mut()
            .par_chunks_mut(row * rows_per_job)
            .for_each(|chunk| match &self.method {
                Method::Table(t) => chunk
                    .chunks_exact_mut(self.channels)
                    .for_each(|p| p[0] = t[p[0] as usize]),
                Method::Matrix(m) => m.apply(chunk, self.channels),
                Method::Cms(t) => t.transform_in_place(chunk),
            });
        strip
    }
}

/// Whether the matrix path gives LittleCMS's result within a level, on every
/// level of each channel (the others at half) and a 17x17x17 grid.
fn agrees(m: &matrix::MatrixShaper, cms: &Transform<u8, u8, GlobalContext, DisallowCache>) -> bool {
    let step = |i: u32| (i * 255 / 16) as u8;
    let mut probe: Vec<u8> = (0..=255u8)
        .flat_map(|v| (0..3).flat_map(move |c| (0..3).map(move |k| if k == c { v } else { v / 2 })))
        .collect();
    probe.extend((0..17 * 17 * 17).flat_map(|i| [step(i % 17), step(i / 17 % 17), step(i / 289)]));
    let (mut ours, mut theirs) = (probe.clone(), probe);
    m.apply(&mut ours, 3);
    cms.transform_in_place(&mut theirs);
    ours.iter().zip(&theirs).all(|(a, b)| a.abs_diff(*b) <= 1)
}

/// `source` rounded to 8 bits (its channels kept) and converted from the
/// profile `icc` to sRGB. Says how it went: `Ok(Some(name))`, converted from
/// the profile `name`; `Ok(None)`, the profile is sRGB already; `Err(why)`,
/// the profile can't be used and the values pass unchanged, as browsers
/// ignore such a profile too.
pub fn to_srgb(
    source: Box<dyn Source>,
    icc: &[u8],
) -> (Box<dyn Source>, Result<Option<String>, String>) {
    let format = raster::PixelFormat::new(source.info().format.channels, SampleType::U8);
    let source = raster::ops::convert(source, format, raster::Color::WHITE);
    let info = source.info();
    match ToSrgb::from_icc(icc, &info) {
        Ok(Some((c, name))) => (
            Box::new(raster::Mapped::new(source, info, move |s| c.apply(s))),
            Ok(Some(name)),
        ),
        Ok(None) => (source, Ok(None)),
        Err(why) => (source, Err(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raster::PixelFormat;

    fn info(channels: u8) -> ImageInfo {
        ImageInfo {
            width: 4,
            height: 2,
            format: PixelFormat::new(channels, SampleType::U8),
        }
    }

    #[test]
    fn srgb_needs_no_conversion_and_kinds_must_match() {
        let bytes = Profile::new_srgb().icc().unwrap();
        let srgb = Icc::parse(&bytes).unwrap();
        assert!(ToSrgb::new(&srgb, &info(4)).unwrap().is_none());
        assert!(ToSrgb::new(&srgb, &info(3)).unwrap().is_none());
        let e = ToSrgb::new(&srgb, &info(2)).err().unwrap();
        assert!(e.contains("is not for gray+alpha images"), "{e}");
        assert!(Icc::parse(b"not a profile").is_err());
    }

    #[test]
    fn matrix_profiles_take_the_fast_path_and_agree_with_littlecms() {
        // Adobe RGB (1998)'s primaries and white, gamma 563/256.
        let white = lcms2::CIExyY {
            x: 0.3127,
            y: 0.3290,
            Y: 1.0,
        };
        let primaries = lcms2::CIExyYTRIPLE {
            Red: lcms2::CIExyY {
                x: 0.64,
                y: 0.33,
                Y: 1.0,
            },
            Green: lcms2::CIExyY {
                x: 0.21,
                y: 0.71,
                Y: 1.0,
            },
            Blue: lcms2::CIExyY {
                x: 0.15,
                y: 0.06,
                Y: 1.0,
            },
        };
        let curve = ToneCurve::new(563.0 / 256.0);
        let adobe = Profile::new_rgb(&white, &primaries, &[&curve, &curve, &curve]).unwrap();
        let icc = Icc::parse(&adobe.icc().unwrap()).unwrap();
        let to = ToSrgb::new(&icc, &info(4)).unwrap().expect("a conversion");
        assert!(matches!(to.method, Method::Matrix(_)));
        // Every 8-bit gray and a saturated green, against LittleCMS's own transform, alpha kept.
        let mut px: Vec<u8> = (0..=255u8).flat_map(|v| [v, v, v, 255 - v]).collect();
        px.extend([0, 255, 0, 7]);
        let out = to.apply(Strip::new(0, 257, 1, 4, raster::Samples::U8(px.clone())));
        let raster::Samples::U8(v) = out.samples else {
            panic!()
        };
        let srgb = Profile::new_srgb();
        let cms = Transform::new_flags(
            &adobe,
            CmsFormat::RGBA_8,
            &srgb,
            CmsFormat::RGBA_8,
            Intent::Perceptual,
            Flags::COPY_ALPHA,
        )
        .unwrap();
        let mut want = px.clone();
        cms.transform_in_place(&mut want);
        assert!(v.iter().zip(&want).all(|(a, b)| a.abs_diff(*b) <= 1));
        assert_eq!(
            v.iter().skip(3).step_by(4).copied().collect::<Vec<_>>(),
            px.iter().skip(3).step_by(4).copied().collect::<Vec<_>>()
        );
        // Adobe RGB's green is outside sRGB: clipped to full green.
        assert_eq!(&v[256 * 4..256 * 4 + 3], &[0, 255, 0]);
    }

    #[test]
    fn gamma_18_gray_is_brightened_and_alpha_kept() {
        let gray = Profile::new_gray(
            &lcms2::CIExyY {
                x: 0.3457,
                y: 0.3585,
                Y: 1.0,
            },
            &ToneCurve::new(1.8),
        )
        .unwrap();
        let icc = Icc::parse(&gray.icc().unwrap()).unwrap();
        let to = ToSrgb::new(&icc, &info(2)).unwrap().expect("a conversion");
        let strip = Strip::new(
            0,
            4,
            2,
            2,
            raster::Samples::U8(vec![
                0, 9, 64, 10, 128, 11, 255, 12, 0, 13, 64, 14, 128, 15, 255, 16,
            ]),
        );
        let out = to.apply(strip);
        let raster::Samples::U8(v) = out.samples else {
            panic!()
        };
        assert_eq!(
            v.iter().skip(1).step_by(2).copied().collect::<Vec<_>>(),
            (9..=16).collect::<Vec<u8>>()
        );
        // Linear light (v/255)^1.8 re-encoded with the sRGB curve: 64 -> 81, 128 -> 146.
        assert_eq!((v[0], v[6]), (0, 255));
        assert!(v[2].abs_diff(81) <= 1 && v[4].abs_diff(146) <= 1, "{v:?}");
    }
}
