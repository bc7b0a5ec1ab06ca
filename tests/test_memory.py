"""Peak memory must not grow with the image's height: the same width at
1x and 8x the height peaks at (nearly) the same RSS. Measured as VmHWM on
sparse KROs, so the test is fast and needs no disk."""
import subprocess

import pytest

from conftest import peak_rss_mb


def sparse_kro(path, w, h, c=4):
    with open(path, "wb") as f:
        import numpy as np

        f.write(b"KRO\x01" + np.array([w, h, 8, c], ">u4").tobytes())
        f.truncate(20 + w * h * c)


@pytest.mark.parametrize("ext", ["tif", "kro", "psb"])
def test_rss_independent_of_height(tmp_path, ext):
    w = 8000
    sparse_kro(tmp_path / "short.kro", w, 1000)
    sparse_kro(tmp_path / "tall.kro", w, 8000)
    out = tmp_path / f"out.{ext}"
    short = peak_rss_mb(["convert", tmp_path / "short.kro", out, "--quiet"])
    out.unlink()
    tall = peak_rss_mb(["convert", tmp_path / "tall.kro", out, "--quiet"])
    out.unlink()
    # 8x the pixels; allow 25% + 16 MB of noise, far below the 8x a whole-image tool needs.
    assert tall < short * 1.25 + 16, f"short {short:.0f} MB, tall {tall:.0f} MB"
    assert tall < 300


def test_tile_rss_independent_of_height(tmp_path):
    # Past the first few thousand rows every level's band and the tile queue
    # are at their steady size; from there 8x the height must cost nothing.
    w = 8000
    sparse_kro(tmp_path / "short.kro", w, 4000)
    sparse_kro(tmp_path / "tall.kro", w, 32000)
    short = peak_rss_mb(["tile", tmp_path / "short.kro", tmp_path / "a", "--quiet", "--no-viewer"])
    tall = peak_rss_mb(["tile", tmp_path / "tall.kro", tmp_path / "b", "--quiet", "--no-viewer"])
    assert tall < short * 1.25 + 16, f"short {short:.0f} MB, tall {tall:.0f} MB"
