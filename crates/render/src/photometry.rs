//! Hugin's photometric model, inverted: a frame pixel is f(L * 2^-Eev * V(r) * wb),
//! so the scene value is L = f^-1(pixel) * 2^Eev / (V(r) * wb), and the output
//! is f(L * 2^-E) with E the panorama's exposure.
//!
//! f is linear (`Rt1`) or Hugin's camera response, the EMoR model: the mean curve f0 plus
//! Ra..Re times five basis curves. Like nona, the input goes through the frame's own
//! curve and the output through frame 0's. EMoR's tables are not shipped with giga;
//! instead they were measured from nona's behaviour. [`MEAN_RESPONSE`]: 16-bit gradients
//! rendered at exposures from -4 to +4 EV give f(k f^-1(p)) for known k, a linear
//! least-squares problem in f^-1's knot values (`tests/fit_response.py`); it reproduces
//! nona within 0.17 of an 8-bit level at every exposure. [`EMOR_BASIS`]: a frame with one
//! coefficient rendered through f0 gives f0(fc^-1(p)), hence fc and (fc - f0) / c
//! (`tests/fit_emor.py`). Checked in `tests/test_render.py` (`test_hugin_default_response`,
//! `test_camera_response_curves`).

use crate::pto::Frame;

/// f^-1 (pixel value -> relative exposure) at pixel values (i/64)^2, i = 0..=64.
const MEAN_RESPONSE: [f32; 65] = [
    0.000000, 0.000026, 0.000108, 0.000244, 0.000433, 0.000676, 0.000975, 0.001474, 0.002075,
    0.002850, 0.003794, 0.004931, 0.006284, 0.007852, 0.009645, 0.011680, 0.013955, 0.016467,
    0.019239, 0.022293, 0.025652, 0.029321, 0.033296, 0.037561, 0.042123, 0.047012, 0.052228,
    0.057762, 0.063652, 0.069911, 0.076502, 0.083461, 0.090692, 0.098321, 0.106299, 0.114706,
    0.123596, 0.132951, 0.142907, 0.153394, 0.164606, 0.176436, 0.188947, 0.202283, 0.216420,
    0.231648, 0.248008, 0.265552, 0.284560, 0.304879, 0.327200, 0.351549, 0.378016, 0.407178,
    0.438918, 0.473758, 0.511926, 0.554113, 0.599843, 0.650343, 0.706712, 0.769309, 0.837998,
    0.913847, 1.000000,
];

/// The five EMoR basis curves (for Ra..Re) at exposures (i/64)^2, i = 0..=64.
const EMOR_BASIS: [[f32; 65]; 5] = [
    [
        0.00000, -0.00037, -0.00144, -0.00226, -0.00317, -0.00408, -0.00507, -0.00616, -0.00739,
        -0.00869, -0.01011, -0.01160, -0.01318, -0.01486, -0.01666, -0.01854, -0.02045, -0.02248,
        -0.02454, -0.02662, -0.02870, -0.03076, -0.03274, -0.03461, -0.03636, -0.03796, -0.03943,
        -0.04076, -0.04187, -0.04280, -0.04358, -0.04419, -0.04462, -0.04486, -0.04498, -0.04492,
        -0.04474, -0.04437, -0.04394, -0.04334, -0.04260, -0.04177, -0.04083, -0.03980, -0.03870,
        -0.03754, -0.03627, -0.03497, -0.03357, -0.03210, -0.03052, -0.02889, -0.02720, -0.02539,
        -0.02352, -0.02161, -0.01953, -0.01740, -0.01516, -0.01284, -0.01050, -0.00799, -0.00550,
        -0.00291, 0.00000,
    ],
    [
        0.00000, -0.00172, -0.00677, -0.01098, -0.01545, -0.02006, -0.02475, -0.02961, -0.03444,
        -0.03916, -0.04374, -0.04806, -0.05206, -0.05579, -0.05918, -0.06209, -0.06446, -0.06617,
        -0.06720, -0.06755, -0.06706, -0.06574, -0.06366, -0.06098, -0.05775, -0.05404, -0.04994,
        -0.04539, -0.04041, -0.03502, -0.02958, -0.02418, -0.01883, -0.01361, -0.00862, -0.00374,
        0.00084, 0.00517, 0.00920, 0.01280, 0.01612, 0.01909, 0.02166, 0.02386, 0.02573, 0.02722,
        0.02841, 0.02922, 0.02972, 0.02991, 0.02979, 0.02942, 0.02875, 0.02774, 0.02642, 0.02483,
        0.02298, 0.02092, 0.01861, 0.01599, 0.01318, 0.01009, 0.00700, 0.00367, 0.00000,
    ],
    [
        0.00000, -0.00373, -0.01475, -0.02248, -0.03025, -0.03779, -0.04520, -0.05240, -0.05901,
        -0.06485, -0.06977, -0.07367, -0.07631, -0.07745, -0.07691, -0.07452, -0.07031, -0.06436,
        -0.05699, -0.04834, -0.03835, -0.02750, -0.01649, -0.00576, 0.00418, 0.01320, 0.02113,
        0.02791, 0.03334, 0.03733, 0.04006, 0.04172, 0.04208, 0.04138, 0.03967, 0.03729, 0.03421,
        0.03055, 0.02623, 0.02164, 0.01691, 0.01201, 0.00705, 0.00206, -0.00267, -0.00719,
        -0.01141, -0.01526, -0.01891, -0.02233, -0.02536, -0.02778, -0.02972, -0.03084, -0.03137,
        -0.03136, -0.03095, -0.03009, -0.02855, -0.02636, -0.02330, -0.01915, -0.01427, -0.00811,
        0.00000,
    ],
    [
        0.00000, -0.00849, -0.03419, -0.04883, -0.05964, -0.06890, -0.07726, -0.08481, -0.08996,
        -0.09186, -0.09186, -0.08966, -0.08432, -0.07463, -0.06166, -0.04610, -0.02965, -0.01362,
        0.00140, 0.01555, 0.02792, 0.03814, 0.04586, 0.05039, 0.05264, 0.05249, 0.04967, 0.04455,
        0.03632, 0.02520, 0.01434, 0.00436, -0.00495, -0.01285, -0.01902, -0.02388, -0.02807,
        -0.03137, -0.03315, -0.03342, -0.03290, -0.03180, -0.02955, -0.02637, -0.02247, -0.01827,
        -0.01385, -0.00903, -0.00307, 0.00348, 0.01005, 0.01574, 0.02044, 0.02402, 0.02649,
        0.02818, 0.02930, 0.02960, 0.02905, 0.02774, 0.02555, 0.02186, 0.01694, 0.00979, 0.00000,
    ],
    [
        0.00000, -0.01197, -0.04890, -0.07150, -0.09199, -0.09898, -0.10373, -0.10571, -0.10219,
        -0.09301, -0.08006, -0.06371, -0.04439, -0.02298, -0.00090, 0.02062, 0.03940, 0.05357,
        0.06229, 0.06616, 0.06362, 0.05428, 0.04026, 0.02306, 0.00558, -0.01029, -0.02248,
        -0.03026, -0.03467, -0.03638, -0.03620, -0.03451, -0.03106, -0.02603, -0.01949, -0.01263,
        -0.00634, -0.00045, 0.00502, 0.00921, 0.01280, 0.01582, 0.01807, 0.02078, 0.02343, 0.02467,
        0.02466, 0.02454, 0.02308, 0.02042, 0.01605, 0.01139, 0.00538, -0.00112, -0.00756,
        -0.01447, -0.02246, -0.02935, -0.03491, -0.03897, -0.04077, -0.03866, -0.03283, -0.02026,
        0.00000,
    ],
];

/// f^-1 at pixel values (i/64)^2 for the EMoR coefficients (Ra..Re): f0 plus the basis
/// curves, made non-decreasing as Hugin does, then inverted.
fn inverse_response(emor: [f64; 5]) -> [f32; 65] {
    if emor == [0.0; 5] {
        return MEAN_RESPONSE;
    }
    // f on a fine grid of exposures, sqrt-spaced like the knots.
    const N: usize = 4096;
    let mut xs = Vec::with_capacity(N + 1);
    let mut fs: Vec<f32> = Vec::with_capacity(N + 1);
    let mut top = 0f32;
    for j in 0..=N {
        let x = (j as f32 / N as f32).powi(2);
        let i = ((x.sqrt() * 64.0) as usize).min(63);
        let t = ((x - knot(i)) / (knot(i + 1) - knot(i))).clamp(0.0, 1.0);
        let basis: f32 = (0..5)
            .map(|k| {
                emor[k] as f32 * (EMOR_BASIS[k][i] + t * (EMOR_BASIS[k][i + 1] - EMOR_BASIS[k][i]))
            })
            .sum();
        top = top.max((from_linear_with(x, &MEAN_RESPONSE) + basis).clamp(0.0, 1.0));
        xs.push(x);
        fs.push(top);
    }
    let mut inv = [0f32; 65];
    for (i, g) in inv.iter_mut().enumerate() {
        let q = knot(i);
        let j = fs.partition_point(|&f| f < q).clamp(1, N) - 1;
        let t = if fs[j + 1] > fs[j] {
            ((q - fs[j]) / (fs[j + 1] - fs[j])).clamp(0.0, 1.0)
        } else {
            0.0
        };
        *g = xs[j] + t * (xs[j + 1] - xs[j]);
    }
    inv[64] = 1.0;
    inv
}

fn knot(i: usize) -> f32 {
    let q = i as f32 / 64.0;
    q * q
}

/// Pixel value (0..1) -> relative exposure, through the curve whose inverse is `g`.
fn to_linear_with(v: f32, g: &[f32; 65]) -> f32 {
    let v = v.clamp(0.0, 1.0);
    let i = ((v.sqrt() * 64.0) as usize).min(63);
    let t = (v - knot(i)) / (knot(i + 1) - knot(i));
    g[i] + t.clamp(0.0, 1.0) * (g[i + 1] - g[i])
}

/// Relative exposure -> pixel value (0..1), clipping at white.
fn from_linear_with(l: f32, g: &[f32; 65]) -> f32 {
    if l >= 1.0 {
        return 1.0;
    }
    if l <= 0.0 {
        return 0.0;
    }
    let i = g.partition_point(|&x| x <= l).clamp(1, 64) - 1;
    let t = if g[i + 1] > g[i] {
        (l - g[i]) / (g[i + 1] - g[i])
    } else {
        0.0
    };
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
    /// EMoR rather than linear: f^-1 of the frame's curve and of the output's (frame 0's).
    curves: Option<Box<([f32; 65], [f32; 65])>>,
    identity: bool,
}

impl Photometry {
    /// `out_emor`: the EMoR coefficients of the output's curve (nona uses frame 0's).
    pub fn new(f: &Frame, out_exposure: f64, out_emor: [f64; 5]) -> Photometry {
        let g = 2f64.powf(f.exposure - out_exposure);
        let gain = [(g / f.wb[0]) as f32, g as f32, (g / f.wb[1]) as f32];
        let (w, h) = (f.width as f64, f.height as f64);
        let curves = (!f.linear_response)
            .then(|| Box::new((inverse_response(f.emor), inverse_response(out_emor))));
        let same_curve = curves.as_ref().is_none_or(|c| c.0 == c.1);
        let identity = gain.iter().all(|&x| (x - 1.0).abs() < 1e-6)
            && f.vignetting == [1.0, 0.0, 0.0, 0.0]
            && same_curve;
        Photometry {
            gain,
            vignetting: f.vignetting,
            vig_centre: [w / 2.0 + f.vig_centre[0], h / 2.0 + f.vig_centre[1]],
            vig_norm: 1.0 / (w * w / 4.0 + h * h / 4.0),
            curves,
            identity,
        }
    }

    /// Corrects the colour of a pixel sampled at frame position (x, y).
    #[allow(clippy::needless_range_loop)]
    pub fn apply(&self, px: &mut [f32; 4], x: f64, y: f64) {
        if self.identity {
            return;
        }
        let r2 =
            ((x - self.vig_centre[0]).powi(2) + (y - self.vig_centre[1]).powi(2)) * self.vig_norm;
        let [a, b, c, d] = self.vignetting;
        let v = (a + r2 * (b + r2 * (c + r2 * d))) as f32;
        let v = if v > 1e-6 { v } else { 1e-6 };
        for ch in 0..3 {
            px[ch] = match self.curves.as_deref() {
                Some((input, output)) => {
                    from_linear_with(to_linear_with(px[ch], input) * self.gain[ch] / v, output)
                }
                None => px[ch] * self.gain[ch] / v,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_round_trips_and_is_monotone() {
        let g = &MEAN_RESPONSE;
        for i in 0..=1000 {
            let v = i as f32 / 1000.0;
            assert!(
                (from_linear_with(to_linear_with(v, g), g) - v).abs() < 1e-5,
                "{v}"
            );
        }
        assert!(MEAN_RESPONSE.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            (
                to_linear_with(0.0, g),
                to_linear_with(1.0, g),
                from_linear_with(2.0, g)
            ),
            (0.0, 1.0, 1.0)
        );
        // EMoR curves: the zero coefficients give the mean curve back; others stay monotone
        let zero = inverse_response([1e-12, 0.0, 0.0, 0.0, 0.0]);
        assert!(
            zero.iter().zip(g).all(|(a, b)| (a - b).abs() < 2e-4),
            "{zero:?}"
        );
        for emor in [[-0.8, 0.3, -0.2, 0.1, 0.05], [1.5, -1.0, 0.5, 0.0, 0.0]] {
            let c = inverse_response(emor);
            assert!(
                c.windows(2).all(|w| w[0] <= w[1]) && c[0] == 0.0 && c[64] == 1.0,
                "{c:?}"
            );
        }
    }
}
