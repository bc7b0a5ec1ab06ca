//! ICC colour profiles: what a profile is called, and converting a strip
//! stream to sRGB with LittleCMS. Browsers show images without a profile as
//! sRGB, so tiles of an Adobe RGB or ProPhoto master must be converted or
//! their colours come out dull; giga's other outputs carry the profile instead.

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
    transform: Transform<u8, u8, GlobalContext, DisallowCache>,
    pixel_bytes: usize,
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
        let format = cms_format(info);
        let flags = Flags::COPY_ALPHA | Flags::NO_CACHE;
        let make = |f| {
            Transform::new_flags_context(
                GlobalContext::new(),
                &icc.profile,
                f,
                &target,
                f,
                Intent::Perceptual,
                flags,
            )
            .map_err(|e| {
                format!(
                    "can't convert from the ICC profile \"{}\": {e}",
                    icc.description()
                )
            })
        };
        let transform = make(format)?;
        // The identity test: a ramp of every level on each channel.
        let probe_info = ImageInfo {
            format: raster::PixelFormat::new(info.format.color_channels(), SampleType::U8),
            ..*info
        };
        let probe = make(cms_format(&probe_info))?;
        let ch = probe_info.format.channels as usize;
        let ramp: Vec<u8> = (0..=255u8)
            .flat_map(|v| {
                (0..ch).flat_map(move |c| (0..ch).map(move |k| if k == c { v } else { v / 2 }))
            })
            .collect();
        let mut out = ramp.clone();
        probe.transform_in_place(&mut out);
        if ramp.iter().zip(&out).all(|(a, b)| a.abs_diff(*b) <= 1) {
            return Ok(None);
        }
        Ok(Some(ToSrgb {
            transform,
            pixel_bytes: info.format.pixel_bytes(),
        }))
    }

    /// Converts a strip in place, its rows spread over the cores.
    pub fn apply(&self, mut strip: Strip) -> Strip {
        let row = strip.width as usize * self.pixel_bytes;
        let rows_per_job = (256 * 1024 / row.max(1)).max(1);
        strip
            .samples
            .as_bytes_mut()
            .par_chunks_mut(row * rows_per_job)
            .for_each(|chunk| self.transform.transform_in_place(chunk));
        strip
    }
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
    match Icc::parse(icc).and_then(|p| Ok((ToSrgb::new(&p, &info)?, p.description()))) {
        Ok((Some(c), name)) => (
            Box::new(raster::Mapped::new(source, info, move |s| c.apply(s))),
            Ok(Some(name)),
        ),
        Ok((None, _)) => (source, Ok(None)),
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
