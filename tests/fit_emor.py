"""How EMOR_BASIS in crates/render/src/photometry.rs was measured (needs Hugin's nona).
Hugin's camera response is EMoR: f = f0 + Ra h1 + Rb h2 + Rc h3 + Rd h4 + Re h5, and nona
writes LDR output through frame 0's curve. So in a project whose frame 0 has Ra..Re = 0 (its
curve f0, known: MEAN_RESPONSE) and whose frame 1 has one coefficient c, frame 1's 16-bit
gradient at Eev 0 comes out as f0(fc^-1(p)): fc^-1(p) = f0^-1(out), inverted for fc at the
exposure knots x = (i/64)^2, and h = (fc - f0) / c, averaged over c = +-0.25.
Prints the five rows and how far c = +0.25 and -0.25 disagree (linearity).
Run: .venv/bin/python tests/fit_emor.py"""
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import tifffile

W, H, M = 4096, 64, 64
ROOT = Path(__file__).resolve().parent.parent
Q = (np.arange(M + 1) / M) ** 2  # knots: pixel values for f^-1, exposures for h


def mean_inverse():
    """f0^-1 at pixel knots Q, from photometry.rs."""
    src = (ROOT / "crates/render/src/photometry.rs").read_text()
    body = re.search(r"const MEAN_RESPONSE: \[f32; 65\] = \[(.*?)\];", src, re.S).group(1)
    return np.array([float(v) for v in body.replace("\n", " ").split(",") if v.strip()])


def observe(d, key, c):
    tifffile.imwrite(d / "grad16.tif", np.tile((np.arange(W) * 65535 // (W - 1)).astype(np.uint16)[None, :, None], (H, 1, 3)))
    coeffs = {k: 0.0 for k in ("Ra", "Rb", "Rc", "Rd", "Re")}
    coeffs[key] = c
    line = lambda cs: " ".join(f"{k}{v}" for k, v in cs.items())
    zero = {k: 0.0 for k in coeffs}
    (d / "p.pto").write_text(
        f'p f0 w{W} h{H} v40 E0 R0 n"TIFF_m c:NONE"\nm i0\n'
        f'i w{W} h{H} f0 v40 {line(zero)} Eev0 Er1 Eb1 Va1 Vb0 Vc0 Vd0 Vx0 Vy0 Vm5 n"grad16.tif"\n'
        f'i w{W} h{H} f0 v40 {line(coeffs)} Eev0 Er1 Eb1 Va1 Vb0 Vc0 Vd0 Vx0 Vy0 Vm5 n"grad16.tif"\n'
    )
    subprocess.run(["nona", "-i", "1", "-o", str(d / "o_"), str(d / "p.pto")], check=True, capture_output=True)
    return tifffile.imread(d / "o_0001.tif")[H // 2, :, 0] / 65535.0


def basis(d, key, c, g0):
    p = np.arange(W) * 65535 // (W - 1) / 65535.0
    out = observe(d, key, c)
    fc_inv = np.interp(out, Q, g0)  # fc^-1(p) = f0^-1(out)
    keep = (out > 0.0005) & (out < 0.9995)
    fc = np.interp(Q, fc_inv[keep], p[keep])  # fc at exposure knots
    f0 = np.interp(Q, g0, Q)
    h = (fc - f0) / c
    h[0] = h[-1] = 0.0  # EMoR's basis vanishes at both ends
    return h


if __name__ == "__main__":
    g0 = mean_inverse()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for key in ("Ra", "Rb", "Rc", "Rd", "Re"):
            hp, hm = basis(Path(d), key, 0.25, g0), basis(Path(d), key, -0.25, g0)
            rows.append((hp + hm) / 2)
            print(f"// {key}: +-0.25 disagree by {np.abs(hp - hm).max():.4f}")
    for r in rows:
        print("[" + ", ".join(f"{v:.5f}" for v in r) + "],")
