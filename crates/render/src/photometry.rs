//! Hugin's photometric model, inverted: a frame pixel is f(L * 2^-Eev * V(r) * wb),
//! so the scene value is L = f^-1(pixel) * 2^Eev / (V(r) * wb), and the output
//! is f(L * 2^-E) with E the panorama's exposure.

use crate::pto::Frame;

/// EMoR's mean curve is close to this gamma; used when the response is not linear.
const GAMMA: f32 = 2.2;

#[derive(Clone, Debug)]
pub struct Photometry {
    /// Per-channel gain 2^(Eev - E) / wb.
    gain: [f32; 3],
    vignetting: [f64; 4],
    vig_centre: [f64; 2],
    /// 1 / (half-diagonal)^2.
    vig_norm: f64,
    gamma: bool,
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
            gamma: !f.linear_response,
            identity,
        }
    }

    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// Corrects the colour of a pixel sampled at frame position (x, y).
    pub fn apply(&self, px: &mut [f32; 4], x: f64, y: f64) {
        if self.identity {
            return;
        }
        let r2 = ((x - self.vig_centre[0]).powi(2) + (y - self.vig_centre[1]).powi(2)) * self.vig_norm;
        let [a, b, c, d] = self.vignetting;
        let v = (a + r2 * (b + r2 * (c + r2 * d))) as f32;
        let v = if v > 1e-6 { v } else { 1e-6 };
        for ch in 0..3 {
            let lin = if self.gamma { px[ch].max(0.0).powf(GAMMA) } else { px[ch] };
            let out = lin * self.gain[ch] / v;
            px[ch] = if self.gamma { out.max(0.0).powf(1.0 / GAMMA) } else { out };
        }
    }
}
