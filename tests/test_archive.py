"""giga tile --archive pmtiles: one PMTiles v3 file holding the xyz layout's tiles.
Read back by the PyPI `pmtiles` reader and by the reference JavaScript reader in
node (the `pmtiles` npm package), and shown by giga's own index.html in headless
Chromium from lighttpd (HTTP Range), counting what it fetches before the first tile."""
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pmtiles.reader import MmapSource, Reader
from pmtiles.tile import Compression, TileType

from conftest import ROOT, free_port, giga, sample_image, wait_for_port, write_kro
from test_viewer import compare, panorama, view  # noqa: F401,F811  (panorama is a fixture)


def reader(path):
    f = open(path, "rb")
    return Reader(MmapSource(f)), f


def xyz_files(d):
    return {tuple(int(v) for v in (p.parts[-3], p.parts[-2], p.stem)): p.read_bytes() for p in Path(d).rglob("*.png")}


@pytest.mark.parametrize("leaves", [None, "7"])
def test_tiles_are_the_xyz_layouts_tiles(tmp_path, leaves, monkeypatch):
    a = sample_image(700, 1300, 4, 8, seed=3)
    a[:300, :400, 3] = 0  # a transparent corner: blank tiles there
    write_kro(tmp_path / "in.kro", a)
    if leaves:
        monkeypatch.setenv("GIGA_PMTILES_LEAF_ENTRIES", leaves)  # forces leaf directories
    for blank in ([], ["--skip-blank"]):
        site, files = tmp_path / f"a{len(blank)}", tmp_path / f"x{len(blank)}"
        giga("tile", tmp_path / "in.kro", site, "--archive", "pmtiles", "--format", "png", "--quiet", *blank)
        giga("tile", tmp_path / "in.kro", files, "--layout", "xyz", "--format", "png", "--quiet", "--no-viewer", *blank)
        assert sorted(p.name for p in site.iterdir()) == [".in.giga-pyramid", "in.pmtiles", "index.html", "openseadragon"]
        want = xyz_files(files / "in")
        r, f = reader(site / "in.pmtiles")
        h = r.header()
        assert (h["tile_type"], h["tile_compression"], h["internal_compression"]) == (TileType.PNG, Compression.NONE, Compression.GZIP)
        assert h["root_offset"] + h["root_length"] <= 16384
        assert (h["min_zoom"], h["max_zoom"]) == (0, max(z for z, _, _ in want))
        assert h["addressed_tiles_count"] == len(want)
        assert (h["leaf_directory_length"] > 0) == bool(leaves)
        for (z, x, y), data in want.items():
            assert r.get(z, x, y) == data, (z, x, y)
        # Tiles --skip-blank left out are not in the archive either.
        if blank:
            assert r.get(3, 0, 0) is None and (3, 0, 0) not in want
        meta = r.metadata()
        assert meta["giga"]["width"] == 1300 and meta["giga"]["height"] == 700 and meta["format"] == "png"
        f.close()


def test_identical_tiles_are_stored_once(tmp_path):
    a = np.zeros((1500, 2000, 3), np.uint8) + np.array([90, 140, 200], np.uint8)  # sky
    a[1200:] = sample_image(300, 2000, 3, 8, seed=1)
    write_kro(tmp_path / "in.kro", a)
    giga("tile", tmp_path / "in.kro", tmp_path / "s", "--archive", "pmtiles", "--quiet")
    r, f = reader(tmp_path / "s/in.pmtiles")
    h = r.header()
    assert h["tile_type"] == TileType.JPEG
    assert h["tile_contents_count"] < h["tile_entries_count"] <= h["addressed_tiles_count"]
    assert r.get(3, 0, 0) == r.get(3, 1, 0)  # two sky tiles, one copy
    f.close()


def test_the_reference_javascript_reader_agrees(tmp_path):
    write_kro(tmp_path / "in.kro", sample_image(600, 900, 3, 8, seed=5))
    giga("tile", tmp_path / "in.kro", tmp_path / "s", "--archive", "pmtiles", "--format", "png", "--quiet")
    giga("tile", tmp_path / "in.kro", tmp_path / "x", "--layout", "xyz", "--format", "png", "--quiet", "--no-viewer")
    want = xyz_files(tmp_path / "x/in")
    names = [f"{z}/{x}/{y}" for z, x, y in want] + ["2/3/3"]  # the last one is outside the image
    r = subprocess.run(["node", str(ROOT / "tests/browser/pmtiles-read.mjs"), str(tmp_path / "s/in.pmtiles"), *names], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["header"]["specVersion"] == 3 and got["header"]["tileType"] == 2
    assert got["metadata"]["giga"]["width"] == 900
    for (z, x, y), data in want.items():
        assert got["tiles"][f"{z}/{x}/{y}"] == hashlib.sha256(data).hexdigest()
    assert got["tiles"]["2/3/3"] is None


@pytest.mark.parametrize("args,needle", [
    (["--archive", "pmtiles", "--resume"], "written in one go"),
    (["--archive", "pmtiles", "--layout", "iiif3"], "xyz layout"),
    (["--archive", "zip"], "invalid value"),
])
def test_bad_archive_options(tmp_path, args, needle):
    write_kro(tmp_path / "in.kro", sample_image(300, 300, 3, 8))
    r = giga("tile", tmp_path / "in.kro", tmp_path / "s", *args, check=False)
    assert r.returncode == 2 and needle in r.stderr, r.stderr
    assert not (tmp_path / "s").exists()


class Lighttpd:
    """lighttpd on loopback serving `root` (it honours Range), started and stopped by the test."""

    def __init__(self, root, tmp):
        port = free_port()
        conf = tmp / "lighttpd.conf"
        conf.write_text(
            f'server.document-root = "{root}"\nserver.port = {port}\nserver.bind = "127.0.0.1"\n'
            f'server.errorlog = "{tmp}/lighttpd.log"\n'
            'mimetype.assign = (".html" => "text/html", ".js" => "application/javascript", ".png" => "image/png", ".pmtiles" => "application/octet-stream")\n'
        )
        exe = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
        self.p = subprocess.Popen([exe, "-D", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"http://127.0.0.1:{port}"
        if not wait_for_port(port, 10):
            raise RuntimeError("lighttpd did not start: " + self.p.stderr.read().decode())

    def close(self):
        self.p.terminate()
        self.p.wait(timeout=10)


def test_viewer_reads_the_archive_with_range_requests(tmp_path, panorama):  # noqa: F811
    from test_viewer import W, H
    kro, flat = panorama
    site = tmp_path / "site"
    giga("tile", kro, site, "--archive", "pmtiles", "--quiet", "--skip-blank")
    server = Lighttpd(site, tmp_path)
    try:
        info = view(server.url + "/index.html", tmp_path / "shot")
        again = view(server.url + "/index.html" + info["hash"], tmp_path / "again")
    finally:
        server.close()
    assert info["errors"] == [], info["errors"]
    assert (info["home"]["imageWidth"], info["home"]["imageHeight"]) == (W, H)
    d_home = compare(tmp_path / "shot-home.png", info["home"], flat, (0, 0, W, H))
    d_zoom = compare(tmp_path / "shot-zoomed.png", info["zoomed"], flat, (0, 0, W, H))
    print(f"pmtiles: home {d_home:.1f}, zoomed {d_zoom:.1f}")
    assert d_home < 6 and d_zoom < 6
    # Before the first tile: at most two ranges and 64 KB (the header with the root, a leaf).
    ranges = info["ranges"]
    first_tile = next(i for i, r in enumerate(ranges) if r[2] == "tile")
    assert first_tile <= 2 and sum(r[1] for r in ranges[:first_tile]) <= 64 << 10, ranges[:first_tile + 1]
    # The URL's #x,y,zoom opens the same view.
    z1, z2 = info["zoomed"], again["home"]
    assert abs(z1["w"] - z2["w"]) / z1["w"] < 0.01 and abs(z1["x"] - z2["x"]) < 3 and abs(z1["y"] - z2["y"]) < 3, (z1, z2)


def test_python_http_server_is_refused_plainly(tmp_path):
    """Python's http.server ignores Range: the page says so (on the page and in the
    console) instead of showing garbage; the README names servers that work."""
    from test_viewer import Server
    write_kro(tmp_path / "in.kro", sample_image(600, 900, 3, 8, seed=5))
    giga("tile", tmp_path / "in.kro", tmp_path / "s", "--archive", "pmtiles", "--quiet")
    server = Server(tmp_path / "s")
    try:
        r = subprocess.run(["node", str(ROOT / "tests/browser/view.mjs"), server.url + "/index.html", str(tmp_path / "p")], capture_output=True, text=True, timeout=120)
    finally:
        server.close()
    assert r.returncode == 0, r.stderr
    assert "ignores Range requests" in json.loads(r.stdout.splitlines()[-1])["message"]


def test_info_convert_and_serve_read_the_archive(tmp_path):
    from PIL import Image
    from test_hardening import get
    from test_serve import start_serve
    a = sample_image(700, 1300, 4, 8, seed=3)
    a[:300, :400, 3] = 0
    write_kro(tmp_path / "in.kro", a)
    giga("tile", tmp_path / "in.kro", tmp_path / "s", "--archive", "pmtiles", "--format", "png", "--quiet", "--skip-blank")
    arc = tmp_path / "s/in.pmtiles"
    info = json.loads(giga("info", arc, "--json").stdout)
    assert (info["format"], info["width"], info["height"], info["channels"]) == ("PMTiles", 1300, 700, 4)
    assert "PNG tiles of 256 px" in giga("info", arc).stdout
    # The full-resolution level is the image (PNG tiles are lossless; blank ones transparent).
    giga("convert", arc, tmp_path / "back.tif", "--quiet")
    import tifffile
    back = tifffile.imread(tmp_path / "back.tif")
    want = a.copy()
    want[a[..., 3] == 0] = 0
    got = back.copy()
    got[back[..., 3] == 0] = 0
    assert np.array_equal(got, want)
    # giga serve: IIIF from the archive's tiles, exact at full resolution.
    d = tmp_path / "served"
    d.mkdir()
    shutil.copy(arc, d / "in.pmtiles")
    p, host = start_serve(d)
    try:
        port = int(host.split(":")[1])
        r, body = get(port, "/iiif/3/in/info.json")
        assert r.status == 200 and json.loads(body)["width"] == 1300
        r, body = get(port, "/iiif/3/in/512,256,256,256/max/0/default.png")
        assert r.status == 200
        import io
        tile = np.asarray(Image.open(io.BytesIO(body)).convert("RGBA"))
        assert np.array_equal(tile, a[256:512, 512:768])
    finally:
        p.terminate()
        p.wait(timeout=10)


@pytest.mark.parametrize("damage,needle", [
    ("truncate", "truncated"),
    ("magic", "not an image giga reads"),
    ("version", "version 7"),
    ("tile-type", "tile type 9"),
    ("root", "root directory"),
    ("bomb", "root directory"),
])
def test_bad_archives_give_one_line(tmp_path, damage, needle):
    write_kro(tmp_path / "in.kro", sample_image(600, 900, 3, 8, seed=5))
    giga("tile", tmp_path / "in.kro", tmp_path / "s", "--archive", "pmtiles", "--quiet", "--no-viewer")
    b = bytearray((tmp_path / "s/in.pmtiles").read_bytes())
    if damage == "truncate":
        b = b[: len(b) // 2]
    elif damage == "magic":
        b[:7] = b"PMTilez"
    elif damage == "version":
        b[7] = 7
    elif damage == "tile-type":
        b[99] = 9
    elif damage == "root":
        b[127:140] = bytes(13)
    else:
        # A root directory that inflates to 64 MB of zeros from a few KB.
        import gzip
        import struct
        bomb = gzip.compress(bytes(64 << 20))
        b[8:24] = struct.pack("<QQ", len(b), len(bomb))
        b += bomb
    bad = tmp_path / "bad.pmtiles"
    bad.write_bytes(bytes(b))
    for args in (["info", bad], ["convert", bad, tmp_path / "o.tif"]):
        r = giga(*args, check=False)
        assert r.returncode == 1, r.stderr
        assert r.stderr.count("\n") == 1 and needle in r.stderr and "bad.pmtiles" in r.stderr, r.stderr
    assert not (tmp_path / "o.tif").exists()


def test_render_writes_an_archive_too(tmp_path):
    from test_render import column_project
    pto = column_project(tmp_path, n=4)
    giga("render", pto, "--tiles", tmp_path / "a", "--archive", "pmtiles", "--format", "png", "--quiet")
    giga("render", pto, "--tiles", tmp_path / "x", "--layout", "xyz", "--format", "png", "--quiet", "--no-viewer")
    r, f = reader(tmp_path / "a/c.pmtiles")
    want = xyz_files(tmp_path / "x/c")
    assert r.header()["addressed_tiles_count"] == len(want)
    for (z, x, y), data in want.items():
        assert r.get(z, x, y) == data
    f.close()


def test_giga_serve_answers_byte_ranges_of_the_archive(tmp_path):
    """giga serve hands out a served archive's bytes by range at /archive/ID.pmtiles, so
    the reference JavaScript reader (over HTTP) reads the same tiles from it."""
    import http.client
    from test_serve import start_serve
    write_kro(tmp_path / "in.kro", sample_image(600, 900, 3, 8, seed=5))
    giga("tile", tmp_path / "in.kro", tmp_path / "s", "--archive", "pmtiles", "--format", "png", "--quiet", "--no-viewer")
    giga("tile", tmp_path / "in.kro", tmp_path / "x", "--layout", "xyz", "--format", "png", "--quiet", "--no-viewer")
    data = (tmp_path / "s/in.pmtiles").read_bytes()
    p, host = start_serve(tmp_path / "s")
    try:
        c = http.client.HTTPConnection(host, timeout=10)
        c.request("GET", "/archive/in.pmtiles", headers={"Range": "bytes=100-299"})
        r = c.getresponse()
        assert r.status == 206 and r.read() == data[100:300]
        assert r.getheader("Content-Range") == f"bytes 100-299/{len(data)}"
        c.request("GET", "/archive/in.pmtiles", headers={"Range": f"bytes={len(data)}-"})
        r = c.getresponse()
        r.read()
        assert r.status == 416
        want = xyz_files(tmp_path / "x/in")
        names = [f"{z}/{x}/{y}" for z, x, y in want]
        out = subprocess.run(["node", str(ROOT / "tests/browser/pmtiles-read.mjs"), f"http://{host}/archive/in.pmtiles", *names], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout)["tiles"]
        for (z, x, y), tile in want.items():
            assert got[f"{z}/{x}/{y}"] == hashlib.sha256(tile).hexdigest()
    finally:
        p.terminate()
        p.wait(timeout=10)
