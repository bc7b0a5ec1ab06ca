"""Generates a big RGBA KRO panorama from real photos, strip by strip (memory
stays small whatever the size): photos tiled side by side with mirrored
repeats, and a wavy transparent border like a stitcher leaves."""
import argparse
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = sorted((ROOT / "samples").glob("*.jpg"))
BAND = 2048  # photo band height


def band(width):
    """One band of photos, BAND rows high and at least `width` wide."""
    parts, w, i = [], 0, 0
    while w < width:
        im = Image.open(PHOTOS[i % len(PHOTOS)]).convert("RGB")
        im = im.resize((im.width * BAND // im.height, BAND))
        a = np.asarray(im)
        if (i // len(PHOTOS)) % 2:
            a = a[:, ::-1]
        parts.append(a)
        w += a.shape[1]
        i += 1
    return np.concatenate(parts, axis=1)[:, :width]


def write(path, width, height, strip=512):
    b = band(width + BAND)
    x = np.arange(width)
    # Wavy top and bottom edges and ragged left/right ends: transparent outside.
    top = (0.04 * height * (1 + np.sin(x / (width / 9.0)))).astype(np.int64)
    bottom = (height - 0.05 * height * (1 + np.cos(x / (width / 7.0)))).astype(np.int64)
    tmp = Path(str(path) + ".part")
    with open(tmp, "wb") as f:
        f.write(b"KRO\x01" + np.array([width, height, 8, 4], ">u4").tobytes())
        for y0 in range(0, height, strip):
            ys = np.arange(y0, min(y0 + strip, height))
            # Each band of rows shifts the photo strip sideways so bands differ.
            shift = (ys // BAND) * 997 % BAND
            rgb = b[ys[:, None] % BAND, x[None, :] + shift[:, None]]
            left = (0.02 * width * (1 + np.sin(ys / (height / 11.0)))).astype(np.int64)
            right = (width - 0.03 * width * (1 + np.cos(ys / (height / 5.0)))).astype(np.int64)
            inside = (ys[:, None] >= top[None, :]) & (ys[:, None] < bottom[None, :])
            inside &= (x[None, :] >= left[:, None]) & (x[None, :] < right[:, None])
            alpha = np.where(inside, 255, 0).astype(np.uint8)
            rgba = np.concatenate([rgb * inside[..., None].astype(np.uint8), alpha[..., None]], axis=2)
            f.write(rgba.tobytes())
    tmp.rename(path)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out")
    ap.add_argument("--width", type=int, default=20000)
    ap.add_argument("--height", type=int, default=20000)
    a = ap.parse_args()
    write(a.out, a.width, a.height)
