"""ICC colour profiles: read from TIFF, PNG, JPEG and PSD, named by `giga info`, carried by
`convert` into every format that holds one, and converted to sRGB for tiles. The reference
conversion is Pillow's ImageCms; the profiles are built here from published primaries."""
import io

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from conftest import PHOTO, giga

from icc import ADOBE_ICC, GRAY_ICC, PROPHOTO_ICC


def to_srgb_reference(rgb, icc):
    """Pillow (LittleCMS) conversion of 8-bit RGB from `icc` to sRGB, perceptual as giga."""
    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    t = ImageCms.buildTransform(src, ImageCms.createProfile("sRGB"), "RGB", "RGB", renderingIntent=0)
    return np.asarray(ImageCms.applyTransform(Image.fromarray(rgb), t))


@pytest.fixture(scope="module")
def photo_rgba():
    rgb = np.asarray(Image.open(PHOTO).convert("RGB").resize((301, 203)))
    a = np.full(rgb.shape[:2] + (1,), 255, np.uint8)
    a[:40, :50] = 0
    a[100:110] = 128
    return np.concatenate([rgb, a], axis=2)


def reassembled(outdir, name, w, h):
    """The full-resolution level of a DZI with PNG tiles, 256/0, as one array."""
    top = (max(w, h) - 1).bit_length()
    out = np.zeros((h, w, 4), np.uint8)
    for y in range(0, h, 256):
        for x in range(0, w, 256):
            t = np.asarray(Image.open(outdir / f"{name}_files" / str(top) / f"{x // 256}_{y // 256}.png").convert("RGBA"))
            out[y : y + t.shape[0], x : x + t.shape[1]] = t
    return out


def tile_png(tmp_path, src, *extra):
    out = tmp_path / ("tiles-" + src.name + "".join(extra))
    r = giga("tile", src, out, "--format", "png", "--tile-size", "256", "--overlap", "0", "--no-viewer", "--name", "t", *extra)
    return r, out


def test_info_names_the_profile_of_every_format(tmp_path, photo_rgba):
    rgb = photo_rgba[..., :3]
    tifffile.imwrite(tmp_path / "a.tif", photo_rgba, extratags=[(34675, 7, len(ADOBE_ICC), ADOBE_ICC, True)])
    Image.fromarray(rgb).save(tmp_path / "a.png", icc_profile=ADOBE_ICC)
    Image.fromarray(rgb).save(tmp_path / "a.jpg", icc_profile=ADOBE_ICC, quality=95)
    for name in ("a.tif", "a.png", "a.jpg"):
        out = giga("info", tmp_path / name).stdout
        assert f'icc profile: "Adobe RGB (1998) test", {len(ADOBE_ICC)} bytes' in out, out
    Image.fromarray(rgb).save(tmp_path / "plain.png")
    assert "icc" not in giga("info", tmp_path / "plain.png").stdout


@pytest.mark.parametrize("icc", [ADOBE_ICC, PROPHOTO_ICC], ids=["adobe", "prophoto"])
def test_tiles_are_converted_to_srgb(tmp_path, photo_rgba, icc):
    tifffile.imwrite(tmp_path / "a.tif", photo_rgba, extratags=[(34675, 7, len(icc), icc, True)])
    r, out = tile_png(tmp_path, tmp_path / "a.tif")
    assert "to sRGB" in r.stderr
    got = reassembled(out, "t", 301, 203)
    want = to_srgb_reference(np.ascontiguousarray(photo_rgba[..., :3]), icc)
    opaque = photo_rgba[..., 3] == 255
    diff = np.abs(got[..., :3].astype(int) - want.astype(int))[opaque]
    assert diff.max() <= 2, diff.max()
    # A real change, not a copy: wide-gamut values move by many levels.
    assert np.abs(got[..., :3].astype(int) - photo_rgba[..., :3].astype(int))[opaque].max() > 20
    visible = photo_rgba[..., 3] > 0
    assert np.array_equal(got[..., 3][visible], photo_rgba[..., 3][visible]), "alpha passes through"
    # --keep-colors tiles the stored values.
    r, kept = tile_png(tmp_path, tmp_path / "a.tif", "--keep-colors")
    assert "sRGB" not in r.stderr
    k = reassembled(kept, "t", 301, 203)
    assert np.array_equal(k[..., :3][opaque], photo_rgba[..., :3][opaque])


def test_16_bit_input_is_rounded_then_converted(tmp_path, photo_rgba):
    a16 = photo_rgba.astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "a16.tif", a16, extratags=[(34675, 7, len(ADOBE_ICC), ADOBE_ICC, True)])
    _, out = tile_png(tmp_path, tmp_path / "a16.tif")
    got = reassembled(out, "t", 301, 203)
    want = to_srgb_reference(np.ascontiguousarray(photo_rgba[..., :3]), ADOBE_ICC)
    opaque = photo_rgba[..., 3] == 255
    assert np.abs(got[..., :3].astype(int) - want.astype(int))[opaque].max() <= 2


def test_srgb_profile_changes_nothing(tmp_path, photo_rgba):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgb = np.ascontiguousarray(photo_rgba[..., :3])
    Image.fromarray(rgb).save(tmp_path / "s.png", icc_profile=srgb)
    r, out = tile_png(tmp_path, tmp_path / "s.png")
    assert "sRGB" not in r.stderr
    assert np.array_equal(reassembled(out, "t", 301, 203)[..., :3], rgb)


def test_jpeg_and_psd_inputs_are_converted(tmp_path, photo_rgba):
    rgb = np.ascontiguousarray(photo_rgba[..., :3])
    Image.fromarray(rgb).save(tmp_path / "a.jpg", icc_profile=PROPHOTO_ICC, quality=95)
    decoded = np.asarray(Image.open(tmp_path / "a.jpg").convert("RGB"))
    _, out = tile_png(tmp_path, tmp_path / "a.jpg")
    want = to_srgb_reference(decoded, PROPHOTO_ICC)
    assert np.abs(reassembled(out, "t", 301, 203)[..., :3].astype(int) - want.astype(int)).max() <= 2
    # A PSD written by giga from that JPEG carries the profile (image resource 1039).
    giga("convert", tmp_path / "a.jpg", tmp_path / "a.psd")
    from psd_tools import PSDImage

    psd = PSDImage.open(tmp_path / "a.psd")
    assert psd.image_resources.get_data(1039) == PROPHOTO_ICC
    _, out2 = tile_png(tmp_path, tmp_path / "a.psd")
    assert np.array_equal(reassembled(out2, "t", 301, 203), reassembled(out, "t", 301, 203))


def test_convert_carries_the_profile(tmp_path, photo_rgba):
    tifffile.imwrite(tmp_path / "a.tif", photo_rgba, extratags=[(34675, 7, len(ADOBE_ICC), ADOBE_ICC, True)])
    for ext in ("png", "jpg", "tif"):
        r = giga("convert", tmp_path / "a.tif", tmp_path / f"b.{ext}")
        assert "warning" not in r.stderr
    assert Image.open(tmp_path / "b.png").info["icc_profile"] == ADOBE_ICC
    assert Image.open(tmp_path / "b.jpg").info["icc_profile"] == ADOBE_ICC
    with tifffile.TiffFile(tmp_path / "b.tif") as t:
        assert t.pages[0].tags[34675].value == ADOBE_ICC
    # fill carries it too (its input is opened for the analysis, the profile read there).
    giga("fill", tmp_path / "a.tif", tmp_path / "f.png")
    assert Image.open(tmp_path / "f.png").info["icc_profile"] == ADOBE_ICC
    # Pixels are copied as they are: converting is for tiles.
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), photo_rgba)
    # KRO has no place for a profile: a warning says so, and the file is written.
    r = giga("convert", tmp_path / "a.tif", tmp_path / "b.kro")
    assert 'the ICC profile "Adobe RGB (1998) test" is not kept: KRO has no place for one' in r.stderr
    # An RGB profile does not describe a gray conversion.
    r = giga("convert", tmp_path / "a.tif", tmp_path / "g.png", "--gray")
    assert "not for gray" in r.stderr
    assert "icc_profile" not in Image.open(tmp_path / "g.png").info


def test_gray_profile(tmp_path):
    g = (np.arange(256, dtype=np.uint8)[None, :].repeat(7, axis=0))
    Image.fromarray(g, "L").save(tmp_path / "g.png", icc_profile=GRAY_ICC)
    _, out = tile_png(tmp_path, tmp_path / "g.png")
    got = np.asarray(Image.open(out / "t_files" / "8" / "0_0.png").convert("L")).astype(float)
    # Gamma 2.2 to the sRGB curve: linear light is kept.
    lin = (np.arange(256) / 255) ** 2.2
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055) * 255
    assert np.abs(got[0] - srgb).max() <= 2


def test_unusable_profiles_are_ignored_with_a_warning(tmp_path, photo_rgba):
    """A gray profile on RGB, or bytes LittleCMS can't read: browsers ignore such a profile,
    and so does giga, saying so in one line."""
    tifffile.imwrite(tmp_path / "a.tif", photo_rgba, extratags=[(34675, 7, len(GRAY_ICC), GRAY_ICC, True)])
    Image.fromarray(np.ascontiguousarray(photo_rgba[..., :3])).save(tmp_path / "b.png", icc_profile=b"garbage" * 10)
    for src, why in ((tmp_path / "a.tif", 'the ICC profile "Gray gamma 2.2 test" is not for RGBA images'), (tmp_path / "b.png", "unreadable ICC profile (70 bytes)")):
        r, out = tile_png(tmp_path, src)
        assert r.stderr.count("warning") == 1 and f"warning: {src}: {why}; the stored values are tiled as sRGB" in r.stderr, r.stderr
        got = reassembled(out, "t", 301, 203)
        opaque = photo_rgba[..., 3] == 255
        assert np.array_equal(got[..., :3][opaque], photo_rgba[..., :3][opaque])
    assert "unreadable ICC profile (70 bytes)" in giga("info", tmp_path / "b.png").stdout
    r = giga("convert", tmp_path / "b.png", tmp_path / "c.png")
    assert "the input's ICC profile is not kept: unreadable ICC profile (70 bytes)" in r.stderr


def test_serve_converts_to_srgb(tmp_path, photo_rgba):
    """giga serve answers in sRGB too: an image held in memory, and a multi-resolution TIFF
    (whose profile giga convert carried over) converted tile by tile."""
    from test_serve import get, start_serve

    d = tmp_path / "images"
    d.mkdir()
    tifffile.imwrite(d / "mem.tif", photo_rgba, extratags=[(34675, 7, len(ADOBE_ICC), ADOBE_ICC, True)])
    giga("convert", d / "mem.tif", d / "pyr.tif", "--pyramid", "--tile-size", "64")
    p, host = start_serve(d)
    try:
        want = to_srgb_reference(np.ascontiguousarray(photo_rgba[..., :3]), ADOBE_ICC)
        opaque = photo_rgba[..., 3] == 255
        for ident in ("mem", "pyr"):
            status, _, body = get(host, f"/iiif/3/{ident}/full/max/0/default.png")
            assert status == 200
            got = np.asarray(Image.open(io.BytesIO(body)).convert("RGBA")).astype(int)
            assert np.abs(got[..., :3] - want)[opaque].max() <= 2, ident
            assert np.array_equal(got[..., 3], photo_rgba[..., 3])
    finally:
        p.terminate()
        log = p.communicate(timeout=10)[1]
    assert log.count('colours converted from the ICC profile "Adobe RGB (1998) test" to sRGB') == 2, log


def test_render_keeps_the_frames_profile(tmp_path):
    """As nona: the rendered output carries the first frame's profile; rendered straight into
    tiles, it is converted to sRGB like any tiled input."""
    import shutil

    import render_synth

    plain = tmp_path / "plain"
    pto, _ = render_synth.make(PHOTO, plain, frame_w=200, frame_h=150, canvas_scale=0.2)
    tagged = tmp_path / "tagged"
    shutil.copytree(plain, tagged)
    for f in tagged.glob("frame*.png"):
        Image.open(f).save(f, icc_profile=ADOBE_ICC)
    giga("render", pto, tmp_path / "plain.png", "--quiet")
    giga("render", tagged / pto.name, tmp_path / "tagged.png", "--quiet")
    ref = np.asarray(Image.open(tmp_path / "plain.png"))
    out = Image.open(tmp_path / "tagged.png")
    assert out.info["icc_profile"] == ADOBE_ICC
    assert np.array_equal(np.asarray(out), ref), "the values are rendered as they are"
    tiles = tmp_path / "site"
    r = giga("render", tagged / pto.name, "--tiles", tiles, "--format", "png", "--tile-size", "256", "--overlap", "0", "--name", "t", "--no-viewer")
    assert "to sRGB" in r.stderr
    h, w = ref.shape[:2]
    got = reassembled(tiles, "t", w, h)
    opaque = ref[..., 3] == 255
    want = to_srgb_reference(np.ascontiguousarray(ref[..., :3]), ADOBE_ICC)
    assert np.abs(got[..., :3].astype(int) - want.astype(int))[opaque].max() <= 2
    # A frame with another profile: the first frame's wins, with a warning.
    Image.open(tagged / "frame1.png").save(tagged / "frame1.png", icc_profile=PROPHOTO_ICC)
    r = giga("render", tagged / pto.name, tmp_path / "mixed.tif", "--quiet")
    assert "frame 1 (frame1.png) has another ICC profile than frame 0; the output takes frame 0's" in r.stderr, r.stderr
    with tifffile.TiffFile(tmp_path / "mixed.tif") as t:
        assert t.pages[0].tags[34675].value == ADOBE_ICC
