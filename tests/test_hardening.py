"""Issue 18: files that claim far more than they hold. Each is refused with one
line naming the file, exit 1, no abort, no output left, and memory bounded: giga
runs under a 4 GB address-space limit, so an unbounded allocation fails the test
instead of the machine."""
import io
import resource
import subprocess

import numpy as np
import pytest
from PIL import Image

import crafted
from conftest import GIGA, PHOTO, free_port, listing, wait_for_port

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


# Outputs never overwrite an input, devices are written through, links followed.

def small_project(d, frame="f.png"):
    """Two frames of one small image, as a project whose frames are `frame`."""
    from conftest import write_kro, sample_image
    a = sample_image(60, 80, 3, 8, seed=4)
    if frame.endswith(".kro"):
        write_kro(d / frame, a)
    else:
        Image.fromarray(a).save(d / frame)
    (d / "p.pto").write_text(f'p f0 w120 h60 v60\ni w80 h60 f0 v40 y-10 n"{frame}"\ni w80 h60 f0 v40 y10 n"{frame}"\n')
    return d / "p.pto"


def digest(p):
    import hashlib
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("frame,extra", [("f.png", []), ("f.kro", ["--resume"])])
def test_render_never_writes_over_a_frame(tmp_path, frame, extra):
    pto = small_project(tmp_path, frame)
    before = digest(tmp_path / frame)
    r = limited(["render", pto, tmp_path / frame, *extra])
    assert r.returncode == 2, r.stderr
    assert "frame 0" in r.stderr and "never overwrites its input" in r.stderr
    assert digest(tmp_path / frame) == before
    # A hard link to the frame is the frame too.
    (tmp_path / "link.png").hardlink_to(tmp_path / frame)
    r = limited(["render", pto, tmp_path / "link.png"])
    assert r.returncode == 2 and digest(tmp_path / frame) == before


def test_tile_never_writes_over_its_input(tmp_path):
    # The legacy layout names its largest level NAME/WxH.jpg: an input sitting there is refused.
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    Image.fromarray(np.zeros((200, 300, 3), np.uint8) + 90).save(site / "img" / "300x200.jpg")
    before = digest(site / "img" / "300x200.jpg")
    r = limited(["tile", site / "img" / "300x200.jpg", site, "--layout", "legacy", "--name", "img"])
    assert r.returncode == 2 and "never overwrites its input" in r.stderr, r.stderr
    assert digest(site / "img" / "300x200.jpg") == before
    # Render: a frame inside the tile folder.
    pto = small_project(tmp_path)
    (tmp_path / "p_files").mkdir()
    (tmp_path / "f.png").rename(tmp_path / "p_files" / "f.png")
    pto.write_text(pto.read_text().replace('"f.png"', '"p_files/f.png"'))
    r = limited(["render", pto, "--tiles", tmp_path])
    assert r.returncode == 2 and "p_files/f.png" in r.stderr, r.stderr


def test_devices_and_pipes_are_written_through(tmp_path):
    from conftest import write_kro, sample_image
    write_kro(tmp_path / "s.kro", sample_image(20, 30, 3, 8))
    r = limited(["convert", tmp_path / "s.kro", "/dev/null", "--format", "ppm", "--quiet"])
    assert r.returncode == 0, r.stderr
    import stat
    assert stat.S_ISCHR(__import__("os").stat("/dev/null").st_mode)
    # /dev/stdout into a pipe: the image arrives, nothing is renamed over the link.
    r = subprocess.run([GIGA, "convert", str(tmp_path / "s.kro"), "/dev/stdout", "--format", "ppm", "--quiet"], capture_output=True)
    assert r.returncode == 0 and r.stdout.startswith(b"P6\n30 20\n255\n") and len(r.stdout) == 13 + 30 * 20 * 3
    # A symlink keeps pointing at its target, which gets the image.
    (tmp_path / "link.png").symlink_to("target.png")
    r = limited(["convert", tmp_path / "s.kro", tmp_path / "link.png"])
    assert r.returncode == 0 and (tmp_path / "link.png").is_symlink()
    assert Image.open(tmp_path / "target.png").size == (30, 20)


def test_a_fifo_input_is_refused_at_once(tmp_path):
    import os
    os.mkfifo(tmp_path / "in.kro")
    r = limited(["info", tmp_path / "in.kro"], timeout=10)
    assert r.returncode == 1 and "FIFO" in r.stderr, r.stderr
    pto = small_project(tmp_path)
    (tmp_path / "f.png").unlink()
    os.mkfifo(tmp_path / "f.png")
    r = limited(["render", pto, tmp_path / "o.kro"], timeout=10)
    assert r.returncode == 1 and "FIFO" in r.stderr, r.stderr


# Re-runs and --resume over a folder that holds another pyramid.

def test_resume_over_another_images_tiles_is_refused(tmp_path):
    from conftest import write_kro, sample_image
    write_kro(tmp_path / "a.kro", sample_image(300, 400, 3, 8, seed=1))
    write_kro(tmp_path / "b.kro", sample_image(300, 400, 3, 8, seed=2))
    limited(["tile", tmp_path / "a.kro", tmp_path / "site", "--name", "x", "--quiet"])
    r = limited(["tile", tmp_path / "b.kro", tmp_path / "site", "--name", "x", "--resume", "--quiet"])
    assert r.returncode == 2 and "another input or with other options" in r.stderr, r.stderr
    r = limited(["tile", tmp_path / "a.kro", tmp_path / "site", "--name", "x", "--resume", "--quality", "50"])
    assert r.returncode == 2, r.stderr


def test_skip_blank_over_an_older_pyramid_leaves_no_stale_tile(tmp_path):
    from conftest import write_kro
    full = np.full((300, 600, 4), 200, np.uint8)
    write_kro(tmp_path / "a.kro", full)
    half = full.copy()
    half[:, :300, 3] = 0
    write_kro(tmp_path / "a2.kro", half)
    site = tmp_path / "site"
    assert limited(["tile", tmp_path / "a.kro", site, "--name", "a", "--layout", "xyz", "--skip-blank", "--quiet"]).returncode == 0
    assert (site / "a/2/0/0.png").exists()
    assert limited(["tile", tmp_path / "a2.kro", site, "--name", "a", "--layout", "xyz", "--skip-blank", "--quiet"]).returncode == 0
    assert not (site / "a/2/0/0.png").exists(), "a tile of the old image survived where the new one is blank"
    assert (site / "a/2/1/0.png").exists()


def test_folders_giga_did_not_write_are_not_deleted(tmp_path):
    from conftest import write_kro, sample_image
    write_kro(tmp_path / "a.kro", sample_image(30, 40, 3, 8))
    (tmp_path / "site" / "a_files").mkdir(parents=True)
    (tmp_path / "site" / "a_files" / "mine.txt").write_text("the user's")
    r = limited(["tile", tmp_path / "a.kro", tmp_path / "site"])
    assert r.returncode == 2 and "no record" in r.stderr, r.stderr
    assert (tmp_path / "site" / "a_files" / "mine.txt").read_text() == "the user's"


@pytest.mark.parametrize("args", [
    ["convert", "IN", "OUT.tif", "--tile-size", "1048576"],
    ["convert", "IN", "OUT.tif", "--tile-size", "65536"],
    ["convert", "IN", "OUT.tif", "--tile-size", "24"],
    ["tile", "IN", "SITE", "--layout", "custom", "--template", "../../x/{z}/{x}_{y}.jpg"],
    ["tile", "IN", "SITE", "--layout", "custom", "--template", "/tmp/{z}/{x}_{y}.jpg"],
    ["serve", "IN", "--max-area", "18446744073710"],
    ["serve", "IN", "--max-area", "0"],
    ["info", "IN", "--max-memory", "-1"],
])
def test_option_bounds_are_usage_errors(tmp_path, args):
    from conftest import write_kro, sample_image
    write_kro(tmp_path / "in.kro", sample_image(20, 30, 3, 8))
    subst = {"IN": tmp_path / "in.kro", "OUT.tif": tmp_path / "o.tif", "SITE": tmp_path / "site"}
    r = limited([subst.get(a, a) for a in args], timeout=20)
    assert r.returncode == 2, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.kro"]
    assert not (tmp_path.parent / "x").exists()


# giga serve: idle sockets, bad Host headers, bad files in a folder, SIGTERM.

def serve_folder(tmp_path, nofile=None):
    d = tmp_path / "img"
    d.mkdir(exist_ok=True)
    Image.fromarray(np.zeros((48, 64, 3), np.uint8) + 100).save(d / "small.png")
    port = free_port()
    cmd = [GIGA, "serve", str(d), "--bind", f"127.0.0.1:{port}"]
    if nofile:
        cmd = ["prlimit", f"--nofile={nofile}", *cmd]
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    wait_for_port(port)
    return p, port


def get(port, path, host=None, timeout=5):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", path, headers={"Host": host} if host else {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r, body


def test_idle_sockets_do_not_starve_real_requests(tmp_path):
    import socket
    import time
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2400:
        pytest.skip(f"this test needs 2,400 file descriptors (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2400), hard))
    p, port = serve_folder(tmp_path, nofile=1024)
    idle = []
    try:
        for i in range(1100):
            s = socket.socket()
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            if i % 2:
                s.send(b"GET /iiif/3/small/info.json HTTP/1.1\r\nHo")  # half a header
            idle.append(s)
        t = time.time()
        r, body = get(port, "/iiif/3/small/full/max/0/default.jpg", timeout=5)
        took = time.time() - t
        assert r.status in (200, 503)
        # Sockets past the cap were answered 503 and closed; a slot frees as soon as one does.
        for s in idle[:600]:
            s.close()
        del idle[:600]
        time.sleep(0.2)
        t = time.time()
        r, body = get(port, "/iiif/3/small/full/max/0/default.jpg", timeout=5)
        assert r.status == 200 and body[:2] == b"\xff\xd8"
        assert time.time() - t < 1.0 and took < 1.0
    finally:
        for s in idle:
            s.close()
        p.terminate()
        p.wait(timeout=10)


def test_half_header_sockets_time_out(tmp_path):
    import socket
    import time
    p, port = serve_folder(tmp_path)
    try:
        s = socket.create_connection(("127.0.0.1", port))
        s.send(b"GET / HTTP/1.1\r\nHost: x")
        s.settimeout(20)
        t = time.time()
        data = s.recv(1000)  # the server closes it (with a 408 or nothing)
        while data:
            data = s.recv(1000)
        assert 5 < time.time() - t < 15
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_host_header_is_not_reflected_raw(tmp_path):
    p, port = serve_folder(tmp_path)
    try:
        r, _ = get(port, "/iiif/3/small", host="evil.example\"><script>")
        assert r.status == 400
        r, _ = get(port, "/iiif/3/small", host="localhost:8080")
        assert r.status == 303 and r.getheader("Location") == "http://localhost:8080/iiif/3/small/info.json"
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_a_bad_file_in_a_folder_is_skipped(tmp_path):
    d = tmp_path / "img"
    d.mkdir()
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (d / ".hidden.jpg").write_bytes(b"")
    p, port = serve_folder(tmp_path)
    try:
        r, _ = get(port, "/iiif/3/small/info.json")
        assert r.status == 200
        r, _ = get(port, "/iiif/3/broken/info.json")
        assert r.status == 404
    finally:
        p.terminate()
        p.wait(timeout=10)
    assert "skipped" in p.stderr.read()


def test_sigterm_stops_serve_even_with_stderr_closed(tmp_path):
    import signal
    p, port = serve_folder(tmp_path)
    p.stderr.close()
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) != 0


def test_a_huge_number_in_a_pnm_header_gives_a_short_line(tmp_path):
    (tmp_path / "n.pgm").write_bytes(b"P5\n" + b"9" * 2_000_000 + b" 1\n255\n")
    line = refused(tmp_path, ["info", tmp_path / "n.pgm"], "n.pgm", "not a number")
    assert len(line) < 300


def vm_hwm_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0


def test_concurrent_maximal_requests_stay_within_the_memory_budget(tmp_path):
    """8 concurrent full/max requests of a 100 MP pyramid, and 8 upscaled ones of a
    64x48 image: peak RSS stays under serve's 1.5 GB budget; every request answered."""
    import concurrent.futures
    d = tmp_path / "img"
    d.mkdir()
    with open(tmp_path / "big.kro", "wb") as f:
        f.write(b"KRO\x01" + np.array([10000, 10000, 8, 4], ">u4").tobytes())
        f.truncate(20 + 10000 * 10000 * 4)
    assert subprocess.run([GIGA, "convert", tmp_path / "big.kro", d / "big.tif", "--pyramid", "--quiet"]).returncode == 0
    (tmp_path / "big.kro").unlink()
    Image.fromarray(np.zeros((48, 64, 3), np.uint8) + 100).save(d / "small.png")
    port = free_port()
    p = subprocess.Popen([GIGA, "serve", str(d), "--bind", f"127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        paths = ["/iiif/3/big/full/max/0/default.jpg"] * 8 + ["/iiif/2/small/full/10000,/0/default.jpg"] * 8
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda u: get(port, u, timeout=120)[0].status, paths))
        peak = vm_hwm_mb(p.pid)
        assert results == [200] * 16, results
        print(f"peak RSS {peak:.0f} MB")
        assert peak < 1500, f"peak RSS {peak:.0f} MB"
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_small_messages_say_what_is_wrong(tmp_path):
    import struct
    from conftest import write_kro, sample_image
    write_kro(tmp_path / "s.kro", sample_image(20, 30, 4, 8))
    # tile IN IN: OUTDIR is a file.
    r = limited(["tile", tmp_path / "s.kro", tmp_path / "s.kro"])
    assert r.returncode == 2 and "is a file" in r.stderr, r.stderr
    # An aspect no rectangle of the image can have.
    r = limited(["autocrop", tmp_path / "s.kro", tmp_path / "o.tif", "--aspect", "1000000:1"])
    assert r.returncode == 1 and "aspect 1000000:1" in r.stderr, r.stderr
    # A BigTIFF whose first IFD is at 2^63.
    (tmp_path / "bt.tif").write_bytes(b"II+\x00\x08\x00\x00\x00" + struct.pack("<Q", 1 << 63))
    r = limited(["info", tmp_path / "bt.tif"])
    assert r.returncode == 1 and "offset" in r.stderr, r.stderr
    # A mask on frame -1.
    pto = small_project(tmp_path)
    pto.write_text(pto.read_text() + 'k i-1 t0 p"0 0 10 0 10 10"\n')
    r = limited(["render", pto, tmp_path / "o.kro"])
    assert r.returncode == 1 and "not a frame number" in r.stderr, r.stderr
    # --temp where no scratch file can be made.
    pto = small_project(tmp_path)
    r = limited(["render", pto, tmp_path / "o.kro", "--memory", "0.00001", "--temp", "/proc"])
    assert r.returncode == 1 and "--temp" in r.stderr, r.stderr


def test_a_users_own_index_html_is_not_replaced(tmp_path):
    from conftest import write_kro, sample_image
    write_kro(tmp_path / "s.kro", sample_image(20, 30, 3, 8))
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<h1>my page</h1>")
    r = limited(["tile", tmp_path / "s.kro", tmp_path / "site"])
    assert r.returncode == 2 and "--no-viewer" in r.stderr, r.stderr
    assert (tmp_path / "site" / "index.html").read_text() == "<h1>my page</h1>"
    assert limited(["tile", tmp_path / "s.kro", tmp_path / "site", "--no-viewer", "--quiet"]).returncode == 0
    # giga's own page is replaced on a re-run.
    assert limited(["tile", tmp_path / "s.kro", tmp_path / "v", "--quiet"]).returncode == 0
    assert limited(["tile", tmp_path / "s.kro", tmp_path / "v", "--quiet"]).returncode == 0
