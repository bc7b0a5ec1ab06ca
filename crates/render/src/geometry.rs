//! The exact PanoTools transform between canvas pixels and frame pixels
//! (`docs/render.md` has the derivation): canvas pixel -> ray in the world ->
//! ray in the camera -> ideal lens point -> radial distortion -> frame pixel,
//! and back. Axes: x right, y down, z forward.

use crate::pto::{Canvas, Frame, Lens, Projection};

type V3 = [f64; 3];

/// The canvas side: pixels <-> world rays.
#[derive(Clone, Debug)]
pub struct CanvasMap {
    projection: Projection,
    /// Pixels per radian (cylindrical, equirectangular) or the focal length (rectilinear).
    scale: f64,
    centre: [f64; 2],
}

impl CanvasMap {
    /// The map of the p-line's canvas.
    pub fn new(c: &Canvas) -> CanvasMap {
        let v = c.hfov.to_radians();
        let w = c.width as f64;
        let scale = match c.projection {
            Projection::Rectilinear => w / (2.0 * (v / 2.0).tan()),
            _ => w / v,
        };
        CanvasMap {
            projection: c.projection,
            scale,
            centre: [(w - 1.0) / 2.0, (c.height as f64 - 1.0) / 2.0],
        }
    }

    /// The world ray through canvas pixel (px, py).
    pub fn ray(&self, px: f64, py: f64) -> V3 {
        let x = (px - self.centre[0]) / self.scale;
        let y = (py - self.centre[1]) / self.scale;
        match self.projection {
            Projection::Rectilinear => normalise([x, y, 1.0]),
            Projection::Cylindrical => sphere(x, -y.atan()),
            Projection::Equirectangular => sphere(x, -y),
        }
    }

    /// Per-column terms for [`CanvasMap::row_rays`]: (sin, cos) of the longitude, or x / focal.
    pub fn columns(&self, x0: u32, n: u32) -> Vec<[f64; 2]> {
        (x0..x0 + n)
            .map(|px| {
                let x = (px as f64 - self.centre[0]) / self.scale;
                match self.projection {
                    Projection::Rectilinear => [x, 0.0],
                    _ => {
                        let (s, c) = x.sin_cos();
                        [s, c]
                    }
                }
            })
            .collect()
    }

    /// The rays of one canvas row at the columns given (the same as [`CanvasMap::ray`],
    /// with the trigonometry done once per column and once per row).
    pub fn row_rays(&self, py: f64, columns: &[[f64; 2]], out: &mut Vec<[f64; 3]>) {
        out.clear();
        let y = (py - self.centre[1]) / self.scale;
        match self.projection {
            Projection::Rectilinear => {
                out.extend(columns.iter().map(|c| normalise([c[0], y, 1.0])))
            }
            _ => {
                let phi = if self.projection == Projection::Cylindrical {
                    -y.atan()
                } else {
                    -y
                };
                let (sp, cp) = phi.sin_cos();
                out.extend(columns.iter().map(|c| [cp * c[0], -sp, cp * c[1]]));
            }
        }
    }

    /// The canvas pixel a world ray lands on (None behind a rectilinear canvas).
    pub fn pixel(&self, r: V3) -> Option<(f64, f64)> {
        let (x, y) = match self.projection {
            Projection::Rectilinear => {
                if r[2] <= 1e-12 {
                    return None;
                }
                (r[0] / r[2], r[1] / r[2])
            }
            Projection::Cylindrical => {
                let phi = (-r[1]).clamp(-1.0, 1.0).asin();
                if phi.abs() >= std::f64::consts::FRAC_PI_2 - 1e-9 {
                    return None;
                }
                (r[0].atan2(r[2]), -phi.tan())
            }
            Projection::Equirectangular => (r[0].atan2(r[2]), (r[1]).clamp(-1.0, 1.0).asin()),
        };
        Some((
            x * self.scale + self.centre[0],
            y * self.scale + self.centre[1],
        ))
    }
}

/// (cos phi sin lambda, -sin phi, cos phi cos lambda).
fn sphere(lambda: f64, phi: f64) -> V3 {
    let (sl, cl) = lambda.sin_cos();
    let (sp, cp) = phi.sin_cos();
    [cp * sl, -sp, cp * cl]
}

fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn normalise(v: V3) -> V3 {
    let n = dot(v, v).sqrt();
    [v[0] / n, v[1] / n, v[2] / n]
}

fn mul(m: &[[f64; 3]; 3], v: V3) -> V3 {
    [
        m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
        m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
        m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
    ]
}

fn matmul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut m = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

fn transpose(a: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut m = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = a[j][i];
        }
    }
    m
}

/// The frame side: world rays <-> frame pixels.
#[derive(Clone, Debug)]
pub struct FrameMap {
    lens: Lens,
    /// Camera to world, and its transpose.
    to_world: [[f64; 3]; 3],
    to_camera: [[f64; 3]; 3],
    focal: f64,
    abc: [f64; 3],
    /// Radius that distortion's rho is measured in: half the shorter side.
    norm: f64,
    centre: [f64; 2],
    /// The shift d, e, and the shear g / height, t / width (applied after the shift, as libpano13).
    shift: [f64; 2],
    shear: [f64; 2],
    /// Mosaic mode: the camera's position and the unit normal of the photographed
    /// plane, which lies at distance 1 from the panorama's centre.
    translation: Option<(V3, V3)>,
}

impl FrameMap {
    /// The map of an i-line's frame (lens, pose, distortion, shift, shear, mosaic mode).
    pub fn new(f: &Frame) -> FrameMap {
        let (sy, cy) = f.yaw.to_radians().sin_cos();
        let (sp, cp) = f.pitch.to_radians().sin_cos();
        let (sr, cr) = f.roll.to_radians().sin_cos();
        let ryaw = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]];
        let rpitch = [[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]];
        let rroll = [[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]];
        let to_world = matmul(&matmul(&ryaw, &rpitch), &rroll);
        let (w, h) = (f.width as f64, f.height as f64);
        let v = f.hfov.to_radians();
        let focal = match f.lens {
            Lens::Rectilinear => w / (2.0 * (v / 2.0).tan()),
            _ => w / v,
        };
        FrameMap {
            lens: f.lens,
            to_camera: transpose(&to_world),
            to_world,
            focal,
            abc: f.abc,
            norm: w.min(h) / 2.0,
            centre: [(w - 1.0) / 2.0, (h - 1.0) / 2.0],
            shift: f.shift,
            shear: [f.shear[0] / h, f.shear[1] / w],
            translation: (f.translation != [0.0; 3]).then(|| {
                let [x, y, z] = f.translation;
                (
                    [x, y, -z],
                    sphere(f.plane[0].to_radians(), f.plane[1].to_radians()),
                )
            }),
        }
    }

    /// Mosaic mode, world ray from the panorama's centre -> ray from the camera: through
    /// the point where the ray meets the plane (None if it never does).
    fn to_camera_position(&self, ray: V3) -> Option<V3> {
        let Some((t, n)) = self.translation else {
            return Some(ray);
        };
        let den = dot(n, ray);
        if den < 1e-15 {
            return None;
        }
        let u = 1.0 / den;
        Some(normalise([
            u * ray[0] - t[0],
            u * ray[1] - t[1],
            u * ray[2] - t[2],
        ]))
    }

    /// The inverse: a ray from the camera -> the ray from the panorama's centre.
    fn from_camera_position(&self, ray: V3) -> Option<V3> {
        let Some((t, n)) = self.translation else {
            return Some(ray);
        };
        let den = dot(n, ray);
        if den.abs() < 1e-15 {
            return None;
        }
        let u = (1.0 - dot(n, t)) / den;
        if u < 0.0 {
            return None;
        }
        Some(normalise([
            t[0] + u * ray[0],
            t[1] + u * ray[1],
            t[2] + u * ray[2],
        ]))
    }

    fn distortion(&self, rho: f64) -> f64 {
        let [a, b, c] = self.abc;
        ((a * rho + b) * rho + c) * rho + (1.0 - a - b - c)
    }

    /// The frame pixel a world ray lands on, if the lens sees it.
    pub fn pixel(&self, ray: V3) -> Option<(f64, f64)> {
        let c = mul(&self.to_camera, self.to_camera_position(ray)?);
        let (u, t) = match self.lens {
            Lens::Rectilinear => {
                if c[2] <= 1e-9 {
                    return None;
                }
                (c[0] / c[2], c[1] / c[2])
            }
            Lens::CircularFisheye | Lens::FullFrameFisheye => {
                let r = (c[0] * c[0] + c[1] * c[1]).sqrt();
                let theta = r.atan2(c[2]);
                if r < 1e-15 {
                    (0.0, 0.0)
                } else {
                    (theta * c[0] / r, theta * c[1] / r)
                }
            }
            Lens::Cylindrical => {
                let rxz = (c[0] * c[0] + c[2] * c[2]).sqrt();
                if rxz < 1e-12 {
                    return None;
                }
                (c[0].atan2(c[2]), c[1] / rxz)
            }
            Lens::Equirectangular => (c[0].atan2(c[2]), c[1].clamp(-1.0, 1.0).asin()),
        };
        let (u, t) = (u * self.focal, t * self.focal);
        let s = self.distortion((u * u + t * t).sqrt() / self.norm);
        let (x, y) = (s * u + self.shift[0], s * t + self.shift[1]);
        let [sx, sy] = self.shear;
        Some((x + sx * y + self.centre[0], y + sy * x + self.centre[1]))
    }

    /// The world ray a frame pixel sees (inverting the distortion by Newton's method).
    pub fn ray(&self, px: f64, py: f64) -> V3 {
        let (x, y) = (px - self.centre[0], py - self.centre[1]);
        let [sx, sy] = self.shear;
        let det = 1.0 - sx * sy;
        let (uo, to) = (
            (x - sx * y) / det - self.shift[0],
            (y - sy * x) / det - self.shift[1],
        );
        let ro = (uo * uo + to * to).sqrt() / self.norm;
        let mut rho = ro;
        for _ in 0..20 {
            let [a, b, c] = self.abc;
            let f = rho * self.distortion(rho) - ro;
            let df = ((4.0 * a * rho + 3.0 * b) * rho + 2.0 * c) * rho + (1.0 - a - b - c);
            if df.abs() < 1e-12 {
                break;
            }
            let step = f / df;
            rho -= step;
            if step.abs() < 1e-13 {
                break;
            }
        }
        let s = if ro > 1e-15 {
            ro / rho
        } else {
            self.distortion(0.0)
        };
        let (u, t) = (uo / s / self.focal, to / s / self.focal);
        let c = match self.lens {
            Lens::Rectilinear => normalise([u, t, 1.0]),
            Lens::CircularFisheye | Lens::FullFrameFisheye => {
                let theta = (u * u + t * t).sqrt();
                if theta < 1e-15 {
                    [0.0, 0.0, 1.0]
                } else {
                    let k = theta.sin() / theta;
                    [u * k, t * k, theta.cos()]
                }
            }
            Lens::Cylindrical => normalise([u.sin(), t, u.cos()]),
            Lens::Equirectangular => sphere(u, -t),
        };
        let w = mul(&self.to_world, c);
        // A ray that misses the plane in mosaic mode: only outlines ask, keep its direction.
        self.from_camera_position(w).unwrap_or(w)
    }
}

/// Canvas columns between exact transforms in [`map_row`].
pub const MAP_STEP: usize = 8;
/// How far a linear stretch may be from the exact transform, in frame pixels.
pub const MAP_TOLERANCE: f64 = 1.0 / 50.0;

/// The frame pixels a row of canvas rays land on (`None` where the lens doesn't see
/// them). `rays` are canvas row `y` from column `col0` on. The transform is exact at
/// every `MAP_STEP`-th canvas column and linear in between where the exact value at the
/// stretch's middle is within `MAP_TOLERANCE` of the line (the transform is smooth, so
/// a line's error peaks mid-stretch); exact for every column elsewhere (frame edges,
/// the poles of a full sphere). Stretches sit on the canvas's columns, not the row's,
/// so a region or a crop gets exactly the full render's values.
pub fn map_row(
    map: &FrameMap,
    canvas: &CanvasMap,
    (col0, y): (usize, f64),
    rays: &[V3],
    out: &mut Vec<Option<(f64, f64)>>,
) {
    out.clear();
    out.resize(rays.len(), None);
    let knot = |c: usize| map.pixel(canvas.ray(c as f64, y));
    let end = col0 + rays.len();
    let mut a = col0 / MAP_STEP * MAP_STEP;
    let mut at_a = knot(a);
    while a < end {
        let b = a + MAP_STEP;
        let at_b = knot(b);
        let line = match (at_a, at_b) {
            (Some(pa), Some(pb)) => Some(move |c: usize| {
                let t = (c - a) as f64 / MAP_STEP as f64;
                (pa.0 + (pb.0 - pa.0) * t, pa.1 + (pb.1 - pa.1) * t)
            }),
            _ => None,
        };
        let mid = a + MAP_STEP / 2;
        let close = |l: &dyn Fn(usize) -> (f64, f64)| {
            knot(mid).is_some_and(|e| {
                let p = l(mid);
                (e.0 - p.0).abs().max((e.1 - p.1).abs()) <= MAP_TOLERANCE
            })
        };
        let line = line.filter(|l| close(l));
        for c in a.max(col0)..b.min(end) {
            out[c - col0] = match &line {
                Some(l) => Some(l(c)),
                None => map.pixel(rays[c - col0]),
            };
        }
        (a, at_a) = (b, at_b);
    }
}

#[cfg(test)]
mod tests {

    /// `map_row` against the exact transform on every column of many rows: every
    /// canvas projection with every lens, distorted and shifted, in mosaic mode, and
    /// full-sphere frames looking at the poles.
    #[test]
    fn rows_mapped_in_stretches_stay_within_a_fiftieth_of_a_pixel() {
        let mosaic = " TrX0.1 TrY0.05 TrZ0.2 Tpy20 Tpp15 g12.5 t-7.25";
        let mut projects = Vec::new();
        for pf in [0, 1, 2] {
            for (lf, fov) in [(0, 60), (1, 90), (3, 150), (4, 120)] {
                let v = if pf == 0 { 100 } else { 300 };
                for extra in ["", mosaic] {
                    projects.push(format!("p f{pf} w3000 h1600 v{v}\ni w1200 h800 f{lf} v{fov} y17.5 p-8.25 r2.5 a0.012 b-0.031 c0.008 d6.5 e-4.25{extra} n\"x.png\"\n"));
                }
            }
        }
        for pitch in [90.0, -89.5, 75.0] {
            projects.push(format!(
                "p f2 w3600 h1800 v360\ni w2000 h2000 f3 v180 y33 p{pitch} r10 n\"x.png\"\n"
            ));
        }
        let mut coords = Vec::new();
        for text in &projects {
            let p = crate::pto::parse(text).unwrap();
            let (canvas, map) = (CanvasMap::new(&p.canvas), FrameMap::new(&p.frames[0]));
            let mut rays = Vec::new();
            for y in (0..p.canvas.height).step_by(37) {
                // From several first columns: a row of a region starts anywhere.
                for col0 in [0, 5, 1001] {
                    let columns = canvas.columns(col0, p.canvas.width - col0 as u32);
                    canvas.row_rays(y as f64, &columns, &mut rays);
                    map_row(&map, &canvas, (col0 as usize, y as f64), &rays, &mut coords);
                    for (ray, got) in rays.iter().zip(&coords) {
                        match (map.pixel(*ray), got) {
                            (Some(e), Some(g)) => {
                                let err = (e.0 - g.0).abs().max((e.1 - g.1).abs());
                                assert!(err <= MAP_TOLERANCE, "{text}: row {y}: {err} px off");
                            }
                            (None, None) => {}
                            (e, g) => panic!("{text}: row {y}: exact {e:?}, mapped {g:?}"),
                        }
                    }
                }
            }
        }
    }
    use super::*;
    use crate::pto::parse;

    #[test]
    fn row_rays_equal_single_rays() {
        for pf in 0..3 {
            let p = parse(&format!(
                "p f{pf} w2000 h1000 v{}\ni w800 h600 v60 n\"x\"\n",
                if pf == 0 { 120 } else { 300 }
            ))
            .unwrap();
            let cm = CanvasMap::new(&p.canvas);
            let cols = cm.columns(100, 50);
            let mut rays = Vec::new();
            cm.row_rays(321.0, &cols, &mut rays);
            for (i, r) in rays.iter().enumerate() {
                let one = cm.ray(100.0 + i as f64, 321.0);
                assert!((0..3).all(|k| (r[k] - one[k]).abs() < 1e-12), "f{pf}");
            }
        }
    }

    #[test]
    fn round_trips() {
        for (pf, lens) in [(0, 0), (1, 3), (2, 0), (2, 2), (1, 1), (2, 4)] {
            let v = if pf == 0 { 120 } else { 360 };
            let text = format!(
                "p f{pf} w2000 h1000 v{v}\ni w800 h600 f{lens} v{} y20 p-10 r3 a0.02 b-0.03 c0.01 d4 e-3 n\"x\"\n",
                if lens == 0 { 60 } else { 150 }
            );
            let p = parse(&text).unwrap();
            let cm = CanvasMap::new(&p.canvas);
            let fm = FrameMap::new(&p.frames[0]);
            for &(x, y) in &[(400.0, 300.0), (10.0, 20.0), (790.0, 590.0), (123.4, 456.7)] {
                let (cx, cy) = cm.pixel(fm.ray(x, y)).unwrap();
                let (bx, by) = fm.pixel(cm.ray(cx, cy)).unwrap();
                assert!(
                    (bx - x).abs() < 1e-6 && (by - y).abs() < 1e-6,
                    "f{pf}/f{lens}: {x},{y} -> {cx},{cy} -> {bx},{by}"
                );
            }
        }
    }
}
