"""giga tile: every layout's geometry against OpenSeadragon's formulas
(tests/pyramid_ref.py), every tile's pixels against an independent numpy
pyramid, the description files, and the command's errors."""
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import giga, listing, sample_image, write_kro
from pyramid_ref import levels, reduce2x2, tile_files

SIZES = [(1, 1), (255, 257), (509, 67), (3001, 7), (7, 3001)]  # W, H
TILED = ["dzi", "iiif3", "iiif2", "zoomify", "xyz", "tms", "custom"]


def settings(layout):
    if layout in ("xyz", "tms"):
        return 256, 0
    if layout == "dzi":
        return 64, 1
    if layout == "custom":
        return 64, 2
    return 64, 0


def source_image(W, H):
    """RGBA with a transparent band and half-transparent pixels, to exercise the alpha weighting."""
    a = sample_image(H, W, 4, 8, seed=3)
    a[..., 3] = np.where(np.arange(W)[None, :] % 7 == 0, 0, a[..., 3])
    return a


def reference_levels(a, layout, tile):
    """{number: pixels} of every level, by repeated alpha-weighted reduction."""
    lv = levels(layout, a.shape[1], a.shape[0], tile)
    out, cur = {}, a
    for i, (number, lw, lh) in enumerate(lv):
        if i > 0:
            cur = reduce2x2(cur, floor=layout == "zoomify")
        if lw and lh:  # OpenSeadragon's Zoomify tiers can reach a zero side: no tiles there
            assert cur.shape[:2] == (lh, lw), (layout, i, cur.shape, lw, lh)
        out[number] = cur
    return out


def files_under(root, skip=()):
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not any(str(p.relative_to(root)).startswith(s) for s in skip)
    )


@pytest.mark.parametrize("layout", TILED)
@pytest.mark.parametrize("W,H", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_geometry_and_pixels(tmp_path, layout, W, H):
    a = source_image(W, H)
    write_kro(tmp_path / "in.kro", a)
    tile, overlap = settings(layout)
    out = tmp_path / "out"
    args = ["tile", tmp_path / "in.kro", out, "--layout", layout, "--format", "png", "--name", "p", "--no-viewer", "--quiet"]
    if layout not in ("xyz", "tms"):
        args += ["--tile-size", tile, "--overlap", overlap]
    too_small = (layout == "xyz" and max(W, H) <= 128) or (layout == "tms" and max(W, H) <= 256)
    r = giga(*args, check=False)
    if too_small:
        assert r.returncode == 1 and "too small" in r.stderr, r.stderr
        assert not out.exists() or files_under(out) == []
        return
    assert r.returncode == 0, r.stderr
    expected = tile_files(layout, "p", W, H, tile, overlap, "png")
    descriptions = {"dzi": ["p.dzi"], "iiif3": ["p/info.json"], "iiif2": ["p/info.json"], "zoomify": ["p/ImageProperties.xml"]}.get(layout, ["p.json"])
    got = set(files_under(out))
    wholes = {f for f in got if f.startswith("p/full/")} - set(expected)  # IIIF sizes and full/max
    # .p.giga-pyramid: what the tiles were made from (inputs, options), so --resume and
    # re-runs can tell whether the folder's tiles belong to them.
    assert got == set(expected) | set(descriptions) | wholes | {".p.giga-pyramid"}
    ref = reference_levels(a, layout, tile)
    for path, (number, c, r_, x0, y0, w, h, lw, lh) in expected.items():
        t = np.asarray(Image.open(out / path).convert("RGBA"))
        want = ref[number][y0 : y0 + h, x0 : x0 + w]
        if layout == "tms":  # always 256x256, padded with transparency past the image
            assert t.shape[:2] == (256, 256), path
            np.testing.assert_array_equal(t[:h, :w], want, err_msg=path)
            assert (t[h:, :, 3] == 0).all() and (t[:, w:, 3] == 0).all()
        else:
            assert t.shape[:2] == (h, w), (path, t.shape, (h, w))
            np.testing.assert_array_equal(t, want, err_msg=path)


def test_dzi_description_and_defaults(tmp_path):
    a = source_image(600, 401)
    write_kro(tmp_path / "pano.kro", a)
    giga("tile", tmp_path / "pano.kro", tmp_path / "site", "--quiet")
    root = ET.parse(tmp_path / "site" / "pano.dzi").getroot()
    assert root.tag == "{http://schemas.microsoft.com/deepzoom/2008}Image"
    assert (root.get("Format"), root.get("Overlap"), root.get("TileSize")) == ("jpg", "1", "254")
    size = root[0]
    assert (size.get("Width"), size.get("Height")) == ("600", "401")
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "openseadragon" / "openseadragon.min.js").exists()
    assert set(files_under(tmp_path / "site", skip=("openseadragon", "index.html", "pano.dzi", ".pano.giga-pyramid"))) == set(tile_files("dzi", "pano", 600, 401, 254, 1, "jpg"))


def test_iiif_info_json(tmp_path):
    W, H = 9000, 300
    write_kro(tmp_path / "in.kro", source_image(W, H))
    giga("tile", tmp_path / "in.kro", tmp_path / "s", "--layout", "iiif3", "--id", "https://example.org/iiif/", "--name", "pano", "--quiet", "--no-viewer")
    info = json.loads((tmp_path / "s/pano/info.json").read_text())
    assert info["@context"] == "http://iiif.io/api/image/3/context.json"
    assert info["id"] == "https://example.org/iiif/pano"
    assert (info["type"], info["protocol"], info["profile"]) == ("ImageService3", "http://iiif.io/api/image", "level0")
    assert (info["width"], info["height"]) == (W, H)
    assert info["tiles"] == [{"width": 512, "height": 512, "scaleFactors": [1, 2, 4, 8, 16, 32]}]
    # 'max' is a small overview: maxWidth/maxHeight declare it, and it exists.
    assert (info["maxWidth"], info["maxHeight"]) == (2250, 75)
    im = Image.open(tmp_path / "s/pano/full/max/0/default.jpg")
    assert im.size == (2250, 75)
    for s in info["sizes"]:
        assert Image.open(tmp_path / f"s/pano/full/{s['width']},{s['height']}/0/default.jpg").size == (s["width"], s["height"])
    giga("tile", tmp_path / "in.kro", tmp_path / "s2", "--layout", "iiif2", "--name", "pano", "--quiet", "--no-viewer")
    info2 = json.loads((tmp_path / "s2/pano/info.json").read_text())
    assert info2["@id"] == "http://localhost:8000/pano" and info2["profile"][0] == "http://iiif.io/api/image/2/level0.json"
    assert Image.open(tmp_path / "s2/pano/full/full/0/default.jpg").size == (2250, 75)


def test_zoomify_properties(tmp_path):
    write_kro(tmp_path / "in.kro", source_image(1025, 700))
    giga("tile", tmp_path / "in.kro", tmp_path / "z", "--layout", "zoomify", "--quiet", "--no-viewer")
    root = ET.parse(tmp_path / "z/in/ImageProperties.xml").getroot()
    n = len(tile_files("zoomify", "in", 1025, 700, 256, 0, "jpg"))
    assert (root.get("WIDTH"), root.get("HEIGHT"), root.get("NUMTILES"), root.get("TILESIZE")) == ("1025", "700", str(n), "256")


def test_legacy_levels(tmp_path):
    a = source_image(1500, 700)
    write_kro(tmp_path / "in.kro", a)
    giga("tile", tmp_path / "in.kro", tmp_path / "l", "--layout", "legacy", "--format", "png", "--quiet", "--no-viewer")
    desc = json.loads((tmp_path / "l/in.json").read_text())
    assert desc["type"] == "legacy-image-pyramid"
    sizes = [(lv["width"], lv["height"]) for lv in desc["levels"]]
    assert sizes == [(188, 88), (375, 175), (750, 350), (1500, 700)]
    cur = a
    for w, h in reversed(sizes):
        if (w, h) != (1500, 700):
            cur = reduce2x2(cur)
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / f"l/in/{w}x{h}.png")), cur)


def test_legacy_starts_at_8192(tmp_path):
    W, H = 20000, 3
    with open(tmp_path / "wide.kro", "wb") as f:
        f.write(b"KRO\x01" + np.array([W, H, 8, 3], ">u4").tobytes())
        f.truncate(20 + W * H * 3)
    giga("tile", tmp_path / "wide.kro", tmp_path / "l", "--layout", "legacy", "--quiet", "--no-viewer")
    desc = json.loads((tmp_path / "l/wide.json").read_text())
    assert max(lv["width"] for lv in desc["levels"]) == 5000


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


def test_jpeg_tiles_reassemble_within_psnr(tmp_path, photo):
    a = np.ascontiguousarray(photo[:700, :1001])
    write_kro(tmp_path / "in.kro", a)
    giga("tile", tmp_path / "in.kro", tmp_path / "j", "--quality", "95", "--quiet", "--no-viewer")
    lv = levels("dzi", 1001, 700)
    top = lv[0][0]
    canvas = np.zeros_like(a)
    for path, (number, c, r, x0, y0, w, h, lw, lh) in tile_files("dzi", "in", 1001, 700, 254, 1, "jpg").items():
        if number == top:
            t = np.asarray(Image.open(tmp_path / "j" / path))
            assert t.shape[:2] == (h, w)
            canvas[y0 : y0 + h, x0 : x0 + w] = t
    assert psnr(canvas, a) > 40


def test_jpeg_flattens_onto_background(tmp_path):
    a = np.zeros((64, 64, 4), np.uint8)
    a[..., 2] = 255  # blue, transparent on the left half
    a[:, 32:, 3] = 255
    write_kro(tmp_path / "in.kro", a)
    giga("tile", tmp_path / "in.kro", tmp_path / "b", "--background", "#ff0000", "--quality", "100", "--quiet", "--no-viewer")
    t = np.asarray(Image.open(tmp_path / "b/in_files/6/0_0.jpg")).astype(int)
    assert np.abs(t[:, :28] - [255, 0, 0]).max() < 10
    assert np.abs(t[:, 36:] - [0, 0, 255]).max() < 10


def test_skip_blank(tmp_path):
    W, H = 600, 300
    a = source_image(W, H)
    a[:, :300, 3] = 0  # left half fully transparent
    write_kro(tmp_path / "in.kro", a)
    r = giga("tile", tmp_path / "in.kro", tmp_path / "s", "--layout", "xyz", "--skip-blank", "--no-viewer")
    assert "blank left out" in r.stderr
    files = tile_files("xyz", "in", W, H, 256, 0, "png")
    present = {f for f in files if (tmp_path / "s" / f).exists()}
    # At full resolution (z=2: 600 px, 3 columns), column 0 is fully transparent.
    assert "in/2/0/0.png" not in present and "in/2/1/0.png" in present
    assert len(present) < len(files)


def test_resume_gives_the_same_files(tmp_path):
    a = source_image(700, 500)
    write_kro(tmp_path / "in.kro", a)
    giga("tile", tmp_path / "in.kro", tmp_path / "full", "--quiet")
    giga("tile", tmp_path / "in.kro", tmp_path / "part", "--quiet")
    # Simulate an interruption: some tiles and the description missing.
    tiles = sorted((tmp_path / "part/in_files").rglob("*.jpg"))
    for t in tiles[::3]:
        t.unlink()
    (tmp_path / "part/in.dzi").unlink()
    r = giga("tile", tmp_path / "in.kro", tmp_path / "part", "--resume")
    assert "kept from before" in r.stderr
    for f in files_under(tmp_path / "full"):
        assert (tmp_path / "full" / f).read_bytes() == (tmp_path / "part" / f).read_bytes(), f
    assert files_under(tmp_path / "full") == files_under(tmp_path / "part")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--tile-size", "0"], "between 1 and 8192"),
        (["--tile-size", "8193"], "between 1 and 8192"),
        (["--tile-size", "64", "--overlap", "64"], "smaller than the tile size"),
        (["--layout", "mosaic"], "invalid value"),
        (["--format", "gif"], "invalid value"),
        (["--layout", "legacy", "--format", "webp"], "offered for the dzi"),
        (["--layout", "xyz", "--format", "jpg"], "needs --format png"),
        (["--layout", "tms", "--format", "jpg"], "needs --format png"),
        (["--layout", "zoomify", "--overlap", "1"], "don't overlap"),
        (["--layout", "custom", "--template", "{z}/{x}.jpg"], "must contain"),
    ],
)
def test_bad_arguments_write_nothing(tmp_path, args, needle):
    write_kro(tmp_path / "in.kro", source_image(300, 300))
    r = giga("tile", tmp_path / "in.kro", tmp_path / "out", *args, check=False)
    assert r.returncode in (1, 2), r.stderr
    assert needle in r.stderr, r.stderr
    assert not (tmp_path / "out").exists() or files_under(tmp_path / "out") == []


def test_unwritable_outdir(tmp_path):
    write_kro(tmp_path / "in.kro", source_image(30, 30))
    (tmp_path / "file").write_text("not a folder")
    r = giga("tile", tmp_path / "in.kro", tmp_path / "file" / "out", check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "file/out" in r.stderr


def test_webp_tiles_keep_alpha(tmp_path):
    a = source_image(300, 200)
    a[:, :100, 3] = 0
    write_kro(tmp_path / "in.kro", a)
    giga("tile", tmp_path / "in.kro", tmp_path / "w", "--format", "webp", "--quality", "95", "--quiet")
    assert 'Format="webp"' in (tmp_path / "w/in.dzi").read_text()
    t = Image.open(tmp_path / "w/in_files/9/0_0.webp")
    assert t.format == "WEBP" and t.mode == "RGBA" and t.size == (255, 200)
    px = np.asarray(t)
    assert (px[:, :95, 3] == 0).all() and (px[:, 110:, 3] > 0).any()


def test_interrupted_tiling_resumes_to_the_same_files(tmp_path):
    """Ctrl-C in the middle: no description, no temporary file; --resume then
    finishes with exactly the files of an uninterrupted run."""
    import signal
    import subprocess
    import time

    from conftest import GIGA

    a = source_image(6000, 4000)
    write_kro(tmp_path / "in.kro", a)
    giga("tile", tmp_path / "in.kro", tmp_path / "full", "--quiet")
    out = tmp_path / "cut"
    p = subprocess.Popen([GIGA, "tile", str(tmp_path / "in.kro"), str(out), "--quiet"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while time.time() < deadline and not (out / "in_files" / "13").exists():
        time.sleep(0.005)
    time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    if p.returncode == 0:
        pytest.skip("the run finished before the interrupt landed")
    assert "interrupted" in err
    assert not (out / "in.dzi").exists() and not (out / "index.html").exists()
    assert not [f for f in files_under(out) if f.endswith(".tmp") or "/." in f]
    giga("tile", tmp_path / "in.kro", out, "--quiet", "--resume")
    assert files_under(out) == files_under(tmp_path / "full")
    for f in files_under(out):
        assert (out / f).read_bytes() == (tmp_path / "full" / f).read_bytes(), f
