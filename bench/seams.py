"""Seams and blending beside enblend and verdandi (issue 13), on the scenes of
tests/ghost_synth.py: things that moved between shots, with exact exposures and with
one frame 0.4 EV off its project. Prints per renderer: objects cut, walkers shown twice,
outvoted objects removed, PSNR outside the objects, the steepest low-frequency ramp,
and the time. enblend gets nona's layers (its NFT seams, as its default graph cut
broke such a scene here); verdandi is Hugin's own blender."""
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import ghost_synth  # noqa: E402

GIGA = ROOT / "target" / "release" / "giga"
PHOTO = ROOT / "samples" / "aitzgorri.jpg"


def timed(cmd, **kw):
    t = time.perf_counter()
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True, **kw)
    return time.perf_counter() - t


def renders(pto, d):
    """Yields (name, output path, seconds) for each renderer."""
    for name, extra in (("giga content", []), ("giga voronoi", ["--seams", "voronoi"]), ("giga content multiband", ["--blend", "multiband"])):
        out = d / (name.replace(" ", "-") + ".tif")
        yield name, out, timed([GIGA, "render", pto, out, "--quiet", *extra])
    if not shutil.which("nona"):
        return
    t = timed(["nona", "-m", "TIFF_m", "-o", d / "layer", pto])
    layers = sorted(d.glob("layer*.tif"))
    if shutil.which("enblend"):
        out = d / "enblend.tif"
        yield "enblend NFT", out, t + timed(["enblend", "--primary-seam-generator=nearest-feature-transform", "-o", out, *layers])
    if shutil.which("verdandi"):
        out = d / "verdandi.tif"
        yield "verdandi", out, t + timed(["verdandi", "-o", out, *layers])


def main():
    print(f"{'scene':6} {'renderer':24} {'cut':>4} {'twice':>6} {'removed':>8} {'PSNR':>6} {'ramp %/px':>10} {'s':>6}")
    for scene, error in (("exact", 0.0), ("0.4 EV", -0.4)):
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            pto, truth, things = ghost_synth.make(PHOTO, d, exposure_error=error)
            for name, out, seconds in renders(pto, d):
                m = ghost_synth.measure(tifffile.imread(out), truth, things)
                print(
                    f"{scene:6} {name:24} {m['cut']:>4} {m['doubled']:>3}/{m['walkers']:<2} "
                    f"{m['outvoted_removed']:>5}/{m['outvoted']:<2} {m['psnr']:6.2f} {m['ramp']:10.3f} {seconds:6.2f}"
                )


if __name__ == "__main__":
    main()
