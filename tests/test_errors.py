"""Bad input: one line naming the file and the problem, exit 1 (2 for bad
usage), no panic, no output left behind, and the input untouched."""
import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import GIGA, giga, listing, sample_image, write_kro


def kro_header(w, h, bits, c, magic=b"KRO\x01"):
    return magic + np.array([w, h, bits, c], ">u4").tobytes()


def expect_failure(tmp_path, args, needle, code=1):
    """Runs giga, expects `code`, one stderr line mentioning `needle`, and no new files."""
    before = listing(tmp_path)
    r = giga(*args, check=False)
    assert r.returncode == code, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("giga: ")
    assert needle.lower() in lines[0].lower(), lines[0]
    assert "panick" not in r.stderr and "RUST_BACKTRACE" not in r.stderr
    assert listing(tmp_path) == before, "output left behind"
    return lines[0]


BAD_KRO = {
    "signature": (b"KRX\x01" + kro_header(2, 2, 8, 3)[4:] + bytes(12), "signature"),
    "version": (kro_header(2, 2, 8, 3, b"KRO\x02") + bytes(12), "version 2"),
    "zero-width": (kro_header(0, 2, 8, 3), "zero side"),
    "zero-height": (kro_header(2, 0, 8, 3), "zero side"),
    "depth": (kro_header(2, 2, 12, 3) + bytes(12), "depth 12"),
    "channels-0": (kro_header(2, 2, 8, 0), "0 components"),
    "channels-5": (kro_header(2, 2, 8, 5) + bytes(20), "5 components"),
    "overflow": (kro_header(0xFFFFFFFF, 0xFFFFFFFF, 32, 4), "overflows"),
    "truncated": (kro_header(100, 100, 8, 4) + bytes(1000), "truncated"),
    "short-header": (b"KRO\x01\x00\x00", "shorter than the 20-byte header"),
    "empty": (b"", "empty"),
}


@pytest.mark.parametrize("name", list(BAD_KRO))
@pytest.mark.parametrize("command", ["info", "convert"])
def test_bad_kro(tmp_path, name, command):
    data, needle = BAD_KRO[name]
    src = tmp_path / "bad.kro"
    src.write_bytes(data)
    args = ["info", src] if command == "info" else ["convert", src, tmp_path / "out.tif"]
    line = expect_failure(tmp_path, args, needle)
    assert str(src) in line


def test_missing_and_unreadable(tmp_path):
    expect_failure(tmp_path, ["info", tmp_path / "nope.kro"], "No such file")
    expect_failure(tmp_path, ["convert", tmp_path / "nope.kro", tmp_path / "o.tif"], "nope.kro")
    expect_failure(tmp_path, ["info", tmp_path], "directory")
    if os.geteuid() != 0:  # root reads anything
        p = tmp_path / "secret.kro"
        write_kro(p, sample_image(2, 2, 3, 8))
        p.chmod(0)
        expect_failure(tmp_path, ["info", p], "permission")


def test_unknown_format(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"hello world, not an image")
    expect_failure(tmp_path, ["info", p], "not an image")


def valid(tmp_path, ext, **kw):
    a = sample_image(64, 48, 3, 8)
    write_kro(tmp_path / "v.kro", a)
    giga("convert", tmp_path / "v.kro", tmp_path / f"v.{ext}", *kw.get("args", []))
    data = (tmp_path / f"v.{ext}").read_bytes()
    (tmp_path / "v.kro").unlink()
    (tmp_path / f"v.{ext}").unlink()
    return data


@pytest.mark.parametrize("ext,needle", [("tif", "TIFF"), ("png", "PNG"), ("jpg", "JPEG"), ("psd", "PSD")])
def test_truncated_files(tmp_path, ext, needle):
    data = valid(tmp_path, ext)
    bad = tmp_path / f"cut.{ext}"
    bad.write_bytes(data[: len(data) * 2 // 3])
    expect_failure(tmp_path, ["convert", bad, tmp_path / "out.kro"], needle)


@pytest.mark.parametrize("ext,needle", [("tif", "TIFF"), ("png", "PNG"), ("jpg", "JPEG"), ("psd", "PSD")])
def test_corrupt_files(tmp_path, ext, needle):
    data = bytearray(valid(tmp_path, ext))
    # Keep the signature, scramble the structure after it.
    rng = np.random.default_rng(7)
    start = 8 if ext != "jpg" else 2
    data[start : start + 200] = rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
    bad = tmp_path / f"bad.{ext}"
    bad.write_bytes(bytes(data))
    expect_failure(tmp_path, ["convert", bad, tmp_path / "out.kro"], needle)


def test_zip_psd_refused(tmp_path):
    data = bytearray(valid(tmp_path, "psd"))
    # Compression field follows the 26-byte header and three empty sections (4+4+4 bytes).
    data[38:40] = b"\x00\x02"
    p = tmp_path / "zip.psd"
    p.write_bytes(bytes(data))
    expect_failure(tmp_path, ["convert", p, tmp_path / "o.tif"], "ZIP")


def sparse_kro(path, w, h, c=3, bits=8):
    hdr = kro_header(w, h, bits, c)
    with open(path, "wb") as f:
        f.write(hdr)
        f.truncate(20 + w * h * c * bits // 8)


def test_outputs_that_cannot_hold_the_image(tmp_path):
    sparse_kro(tmp_path / "wide.kro", 65501, 1)
    expect_failure(tmp_path, ["convert", tmp_path / "wide.kro", tmp_path / "o.jpg"], "65500")
    sparse_kro(tmp_path / "huge.kro", 300001, 1)
    line = expect_failure(tmp_path, ["convert", tmp_path / "huge.kro", tmp_path / "o.psb"], "300000")
    assert "BigTIFF" in line and "KRO" in line
    write_kro(tmp_path / "deep.kro", sample_image(3, 3, 3, 16))
    expect_failure(tmp_path, ["convert", tmp_path / "deep.kro", tmp_path / "o.jpg"], "--depth 8")
    write_kro(tmp_path / "float.kro", sample_image(3, 3, 3, 32))
    expect_failure(tmp_path, ["convert", tmp_path / "float.kro", tmp_path / "o.png"], "float")


def test_trailing_bytes_warn_but_work(tmp_path):
    a = sample_image(5, 7, 3, 8)
    write_kro(tmp_path / "t.kro", a)
    with open(tmp_path / "t.kro", "ab") as f:
        f.write(b"extra")
    r = giga("convert", tmp_path / "t.kro", tmp_path / "o.png")
    assert "warning" in r.stderr and "5 bytes after the pixel data" in r.stderr
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o.png")), a)


def test_bad_usage_exits_2(tmp_path):
    write_kro(tmp_path / "a.kro", sample_image(5, 7, 3, 8))
    for args, needle in [
        (["crop", tmp_path / "a.kro", tmp_path / "o.tif", "--rect", "1,2,3"], "four numbers"),
        (["crop", tmp_path / "a.kro", tmp_path / "o.tif", "--rel", "0.1,0.1,2,0.5"], "between 0 and 1"),
        (["convert", tmp_path / "a.kro", tmp_path / "o.xyz"], "extension"),
        (["convert", tmp_path / "a.kro", tmp_path / "o.tif", "--background", "mauve-ish"], "colour"),
        (["convert", tmp_path / "a.kro", tmp_path / "a.kro"], "the output is the input"),
    ]:
        expect_failure(tmp_path, args, needle, code=2)
    r = giga("convert", tmp_path / "a.kro", check=False)  # clap's own usage error
    assert r.returncode == 2


def test_output_is_input_via_another_path(tmp_path):
    write_kro(tmp_path / "a.kro", sample_image(5, 7, 3, 8))
    os.symlink(tmp_path / "a.kro", tmp_path / "link.kro")
    before = (tmp_path / "a.kro").read_bytes()
    expect_failure(tmp_path, ["convert", tmp_path / "a.kro", tmp_path / "link.kro"], "the output is the input", code=2)
    assert (tmp_path / "a.kro").read_bytes() == before


def test_input_never_modified(tmp_path):
    a = sample_image(40, 50, 4, 16)
    write_kro(tmp_path / "in.kro", a)
    os.chmod(tmp_path / "in.kro", 0o444)  # giga must not even need write access
    digest = hashlib.sha256((tmp_path / "in.kro").read_bytes()).hexdigest()
    mtime = os.stat(tmp_path / "in.kro").st_mtime_ns
    for ext in ["tif", "psd", "png", "kro2.kro"]:
        giga("convert", tmp_path / "in.kro", tmp_path / f"o.{ext}")
    giga("crop", tmp_path / "in.kro", tmp_path / "c.kro", "--rect", "1,1,5,5")
    assert hashlib.sha256((tmp_path / "in.kro").read_bytes()).hexdigest() == digest
    assert os.stat(tmp_path / "in.kro").st_mtime_ns == mtime


def written_bytes(pid):
    try:
        for line in open(f"/proc/{pid}/io"):
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_run_leaves_nothing(tmp_path, sig):
    """Ctrl-C, or even SIGKILL, in the middle of a long conversion: no output and no
    temporary file (the output is an unnamed file until it is complete)."""
    sparse_kro(tmp_path / "big.kro", 20000, 60000, c=4)  # 4.8 GB, sparse
    before = listing(tmp_path)
    p = subprocess.Popen([GIGA, "convert", str(tmp_path / "big.kro"), str(tmp_path / "out.tif")], stderr=subprocess.PIPE, text=True)
    # Wait until the output is being written, so the interrupt lands mid-write.
    deadline = time.time() + 20
    while time.time() < deadline and written_bytes(p.pid) < 4 << 20:
        time.sleep(0.01)
    assert written_bytes(p.pid) >= 4 << 20, "no output was being written"
    p.send_signal(sig)
    _, err = p.communicate(timeout=30)
    assert p.returncode != 0
    if sig == signal.SIGINT:
        assert "interrupted" in err
    assert listing(tmp_path) == before


def test_failed_write_leaves_nothing(tmp_path):
    """A read error in the middle (file shrinks while being read) removes the partial output."""
    a = sample_image(4000, 1000, 3, 8)
    write_kro(tmp_path / "in.kro", a)
    # Truncation is detected up front; simulate the mid-run failure with a
    # corrupt RLE PSD instead, whose damage is only found when its rows are read.
    from psd_tools import PSDImage
    from PIL import Image

    a[:, :] = 5
    PSDImage.frompil(Image.fromarray(a)).save(tmp_path / "rle.psd")
    data = bytearray((tmp_path / "rle.psd").read_bytes())
    data[-5000:] = b"\x80" * 5000  # no-op codes: rows decode short at the very end
    (tmp_path / "rle.psd").write_bytes(bytes(data))
    (tmp_path / "in.kro").unlink()
    expect_failure(tmp_path, ["convert", tmp_path / "rle.psd", tmp_path / "out.tif"], "PSD")
