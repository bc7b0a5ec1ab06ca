//! The subset of the PanoTools/Hugin project format (`.pto`) a renderer needs:
//! the p-line (canvas), i-lines (frames), the m-line interpolator, and polygon
//! masks (k-lines; the kinds giga does not apply are reported, never dropped silently).

use std::collections::HashMap;

/// Output projections giga renders (the p-line's `f`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Projection {
    /// `f0`.
    Rectilinear,
    /// `f1`.
    Cylindrical,
    /// `f2`.
    Equirectangular,
}

/// Lens projections of frames (the i-line's `f`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lens {
    /// `f0`.
    Rectilinear,
    /// `f1`.
    Cylindrical,
    /// `f2`: equidistant fisheye whose image circle is the crop ellipse.
    CircularFisheye,
    /// `f3`: equidistant fisheye filling the frame.
    FullFrameFisheye,
    /// `f4`.
    Equirectangular,
}

/// The interpolators of the m-line's `i` (Hugin's numbering), as giga offers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolator {
    /// `i6`.
    Nearest,
    /// `i5`.
    Bilinear,
    /// `i0` (and every other value: see the warning).
    Bicubic,
}

/// A pixel rectangle `[left, right) x [top, bottom)`, as the `S` crops give it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crop {
    /// First column.
    pub left: f64,
    /// One past the last column.
    pub right: f64,
    /// First row.
    pub top: f64,
    /// One past the last row.
    pub bottom: f64,
}

/// The p-line.
#[derive(Clone, Debug, PartialEq)]
pub struct Canvas {
    /// Canvas width in pixels.
    pub width: u32,
    /// Canvas height.
    pub height: u32,
    /// The canvas's projection.
    pub projection: Projection,
    /// Horizontal field of view, degrees.
    pub hfov: f64,
    /// `S`: only this part of the canvas is rendered.
    pub crop: Option<Crop>,
    /// `E`: output exposure value.
    pub exposure: f64,
}

/// One i-line, links resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// The frame's image file, relative to the project.
    pub file: String,
    /// Pixels a row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// The lens projection.
    pub lens: Lens,
    /// Horizontal field of view, degrees.
    pub hfov: f64,
    /// Yaw, degrees.
    pub yaw: f64,
    /// Pitch, degrees.
    pub pitch: f64,
    /// Roll, degrees.
    pub roll: f64,
    /// Radial distortion a, b, c, the centre shift d, e and the shear g, t.
    pub abc: [f64; 3],
    /// d, e: the optical centre's shift in pixels.
    pub shift: [f64; 2],
    /// g, t: shear.
    pub shear: [f64; 2],
    /// `S`: the frame's valid area.
    pub crop: Option<Crop>,
    /// Eev: exposure value.
    pub exposure: f64,
    /// Er, Eb: red and blue white-balance multipliers.
    pub wb: [f64; 2],
    /// Va..Vd (reset to 1, 0, 0, 0 unless Vm is 5, as Hugin does) and Vx, Vy.
    pub vignetting: [f64; 4],
    /// Vx, Vy: the vignetting centre's offset in pixels.
    pub vig_centre: [f64; 2],
    /// Ra..Re; meaningful only for the EMoR response.
    pub emor: [f64; 5],
    /// No EMoR response (Rt: linear).
    pub linear_response: bool,
    /// Mosaic mode: the camera's position TrX, TrY, TrZ (in units of the distance to the
    /// plane being photographed) and that plane's yaw and pitch Tpy, Tpp (degrees).
    pub translation: [f64; 3],
    /// Tpy, Tpp.
    pub plane: [f64; 2],
}

/// A mask polygon as it acts on one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Mask {
    /// The frame it acts on.
    pub frame: usize,
    /// The frame whose pixel coordinates `polygon` is in: `frame` itself, or for a stack
    /// mask (t2, t3) carried over to another frame, the frame it was drawn on.
    pub from: usize,
    /// `t1`: inside, this frame is used and the others are not; otherwise inside, this frame is not used.
    pub include: bool,
    /// Vertices in `from`'s pixels.
    pub polygon: Vec<(f64, f64)>,
}

impl Mask {
    /// Whether the point lies inside the polygon (even-odd rule).
    pub fn contains(&self, x: f64, y: f64) -> bool {
        let p = &self.polygon;
        let mut inside = false;
        let mut j = p.len() - 1;
        for i in 0..p.len() {
            let ((xi, yi), (xj, yj)) = (p[i], p[j]);
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                inside = !inside;
            }
            j = i;
        }
        inside
    }
}

#[derive(Clone, Debug, PartialEq)]
/// A parsed project: what giga renders.
pub struct Project {
    /// The p-line.
    pub canvas: Canvas,
    /// The i-lines, links resolved.
    pub frames: Vec<Frame>,
    /// The m-line's interpolator.
    pub interpolator: Interpolator,
    /// The masks acting on each frame (see `spread_masks`).
    pub masks: Vec<Mask>,
    /// Things the renderer does not do that the project asks for.
    pub warnings: Vec<String>,
    /// The c-lines: pairs of frame pixels that show the same point.
    pub points: Vec<ControlPoint>,
}

/// A control point (c-line): pixel `a` of frame `frames.0` and pixel `b` of frame
/// `frames.1` show the same point of the scene.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ControlPoint {
    /// The two frames' numbers (`n`, `N`).
    pub frames: (usize, usize),
    /// `x`, `y` in the first frame.
    pub a: (f64, f64),
    /// `X`, `Y` in the second frame.
    pub b: (f64, f64),
}

/// A c-line's `n N x y X Y` (other fields, such as the type `t`, are ignored).
fn control_point(rest: &str) -> Option<ControlPoint> {
    let mut v: HashMap<char, f64> = HashMap::new();
    for tok in rest.split_whitespace() {
        let mut chars = tok.chars();
        let key = chars.next()?;
        if let Ok(n) = chars.as_str().parse::<f64>() {
            v.insert(key, n);
        }
    }
    let frame = |k| {
        v.get(&k)
            .filter(|n| **n >= 0.0 && n.fract() == 0.0)
            .map(|n| *n as usize)
    };
    Some(ControlPoint {
        frames: (frame('n')?, frame('N')?),
        a: (*v.get(&'x')?, *v.get(&'y')?),
        b: (*v.get(&'X')?, *v.get(&'Y')?),
    })
}

/// Keys of i-lines, longest first so that `Eev` is not read as `E` + `ev`.
const IMAGE_KEYS: &[&str] = &[
    "TrX", "TrY", "TrZ", "Tpy", "Tpp", "Eev", "Er", "Eb", "Ra", "Rb", "Rc", "Rd", "Re", "Rt", "Va",
    "Vb", "Vc", "Vd", "Vx", "Vy", "Vm", "Vf", "w", "h", "f", "v", "y", "p", "r", "a", "b", "c",
    "d", "e", "g", "t", "S", "C", "j", "n", "K", "k", "X", "Y", "Z",
];
const PANO_KEYS: &[&str] = &["w", "h", "f", "v", "S", "E", "R", "T", "n", "k", "b", "d"];

/// A value as written: a number or string, or a link `=N` to frame N's value.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Text(String),
    Link(usize),
}

/// Splits a line's fields into key -> value, honouring quoted `n"..."`.
/// Fields giga does not know are skipped and named in `unknown`.
fn fields(
    rest: &str,
    keys: &[&str],
    line_no: usize,
    unknown: &mut Vec<String>,
) -> Result<HashMap<String, Value>, String> {
    let mut out = HashMap::new();
    let mut s = rest.trim_start();
    while !s.is_empty() {
        let Some(key) = keys.iter().find(|k| s.starts_with(**k)) else {
            let name: String = s.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
            let after = &s[name.len()..];
            s = match after.strip_prefix('"') {
                Some(q) => {
                    &q[q.find('"')
                        .ok_or_else(|| format!("line {line_no}: unterminated quote in {name}"))?
                        + 1..]
                }
                None => &after[after.find(char::is_whitespace).unwrap_or(after.len())..],
            };
            s = s.trim_start();
            let name = if name.is_empty() {
                "?".to_string()
            } else {
                name
            };
            if !unknown.contains(&name) {
                unknown.push(name);
            }
            continue;
        };
        s = &s[key.len()..];
        let value = if let Some(q) = s.strip_prefix('"') {
            let end = q
                .find('"')
                .ok_or_else(|| format!("line {line_no}: unterminated quote in {key}"))?;
            let v = q[..end].to_string();
            s = &q[end + 1..];
            Value::Text(v)
        } else {
            let end = s.find(char::is_whitespace).unwrap_or(s.len());
            let v = &s[..end];
            s = &s[end..];
            match v.strip_prefix('=') {
                Some(n) => Value::Link(
                    n.parse()
                        .map_err(|_| format!("line {line_no}: bad link {key}={n}"))?,
                ),
                None => Value::Text(v.to_string()),
            }
        };
        out.insert(key.to_string(), value);
        s = s.trim_start();
    }
    Ok(out)
}

fn number(v: &str, key: &str, line_no: usize) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("line {line_no}: {key} is not a number: {v:?}"))
}

fn crop(v: &str, key: &str, line_no: usize) -> Result<Crop, String> {
    let n: Vec<f64> = v
        .split(',')
        .map(|p| number(p, key, line_no))
        .collect::<Result<_, _>>()?;
    if n.len() != 4 || n[1] <= n[0] || n[3] <= n[2] {
        return Err(format!(
            "line {line_no}: {key}{v} is not a crop left,right,top,bottom"
        ));
    }
    Ok(Crop {
        left: n[0],
        right: n[1],
        top: n[2],
        bottom: n[3],
    })
}

/// The pto keys of what Hugin counts as the lens: frames sharing a link in any
/// of them are one lens.
const LENS_KEYS: &[&str] = &[
    "f", "v", "Rt", "Ra", "Rb", "Rc", "Rd", "Re", "Eev", "Er", "Eb", "a", "b", "c", "d", "e", "g",
    "t", "Vm", "Va", "Vb", "Vc", "Vd", "Vx", "Vy",
];

/// Each frame's lens number, as Hugin numbers lenses: frame 0 has lens 0; each
/// later frame joins a lens whose first frame it shares a linked lens value
/// with (`v=0`; the last such lens, as Hugin), else starts a new one. Links
/// were checked when the frames were read.
fn lens_numbers(images: &[Image]) -> Result<Vec<usize>, String> {
    let mut roots = Vec::with_capacity(images.len());
    for i in 0..images.len() {
        roots.push(
            LENS_KEYS
                .iter()
                .map(|k| root(images, i, k))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    let linked = |i: usize, j: usize| {
        roots[i]
            .iter()
            .zip(&roots[j])
            .any(|(a, b)| a.is_some() && a == b)
    };
    let mut firsts: Vec<usize> = Vec::new();
    Ok((0..images.len())
        .map(|i| match firsts.iter().rposition(|&f| linked(i, f)) {
            Some(lens) => lens,
            None => {
                firsts.push(i);
                firsts.len() - 1
            }
        })
        .collect())
}

/// The masks acting on each frame, from the masks as drawn (kind, mask), as
/// Hugin spreads them: t0 and t1 act on their frame; t4 (lens) excludes its
/// polygon, in each frame's own pixels, from every frame of the lens; t2
/// (stack) excludes it from its frame and, carried over through the canvas,
/// from the frames of its stack; t3 (stack include) excludes it, carried
/// over, from every frame outside its stack. Stacks are frames whose `j`
/// links together.
fn spread_masks(images: &[Image], drawn: Vec<(i64, Mask)>) -> Result<Vec<Mask>, String> {
    // Lenses and stacks only when a mask needs them (lenses cost frames x lenses x lens keys).
    let needs = |kinds: &[i64]| drawn.iter().any(|(kind, _)| kinds.contains(kind));
    let lens = if needs(&[4]) {
        lens_numbers(images)?
    } else {
        Vec::new()
    };
    let stacks = if needs(&[2, 3]) {
        (0..images.len())
            .map(|i| root(images, i, "j"))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    let stacked = |i: usize, k: usize| i == k || (stacks[i].is_some() && stacks[i] == stacks[k]);
    let mut masks = Vec::new();
    for (kind, m) in drawn {
        let i = m.frame;
        let carried = |k: usize| Mask {
            frame: k,
            from: i,
            include: false,
            polygon: m.polygon.clone(),
        };
        match kind {
            4 => masks.extend(
                (0..images.len())
                    .filter(|&k| lens[k] == lens[i])
                    .map(|k| Mask {
                        frame: k,
                        from: k,
                        ..m.clone()
                    }),
            ),
            2 => masks.extend((0..images.len()).filter(|&k| stacked(i, k)).map(carried)),
            3 => masks.extend((0..images.len()).filter(|&k| !stacked(i, k)).map(carried)),
            _ => masks.push(m),
        }
    }
    Ok(masks)
}

/// An i-line's fields and its line number.
type Image = (HashMap<String, Value>, usize);

/// The frame whose own value `key` of frame `i` is, through links (a value may name an
/// earlier or later frame's value, never in a cycle); None if the frame has no `key`.
fn root(images: &[Image], i: usize, key: &str) -> Result<Option<usize>, String> {
    let mut at = i;
    for _ in 0..=images.len() {
        match images[at].0.get(key) {
            Some(Value::Text(_)) => return Ok(Some(at)),
            Some(Value::Link(n)) => {
                if *n >= images.len() {
                    return Err(format!(
                        "line {}: {key}={n} links to a frame that does not exist",
                        images[i].1
                    ));
                }
                at = *n;
            }
            None => return Ok(None),
        }
    }
    Err(format!("line {}: {key} links in a cycle", images[i].1))
}

/// Reads and parses the project file at `path` (a regular file: a FIFO would wait
/// for a writer forever); errors name the file.
pub fn read(path: &std::path::Path) -> raster::Result<Project> {
    let meta = std::fs::metadata(path).map_err(|e| raster::Error::io(path, e))?;
    formats::refuse_non_file(path, &meta)?;
    let text = std::fs::read(path).map_err(|e| raster::Error::io(path, e))?;
    parse(&String::from_utf8_lossy(&text)).map_err(|m| raster::Error::invalid(path, m))
}

/// Parses a project. Errors say the line and the problem.
pub fn parse(text: &str) -> Result<Project, String> {
    let mut pano: Option<(HashMap<String, Value>, usize)> = None;
    let mut images: Vec<Image> = Vec::new();
    let mut interpolator = Interpolator::Bicubic;
    let mut drawn = Vec::new();
    let mut unknown = Vec::new();
    let mut warnings = Vec::new();
    let mut points = Vec::new();
    let mut bad_points = 0;
    for (i, line) in text.lines().enumerate() {
        let no = i + 1;
        let line = line.trim_end_matches('\r');
        let (kind, rest) = line.split_at(
            line.char_indices()
                .nth(1)
                .map(|(i, _)| i)
                .unwrap_or(line.len()),
        );
        match kind {
            "p" => pano = Some((fields(rest, PANO_KEYS, no, &mut unknown)?, no)),
            "i" | "o" => images.push((fields(rest, IMAGE_KEYS, no, &mut unknown)?, no)),
            "m" => {
                // m-line fields are few; only `i` (interpolator) matters here.
                for f in rest.split_whitespace() {
                    if let Some(v) = f.strip_prefix('i') {
                        interpolator = match v {
                            "5" => Interpolator::Bilinear,
                            "6" => Interpolator::Nearest,
                            "0" => Interpolator::Bicubic,
                            other => {
                                warnings.push(format!(
                                    "interpolator m i{other} is not offered; using bicubic"
                                ));
                                Interpolator::Bicubic
                            }
                        };
                    }
                }
            }
            "k" => {
                let m = fields(rest, &["i", "t", "p"], no, &mut unknown)?;
                let text = |k: &str| match m.get(k) {
                    Some(Value::Text(t)) => Ok(t.clone()),
                    _ => Err(format!("line {no}: the mask has no {k}")),
                };
                let frame = number(&text("i")?, "i", no)?;
                if frame < 0.0 || frame.fract() != 0.0 {
                    return Err(format!(
                        "line {no}: the mask's frame i{frame} is not a frame number"
                    ));
                }
                let frame = frame as usize;
                let kind = number(&text("t")?, "t", no)? as i64;
                let v: Vec<f64> = text("p")?
                    .split_whitespace()
                    .map(|n| number(n, "p", no))
                    .collect::<Result<_, _>>()?;
                if v.len() < 6 || v.len() % 2 != 0 {
                    return Err(format!(
                        "line {no}: a mask polygon needs at least three x y pairs"
                    ));
                }
                let polygon = v.chunks(2).map(|c| (c[0], c[1])).collect();
                match kind {
                    0..=4 => drawn.push((
                        kind,
                        Mask {
                            frame,
                            from: frame,
                            include: kind == 1,
                            polygon,
                        },
                    )),
                    _ => return Err(format!("line {no}: mask type t{kind} is unknown (0 to 4)")),
                }
            }
            "c" => match control_point(rest) {
                Some(cp) => points.push(cp),
                None => bad_points += 1,
            },
            _ => {} // comments, #-hugin, v and empty lines carry nothing a renderer needs
        }
    }
    if bad_points > 0 {
        warnings.push(format!(
            "{bad_points} control point line(s) without n N x y X Y were ignored"
        ));
    }
    if !unknown.is_empty() {
        warnings.push(format!(
            "fields giga does not use were ignored: {}",
            unknown.join(", ")
        ));
    }
    let (p, p_line) = pano.ok_or("no p-line (panorama description) in the project")?;
    let get = |m: &HashMap<String, Value>, k: &str| match m.get(k) {
        Some(Value::Text(t)) => Some(t.clone()),
        _ => None,
    };
    let pnum = |k: &str, default: Option<f64>| -> Result<f64, String> {
        match get(&p, k) {
            Some(v) => number(&v, k, p_line),
            None => default.ok_or_else(|| format!("line {p_line}: the p-line has no {k}")),
        }
    };
    let projection = match pnum("f", Some(0.0))? as i64 {
        0 => Projection::Rectilinear,
        1 => Projection::Cylindrical,
        2 => Projection::Equirectangular,
        f => return Err(format!("line {p_line}: output projection f{f} is not supported (0 rectilinear, 1 cylindrical, 2 equirectangular)")),
    };
    let (w, h) = (pnum("w", None)?, pnum("h", None)?);
    if !(1.0..=4.0e6).contains(&w) || !(1.0..=4.0e6).contains(&h) {
        return Err(format!(
            "line {p_line}: canvas size {w}x{h} is out of range"
        ));
    }
    let hfov = pnum("v", None)?;
    let max_fov = if projection == Projection::Rectilinear {
        179.0
    } else {
        360.0
    };
    if !(hfov > 0.0 && hfov <= max_fov) {
        return Err(format!(
            "line {p_line}: field of view v{hfov} is out of range for this projection"
        ));
    }
    let canvas_crop = get(&p, "S").map(|v| crop(&v, "S", p_line)).transpose()?;
    if let Some(c) = canvas_crop {
        if c.left < 0.0 || c.top < 0.0 || c.right > w || c.bottom > h {
            return Err(format!(
                "line {p_line}: crop S lies outside the {w}x{h} canvas"
            ));
        }
    }
    let canvas = Canvas {
        width: w as u32,
        height: h as u32,
        projection,
        hfov,
        crop: canvas_crop,
        exposure: pnum("E", Some(0.0))?,
    };
    if images.is_empty() {
        return Err("the project has no i-lines (frames)".into());
    }

    let resolve = |idx: usize, key: &str| -> Result<Option<String>, String> {
        Ok(
            root(&images, idx, key)?.and_then(|at| match images[at].0.get(key) {
                Some(Value::Text(t)) => Some(t.clone()),
                _ => None,
            }),
        )
    };
    let mut frames = Vec::new();
    for (idx, (m, no)) in images.iter().enumerate() {
        let no = *no;
        let num = |k: &str, default: Option<f64>| -> Result<f64, String> {
            match resolve(idx, k)? {
                Some(v) => number(&v, k, no),
                None => default.ok_or_else(|| format!("line {no}: frame {idx} has no {k}")),
            }
        };
        let file = match m.get("n") {
            Some(Value::Text(t)) if !t.is_empty() => t.clone(),
            _ => return Err(format!("line {no}: frame {idx} has no file name n\"...\"")),
        };
        let lens = match num("f", Some(0.0))? as i64 {
            0 => Lens::Rectilinear,
            1 => Lens::Cylindrical,
            2 => Lens::CircularFisheye,
            3 => Lens::FullFrameFisheye,
            4 => Lens::Equirectangular,
            f => {
                return Err(format!(
                "line {no}: lens projection f{f} of frame {idx} is not supported (0, 1, 2, 3, 4)"
            ))
            }
        };
        let (fw, fh) = (num("w", None)?, num("h", None)?);
        if !(1.0..=1.0e6).contains(&fw) || !(1.0..=1.0e6).contains(&fh) {
            return Err(format!("line {no}: frame size {fw}x{fh} is out of range"));
        }
        let hfov = num("v", None)?;
        if !(hfov > 0.0 && hfov < 360.0) || (lens == Lens::Rectilinear && hfov >= 180.0) {
            return Err(format!(
                "line {no}: field of view v{hfov} is out of range for frame {idx}"
            ));
        }
        let frame_crop = match resolve(idx, "S")? {
            Some(v) => Some(crop(&v, "S", no)?),
            None => None,
        };
        let mode = num("Vm", Some(5.0))? as i64;
        let vignetting = if mode == 5 {
            [
                num("Va", Some(1.0))?,
                num("Vb", Some(0.0))?,
                num("Vc", Some(0.0))?,
                num("Vd", Some(0.0))?,
            ]
        } else {
            if mode != 0 {
                warnings.push(format!(
                    "frame {idx}: vignetting mode Vm{mode} (flat field) is not applied"
                ));
            }
            [1.0, 0.0, 0.0, 0.0]
        };
        frames.push(Frame {
            file,
            width: fw as u32,
            height: fh as u32,
            lens,
            hfov,
            yaw: num("y", Some(0.0))?,
            pitch: num("p", Some(0.0))?,
            roll: num("r", Some(0.0))?,
            abc: [
                num("a", Some(0.0))?,
                num("b", Some(0.0))?,
                num("c", Some(0.0))?,
            ],
            shift: [num("d", Some(0.0))?, num("e", Some(0.0))?],
            shear: [num("g", Some(0.0))?, num("t", Some(0.0))?],
            crop: frame_crop,
            exposure: num("Eev", Some(0.0))?,
            wb: [num("Er", Some(1.0))?, num("Eb", Some(1.0))?],
            vignetting,
            vig_centre: [num("Vx", Some(0.0))?, num("Vy", Some(0.0))?],
            emor: [
                num("Ra", Some(0.0))?,
                num("Rb", Some(0.0))?,
                num("Rc", Some(0.0))?,
                num("Rd", Some(0.0))?,
                num("Re", Some(0.0))?,
            ],
            linear_response: num("Rt", Some(0.0))? == 1.0,
            translation: [
                num("TrX", Some(0.0))?,
                num("TrY", Some(0.0))?,
                num("TrZ", Some(0.0))?,
            ],
            plane: [num("Tpy", Some(0.0))?, num("Tpp", Some(0.0))?],
        });
    }
    if let Some((_, m)) = drawn.iter().find(|(_, m)| m.frame >= images.len()) {
        return Err(format!(
            "a mask names frame {}, which does not exist",
            m.frame
        ));
    }
    let masks = spread_masks(&images, drawn)?;
    points.retain(|c: &ControlPoint| c.frames.0 < frames.len() && c.frames.1 < frames.len());
    Ok(Project {
        canvas,
        frames,
        interpolator,
        masks,
        warnings,
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PTO: &str = "# hugin project file\n\
p f2 w3000 h1500 v360 E0.5 R0 S10,2990,20,1480 n\"TIFF_m c:LZW r:CROP\"\n\
m g1 i5\n\
i w1600 h1200 f0 v50 Ra0 Rb0 Rc0 Rd0 Re0 Eev0.3 Er1.1 Eb0.9 r1.5 p-13 y-31 TrX0 TrY0 TrZ0 j0 a0.01 b-0.02 c0.005 d3 e-2 g0 t0 Va1 Vb-0.25 Vc0 Vd0 Vx0 Vy0 Vm5 n\"a b.jpg\"\n\
#-hugin  cropFactor=1\n\
i w1600 h1200 f0 v=0 Eev0 Er1 Eb1 r0 p13 y31 a=0 b=0 c=0 d=0 e=0 Va1 Vb0.3 Vc0 Vd0 Vx0 Vy0 Vm1 n\"c.jpg\"\n\
k i0 t0 p\"1 1 10 10 1 10\"\n";

    #[test]
    fn parses_lines_links_and_traps() {
        let p = parse(PTO).unwrap();
        assert_eq!(p.canvas.projection, Projection::Equirectangular);
        assert_eq!(
            (
                p.canvas.width,
                p.canvas.height,
                p.canvas.hfov,
                p.canvas.exposure
            ),
            (3000, 1500, 360.0, 0.5)
        );
        assert_eq!(
            p.canvas.crop,
            Some(Crop {
                left: 10.0,
                right: 2990.0,
                top: 20.0,
                bottom: 1480.0
            })
        );
        assert_eq!(p.interpolator, Interpolator::Bilinear);
        assert_eq!(p.frames.len(), 2);
        let (a, b) = (&p.frames[0], &p.frames[1]);
        assert_eq!(a.file, "a b.jpg");
        assert_eq!(
            (a.yaw, a.pitch, a.roll, a.exposure),
            (-31.0, -13.0, 1.5, 0.3)
        );
        assert_eq!(a.wb, [1.1, 0.9]);
        assert_eq!(a.vignetting, [1.0, -0.25, 0.0, 0.0]);
        // links
        assert_eq!(b.hfov, 50.0);
        assert_eq!(b.abc, [0.01, -0.02, 0.005]);
        assert_eq!(b.shift, [3.0, -2.0]);
        // Vm1: Hugin resets the polynomial
        assert_eq!(b.vignetting, [1.0, 0.0, 0.0, 0.0]);
        assert_eq!(p.masks.len(), 1);
        let m = &p.masks[0];
        assert!(!m.include && m.frame == 0 && m.polygon.len() == 3);
        let bad = "p w10 h10 v10\ni w10 h10 v10 n\"a.png\"\nk i-1 t0 p\"0 0 1 0 1 1\"\n";
        assert!(parse(bad).unwrap_err().contains("not a frame number"));
        assert!(m.contains(5.0, 8.0) && !m.contains(8.0, 5.0) && !m.contains(20.0, 5.0));
    }

    #[test]
    fn lens_masks_reach_every_frame_of_the_lens() {
        // Frames 0 and 1 share a lens (v=0), frame 2 has its own, frame 3 links frame 0's distortion.
        let text = "p f0 w10 h10 v50\n\
            i w8 h8 v50 a0.1 n\"a\"\ni w8 h8 v=0 a0 n\"b\"\ni w8 h8 v40 a0 n\"c\"\ni w8 h8 v30 a=0 n\"d\"\n\
            k i1 t4 p\"1 1 5 1 5 5\"\nk i2 t2 p\"1 1 5 1 5 5\"\n";
        let p = parse(text).unwrap();
        let on: Vec<(usize, usize)> = p.masks.iter().map(|m| (m.frame, m.from)).collect();
        assert_eq!(on, [(0, 0), (1, 1), (3, 3), (2, 2)]);
        assert!(p.masks.iter().all(|m| !m.include && m.contains(3.0, 2.0)));
    }

    #[test]
    fn stack_masks_are_carried_to_the_stack_or_away_from_it() {
        // Frames 0 and 2 are one stack (j=0), 1 and 3 are not.
        let text = "p f0 w10 h10 v50\n\
            i w8 h8 v50 j0 n\"a\"\ni w8 h8 v50 j1 n\"b\"\ni w8 h8 v50 j=0 n\"c\"\ni w8 h8 v50 n\"d\"\n\
            k i2 t2 p\"1 1 5 1 5 5\"\nk i0 t3 p\"1 1 5 1 5 5\"\n";
        let p = parse(text).unwrap();
        let on: Vec<(usize, usize, bool)> = p
            .masks
            .iter()
            .map(|m| (m.frame, m.from, m.include))
            .collect();
        assert_eq!(
            on,
            [(0, 2, false), (2, 2, false), (1, 0, false), (3, 0, false)]
        );
        assert!(parse(&text.replace("t3", "t7")).unwrap_err().contains("t7"));
        // a broken link in a field only the grouping reads is an error, not a panic
        assert!(parse(&text.replace("j1", "j=9"))
            .unwrap_err()
            .contains("j=9"));
        assert!(parse(
            &text
                .replace("k i0 t3", "k i0 t4")
                .replace("v50 n\"d\"", "v50 Vm0 Va=9 n\"d\"")
        )
        .unwrap_err()
        .contains("Va=9"));
    }

    #[test]
    fn clear_errors() {
        assert!(parse("i w1 h1 v50 n\"a\"\n")
            .unwrap_err()
            .contains("p-line"));
        assert!(parse("p f9 w10 h10 v50\ni w1 h1 v50 n\"a\"\n")
            .unwrap_err()
            .contains("f9"));
        assert!(parse("p f0 w10 h10 v50\ni w1 h1 v=1 n\"a\"\n")
            .unwrap_err()
            .contains("links to a frame"));
        assert!(parse("p f0 w10 h10 v50\ni w1 h1 v=0 n\"a\"\n")
            .unwrap_err()
            .contains("cycle"));
        assert!(parse("p f0 w10 h10 v50\ni w1 h1 vx n\"a\"\n")
            .unwrap_err()
            .contains("not a number"));
        // unknown fields are skipped and reported, not fatal
        let p = parse("p f0 w10 h10 v50 Q\"x y\" z9\ni w1 h1 v50 u10 n\"a\"\n").unwrap();
        assert_eq!(p.frames[0].hfov, 50.0);
        assert!(
            p.warnings.iter().any(|w| w.contains("Q, z, u")),
            "{:?}",
            p.warnings
        );
        assert!(parse("p f0 w10 h10 v50\ni w1 h1 v50 n\"a\n")
            .unwrap_err()
            .contains("unterminated"));
        assert!(parse("p f0 w10 h10 v50\n")
            .unwrap_err()
            .contains("no i-lines"));
        assert!(parse("p f0 w10 h10 v50\ni w1 h1 v50\n")
            .unwrap_err()
            .contains("file name"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "[pimk# ]{0,2}[a-zA-Z0-9=,.\" -]{0,60}(\n[pi] [a-zA-Z0-9=,.\" -]{0,60}){0,4}") {
            let _ = parse(&s);
        }
    }
}
