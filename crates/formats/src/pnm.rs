//! Netpbm: binary PGM (P5), PPM (P6) and PAM (P7, for alpha). Handy for
//! piping into other tools. 8 or 16-bit (maxval 255 or 65535), big-endian.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use raster::{Error, ImageInfo, PixelFormat, Result, SampleType, Samples, Sink, Source, Strip};

use crate::io::{next_rows, RawWriter};
use crate::output::AtomicFile;

type Details = Vec<(&'static str, String)>;

/// Reads whitespace-separated header tokens, skipping `#` comments.
fn token(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut t = String::new();
    let mut b = [0u8];
    loop {
        if r.read(&mut b)? == 0 {
            return Ok(t);
        }
        match b[0] {
            b'#' if t.is_empty() => {
                let mut line = Vec::new();
                r.read_until(b'\n', &mut line)?;
            }
            c if c.is_ascii_whitespace() => {
                if !t.is_empty() {
                    return Ok(t);
                }
            }
            // No header token is longer: a 20 MB "number" is an error, not a 20 MB message.
            _ if t.len() >= 32 => return Ok(t),
            c => t.push(c as char),
        }
    }
}

pub(crate) fn open(path: &Path, file: File) -> Result<(Box<dyn Source>, Details)> {
    let mut r = BufReader::with_capacity(1 << 20, file);
    let bad = |m: &str| Error::invalid(path, format!("invalid PNM header: {m}"));
    let io = |e| Error::io(path, e);
    let magic = token(&mut r).map_err(io)?;
    let num = |s: String, what: &str| {
        s.parse::<u32>()
            .map_err(|_| bad(&format!("{what} {s:?} is not a number")))
    };
    let (width, height, depth, maxval) = match magic.as_str() {
        "P5" | "P6" => {
            let w = num(token(&mut r).map_err(io)?, "width")?;
            let h = num(token(&mut r).map_err(io)?, "height")?;
            let m = num(token(&mut r).map_err(io)?, "maxval")?;
            (w, h, if magic == "P5" { 1 } else { 3 }, m)
        }
        "P7" => {
            let (mut w, mut h, mut d, mut m) = (None, None, None, None);
            loop {
                let key = token(&mut r).map_err(io)?;
                match key.as_str() {
                    "ENDHDR" => break,
                    "WIDTH" => w = Some(num(token(&mut r).map_err(io)?, "width")?),
                    "HEIGHT" => h = Some(num(token(&mut r).map_err(io)?, "height")?),
                    "DEPTH" => d = Some(num(token(&mut r).map_err(io)?, "depth")?),
                    "MAXVAL" => m = Some(num(token(&mut r).map_err(io)?, "maxval")?),
                    "TUPLTYPE" => {
                        token(&mut r).map_err(io)?;
                    }
                    "" => return Err(bad("no ENDHDR")),
                    other => return Err(bad(&format!("unknown PAM header field {other}"))),
                }
            }
            let need = |v: Option<u32>, n: &str| v.ok_or_else(|| bad(&format!("no {n}")));
            (
                need(w, "WIDTH")?,
                need(h, "HEIGHT")?,
                need(d, "DEPTH")?,
                need(m, "MAXVAL")?,
            )
        }
        _ => return Err(bad("not P5, P6 or P7")),
    };
    if width == 0 || height == 0 {
        return Err(bad(&format!("size {width}x{height} has a zero side")));
    }
    if !(1..=4).contains(&depth) {
        return Err(bad(&format!("{depth} channels (1 to 4 supported)")));
    }
    let sample = match maxval {
        255 => SampleType::U8,
        65535 => SampleType::U16,
        m => return Err(bad(&format!("maxval {m} (giga reads 255 and 65535)"))),
    };
    let info = ImageInfo {
        width,
        height,
        format: PixelFormat::new(depth as u8, sample),
    };
    Ok((
        Box::new(PnmReader {
            path: path.to_path_buf(),
            r,
            info,
            next: 0,
        }),
        vec![("variant", magic)],
    ))
}

struct PnmReader {
    path: PathBuf,
    r: BufReader<File>,
    info: ImageInfo,
    next: u32,
}

impl Source for PnmReader {
    fn info(&self) -> ImageInfo {
        self.info
    }
    fn next_strip(&mut self) -> Result<Option<Strip>> {
        let info = self.info;
        let Some(rows) = next_rows(&info, self.next) else {
            return Ok(None);
        };
        let mut samples = Samples::zeros(info.format.sample, rows as usize * info.row_samples());
        self.r
            .read_exact(samples.as_bytes_mut())
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => Error::invalid(
                    &self.path,
                    format!("truncated PNM: ends before row {}", self.next + rows),
                ),
                _ => Error::io(&self.path, e),
            })?;
        samples.swap_if_little_endian();
        let s = Strip::new(self.next, info.width, rows, info.format.channels, samples);
        self.next += rows;
        Ok(Some(s))
    }
}

pub(crate) fn create(path: &Path, info: &ImageInfo) -> Result<Box<dyn Sink>> {
    let out = AtomicFile::create(path)?;
    let maxval = if info.format.sample == SampleType::U16 {
        65535
    } else {
        255
    };
    let (w, h) = (info.width, info.height);
    let header = match info.format.channels {
        1 => format!("P5\n{w} {h}\n{maxval}\n"),
        3 => format!("P6\n{w} {h}\n{maxval}\n"),
        c => {
            let t = if c == 2 {
                "GRAYSCALE_ALPHA"
            } else {
                "RGB_ALPHA"
            };
            format!("P7\nWIDTH {w}\nHEIGHT {h}\nDEPTH {c}\nMAXVAL {maxval}\nTUPLTYPE {t}\nENDHDR\n")
        }
    };
    Ok(Box::new(RawWriter::new(out, header.as_bytes())?))
}
