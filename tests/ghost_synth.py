"""Scenes with things that moved between shots, for the seam and blend tests (issue 13).

The six frames of render_synth (two rows of three, overlapping by about a third) are cut
from a real photo with known poses; discs of flat, saturated colour are pasted into the
world as seen by some frames only:
- single: in a two-frame overlap, seen by one of the two (a person who left): it must be
  wholly in or wholly out of the result, never cut;
- walker: two positions in one two-frame overlap, each seen by one frame (someone who
  walked between the shots): at most one may show;
- outvoted: where three or more frames overlap, seen by one (the others agree): removed.
`measure` scores a render against the static truth: per object its coverage (the share of
its footprint that shows it), PSNR outside the objects, and the steepest low-frequency ramp
(the gradient of the log ratio of 8-px Gaussian means of output and truth, % per pixel): a
halo around objects with exact exposures, an exposure step's fade with one frame 0.4 EV off.
"""
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

import render_synth

FRAME_W, FRAME_H, HFOV, CANVAS_SCALE = 800, 600, 50.0, 0.5
RADIUS = 13  # canvas pixels
COLOURS = [(235, 30, 200), (30, 220, 235), (250, 230, 20), (20, 40, 230), (250, 110, 10), (120, 250, 40)]


@dataclass
class Thing:
    kind: str  # single, walker, outvoted
    x: float
    y: float
    r: float
    colour: tuple
    seen_by: int
    group: int  # the walker's two positions share a group


def cover_sets(width, height, scene_w, scene_h, scene_fov=(120.0, 90.0), margin=24):
    """For every canvas pixel, the frames that see it (pinhole model without distortion,
    frames shrunk by `margin` px so distortion can't matter), as a bit mask per pixel."""
    sd = scene_w / np.radians(scene_fov[0])
    xs, ys = np.meshgrid(np.arange(width, dtype=float), np.arange(height, dtype=float))
    sx, sy = (xs + 0.5) * scene_w / width - 0.5, (ys + 0.5) * scene_h / height - 0.5
    lam, phi = (sx - (scene_w - 1) / 2) / sd, -(sy - (scene_h - 1) / 2) / sd
    world = np.stack([np.cos(phi) * np.sin(lam), -np.sin(phi), np.cos(phi) * np.cos(lam)], -1)
    focal = FRAME_W / (2 * np.tan(np.radians(HFOV) / 2))
    bits = np.zeros((height, width), np.int32)
    for k, (yaw, pitch, roll, *_rest) in enumerate(render_synth.FRAMES):
        cam = world @ render_synth.rotation(yaw, pitch, roll)
        z = cam[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = cam[..., 0] / z * focal + (FRAME_W - 1) / 2
            v = cam[..., 1] / z * focal + (FRAME_H - 1) / 2
        inside = (z > 0) & (u > margin) & (u < FRAME_W - margin) & (v > margin) & (v < FRAME_H - margin)
        bits |= inside.astype(np.int32) << k
    return bits


def place(bits, seed=7, singles=18, walkers=3, outvoted=4):
    """Objects at random where their disc (plus a margin) sees one constant set of frames."""
    rng = np.random.default_rng(seed)
    h, w = bits.shape
    count = np.vectorize(lambda b: bin(b).count("1"))(np.arange(64))[bits]
    things = []

    def free(x, y, r):
        return all(np.hypot(t.x - x, t.y - y) > t.r + r + 10 for t in things)

    def uniform(x, y, r):
        x0, x1, y0, y1 = int(x - r - 6), int(x + r + 7), int(y - r - 6), int(y + r + 7)
        if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
            return None
        patch = bits[y0:y1, x0:x1]
        return int(patch[0, 0]) if (patch == patch[0, 0]).all() else None

    def draw(want, tries=20000):
        for _ in range(tries):
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            b = uniform(x, y, RADIUS)
            if b is not None and want(count[int(y), int(x)]) and free(x, y, RADIUS):
                return x, y, b
        raise RuntimeError("no room for another object")

    def frames_of(b):
        return [k for k in range(6) if b >> k & 1]

    for n in range(singles):
        x, y, b = draw(lambda c: c == 2)
        things.append(Thing("single", x, y, RADIUS, COLOURS[n % 6], int(rng.choice(frames_of(b))), n))
    for n in range(walkers):
        x, y, b = draw(lambda c: c == 2)
        i, j = frames_of(b)
        for _ in range(20000):  # the second position: same two frames, a few radii away
            x2, y2 = x + rng.uniform(-90, 90), y + rng.uniform(-90, 90)
            if np.hypot(x2 - x, y2 - y) > 4 * RADIUS and uniform(x2, y2, RADIUS) == b and free(x2, y2, RADIUS):
                break
        else:
            raise RuntimeError("no room for a walker")
        g = 100 + n
        things.append(Thing("walker", x, y, RADIUS, COLOURS[n % 6], i, g))
        things.append(Thing("walker", x2, y2, RADIUS, COLOURS[n % 6], j, g))
    for n in range(outvoted):
        x, y, b = draw(lambda c: c >= 3)
        things.append(Thing("outvoted", x, y, RADIUS, COLOURS[(n + 3) % 6], int(rng.choice(frames_of(b))), 200 + n))
    return things


def make(photo, out_dir, exposure_error=0.0, seed=7):
    """Writes the frames and project.pto into out_dir; returns (pto, truth, things). With
    exposure_error, frame 1's Eev in the project is that far off what its pixels were made with."""
    from PIL import Image

    out_dir = Path(out_dir)
    sw, sh = Image.open(photo).size
    cw, ch = int(sw * CANVAS_SCALE), int(sh * CANVAS_SCALE)
    things = place(cover_sets(cw, ch, sw, sh), seed)

    def paint(k, cx, cy, L):
        for t in things:
            if t.seen_by == k:
                inside = np.hypot(cx - t.x, cy - t.y) <= t.r
                L[inside] = t.colour
        return L

    pto, truth = render_synth.make(photo, out_dir, frame_w=FRAME_W, frame_h=FRAME_H, hfov=HFOV, canvas_scale=CANVAS_SCALE, paint=paint)
    if exposure_error:
        lines = pto.read_text().splitlines()
        k = [i for i, line in enumerate(lines) if line.startswith("i ")][1]
        lines[k] = re.sub(r"Eev([-\d.]+)", lambda m: f"Eev{float(m.group(1)) + exposure_error:.3f}", lines[k])
        pto.write_text("\n".join(lines) + "\n")
    return pto, truth, things


def footprint(shape, t, grow=0.0):
    ys, xs = np.ogrid[: shape[0], : shape[1]]
    return np.hypot(xs - t.x, ys - t.y) <= t.r + grow


def measure(out, truth, things):
    """Scores an RGBA render (uint8 or uint16) against the truth: a dict of per-object
    coverage, the counts the issue asks for, PSNR outside objects and the steepest ramp."""
    a = out.astype(float)
    if out.dtype == np.uint16:
        a /= 257.0
    rgb, alpha = a[..., :3], a[..., 3]
    covered = alpha >= 254
    coverage = []
    for t in things:
        foot = footprint(covered.shape, t, -1.0) & covered
        if not foot.any():
            coverage.append(float("nan"))
            continue
        d_obj = np.abs(rgb[foot] - np.array(t.colour)).sum(-1)
        d_bg = np.abs(rgb[foot] - truth[foot]).sum(-1)
        coverage.append(float((d_obj < d_bg).mean()))
    shown = [c >= 0.1 for c in coverage]
    cut = sum(0.1 <= c <= 0.9 for c, t in zip(coverage, things) if t.kind in ("single", "walker"))
    walkers = {}
    for s, t in zip(shown, things):
        if t.kind == "walker":
            walkers[t.group] = walkers.get(t.group, 0) + s
    objects = np.zeros(covered.shape, bool)
    for t in things:
        objects |= footprint(covered.shape, t, 3.0)
    clean = covered & ~objects
    mse = ((rgb[clean] - truth[clean]) ** 2).mean()
    # The ramp: away from the coverage's edge and the objects (8 px means reach about 24 px).
    lum_out = ndimage.gaussian_filter(rgb.mean(-1) * covered, 8)
    lum_truth = ndimage.gaussian_filter(truth.mean(-1) * covered, 8)
    ratio = np.log(np.maximum(lum_out, 1e-3) / np.maximum(lum_truth, 1e-3))
    gy, gx = np.gradient(ratio)
    far = ndimage.binary_erosion(covered, iterations=24) & ~ndimage.binary_dilation(objects, iterations=24)
    ramp = 100 * float(np.hypot(gx, gy)[far].max())
    return {
        "coverage": coverage,
        "cut": cut,
        "doubled": sum(v > 1 for v in walkers.values()),
        "walkers": len(walkers),
        "outvoted_removed": sum(not s for s, t in zip(shown, things) if t.kind == "outvoted"),
        "outvoted": sum(t.kind == "outvoted" for t in things),
        "psnr": float(10 * np.log10(255**2 / mse)),
        "ramp": ramp,
    }


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: ghost_synth.py PHOTO OUTDIR   (writes OUTDIR/frame*.png and OUTDIR/project.pto)")
    pto, _, things = make(sys.argv[1], sys.argv[2])
    print(pto, len(things), "objects")
