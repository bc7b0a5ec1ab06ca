"""giga preview: a project rendered small. The preview against the full render scaled
down to the same size (PSNR), its overlays against Hugin's pano_trafo (outlines on the
frames' edges, control points where the frames' pixels land), and its seam labels against
which frame the full render really used at sampled pixels."""
import json
import shutil
import subprocess

import numpy as np
import pytest
import tifffile
from PIL import Image

import render_synth
from conftest import GIGA, PHOTO, giga

HUGIN = shutil.which("pano_trafo") is not None


def psnr(a, b):
    m = np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)
    return 99.0 if m == 0 else 10 * np.log10(255.0**2 / m)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The synthetic six-frame project with JPEG frames (so previews decode them small)."""
    d = tmp_path_factory.mktemp("pv")
    pto, _ = render_synth.make(PHOTO, d, frame_w=1600, frame_h=1200, canvas_scale=0.5)
    text = pto.read_text()
    for k in range(6):
        Image.open(d / f"frame{k}.png").convert("RGB").save(d / f"frame{k}.jpg", quality=95)
        text = text.replace(f'"frame{k}.png"', f'"frame{k}.jpg"')
    pto.write_text(text)
    return d, pto


def test_preview_is_the_full_render_seen_small(tmp_path, project):
    d, pto = project
    giga("render", pto, tmp_path / "full.tif", "--quiet")
    giga("preview", pto, tmp_path / "p.png", "--width", "400", "--quiet")
    full = tifffile.imread(tmp_path / "full.tif")
    prev = np.asarray(Image.open(tmp_path / "p.png"))
    h, w = prev.shape[:2]
    assert w == 400 and abs(h / w - full.shape[0] / full.shape[1]) < 0.01
    small = np.asarray(Image.fromarray(full).resize((w, h), Image.BOX))
    both = (prev[..., 3] == 255) & (small[..., 3] == 255)
    assert both.mean() > 0.6
    value = psnr(prev[both][:, :3], small[both][:, :3])
    print(f"preview against the full render scaled down: {value:.1f} dB")
    assert value >= 35


def trafo_reverse(pto, frame, points):
    """Canvas points -> frame `frame`'s pixels, by Hugin's pano_trafo -r."""
    inp = "".join(f"{x} {y}\n" for x, y in points)
    out = subprocess.run(["pano_trafo", "-r", str(pto), str(frame)], input=inp, capture_output=True, text=True, check=True).stdout
    return np.array([[float(v) for v in line.split()[:2]] for line in out.splitlines() if line.strip()])


@pytest.mark.skipif(not HUGIN, reason="needs Hugin's pano_trafo (scripts/setup installs hugin-tools)")
def test_overlays_land_where_hugin_puts_them(tmp_path, project):
    d, pto = project
    # Control points made with pano_trafo: a canvas point seen by frames 0 and 1 (exact), and
    # one whose second end is moved 6 px (a bad match).
    canvas_pts = [(700.0, 260.0), (760.0, 300.0)]
    a = trafo_reverse(pto, 0, canvas_pts)
    b = trafo_reverse(pto, 1, canvas_pts)
    lines = [f"c n0 N1 x{a[k][0]} y{a[k][1]} X{b[k][0] + (6 if k else 0)} Y{b[k][1]} t0" for k in range(2)]
    with_points = tmp_path / "cp.pto"
    with_points.write_text(pto.read_text() + "\n".join(lines) + "\n")
    for k in range(6):
        (tmp_path / f"frame{k}.jpg").symlink_to(d / f"frame{k}.jpg")
    giga("preview", with_points, tmp_path / "p.png", "--width", "600", "--outlines", "--numbers", "--points", "--seams", "--sidecar", tmp_path / "p.json", "--quiet")
    side = json.loads((tmp_path / "p.json").read_text())
    res = [p["residual"] for p in side["points"]]
    # The moved end lands where pano_trafo (frame -> canvas) puts it.
    inp = f"{b[1][0] + 6} {b[1][1]}\n"
    moved = [float(v) for v in subprocess.run(["pano_trafo", str(pto), "1"], input=inp, capture_output=True, text=True, check=True).stdout.split()[:2]]
    expected = np.hypot(moved[0] - canvas_pts[1][0], moved[1] - canvas_pts[1][1])
    assert res[0] < 0.01 and abs(res[1] - expected) < 0.01 and expected > 2, (res, expected)
    assert np.allclose(side["points"][0]["a"], canvas_pts[0], atol=0.01)
    # Every outline point, mapped back into its frame by pano_trafo, lies on the frame's edge.
    for f in side["frames"]:
        pts = [tuple(p) for piece in f["outline"] for p in piece]
        back = trafo_reverse(pto, f["frame"], pts)
        w, h = 1600, 1200
        edge = np.minimum.reduce([np.abs(back[:, 0] + 0.5), np.abs(back[:, 0] - (w - 0.5)), np.abs(back[:, 1] + 0.5), np.abs(back[:, 1] - (h - 0.5))])
        assert edge.max() < 0.01, (f["frame"], edge.max())


def test_seam_labels_are_the_frames_the_render_uses(tmp_path, project):
    d, pto = project
    giga("preview", pto, tmp_path / "p.png", "--width", "500", "--seams", "--sidecar", tmp_path / "p.json", "--quiet")
    side = json.loads((tmp_path / "p.json").read_text())
    labels = np.array([[l for l, n in row for _ in range(n)] for row in side["labels"]])
    scale = side["preview"]["scale"]
    # A narrow feather and one band, so that a few pixels from a seam the output is one frame's.
    args = ["--blend", "feather", "--feather", "1", "--quiet"]
    giga("render", pto, tmp_path / "full.tif", *args)
    full = tifffile.imread(tmp_path / "full.tif").astype(int)
    singles = []
    for k in range(6):
        giga("render", pto, tmp_path / f"f{k}.tif", "--frames", str(k), *args)
        singles.append(tifffile.imread(tmp_path / f"f{k}.tif").astype(int))
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(4000):
        y, x = rng.integers(4, labels.shape[0] - 4), rng.integers(4, labels.shape[1] - 4)
        window = labels[y - 4:y + 5, x - 4:x + 5]
        if window.min() < 0 or (window != labels[y, x]).any():
            continue  # near a seam or the edge
        fy, fx = int(round(y / scale)), int(round(x / scale))
        k = labels[y, x]
        assert np.abs(singles[k][fy, fx] - full[fy, fx]).max() <= 1, (y, x, k)
        checked += 1
    assert checked > 500


@pytest.mark.parametrize("args,needle", [
    (["OUT.kro"], "write the preview as"),
    (["OUT.png", "--width", "20"], "between 64 and 16384"),
])
def test_bad_preview_arguments(tmp_path, project, args, needle):
    d, pto = project
    args = [str(tmp_path / a) if a.startswith("OUT") else a for a in args]
    r = subprocess.run([GIGA, "preview", str(pto), *args], capture_output=True, text=True)
    assert r.returncode == 2 and needle in r.stderr, r.stderr
    assert list(tmp_path.iterdir()) == []


def test_viewer_draws_the_preview_overlays(tmp_path, project):
    """render --tiles --overlay SIDECAR: index.html draws the outlines, numbers, seams and
    control points over the image (SVG in image pixels, on top of the image at any zoom)."""
    from test_viewer import Server, view
    d, pto = project
    giga("preview", pto, tmp_path / "p.png", "--sidecar", tmp_path / "p.json", "--quiet")
    giga("render", pto, "--tiles", tmp_path / "site", "--overlay", tmp_path / "p.json", "--quiet")
    server = Server(tmp_path / "site")
    try:
        info = view(server.url + "/index.html", tmp_path / "shot")
    finally:
        server.close()
    assert info["errors"] == []
    o, home = info["overlay"], info["home"]
    assert o["texts"] == 6 and o["polylines"] >= 6
    assert abs(o["x"] - home["x"]) < 1 and abs(o["y"] - home["y"]) < 1
    assert abs(o["w"] - home["w"]) < 1 and abs(o["h"] - home["h"]) < 1
    r = subprocess.run([GIGA, "tile", str(tmp_path / "p.png"), str(tmp_path / "t"), "--overlay", str(tmp_path / "p.png")], capture_output=True, text=True)
    assert r.returncode == 2 and "not JSON" in r.stderr
