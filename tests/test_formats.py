"""Round trips through independent readers: a KRO written here from the spec
goes through giga into every format, and tifffile, GDAL, psd-tools, pypng and
Pillow read the result back. Pixels must match exactly (JPEG: PSNR)."""
import itertools

import numpy as np
import png as pypng
import pytest
import tifffile
from PIL import Image
from psd_tools import PSDImage

from conftest import gdal_read, giga, listing, sample_image, write_kro

# (height, width): single pixel, single row and column, a prime width,
# more than one TIFF tile across and down.
SIZES = [(1, 1), (1, 13), (13, 1), (7, 31), (5, 263), (300, 17)]
CHANNELS = [1, 2, 3, 4]
BITS = [8, 16, 32]
CASES = list(itertools.product(SIZES, CHANNELS, BITS))
ids = [f"{h}x{w}-c{c}-{b}bit" for (h, w), c, b in CASES]


def psd_pixels(psd):
    """The composite's stored samples as decoded by psd-tools' record layer.

    psd-tools' numpy() un-mattes colour from white when a fourth channel is
    present (Photoshop's convention for layered files); giga writes flat
    files whose extra channel is a plain alpha channel, so compare the
    stored samples instead."""
    from psd_tools.api.numpy_io import _parse_array

    data = psd._record.image_data.get_data(psd._record.header, False)
    a = _parse_array(data, psd.depth, psd.width)  # floats 0..1 (32-bit: as stored)
    return a.reshape(-1, psd.height, psd.width).transpose(1, 2, 0)


def source(tmp_path, size, c, bits):
    a = sample_image(*size, c, bits)
    write_kro(tmp_path / "in.kro", a)
    return a


@pytest.mark.parametrize("size,c,bits", CASES, ids=ids)
def test_tiff_read_by_tifffile_and_gdal(tmp_path, size, c, bits):
    a = source(tmp_path, size, c, bits)
    giga("convert", tmp_path / "in.kro", tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as t:
        page = t.pages[0]
        assert page.is_tiled and page.compression == 8  # deflate
        got = page.asarray()
    np.testing.assert_array_equal(got.reshape(a.shape), a)
    np.testing.assert_array_equal(gdal_read(tmp_path / "out.tif", tmp_path), a)


@pytest.mark.parametrize("size,c,bits", CASES, ids=ids)
def test_kro_read_by_gdal(tmp_path, size, c, bits):
    a = source(tmp_path, size, c, bits)
    # Through TIFF and back, so the KRO giga writes comes from giga's own pipeline.
    giga("convert", tmp_path / "in.kro", tmp_path / "mid.tif", "--compression", "packbits")
    giga("convert", tmp_path / "mid.tif", tmp_path / "out.kro")
    np.testing.assert_array_equal(gdal_read(tmp_path / "out.kro", tmp_path), a)


@pytest.mark.parametrize("size,c,bits", CASES, ids=ids)
def test_psd_read_by_psd_tools(tmp_path, size, c, bits):
    a = source(tmp_path, size, c, bits)
    giga("convert", tmp_path / "in.kro", tmp_path / "out.psd")
    psd = PSDImage.open(tmp_path / "out.psd")
    assert (psd.width, psd.height, psd.depth, psd.channels) == (size[1], size[0], bits, c)
    got = psd_pixels(psd).reshape(a.shape)
    if bits == 32:
        np.testing.assert_array_equal(got.astype(np.float32), a)
    else:
        np.testing.assert_array_equal(np.rint(got * ((1 << bits) - 1)).astype(a.dtype), a)


@pytest.mark.parametrize("size,c,bits", [k for k in CASES if k[2] != 32], ids=[i for i, k in zip(ids, CASES) if k[2] != 32])
def test_png_read_by_pypng(tmp_path, size, c, bits):
    a = source(tmp_path, size, c, bits)
    giga("convert", tmp_path / "in.kro", tmp_path / "out.png")
    w, h, rows, meta = pypng.Reader(filename=str(tmp_path / "out.png")).read()
    assert (meta["bitdepth"], meta["planes"]) == (bits, c)
    got = np.vstack([np.asarray(r, dtype=a.dtype) for r in rows]).reshape(a.shape)
    np.testing.assert_array_equal(got, a)
    # And back: giga reads the PNG it wrote as the same pixels, via TIFF checked by tifffile.
    giga("convert", tmp_path / "out.png", tmp_path / "back.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "back.tif").reshape(a.shape), a)


@pytest.mark.parametrize("c,bits,ext", [(1, 8, "pgm"), (3, 8, "ppm"), (1, 16, "pgm")])
def test_pnm_read_by_pillow(tmp_path, c, bits, ext):
    a = source(tmp_path, (9, 23), c, bits)
    giga("convert", tmp_path / "in.kro", tmp_path / f"out.{ext}")
    got = np.asarray(Image.open(tmp_path / f"out.{ext}"))
    np.testing.assert_array_equal(got.reshape(a.shape).astype(a.dtype), a)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


def test_jpeg_quality_95_read_by_pillow(tmp_path, photo):
    a = np.ascontiguousarray(photo[:1001, :1503])  # odd sizes, real content
    write_kro(tmp_path / "in.kro", a)
    giga("convert", tmp_path / "in.kro", tmp_path / "out.jpg", "--quality", "95")
    got = np.asarray(Image.open(tmp_path / "out.jpg"))
    assert got.shape == a.shape
    assert psnr(got, a) > 40


def test_jpeg_input_matches_pillow(tmp_path, photo):
    """giga's JPEG decoder agrees with Pillow's on the real sample photo."""
    from conftest import PHOTO

    giga("convert", PHOTO, tmp_path / "out.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), photo)


def test_jpeg_flattens_alpha_onto_background(tmp_path):
    a = np.zeros((8, 8, 4), np.uint8)
    a[..., 0] = 255  # red, fully transparent on the left half
    a[:, 4:, 3] = 255
    write_kro(tmp_path / "in.kro", a)
    giga("convert", tmp_path / "in.kro", tmp_path / "w.jpg", "--quality", "100")
    giga("convert", tmp_path / "in.kro", tmp_path / "b.jpg", "--quality", "100", "--background", "black")
    w = np.asarray(Image.open(tmp_path / "w.jpg")).astype(int)
    b = np.asarray(Image.open(tmp_path / "b.jpg")).astype(int)
    assert np.abs(w[:, :3] - 255).max() < 8  # white where transparent
    assert np.abs(b[:, :3] - 0).max() < 8  # black where transparent
    assert np.abs(w[:, 5:] - [255, 0, 0]).max() < 8  # red where opaque


def test_kro_written_by_gdal(tmp_path):
    for c, bits in [(1, 8), (3, 8), (4, 16), (3, 32)]:
        a = sample_image(37, 53, c, bits)
        tifffile.imwrite(tmp_path / "src.tif", a if c > 1 else a[..., 0], photometric="minisblack" if c == 1 else "rgb", planarconfig="contig", extrasamples=[2] if c == 4 else None)
        import subprocess

        subprocess.run(["gdal_translate", "-q", "-of", "KRO", str(tmp_path / "src.tif"), str(tmp_path / "g.kro")], check=True)
        info = giga("info", "--json", tmp_path / "g.kro").stdout
        import json

        j = json.loads(info)
        assert (j["format"], j["width"], j["height"], j["channels"], j["bits"]) == ("KRO", 53, 37, c, bits)
        giga("convert", tmp_path / "g.kro", tmp_path / "out.tif")
        np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif").reshape(a.shape), a)
        for p in tmp_path.iterdir():
            p.unlink()


def test_bigtiff_read_by_tifffile(tmp_path):
    a = sample_image(600, 301, 4, 8)
    write_kro(tmp_path / "in.kro", a)
    giga("convert", tmp_path / "in.kro", tmp_path / "big.tif", "--bigtiff", "--tile-size", "128")
    with tifffile.TiffFile(tmp_path / "big.tif") as t:
        assert t.is_bigtiff and t.pages[0].is_tiled and t.pages[0].tilewidth == 128
        np.testing.assert_array_equal(t.pages[0].asarray(), a)
    # Uncompressed classic TIFF too.
    giga("convert", tmp_path / "in.kro", tmp_path / "raw.tif", "--compression", "none")
    with tifffile.TiffFile(tmp_path / "raw.tif") as t:
        assert not t.is_bigtiff and t.pages[0].compression == 1
        np.testing.assert_array_equal(t.pages[0].asarray(), a)


@pytest.mark.parametrize("compression,tiled", [(c, t) for c in ["none", "zlib", "lzw", "packbits"] for t in [False, True]])
def test_reads_tiff_written_by_tifffile(tmp_path, compression, tiled):
    """giga reads stripped and tiled TIFFs in every required compression (tiled LZW from
    imagecodecs through the lenient decoder where the tiff crate refuses a chunk)."""
    for c, bits in [(3, 8), (4, 16), (1, 32), (2, 8)]:
        a = sample_image(70, 45, c, bits)
        kw = dict(tile=(32, 16)) if tiled else dict(rowsperstrip=7)
        comp = None if compression == "none" else compression
        extras = [2] if c in (2, 4) else None
        photometric = "rgb" if c >= 3 else "minisblack"
        tifffile.imwrite(tmp_path / "src.tif", a if c > 1 else a[..., 0], compression=comp, photometric=photometric, extrasamples=extras, planarconfig="contig", **kw)
        giga("convert", tmp_path / "src.tif", tmp_path / "out.kro")
        np.testing.assert_array_equal(gdal_read(tmp_path / "out.kro", tmp_path), a)
        for p in tmp_path.iterdir():
            p.unlink()


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_reads_tiled_lzw_with_predictor_from_tifffile(tmp_path, byteorder):
    """imagecodecs ends some LZW tiles without the end code, inside the padding of edge
    tiles; the tiff crate refuses them, giga decodes them leniently (predictor 2 included)
    and agrees with tifffile."""
    for c, bits in [(3, 8), (4, 16)]:
        a = sample_image(300, 400, c, bits, seed=3)
        tifffile.imwrite(tmp_path / "src.tif", a, compression="lzw", predictor=True, tile=(64, 64), byteorder=byteorder, photometric="rgb", extrasamples=[2] if c == 4 else None)
        giga("convert", tmp_path / "src.tif", tmp_path / "out.kro")
        np.testing.assert_array_equal(gdal_read(tmp_path / "out.kro", tmp_path), tifffile.imread(tmp_path / "src.tif"))


def test_reads_big_endian_tiff(tmp_path):
    a = sample_image(20, 30, 3, 16)
    tifffile.imwrite(tmp_path / "be.tif", a, byteorder=">", photometric="rgb")
    giga("convert", tmp_path / "be.tif", tmp_path / "out.kro")
    np.testing.assert_array_equal(gdal_read(tmp_path / "out.kro", tmp_path), a)


def test_reads_rle_psd_and_psb_from_psd_tools(tmp_path):
    """PSD/PSB with an RLE composite, written by psd-tools (not by giga)."""
    a = sample_image(40, 33, 3, 8)
    a[10:20] = 7  # runs, so RLE has something to compress
    img = Image.fromarray(a)
    psd = PSDImage.frompil(img)
    psd.save(tmp_path / "rle.psd")
    giga("convert", tmp_path / "rle.psd", tmp_path / "out.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), a)


def test_psb_above_30000(tmp_path):
    a = sample_image(2, 30001, 3, 8)
    write_kro(tmp_path / "in.kro", a)
    giga("convert", tmp_path / "in.kro", tmp_path / "wide.psb")
    assert (tmp_path / "wide.psb").read_bytes()[4:6] == b"\x00\x02"  # version 2: PSB
    psd = PSDImage.open(tmp_path / "wide.psb")
    assert psd.version == 2 and psd.width == 30001
    np.testing.assert_array_equal(np.rint(psd_pixels(psd) * 255).astype(np.uint8), a)


@pytest.mark.parametrize("depth", ["8", "16", "32"])
def test_depth_conversion(tmp_path, depth):
    a = sample_image(9, 11, 3, 16)
    write_kro(tmp_path / "in.kro", a)
    giga("convert", tmp_path / "in.kro", tmp_path / "out.tif", "--depth", depth)
    got = tifffile.imread(tmp_path / "out.tif")
    x = a.astype(np.float64) / 65535
    if depth == "8":
        np.testing.assert_array_equal(got, np.floor(x * 255 + 0.5).astype(np.uint8))
    elif depth == "16":
        np.testing.assert_array_equal(got, a)
    else:
        np.testing.assert_allclose(got, x, atol=1e-7)


def test_float_clamped_to_8_bit(tmp_path):
    a = np.array([[[-0.5], [0.0], [0.25], [1.0], [3.0], [np.nan]]], np.float32).reshape(1, 6, 1)
    write_kro(tmp_path / "in.kro", a)
    giga("convert", tmp_path / "in.kro", tmp_path / "out.png", "--depth", "8")
    got = np.asarray(Image.open(tmp_path / "out.png")).ravel()
    assert got.tolist() == [0, 0, 64, 255, 255, 0]


@pytest.mark.parametrize("tiled", ["YES", "NO"])
def test_reads_lzw_written_by_gdal(tmp_path, tiled):
    import subprocess

    a = sample_image(300, 301, 3, 8)
    write_kro(tmp_path / "in.kro", a)
    subprocess.run(["gdal_translate", "-q", "-co", "COMPRESS=LZW", "-co", f"TILED={tiled}", str(tmp_path / "in.kro"), str(tmp_path / "lzw.tif")], check=True)
    giga("convert", tmp_path / "lzw.tif", tmp_path / "out.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), a)


@pytest.mark.parametrize("bits", [8, 16])
def test_pyramidal_tiff_read_by_tifffile_and_vips(tmp_path, bits):
    """--pyramid: reduced pages down to one tile, each an alpha-weighted 2x2 reduction of the one above."""
    import subprocess

    from pyramid_ref import reduce2x2

    a = sample_image(301, 517, 4, bits)
    write_kro(tmp_path / "in.kro", a)
    giga("convert", tmp_path / "in.kro", tmp_path / "p.tif", "--pyramid", "--tile-size", "64")
    with tifffile.TiffFile(tmp_path / "p.tif") as t:
        shapes = [p.shape for p in t.pages]
        # Halved until one 64-px tile holds the page.
        assert shapes == [(301, 517, 4), (151, 259, 4), (76, 130, 4), (38, 65, 4), (19, 33, 4)]
        assert [p.subfiletype for p in t.pages] == [0, 1, 1, 1, 1]
        np.testing.assert_array_equal(t.pages[0].asarray(), a)
        if bits == 8:
            ref = a
            for p in t.pages[1:]:
                ref = reduce2x2(ref)
                assert np.abs(p.asarray().astype(int) - ref).max() <= 1
    r = subprocess.run(["vipsheader", "-f", "n-pages", str(tmp_path / "p.tif")], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "5"
    r = giga("convert", tmp_path / "in.kro", tmp_path / "p.png", "--pyramid", check=False)
    assert r.returncode == 2 and "--pyramid is for TIFF" in r.stderr
