"""giga fill: push-pull in premultiplied colour, checked against a small
in-memory numpy implementation of the same method, plus the properties the
issue asks for (flat holes, gradients, opaque pixels untouched, no
transparency left, streamed levels equal to in-memory ones)."""
import os

import numpy as np
import pytest
import tifffile

from conftest import giga, listing, read_kro_numpy, sample_image, write_kro


def pull(p):
    """2x2 reduction of (h, w, n) premultiplied colour + weight, edges replicated, weight capped at 1."""
    h, w, n = p.shape
    if h % 2:
        p = np.concatenate([p, p[-1:]], 0)
    if w % 2:
        p = np.concatenate([p, p[:, -1:]], 1)
    s = p.reshape(p.shape[0] // 2, 2, p.shape[1] // 2, 2, n).sum(axis=(1, 3))
    weight = s[..., -1:]
    capped = np.minimum(weight, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(weight > 0, capped / weight, 0.0)
    return np.concatenate([s[..., :-1] * k, capped], -1)


def colour(p):
    w = p[..., -1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(w > 0, p[..., :-1] / np.where(w > 0, w, 1), 0.0)


def up(f, h, w):
    """Bilinear 2x: fine pixel x takes 3/4 of coarse x//2 and 1/4 of its other neighbour."""
    def axis(a, size, ax):
        n = a.shape[ax]
        x = np.arange(size)
        i = x // 2
        j = np.where(x % 2 == 0, np.maximum(i - 1, 0), np.minimum(i + 1, n - 1))
        return 0.75 * np.take(a, i, ax) + 0.25 * np.take(a, j, ax)
    return axis(axis(f, h, 0), w, 1)


def pushpull(a, maxval):
    """The reference: returns filled colours (h, w, c-1) as floats 0..1 at full resolution."""
    x = a.astype(np.float64) / maxval
    alpha = np.clip(np.nan_to_num(x[..., -1:]), 0, 1)
    levels = [np.concatenate([x[..., :-1] * alpha, alpha], -1)]
    while levels[-1].shape[0] > 1 or levels[-1].shape[1] > 1:
        levels.append(pull(levels[-1]))
    f = colour(levels[-1])
    for p in reversed(levels[:-1]):
        u = up(f, p.shape[0], p.shape[1])
        wgt = p[..., -1:]
        f = colour(p) * wgt + u * (1 - wgt)
    return f


def holes(h, w, seed=0):
    rng = np.random.default_rng(seed)
    a = sample_image(h, w, 4, 8, seed=seed)
    a[..., 3] = 255
    a[h // 4 : h // 2, w // 5 : w // 2, 3] = 0  # a hole
    a[:, : w // 8, 3] = 0  # a wedge at the border
    a[rng.random((h, w)) < 0.05, 3] = 0  # scattered pixels
    a[max(h - 3, 0) :, :, 3] = rng.integers(1, 255, (min(3, h), w))  # a feathered edge
    return a


@pytest.mark.parametrize("size", [(45, 67), (1, 9), (33, 1), (128, 200)])
def test_matches_reference(tmp_path, size):
    a = holes(*size)
    write_kro(tmp_path / "in.kro", a)
    giga("fill", tmp_path / "in.kro", tmp_path / "out.kro")
    got = read_kro_numpy(tmp_path / "out.kro")
    assert got.shape == (*size, 3)  # opaque output: alpha dropped
    want = np.floor(pushpull(a, 255) * 255 + 0.5)
    opaque = a[..., 3] == 255
    np.testing.assert_array_equal(got[opaque], a[..., :3][opaque])  # bit for bit
    assert np.abs(got.astype(int) - want).max() <= 1


def test_flat_hole_and_gradient(tmp_path):
    a = np.zeros((64, 256, 4), np.uint8)
    a[..., :3] = (40, 120, 200)
    a[..., 3] = 255
    a[10:50, 30:220, 3] = 0
    write_kro(tmp_path / "flat.kro", a)
    giga("fill", tmp_path / "flat.kro", tmp_path / "flat.tif")
    got = tifffile.imread(tmp_path / "flat.tif").astype(int)
    assert np.abs(got - [40, 120, 200]).max() <= 1
    # A horizontal gradient, one level per pixel, with a wide hole: no step above the gradient's.
    g = np.zeros((32, 256, 4), np.uint8)
    g[..., 0] = g[..., 1] = g[..., 2] = np.arange(256)[None, :]
    g[..., 3] = 255
    g[:, 80:176, 3] = 0
    write_kro(tmp_path / "grad.kro", g)
    giga("fill", tmp_path / "grad.kro", tmp_path / "grad.tif")
    got = tifffile.imread(tmp_path / "grad.tif").astype(int)[..., 0]
    steps = np.abs(np.diff(got, axis=1))
    assert steps.max() <= 2, steps.max()
    assert got[:, 80:176].min() >= 70 and got[:, 80:176].max() <= 185


@pytest.mark.parametrize("c,bits", [(2, 8), (4, 16), (4, 32), (2, 16)])
def test_depths_and_channels(tmp_path, c, bits):
    a = sample_image(40, 50, c, bits, seed=5)
    full = 1.0 if bits == 32 else (1 << bits) - 1
    a[..., -1] = full
    a[5:30, 10:35, -1] = 0
    write_kro(tmp_path / "in.kro", a)
    giga("fill", tmp_path / "in.kro", tmp_path / "out.kro")
    got = read_kro_numpy(tmp_path / "out.kro")
    assert got.shape == (40, 50, c - 1) and got.dtype == a.dtype
    opaque = a[..., -1] == full
    np.testing.assert_array_equal(got[opaque], a[..., :-1][opaque])
    want = pushpull(a, full) * (1 if bits == 32 else full)
    tol = 1e-4 if bits == 32 else 1
    assert np.abs(got.astype(np.float64) - want).max() <= tol


def test_keep_alpha(tmp_path):
    a = holes(40, 60, seed=2)
    write_kro(tmp_path / "in.kro", a)
    giga("fill", tmp_path / "in.kro", tmp_path / "out.kro", "--keep-alpha")
    got = read_kro_numpy(tmp_path / "out.kro")
    np.testing.assert_array_equal(got[..., 3], a[..., 3])
    assert (got[..., :3][a[..., 3] == 0] != 0).any()  # colour painted under the transparency


def test_streamed_levels_equal_in_memory(tmp_path):
    a = holes(300, 257, seed=4)
    write_kro(tmp_path / "in.kro", a)
    giga("fill", tmp_path / "in.kro", tmp_path / "mem.kro")
    env = dict(os.environ, GIGA_FILL_MEMORY_PIXELS="16")  # forces every level but 1x1-ish to stream
    import subprocess

    from conftest import GIGA

    subprocess.run([GIGA, "fill", str(tmp_path / "in.kro"), str(tmp_path / "streamed.kro")], check=True, env=env)
    assert (tmp_path / "mem.kro").read_bytes() == (tmp_path / "streamed.kro").read_bytes()


def test_nothing_to_fill_and_errors(tmp_path):
    rgb = sample_image(5, 7, 3, 8)
    write_kro(tmp_path / "rgb.kro", rgb)
    r = giga("fill", tmp_path / "rgb.kro", tmp_path / "o.kro")
    assert "nothing to fill" in r.stderr
    assert (tmp_path / "o.kro").read_bytes() == (tmp_path / "rgb.kro").read_bytes()
    opaque = sample_image(5, 7, 4, 8)
    opaque[..., 3] = 255
    write_kro(tmp_path / "op.kro", opaque)
    r = giga("fill", tmp_path / "op.kro", tmp_path / "o2.kro")
    assert "no transparent pixel" in r.stderr and (tmp_path / "o2.kro").read_bytes() == (tmp_path / "op.kro").read_bytes()
    clear = sample_image(5, 7, 4, 8)
    clear[..., 3] = 0
    write_kro(tmp_path / "clear.kro", clear)
    before = listing(tmp_path)
    r = giga("fill", tmp_path / "clear.kro", tmp_path / "o3.kro", check=False)
    assert r.returncode == 1 and "entirely transparent" in r.stderr and "clear.kro" in r.stderr
    assert listing(tmp_path) == before


def test_tile_with_fill(tmp_path):
    a = holes(300, 400, seed=6)
    write_kro(tmp_path / "in.kro", a)
    giga("fill", tmp_path / "in.kro", tmp_path / "filled.png")
    giga("tile", tmp_path / "in.kro", tmp_path / "site", "--fill", "--format", "png", "--no-viewer", "--quiet")
    from PIL import Image

    t = np.asarray(Image.open(tmp_path / "site/in_files/9/0_0.png"))
    f = np.asarray(Image.open(tmp_path / "filled.png"))
    assert t.shape[2] == 3  # filled: opaque
    np.testing.assert_array_equal(t, f[:255, :255])
