"""Issue 18: files that claim far more than they hold. Each is refused with one
line naming the file, exit 1, no abort, no output left, and memory bounded: giga
runs under a 4 GB address-space limit, so an unbounded allocation fails the test
instead of the machine."""
import io
import resource
import subprocess

import pytest
from PIL import Image

import crafted
from conftest import GIGA, PHOTO, listing

ADDRESS_SPACE = 4 << 30


def limited(args, timeout=60):
    """Runs giga under the address-space limit; returns the CompletedProcess."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    return subprocess.run([GIGA, *map(str, args)], capture_output=True, text=True, timeout=timeout, preexec_fn=limit)


def refused(tmp_path, args, *needles):
    before = listing(tmp_path)
    r = limited(args)
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr[-2000:]
    assert lines[0].startswith("giga: ") and "allocation" not in lines[0]
    for n in needles:
        assert n.lower() in lines[0].lower(), lines[0]
    assert listing(tmp_path) == before, "output left behind"
    return lines[0]


CLAIMS = {
    # name: (what the line must say)
    "huge-icc.tif": "decoding budget",
    "one-strip.tif": "compressed strip of 100000 rows",
    "wide.tif": "4294967295 px wide",
    "interlaced.png": "interlaced png of 100000x100000",
    "wide.png": "2147483647 px wide",
    "wide.pam": "4294967295 px wide",
    "wide.ppm": "4294967295 px wide",
    "progressive.jpg": "progressive jpeg of 30000x30000",
    "progressive-max.jpg": "progressive jpeg of 65500x65500",
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    d = tmp_path_factory.mktemp("crafted")
    for name, data in crafted.all_cases().items():
        assert len(data) < 400_000
        (d / name).write_bytes(data)
    return d


@pytest.mark.parametrize("name", list(CLAIMS))
def test_claims_are_refused_before_allocating(tmp_path, cases, name):
    src = tmp_path / name
    src.write_bytes((cases / name).read_bytes())
    line = refused(tmp_path, ["convert", src, tmp_path / "out.kro"], name, CLAIMS[name])
    assert "needs" in line or "budget" in line


@pytest.mark.parametrize("name", list(CLAIMS))
def test_info_never_aborts(tmp_path, cases, name):
    # info reads headers only: it may describe the file or refuse it, never abort or hang.
    r = limited(["info", cases / name], timeout=20)
    assert r.returncode in (0, 1), r.stderr[-2000:]
    assert "allocation" not in r.stderr and "panick" not in r.stderr


def test_info_of_a_progressive_bomb_decodes_nothing(cases):
    # A progressive JPEG is decoded whole when its pixels are read; info reads the header only.
    r = limited(["info", cases / "progressive.jpg", "--max-memory", "3.5"], timeout=20)
    assert r.returncode == 0, r.stderr
    assert "30000" in r.stdout and "progressive" in r.stdout


def test_budget_is_a_flag(tmp_path, cases):
    # Above the default budget, refused; with the budget raised, the same file gets further
    # (and is then refused for its missing data, not for its size).
    line = refused(tmp_path, ["convert", cases / "progressive.jpg", tmp_path / "o.kro", "--max-memory", "3.5"], "corrupt")
    assert "budget" not in line
    r = limited(["info", "x.kro", "--max-memory", "0"])
    assert r.returncode == 2


def test_huge_icc_profile_in_png_is_dropped_within_bounds(tmp_path, cases):
    from conftest import peak_rss_mb
    peak = peak_rss_mb(["convert", cases / "big-iccp.png", tmp_path / "o.png", "--quiet"])
    assert peak < 150, f"{peak:.0f} MB for a 300 KB file"
    assert Image.open(tmp_path / "o.png").info.get("icc_profile") is None


def test_a_small_progressive_jpeg_still_reads(tmp_path):
    a = Image.open(PHOTO).convert("RGB").resize((800, 533))
    a.save(tmp_path / "p.jpg", "JPEG", progressive=True, quality=92)
    r = limited(["convert", tmp_path / "p.jpg", tmp_path / "p.png"])
    assert r.returncode == 0, r.stderr
    ours = Image.open(tmp_path / "p.png")
    pil = Image.open(tmp_path / "p.jpg")
    assert ours.size == pil.size
    import numpy as np
    diff = np.abs(np.asarray(ours, np.int16) - np.asarray(pil.convert("RGB"), np.int16))
    assert diff.mean() < 2


def jpeg_bytes(size=(640, 480), **kw):
    b = io.BytesIO()
    Image.open(PHOTO).convert("RGB").resize(size).save(b, "JPEG", quality=90, **kw)
    return b.getvalue()


def test_jpeg_cut_in_half_is_an_error(tmp_path):
    data = jpeg_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2] + b"\xff\xd9")
    refused(tmp_path, ["convert", tmp_path / "half.jpg", tmp_path / "o.tif"], "half.jpg", "corrupt jpeg")
    refused(tmp_path, ["tile", tmp_path / "half.jpg", tmp_path / "site"], "half.jpg", "corrupt jpeg")


def test_jpeg_patched_to_a_huge_size_is_an_error(tmp_path):
    (tmp_path / "huge.jpg").write_bytes(crafted.patch_jpeg_size(jpeg_bytes((64, 64)), 65_500, 65_500))
    refused(tmp_path, ["tile", tmp_path / "huge.jpg", tmp_path / "site"], "huge.jpg", "corrupt jpeg")
