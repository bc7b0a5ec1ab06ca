"""The viewer page in a real browser: headless Debian Chromium, driven by
playwright-core (tests/browser/view.mjs), opens each layout's index.html from
a local HTTP server (and the DZI one from the folder itself), waits for
OpenSeadragon's fully-loaded state and compares screenshots, at the home zoom
and zoomed in near the bottom-left corner, with the source scaled the same way."""
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, giga

sys.path.insert(0, str(ROOT / "bench"))
import mosaic  # noqa: E402  (real photos with a wavy transparent border)

# scripts/setup installs node's playwright-core and Debian's chromium: no skipping.

W, H = 2400, 1500
LAYOUTS = ["dzi", "iiif3", "iiif2", "zoomify", "xyz", "tms", "legacy", "custom"]


@pytest.fixture(scope="module")
def panorama(tmp_path_factory):
    d = tmp_path_factory.mktemp("pano")
    mosaic.write(d / "pano.kro", W, H, strip=256)
    b = (d / "pano.kro").read_bytes()
    a = np.frombuffer(b[20:], np.uint8).reshape(H, W, 4)
    # What the viewer shows over a white page: colour flattened onto white.
    alpha = a[..., 3:4].astype(np.float64) / 255
    flat = (a[..., :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)
    return d / "pano.kro", flat


class Server:
    def __init__(self, root):
        handler = functools.partial(QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def view(url, prefix):
    r = subprocess.run(["node", str(ROOT / "tests/browser/view.mjs"), url, str(prefix)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def compare(shot_path, rect, source, window):
    """Mean absolute difference between the screenshot and `window` of the
    source (x0, y0, x1, y1 in image pixels) scaled to where the viewer drew it,
    over the part of the screen free of OpenSeadragon's controls."""
    shot = np.asarray(Image.open(shot_path).convert("RGB")).astype(np.int16)
    sh, sw = shot.shape[:2]
    x, y, w, h = rect["x"], rect["y"], rect["w"], rect["h"]
    x0, y0, x1, y1 = window
    # The screen box covered by the window, clipped to the screen.
    sx0, sy0 = max(0, int(np.ceil(x))), max(0, int(np.ceil(y)))
    sx1, sy1 = min(sw, int(x + w)), min(sh, int(y + h))
    sy0 = max(sy0, 140)  # below the zoom buttons and the navigator
    assert sx1 - sx0 > 100 and sy1 - sy0 > 100, (rect, shot.shape)
    # The source region that lands in that screen box.
    fx = lambda s: (s - x) / w * (x1 - x0) + x0  # noqa: E731
    fy = lambda s: (s - y) / h * (y1 - y0) + y0  # noqa: E731
    crop = Image.fromarray(source).crop((fx(sx0), fy(sy0), fx(sx1), fy(sy1)))
    want = np.asarray(crop.resize((sx1 - sx0, sy1 - sy0), Image.BILINEAR)).astype(np.int16)
    got = shot[sy0:sy1, sx0:sx1]
    return float(np.abs(got - want).mean())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_viewer_draws_the_image(tmp_path, panorama, layout):
    kro, flat = panorama
    out = tmp_path / "site"
    giga("tile", kro, out, "--layout", layout, "--quiet", "--skip-blank")
    server = Server(out)
    try:
        info = view(server.url + "/index.html", tmp_path / "shot")
    finally:
        server.close()
    assert info["version"] == "6.1.1"
    # Blank tiles were left out on purpose: their 404s are expected, nothing else is.
    unexpected = [e for e in info["errors"] if not e.startswith("404 ")]
    assert unexpected == []
    home, zoomed = info["home"], info["zoomed"]
    if layout == "tms":
        # OpenSeadragon's TMS world is the image padded to multiples of 256 (transparent: white here).
        bw, bh = -(-W // 256) * 256, -(-H // 256) * 256
        padded = np.full((bh, bw, 3), 255, np.uint8)
        padded[:H, :W] = flat
        flat = padded
    ch, cw = flat.shape[:2]
    assert (home["imageWidth"], home["imageHeight"]) == (cw, ch)
    assert abs(home["w"] / home["h"] - cw / ch) < 0.01
    d_home = compare(tmp_path / "shot-home.png", home, flat, (0, 0, cw, ch))
    d_zoom = compare(tmp_path / "shot-zoomed.png", zoomed, flat, (0, 0, cw, ch))
    print(f"{layout}: home {d_home:.1f}, zoomed {d_zoom:.1f}")
    assert d_home < 6, f"home view differs by {d_home:.1f}"
    assert d_zoom < 6, f"zoomed view differs by {d_zoom:.1f}"


def test_viewer_with_webp_tiles(tmp_path, panorama):
    kro, flat = panorama
    out = tmp_path / "site"
    giga("tile", kro, out, "--format", "webp", "--quiet")
    server = Server(out)
    try:
        info = view(server.url + "/index.html", tmp_path / "webp")
    finally:
        server.close()
    assert info["errors"] == []
    assert compare(tmp_path / "webp-home.png", info["home"], flat, (0, 0, W, H)) < 6
    assert compare(tmp_path / "webp-zoomed.png", info["zoomed"], flat, (0, 0, W, H)) < 6


def test_viewer_from_a_local_folder(tmp_path, panorama):
    kro, flat = panorama
    out = tmp_path / "site"
    giga("tile", kro, out, "--quiet")
    info = view((out / "index.html").as_uri(), tmp_path / "file")
    assert info["errors"] == []
    assert compare(tmp_path / "file-home.png", info["home"], flat, (0, 0, W, H)) < 6
