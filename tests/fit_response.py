"""How MEAN_RESPONSE in crates/render/src/photometry.rs was measured (needs Hugin's nona):
a 16-bit gradient frame is rendered 1:1 at exposures from -4 to +4 EV; nona's output is
f(k * f^-1(p)) with k = 2^Eev known, so f^-1 at 65 knots (pixel values (i/64)^2) solves a
linear least-squares problem (with a little smoothing). Prints the knots and the largest
error of the fit against nona, in 8-bit levels.
Run: .venv/bin/python tests/fit_response.py"""
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import tifffile

W, H, M = 4096, 64, 64


def observe(d):
    tifffile.imwrite(d / "grad16.tif", np.tile((np.arange(W) * 65535 // (W - 1)).astype(np.uint16)[None, :, None], (H, 1, 3)))
    es = [e for e in np.arange(-4, 4.01, 0.25) if abs(e) > 1e-9]
    rows = []
    for e in es:
        (d / "p.pto").write_text(
            f'p f0 w{W} h{H} v40 E0 R0 n"TIFF_m c:NONE"\nm i0\n'
            f'i w{W} h{H} f0 v40 Ra0 Rb0 Rc0 Rd0 Re0 Eev{e} Er1 Eb1 Va1 Vb0 Vc0 Vd0 Vx0 Vy0 Vm5 n"grad16.tif"\n'
        )
        subprocess.run(["nona", "-o", str(d / "o_"), str(d / "p.pto")], check=True, capture_output=True)
        rows.append(tifffile.imread(d / "o_0000.tif")[H // 2, :, 0] / 65535.0)
    return np.array(es), np.array(rows)


def fit(es, obs):
    p = np.arange(W) * 65535 // (W - 1) / 65535.0
    q = (np.arange(M + 1) / M) ** 2

    def basis(x):
        b = np.zeros((len(x), M + 1))
        i = np.clip(np.searchsorted(q, x, side="right") - 1, 0, M - 1)
        t = (x - q[i]) / (q[i + 1] - q[i])
        b[np.arange(len(x)), i] = 1 - t
        b[np.arange(len(x)), i + 1] = t
        return b

    rows = []
    for e, o in zip(es, obs):
        m = (o < 0.999) & (o > 0.0005) & (p > 0.0005) & (p < 0.999)
        rows.append(basis(o[m]) - 2.0**e * basis(p[m]))  # f^-1(out) = k f^-1(p)
    a = np.vstack(rows)
    b = -a[:, M]  # f^-1(0) = 0, f^-1(1) = 1
    a = a[:, 1:M]
    smooth = np.zeros((M - 3, M - 1))
    for i in range(M - 3):
        smooth[i, i : i + 3] = [1, -2, 1]
    sol = np.linalg.lstsq(np.vstack([a, 1e-3 * smooth * len(a) / M]), np.concatenate([b, np.zeros(M - 3)]), rcond=None)[0]
    g = np.concatenate([[0], sol, [1]])
    err = max(np.abs(np.interp(np.clip(2.0**e * np.interp(p, q, g), 0, 1), g, q) - o).max() * 255 for e, o in zip(es, obs))
    return g, err


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        g, err = fit(*observe(Path(d)))
    print(", ".join(f"{v:.6f}" for v in g))
    print(f"largest error against nona: {err:.2f} of an 8-bit level")
