"""giga crop: pixel and relative windows against numpy slicing, clamping,
and cropping that reads only the window of a huge sparse KRO."""
import math

import numpy as np
import pytest
import tifffile

from conftest import giga, listing, sample_image, write_kro


@pytest.fixture
def image(tmp_path):
    a = sample_image(97, 131, 4, 16)
    write_kro(tmp_path / "in.kro", a)
    return a


@pytest.mark.parametrize("rect", ["0,0,131,97", "5,7,1,1", "130,96,1,1", "10,20,50,30", "0,50,131,10"])
def test_rect(tmp_path, image, rect):
    x, y, w, h = map(int, rect.split(","))
    giga("crop", tmp_path / "in.kro", tmp_path / "out.tif", "--rect", rect)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), image[y : y + h, x : x + w])


@pytest.mark.parametrize("rel", ["0,0,1,1", "0.25,0.5,0.5,0.25", "0.1,0.1,0.33,0.77", "0.999,0.999,1,1", "0.5,0,0.004,1"])
def test_rel_uses_floor(tmp_path, image, rel):
    X, Y, W, H = map(float, rel.split(","))
    ih, iw = image.shape[:2]
    x0, y0 = math.floor(X * iw), math.floor(Y * ih)
    w, h = min(math.floor(W * iw), iw - x0), min(math.floor(H * ih), ih - y0)
    args = ["crop", tmp_path / "in.kro", tmp_path / "out.tif", "--rel", rel]
    if w < 1 or h < 1:
        r = giga(*args, check=False)
        assert r.returncode == 1 and "empty" in r.stderr
        return
    giga(*args)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), image[y0 : y0 + h, x0 : x0 + w])


def test_rect_is_clamped(tmp_path, image):
    giga("crop", tmp_path / "in.kro", tmp_path / "out.tif", "--rect", "120,90,100,100")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), image[90:, 120:])


@pytest.mark.parametrize("rect", ["131,0,5,5", "0,97,5,5", "3,3,0,5"])
def test_empty_window_is_an_error(tmp_path, image, rect):
    before = listing(tmp_path)
    r = giga("crop", tmp_path / "in.kro", tmp_path / "out.tif", "--rect", rect, check=False)
    assert r.returncode == 1 and "empty" in r.stderr and r.stderr.count("\n") == 1
    assert listing(tmp_path) == before


@pytest.mark.parametrize("ext", ["tif", "png", "psd", "jpg"])
def test_crop_from_other_formats(tmp_path, ext):
    a = sample_image(300, 280, 3, 8)
    write_kro(tmp_path / "in.kro", a)
    giga("convert", tmp_path / "in.kro", tmp_path / f"src.{ext}", "--quality", "100")
    giga("crop", tmp_path / f"src.{ext}", tmp_path / "out.tif", "--rect", "261,259,19,41")
    full = tifffile.imread(tmp_path / "out.tif")
    if ext == "jpg":
        assert full.shape == (41, 19, 3)
    else:
        np.testing.assert_array_equal(full, a[259:300, 261:280])


def test_window_of_a_huge_sparse_kro(tmp_path):
    """A 1000x1000 window out of a 40 GB (sparse) KRO: only the window is read.
    The byte count itself is asserted by the Rust test kro_window_reads; here
    the whole command runs and the marker pixel comes out right."""
    w, h = 100_000, 100_000
    with open(tmp_path / "huge.kro", "wb") as f:
        f.write(b"KRO\x01" + np.array([w, h, 8, 4], ">u4").tobytes())
        f.truncate(20 + w * h * 4)
        f.seek(20 + (60_020 * w + 50_010) * 4)
        f.write(bytes([9, 8, 7, 6]))
    giga("crop", tmp_path / "huge.kro", tmp_path / "win.tif", "--rect", "50000,60000,1000,1000")
    got = tifffile.imread(tmp_path / "win.tif")
    assert got.shape == (1000, 1000, 4)
    assert got[20, 10].tolist() == [9, 8, 7, 6]
    assert int(got.sum()) == 9 + 8 + 7 + 6
