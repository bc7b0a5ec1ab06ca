//! Hugin's photometric model, inverted: a frame pixel is f(L * 2^-Eev * V(r) * wb),
//! so the scene value is L = f^-1(pixel) * 2^Eev / (V(r) * wb), and the output
//! is f(L * 2^-E) with E the panorama's exposure.
//!
//! f is linear (`Rt1`) or Hugin's default camera response, the mean curve of the EMoR
//! model. Its tables are not shipped with giga; instead [`MEAN_RESPONSE`] was measured
//! from nona's behaviour: 16-bit gradients rendered at exposures from -4 to +4 EV give
//! f(k f^-1(p)) for known k, a linear least-squares problem in f^-1's knot values. The
//! fit (`tests/fit_response.py` redoes it) reproduces nona within 0.17 of an 8-bit level at every exposure
//! (`tests/test_render.py::test_hugin_default_response`).

use crate::pto::Frame;

/// f^-1 (pixel value -> relative exposure) at pixel values (i/64)^2, i = 0..=64.
const MEAN_RESPONSE: [f32; 65] = [
    0.000000, 0.000026, 0.000108, 0.000244, 0.000433, 0.000676, 0.000975, 0.001474, 0.002075, 0.002850, 0.003794, 0.004931, 0.006284,
    0.007852, 0.009645, 0.011680, 0.013955, 0.016467, 0.019239, 0.022293, 0.025652, 0.029321, 0.033296, 0.037561, 0.042123, 0.047012,
    0.052228, 0.057762, 0.063652, 0.069911, 0.076502, 0.083461, 0.090692, 0.098321, 0.106299, 0.114706, 0.123596, 0.132951, 0.142907,
    0.153394, 0.164606, 0.176436, 0.188947, 0.202283, 0.216420, 0.231648, 0.248008, 0.265552, 0.284560, 0.304879, 0.327200, 0.351549,
    0.378016, 0.407178, 0.438918, 0.473758, 0.511926, 0.554113, 0.599843, 0.650343, 0.706712, 0.769309, 0.837998, 0.913847, 1.000000,
];

fn knot(i: usize) -> f32 {
    let q = i as f32 / 64.0;
    q * q
}

/// Pixel value (0..1) -> relative exposure.
fn to_linear(v: f32) -> f32 {
    let v = v.clamp(0.0, 1.0);
    let i = ((v.sqrt() * 64.0) as usize).min(63);
    let t = (v - knot(i)) / (knot(i + 1) - knot(i));
    MEAN_RESPONSE[i] + t.clamp(0.0, 1.0) * (MEAN_RESPONSE[i + 1] - MEAN_RESPONSE[i])
}

/// Relative exposure -> pixel value (0..1), clipping at white.
fn from_linear(l: f32) -> f32 {
    if l >= 1.0 {
        return 1.0;
    }
    if l <= 0.0 {
        return 0.0;
    }
    let i = MEAN_RESPONSE.partition_point(|&g| g <= l).clamp(1, 64) - 1;
    let t = (l - MEAN_RESPONSE[i]) / (MEAN_RESPONSE[i + 1] - MEAN_RESPONSE[i]);
    knot(i) + t * (knot(i + 1) - knot(i))
}

#[derive(Clone, Debug)]
pub struct Photometry {
    /// Per-channel gain 2^(Eev - E) / wb.
    gain: [f32; 3],
    vignetting: [f64; 4],
    vig_centre: [f64; 2],
    /// 1 / (half-diagonal)^2.
    vig_norm: f64,
    /// Hugin's default response rather than a linear one.
    curve: bool,
    identity: bool,
}

impl Photometry {
    pub fn new(f: &Frame, out_exposure: f64) -> Photometry {
        let g = 2f64.powf(f.exposure - out_exposure);
        let gain = [(g / f.wb[0]) as f32, g as f32, (g / f.wb[1]) as f32];
        let (w, h) = (f.width as f64, f.height as f64);
        let identity = gain.iter().all(|&x| (x - 1.0).abs() < 1e-6) && f.vignetting == [1.0, 0.0, 0.0, 0.0];
        Photometry {
            gain,
            vignetting: f.vignetting,
            vig_centre: [w / 2.0 + f.vig_centre[0], h / 2.0 + f.vig_centre[1]],
            vig_norm: 1.0 / (w * w / 4.0 + h * h / 4.0),
            curve: !f.linear_response,
            identity,
        }
    }


    /// Corrects the colour of a pixel sampled at frame position (x, y).
    #[allow(clippy::needless_range_loop)]
    pub fn apply(&self, px: &mut [f32; 4], x: f64, y: f64) {
        if self.identity {
            return;
        }
        let r2 = ((x - self.vig_centre[0]).powi(2) + (y - self.vig_centre[1]).powi(2)) * self.vig_norm;
        let [a, b, c, d] = self.vignetting;
        let v = (a + r2 * (b + r2 * (c + r2 * d))) as f32;
        let v = if v > 1e-6 { v } else { 1e-6 };
        for ch in 0..3 {
            let lin = if self.curve { to_linear(px[ch]) } else { px[ch] };
            let out = lin * self.gain[ch] / v;
            px[ch] = if self.curve { from_linear(out) } else { out };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_round_trips_and_is_monotone() {
        for i in 0..=1000 {
            let v = i as f32 / 1000.0;
            assert!((from_linear(to_linear(v)) - v).abs() < 1e-5, "{v}");
        }
        assert!(MEAN_RESPONSE.windows(2).all(|w| w[0] < w[1]));
        assert_eq!((to_linear(0.0), to_linear(1.0), from_linear(2.0)), (0.0, 1.0, 1.0));
    }
}
