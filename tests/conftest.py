"""Shared helpers: run the giga binary, write KRO independently (straight
from the spec, with numpy), and read files back with tools that are not giga."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
GIGA = os.environ.get("GIGA", str(ROOT / "target" / "release" / "giga"))
PHOTO = Path(os.environ.get("GIGA_PHOTO", ROOT / "samples" / "aitzgorri.jpg"))

DTYPES = {8: np.uint8, 16: np.uint16, 32: np.float32}


def giga(*args, check=True, **kw):
    """Runs giga; returns the CompletedProcess (text mode)."""
    r = subprocess.run([GIGA, *map(str, args)], capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"giga {' '.join(map(str, args))} failed ({r.returncode}): {r.stderr}")
    return r


def write_kro(path, a):
    """Writes a (H, W, C) array as KRO per docs/spec/kro.md: 20-byte
    big-endian header, then big-endian interleaved samples."""
    h, w, c = a.shape
    bits = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16, np.dtype(np.float32): 32}[a.dtype]
    header = b"KRO\x01" + np.array([w, h, bits, c], ">u4").tobytes()
    Path(path).write_bytes(header + a.astype(a.dtype.newbyteorder(">")).tobytes())


def read_kro_numpy(path):
    """Reads KRO with numpy alone (used only where GDAL is not the point)."""
    b = Path(path).read_bytes()
    w, h, bits, c = (int(v) for v in np.frombuffer(b[4:20], ">u4"))
    dt = np.dtype({8: ">u1", 16: ">u2", 32: ">f4"}[bits])
    return np.frombuffer(b[20:], dt)[: w * h * c].reshape(h, w, c).astype(dt.newbyteorder("="))


def gdal_read(path, tmp_path):
    """Reads any raster with GDAL: gdal_translate to raw pixel-interleaved ENVI, then numpy."""
    out = Path(tmp_path) / (Path(path).name + ".envi")
    subprocess.run(["gdal_translate", "-q", "-of", "ENVI", "-co", "INTERLEAVE=BIP", str(path), str(out)], check=True)
    hdr = dict(
        (k.strip(), v.strip())
        for k, v in (line.split("=", 1) for line in out.with_suffix(".hdr").read_text().splitlines() if "=" in line)
    )
    w, h, c = int(hdr["samples"]), int(hdr["lines"]), int(hdr["bands"])
    dt = {"1": "u1", "12": "u2", "4": "f4"}[hdr["data type"]]
    order = ">" if hdr.get("byte order", "0") == "1" else "<"
    a = np.fromfile(out, order + dt)[: h * w * c].reshape(h, w, c)  # ENVI may pad
    for p in (out, out.with_suffix(".hdr"), Path(str(out) + ".aux.xml"), out.with_suffix(".hdr.aux.xml")):
        p.unlink(missing_ok=True)
    return a.astype(dt)


def sample_image(h, w, c, bits, seed=0):
    """Random pixels (with exact 0 and max present), deterministic per seed."""
    rng = np.random.default_rng(seed + 1000 * h + 10 * w + c + bits)
    if bits == 32:
        a = rng.random((h, w, c), dtype=np.float32)
    else:
        a = rng.integers(0, 1 << bits, (h, w, c), dtype=DTYPES[bits])
    a.flat[0] = 0
    a.flat[-1] = 1.0 if bits == 32 else (1 << bits) - 1
    return a


def listing(d):
    return sorted(p.name for p in Path(d).iterdir())


@pytest.fixture
def photo():
    from PIL import Image

    return np.asarray(Image.open(PHOTO).convert("RGB"))


def peak_rss_mb(args):
    """Runs giga with `args`; returns its peak resident memory in MB, polled from
    /proc/PID/status (VmHWM). Not wait4's ru_maxrss: a child forked from this (large)
    test process starts with the parent's high-water mark, so ru_maxrss would depend on
    which tests ran before."""
    import time

    p = subprocess.Popen([GIGA, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while p.poll() is None:
        try:
            for line in open(f"/proc/{p.pid}/status"):
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.005)
    assert p.returncode == 0, p.stderr.read()
    return peak / 1024



# Shared with the benchmarks (bench/serve.py): loopback ports for the servers tests start.
sys.path.insert(0, str(ROOT / "bench"))
from common import free_port, wait_for_port  # noqa: E402,F401
