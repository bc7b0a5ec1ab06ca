"""giga serve: the official IIIF validator at level 2 (3.0 and 2.x), the
viewer page through the live endpoint in Chromium, and requests that must
not reach anything but the named images."""
import http.client
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import GIGA, ROOT, free_port, wait_for_port

VALIDATOR_ID = "67352ccc-d1b0-11e1-89ae-279075081939"
VALIDATOR_IMAGE = Path(__file__).resolve().parent / "data" / "iiif" / f"{VALIDATOR_ID}.png"


def start_serve(d):
    """Starts `giga serve d` on a free port; returns the process (its stderr piped) and
    host:port once something listens there."""
    port = free_port()
    p = subprocess.Popen([GIGA, "serve", str(d), "--bind", f"127.0.0.1:{port}"], stderr=subprocess.PIPE, text=True)
    wait_for_port(port)
    return p, f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    shutil.copy(VALIDATOR_IMAGE, d / f"{VALIDATOR_ID}.png")
    shutil.copy(ROOT / "samples" / "aitzgorri.jpg", d / "aitzgorri.jpg")
    (d / "secret.txt").write_text("not an image")
    # A multi-resolution TIFF, served tile by tile (not decoded whole).
    from conftest import sample_image, write_kro

    a = sample_image(1500, 2300, 4, 8, seed=9)
    write_kro(d.parent / "big.kro", a)
    subprocess.run([GIGA, "convert", str(d.parent / "big.kro"), str(d / "big.tif"), "--pyramid", "--tile-size", "128", "--quiet"], check=True)
    np.save(d.parent / "big.npy", a)
    # The same image as a Deep Zoom pyramid from giga tile, served from its tiles.
    subprocess.run([GIGA, "tile", str(d.parent / "big.kro"), str(d), "--format", "png", "--name", "bigdzi", "--no-viewer", "--quiet"], check=True)
    p, host = start_serve(d)
    yield host, d
    p.terminate()
    p.wait(timeout=10)


def get(host, path, headers=None, method="GET"):
    c = http.client.HTTPConnection(host, timeout=20)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


@pytest.mark.parametrize("version,prefix", [("3.0", "iiif/3"), ("2.0", "iiif/2")])
def test_official_validator_level_2(server, version, prefix):
    host, _ = server
    r = subprocess.run(
        [str(ROOT / ".venv/bin/iiif-validate.py"), "-s", host, "-p", prefix, "-i", VALIDATOR_ID, f"--version={version}", "--level=2"],
        capture_output=True, text=True, timeout=300,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert ", 0 failures)" in out and "(0 tests" not in out, out


def test_info_and_headers(server):
    host, _ = server
    status, h, body = get(host, "/iiif/3/aitzgorri/info.json", {"Accept": "application/ld+json"})
    assert status == 200 and h["access-control-allow-origin"] == "*"
    assert h["content-type"].startswith("application/ld+json")
    info = json.loads(body)
    assert info["id"] == f"http://{host}/iiif/3/aitzgorri" and (info["width"], info["height"]) == (3088, 2056)
    status, h, _ = get(host, "/iiif/3/aitzgorri")
    assert status == 303 and h["location"].endswith("/iiif/3/aitzgorri/info.json")
    status, h, body = get(host, "/iiif/3/aitzgorri/0,0,512,512/256,/0/default.jpg")
    assert status == 200 and h["content-type"] == "image/jpeg" and 'rel="canonical"' in h["link"]
    etag = h["etag"]
    status, _, _ = get(host, "/iiif/3/aitzgorri/0,0,512,512/256,/0/default.jpg", {"If-None-Match": etag})
    assert status == 304
    status, h, _ = get(host, "/iiif/3/aitzgorri/full/max/0/default.jpg", method="OPTIONS")
    assert status == 204 and h["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    "path,status",
    [
        ("/iiif/3/secret/info.json", 404),
        ("/iiif/3/..%2F..%2Fetc%2Fpasswd/info.json", 404),
        ("/iiif/3/../../etc/passwd", 404),
        ("/iiif/3/%2E%2E/info.json", 404),
        ("/iiif/3/aitzgorri/full/max/0/default.gif", 400),
        ("/iiif/3/aitzgorri/full/max/45/default.jpg", 501),
        ("/iiif/3/aitzgorri/full/99999,/0/default.jpg", 400),
        ("/iiif/3/aitzgorri/5000,0,10,10/max/0/default.jpg", 400),
        ("/iiif/3/aitzgorri/full/max/0/default.jpg/extra", 400),
        ("/iiif/3/aitzgorri/%ZZ/max/0/default.jpg", 400),
        ("/etc/passwd", 404),
        ("/openseadragon/../../Cargo.toml", 404),
    ],
)
def test_nothing_else_is_reachable(server, path, status):
    host, _ = server
    got, _, body = get(host, path)
    assert got == status, body
    assert b"root:" not in body and b"[workspace]" not in body


def test_viewer_through_the_live_endpoint(server, tmp_path):
    host, _ = server
    r = subprocess.run(["node", str(ROOT / "tests/browser/view.mjs"), f"http://{host}/view/aitzgorri", str(tmp_path / "live")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["errors"] == []
    import numpy as np
    from PIL import Image

    from test_viewer import compare

    photo = np.asarray(Image.open(ROOT / "samples" / "aitzgorri.jpg").convert("RGB"))
    assert compare(tmp_path / "live-home.png", info["home"], photo, (0, 0, 3088, 2056)) < 6
    assert compare(tmp_path / "live-zoomed.png", info["zoomed"], photo, (0, 0, 3088, 2056)) < 6


def test_multi_resolution_tiff_is_served_by_tiles(server):
    host, d = server
    from io import BytesIO

    from PIL import Image

    a = np.load(d.parent / "big.npy")
    status, _, body = get(host, "/iiif/3/big/info.json")
    info = json.loads(body)
    assert (info["width"], info["height"]) == (2300, 1500)
    # Full resolution, across tile borders: exact.
    status, _, body = get(host, "/iiif/3/big/100,200,300,250/max/0/default.png")
    assert status == 200
    np.testing.assert_array_equal(np.asarray(Image.open(BytesIO(body))), a[200:450, 100:400])
    # Half size comes from the second page: close to a 2x2 average of the source.
    status, _, body = get(host, "/iiif/3/big/0,0,512,512/256,/0/default.png")
    got = np.asarray(Image.open(BytesIO(body))).astype(int)
    assert got.shape == (256, 256, 4)
    src = a[:512, :512].astype(float)
    alpha = src[..., 3:4]
    blocks = lambda x: x.reshape(256, 2, 256, 2, -1).sum(axis=(1, 3))  # noqa: E731
    want_rgb = blocks(src[..., :3] * alpha) / np.maximum(blocks(alpha), 1)
    assert np.abs(got[..., :3] - want_rgb)[blocks(alpha)[..., 0] > 0].mean() < 1.5


def test_deep_zoom_pyramid_is_served_by_tiles(server):
    """A DZI written by giga tile (254-px PNG tiles, overlap 1) answers any region from
    its tiles: exact at full resolution across tile borders, reduced from its levels."""
    host, d = server
    from io import BytesIO

    from PIL import Image

    a = np.load(d.parent / "big.npy")
    status, _, body = get(host, "/iiif/3/bigdzi/info.json")
    assert status == 200
    info = json.loads(body)
    assert (info["width"], info["height"]) == (2300, 1500)
    for region in [(100, 200, 300, 250), (250, 250, 10, 10), (2290, 1490, 10, 10), (0, 0, 2300, 1500)]:
        x, y, w, h = region
        status, _, body = get(host, f"/iiif/3/bigdzi/{x},{y},{w},{h}/max/0/default.png")
        assert status == 200
        np.testing.assert_array_equal(np.asarray(Image.open(BytesIO(body))), a[y : y + h, x : x + w])
    status, _, body = get(host, "/iiif/3/bigdzi/0,0,512,512/256,/0/default.png")
    got = np.asarray(Image.open(BytesIO(body))).astype(int)
    src = a[:512, :512].astype(float)
    alpha = src[..., 3:4]
    blocks = lambda x: x.reshape(256, 2, 256, 2, -1).sum(axis=(1, 3))  # noqa: E731
    want_rgb = blocks(src[..., :3] * alpha) / np.maximum(blocks(alpha), 1)
    assert np.abs(got[..., :3] - want_rgb)[blocks(alpha)[..., 0] > 0].mean() < 1.5
    # A tile left out (as --skip-blank does) reads as transparent: level 11's tile 3_2
    # (not requested before, so not cached) holds this region at half size.
    shutil.move(d / "bigdzi_files" / "11" / "3_2.png", d.parent / "moved.png")
    try:
        status, _, body = get(host, "/iiif/3/bigdzi/1600,1100,200,200/100,/0/default.png")
        assert status == 200 and np.asarray(Image.open(BytesIO(body)))[..., 3].max() == 0
    finally:
        shutil.move(d.parent / "moved.png", d / "bigdzi_files" / "11" / "3_2.png")


def test_load_beside_iipimage(tmp_path):
    """A short load test on loopback (3 s per workload): giga serve answers
    every tile and region request under load, beside IIPImage on the same
    multi-resolution TIFF; the figures are printed (pytest -s), the full-size
    run is `scripts/bench serve`."""
    r = subprocess.run(
        [str(ROOT / ".venv/bin/python"), str(ROOT / "bench/serve.py"), "--width", "3000", "--height", "2000", "--seconds", "3", "--dir", str(tmp_path / "b")],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    print(r.stdout)
    rows = [l.split() for l in r.stdout.splitlines() if l.startswith(("tiles", "regions"))]
    giga_rows = [row for row in rows if row[1] == "giga"]
    assert len(giga_rows) == 2 and all(row[-1] == "0" for row in giga_rows)  # no failed requests
    assert all(float(row[3]) > 10 for row in giga_rows)  # requests per second
