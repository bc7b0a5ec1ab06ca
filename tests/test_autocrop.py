"""giga autocrop: the largest rectangle without transparency, checked
against a brute-force search in numpy on small masks and a reference
histogram search on a wavy panorama border."""
import numpy as np
import pytest
import tifffile

from conftest import giga, listing, sample_image, write_kro


def brute(mask, aspect=None):
    """Largest all-True rectangle; ties: topmost, then leftmost. O(n^4) with prefix sums."""
    h, w = mask.shape
    s = np.zeros((h + 1, w + 1), np.int64)
    s[1:, 1:] = np.cumsum(np.cumsum(mask, 0), 1)
    best = None
    for y in range(h):
        for x in range(w):
            for rh in range(1, h - y + 1):
                for rw in range(1, w - x + 1):
                    if aspect and rw * aspect[1] != rh * aspect[0]:
                        continue
                    total = s[y + rh, x + rw] - s[y, x + rw] - s[y + rh, x] + s[y, x]
                    if total == rw * rh:
                        key = (-rw * rh, y, x)
                        if best is None or key < best[0]:
                            best = (key, (x, y, rw, rh))
    return best[1] if best else None


def image_with_mask(mask, bits=8):
    h, w = mask.shape
    a = sample_image(h, w, 4, bits, seed=11)
    full = 1.0 if bits == 32 else (1 << bits) - 1
    a[..., 3] = np.where(mask, full, 0)
    return a


@pytest.mark.parametrize("seed", range(12))
def test_random_masks_against_brute_force(tmp_path, seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 10, 2)
    mask = rng.random((h, w)) < 0.8
    if not mask.any():
        mask[0, 0] = True
    write_kro(tmp_path / "in.kro", image_with_mask(mask, bits=[8, 16, 32][seed % 3]))
    r = giga("autocrop", tmp_path / "in.kro", "--print")
    assert tuple(map(int, r.stdout.strip().split(","))) == brute(mask)


def test_shapes_and_the_crop_written(tmp_path):
    ring = np.ones((9, 12), bool)
    ring[2:7, 3:9] = False
    L = np.zeros((10, 10), bool)
    L[:, :3] = True
    L[6:, :] = True
    for mask in (ring, L):
        a = image_with_mask(mask)
        write_kro(tmp_path / "in.kro", a)
        x, y, w, h = brute(mask)
        giga("autocrop", tmp_path / "in.kro", tmp_path / "out.tif")
        np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), a[y : y + h, x : x + w])


def test_wavy_panorama_border_and_aspect(tmp_path):
    W, H = 240, 120
    x = np.arange(W)
    y = np.arange(H)[:, None]
    top = 10 + 6 * np.sin(x / 17)
    bottom = 105 + 7 * np.cos(x / 23)
    mask = (y >= top) & (y < bottom) & (x > 4) & (x < 233)
    write_kro(tmp_path / "in.kro", image_with_mask(mask))
    got = tuple(map(int, giga("autocrop", tmp_path / "in.kro", "--print").stdout.split(",")))
    # Reference: histogram search in Python.
    heights = np.zeros(W, int)
    best = None
    for row in range(H):
        heights = np.where(mask[row], heights + 1, 0)
        for l in range(W):
            m = H
            for r in range(l, W):
                m = min(m, heights[r])
                if m == 0:
                    break
                key = (-(r - l + 1) * m, row - m + 1, l)
                if best is None or key < best[0]:
                    best = (key, (l, row - m + 1, r - l + 1, m))
    assert got == best[1]
    x0, y0, w, h = map(int, giga("autocrop", tmp_path / "in.kro", "--print", "--aspect", "16:9").stdout.split(","))
    assert w * 9 == h * 16 and mask[y0 : y0 + h, x0 : x0 + w].all()


def test_threshold_and_errors(tmp_path):
    mask = np.ones((6, 6), bool)
    a = image_with_mask(mask)
    a[0, :, 3] = 200  # feathered top row
    write_kro(tmp_path / "in.kro", a)
    assert giga("autocrop", tmp_path / "in.kro", "--print").stdout.strip() == "0,1,6,5"
    assert giga("autocrop", tmp_path / "in.kro", "--print", "--threshold", "0.5").stdout.strip() == "0,0,6,6"
    write_kro(tmp_path / "clear.kro", image_with_mask(np.zeros((4, 4), bool)))
    before = listing(tmp_path)
    r = giga("autocrop", tmp_path / "clear.kro", tmp_path / "o.tif", check=False)
    assert r.returncode == 1 and "nothing to keep" in r.stderr and listing(tmp_path) == before
    r = giga("autocrop", tmp_path / "in.kro", "--print", "--aspect", "16-9", check=False)
    assert r.returncode == 2
    write_kro(tmp_path / "rgb.kro", sample_image(5, 7, 3, 8))
    r = giga("autocrop", tmp_path / "rgb.kro", "--print")
    assert r.stdout.strip() == "0,0,7,5" and "no alpha channel" in r.stderr
