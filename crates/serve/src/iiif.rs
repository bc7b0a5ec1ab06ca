//! IIIF Image API request parsing and the geometry it implies, for versions
//! 3.0 and 2.1. Pure functions: the server turns their errors into 400/501.

/// Why a request can't be answered: 400 (malformed or impossible) or 501 (valid, not offered).
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// 400: malformed or impossible.
    Bad(String),
    /// 501: valid, but not offered.
    Unsupported(String),
}

fn bad<T>(m: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::Bad(m.into()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// The IIIF quality.
pub enum Quality {
    /// As stored.
    Default,
    /// As stored (colour).
    Color,
    /// Luma only.
    Gray,
    /// Black and white.
    Bitonal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// The response's image format.
pub enum Format {
    /// JPEG.
    Jpg,
    /// PNG.
    Png,
    /// WebP.
    Webp,
}

impl Format {
    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
        }
    }
}

/// A parsed image request: the region in image pixels, the output size,
/// mirroring and rotation (multiples of 90), quality and format.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Region: first column.
    pub x: u32,
    /// Region: first row.
    pub y: u32,
    /// Region: width.
    pub w: u32,
    /// Region: height.
    pub h: u32,
    /// Output width.
    pub out_w: u32,
    /// Output height.
    pub out_h: u32,
    /// Mirror before rotating (`!`).
    pub mirror: bool,
    /// Clockwise degrees: 0, 90, 180 or 270.
    pub rotation: u32,
    /// The quality.
    pub quality: Quality,
    /// The format.
    pub format: Format,
}

/// The server's limits on output sizes.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Widest output (IIIF maxWidth).
    pub max_width: u32,
    /// Tallest output (maxHeight).
    pub max_height: u32,
    /// Largest output area in pixels (maxArea).
    pub max_area: u64,
}

/// A non-negative decimal as IIIF writes them (digits and at most one dot).
fn number(s: &str) -> Result<f64, Refusal> {
    if s.is_empty()
        || !s.chars().all(|c| c.is_ascii_digit() || c == '.')
        || s.matches('.').count() > 1
        || s == "."
    {
        return bad(format!("{s:?} is not a number"));
    }
    s.parse().or_else(|_| bad(format!("{s:?} is not a number")))
}

fn integer(s: &str) -> Result<u64, Refusal> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
        return bad(format!("{s:?} is not a whole number"));
    }
    s.parse().or_else(|_| bad(format!("{s:?} is too large")))
}

/// Region → (x, y, w, h) inside a `width` x `height` image.
pub fn region(s: &str, width: u32, height: u32) -> Result<(u32, u32, u32, u32), Refusal> {
    let (iw, ih) = (width as u64, height as u64);
    let (x, y, w, h) = match s {
        "full" => return Ok((0, 0, width, height)),
        "square" => {
            let side = iw.min(ih);
            ((iw - side) / 2, (ih - side) / 2, side, side)
        }
        _ => {
            let (pct, body) = match s.strip_prefix("pct:") {
                Some(b) => (true, b),
                None => (false, s),
            };
            let parts: Vec<&str> = body.split(',').collect();
            if parts.len() != 4 {
                return bad(format!(
                    "region {s:?} is not full, square, x,y,w,h or pct:x,y,w,h"
                ));
            }
            if pct {
                let v = parts
                    .iter()
                    .map(|p| number(p))
                    .collect::<Result<Vec<f64>, _>>()?;
                let px = |f: f64, total: u64| (f / 100.0 * total as f64).round() as u64;
                (px(v[0], iw), px(v[1], ih), px(v[2], iw), px(v[3], ih))
            } else {
                let v = parts
                    .iter()
                    .map(|p| integer(p))
                    .collect::<Result<Vec<u64>, _>>()?;
                (v[0], v[1], v[2], v[3])
            }
        }
    };
    if w == 0 || h == 0 {
        return bad(format!("region {s:?} is empty"));
    }
    if x >= iw || y >= ih {
        return bad(format!(
            "region {s:?} lies outside the {width}x{height} image"
        ));
    }
    Ok((
        x as u32,
        y as u32,
        w.min(iw - x) as u32,
        h.min(ih - y) as u32,
    ))
}

/// Size → output (w, h) for a region of `rw` x `rh`.
pub fn size(s: &str, rw: u32, rh: u32, v3: bool, limits: Limits) -> Result<(u32, u32), Refusal> {
    let (up, body) = match s.strip_prefix('^') {
        Some(b) if v3 => (true, b),
        Some(_) => return bad("'^' sizes are IIIF 3 only"),
        None => (!v3, s), // 2.1 allows sizes above the region (sizeAboveFull)
    };
    let (rw64, rh64) = (rw as f64, rh as f64);
    // The largest size allowed by the limits for this aspect ratio.
    let max_fit = || -> (u32, u32) {
        let mut scale: f64 = 1.0f64
            .min(limits.max_width as f64 / rw64)
            .min(limits.max_height as f64 / rh64);
        let area = rw64 * rh64 * scale * scale;
        if area > limits.max_area as f64 {
            scale *= (limits.max_area as f64 / area).sqrt();
        }
        (
            ((rw64 * scale).floor() as u32).max(1),
            ((rh64 * scale).floor() as u32).max(1),
        )
    };
    let (w, h) = match body {
        "max" => {
            if up {
                let scale = (limits.max_width as f64 / rw64)
                    .min(limits.max_height as f64 / rh64)
                    .min((limits.max_area as f64 / (rw64 * rh64)).sqrt());
                (
                    ((rw64 * scale).floor() as u32).max(1),
                    ((rh64 * scale).floor() as u32).max(1),
                )
            } else {
                max_fit()
            }
        }
        "full" if !v3 => (rw, rh),
        _ => {
            if let Some(p) = body.strip_prefix("pct:") {
                let n = number(p)?;
                if n <= 0.0 || (n > 100.0 && !up) {
                    return bad(format!(
                        "size pct:{p} must be above 0 and at most 100 (or use ^)"
                    ));
                }
                (
                    ((rw64 * n / 100.0).round() as u32),
                    ((rh64 * n / 100.0).round() as u32),
                )
            } else {
                let (confined, wh) = match body.strip_prefix('!') {
                    Some(b) => (true, b),
                    None => (false, body),
                };
                let Some((a, b)) = wh.split_once(',') else {
                    return bad(format!("size {s:?} is not one of the IIIF forms"));
                };
                match (a.is_empty(), b.is_empty()) {
                    (false, true) if !confined => {
                        let w = integer(a)? as f64;
                        (w as u32, (w * rh64 / rw64).round() as u32)
                    }
                    (true, false) if !confined => {
                        let h = integer(b)? as f64;
                        ((h * rw64 / rh64).round() as u32, h as u32)
                    }
                    (false, false) => {
                        let (w, h) = (integer(a)?, integer(b)?);
                        if w > u32::MAX as u64 || h > u32::MAX as u64 {
                            return bad("size too large");
                        }
                        if confined {
                            let scale = (w as f64 / rw64).min(h as f64 / rh64);
                            if scale > 1.0 && !up {
                                // The official validator (size_noup) wants this refused without ^.
                                return bad(format!("size {s:?} would enlarge the region; IIIF 3 needs ^ to upscale"));
                            }
                            (
                                ((rw64 * scale).round() as u32).max(1).min(w as u32),
                                ((rh64 * scale).round() as u32).max(1).min(h as u32),
                            )
                        } else {
                            (w as u32, h as u32)
                        }
                    }
                    _ => return bad(format!("size {s:?} is not one of the IIIF forms")),
                }
            }
        }
    };
    if w == 0 || h == 0 {
        return bad(format!("size {s:?} gives an empty image"));
    }
    if !up && (w > rw || h > rh) {
        return bad(format!(
            "size {s:?} is larger than the region ({rw}x{rh}); IIIF 3 needs ^ to upscale"
        ));
    }
    if w > limits.max_width || h > limits.max_height || w as u64 * h as u64 > limits.max_area {
        return bad(format!("size {w}x{h} is above this server's limits"));
    }
    Ok((w, h))
}

/// Rotation → (mirror, degrees), multiples of 90 only.
pub fn rotation(s: &str) -> Result<(bool, u32), Refusal> {
    let (mirror, body) = match s.strip_prefix('!') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let d = number(body)?;
    if d > 360.0 {
        return bad(format!("rotation {s:?} is above 360"));
    }
    if d.fract() != 0.0 || (d as u32) % 90 != 0 {
        return Err(Refusal::Unsupported(format!(
            "rotation {s:?}: only multiples of 90 are offered"
        )));
    }
    Ok((mirror, d as u32 % 360))
}

/// `quality.format` → (Quality, Format).
pub fn quality_format(s: &str) -> Result<(Quality, Format), Refusal> {
    let Some((q, f)) = s.rsplit_once('.') else {
        return bad(format!("{s:?} is not quality.format"));
    };
    let quality = match q {
        "default" => Quality::Default,
        "color" => Quality::Color,
        "gray" => Quality::Gray,
        "bitonal" => Quality::Bitonal,
        _ => return bad(format!("unknown quality {q:?}")),
    };
    let format = match f {
        "jpg" => Format::Jpg,
        "png" => Format::Png,
        "webp" => Format::Webp,
        _ => {
            return bad(format!(
                "unsupported format {f:?} (jpg, png and webp are offered)"
            ))
        }
    };
    Ok((quality, format))
}

/// Parses `region/size/rotation/quality.format` for an image of `width` x `height`.
pub fn parse(
    parts: [&str; 4],
    width: u32,
    height: u32,
    v3: bool,
    limits: Limits,
) -> Result<Request, Refusal> {
    let (x, y, w, h) = region(parts[0], width, height)?;
    let (mirror, rot) = rotation(parts[2])?;
    let (quality, format) = quality_format(parts[3])?;
    let (out_w, out_h) = size(parts[1], w, h, v3, limits)?;
    Ok(Request {
        x,
        y,
        w,
        h,
        out_w,
        out_h,
        mirror,
        rotation: rot,
        quality,
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_width: 100_000,
        max_height: 100_000,
        max_area: 100_000_000,
    };

    #[test]
    fn regions() {
        assert_eq!(region("full", 1000, 500), Ok((0, 0, 1000, 500)));
        assert_eq!(region("square", 1000, 500), Ok((250, 0, 500, 500)));
        assert_eq!(
            region("900,400,500,500", 1000, 500),
            Ok((900, 400, 100, 100))
        );
        assert_eq!(
            region("pct:10,20,50,50", 1000, 500),
            Ok((100, 100, 500, 250))
        );
        assert!(matches!(
            region("1000,0,5,5", 1000, 500),
            Err(Refusal::Bad(_))
        ));
        assert!(matches!(region("0,0,0,5", 1000, 500), Err(Refusal::Bad(_))));
        assert!(matches!(
            region("-1,0,5,5", 1000, 500),
            Err(Refusal::Bad(_))
        ));
        assert!(matches!(region("frob", 1000, 500), Err(Refusal::Bad(_))));
    }

    #[test]
    fn sizes() {
        assert_eq!(size("max", 1000, 500, true, L), Ok((1000, 500)));
        assert_eq!(size("500,", 1000, 500, true, L), Ok((500, 250)));
        assert_eq!(size(",100", 1000, 500, true, L), Ok((200, 100)));
        assert_eq!(size("pct:50", 1000, 500, true, L), Ok((500, 250)));
        assert_eq!(size("!300,300", 1000, 500, true, L), Ok((300, 150)));
        assert!(size("!2000,3000", 1000, 1000, true, L).is_err());
        assert_eq!(size("^!2000,500", 1000, 1000, true, L), Ok((500, 500)));
        assert_eq!(size("^2000,", 1000, 500, true, L), Ok((2000, 1000)));
        assert!(size("2000,", 1000, 500, true, L).is_err());
        assert_eq!(size("2000,", 1000, 500, false, L), Ok((2000, 1000)));
        assert_eq!(size("full", 1000, 500, false, L), Ok((1000, 500)));
        assert!(size("full", 1000, 500, true, L).is_err());
        let small = Limits {
            max_width: 400,
            max_height: 400,
            max_area: 1 << 40,
        };
        assert_eq!(size("max", 1000, 500, true, small), Ok((400, 200)));
    }

    #[test]
    fn rotations_and_formats() {
        assert_eq!(rotation("!90"), Ok((true, 90)));
        assert_eq!(rotation("360"), Ok((false, 0)));
        assert!(matches!(rotation("45"), Err(Refusal::Unsupported(_))));
        assert!(matches!(rotation("abc"), Err(Refusal::Bad(_))));
        assert_eq!(quality_format("gray.png"), Ok((Quality::Gray, Format::Png)));
        assert!(quality_format("default.gif").is_err());
    }
}
