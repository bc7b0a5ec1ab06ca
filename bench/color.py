"""Benchmark: `giga tile` of a wide-gamut (Adobe RGB) image, converted to sRGB, beside
libvips 8.18 (pyvips) doing the same with `icc_transform` before `dzsave`, in one run, tools
alternating. The input is the generated panorama's top half as an uncompressed RGBA TIFF
tagged with an Adobe RGB profile (tests/icc.py builds it from the published primaries). Also
runs both without the conversion, to show its cost. DZI 254/1, JPEG quality 85."""
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile

from common import GIGA, PY, ROOT, measure, panorama, parser

sys.path.insert(0, str(ROOT / "tests"))
from icc import ADOBE_ICC  # noqa: E402

PYVIPS = """
import sys, pyvips
im = pyvips.Image.new_from_file(sys.argv[1], access="sequential")
if sys.argv[3] == "convert":
    im = im.icc_transform("srgb", embedded=True, intent="perceptual")
im.dzsave(sys.argv[2], tile_size=254, overlap=1, Q=85)
"""


def main():
    ap = parser(__doc__)
    ap.add_argument("--out", help="where the tiles go (default: DIR/colour-runs)")
    a = ap.parse_args()
    d, src = panorama(a)
    w, h = a.width, a.height // 2
    tif = d / f"adobe-{w}x{h}.tif"
    if not tif.exists():
        pixels = np.memmap(src, dtype=np.uint8, mode="r", offset=20, shape=(h, w, 4))
        tifffile.imwrite(tif, pixels, extratags=[(34675, 7, len(ADOBE_ICC), ADOBE_ICC, True)])
    subprocess.run(["cat", str(tif)], stdout=subprocess.DEVNULL, check=True)
    runs_dir = Path(a.out) if a.out else d / "colour-runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    giga = [GIGA, "tile", str(tif), "--tile-size", "254", "--overlap", "1", "--quality", "85", "--no-viewer", "--quiet"]
    tools = {
        "giga tile (to sRGB)": lambda out: giga[:3] + [str(out)] + giga[3:],
        "pyvips icc_transform + dzsave": lambda out: [PY, "-c", PYVIPS, str(tif), str(out / "pano"), "convert"],
        "giga tile --keep-colors": lambda out: giga[:3] + [str(out)] + giga[3:] + ["--keep-colors"],
        "pyvips dzsave (no conversion)": lambda out: [PY, "-c", PYVIPS, str(tif), str(out / "pano"), "keep"],
    }
    runs = {k: [] for k in tools}
    anon = {k: [] for k in tools}
    for rep in range(a.reps):
        for i, (name, cmd) in enumerate(tools.items()):
            out = runs_dir / f"{rep}-{i}"
            out.mkdir(parents=True)
            runs[name].append(measure(cmd(out), anon[name]))
    print(f"\n{w}x{h} RGBA TIFF with an Adobe RGB profile ({w * h / 1e6:.0f} MP), DZI 254/1 Q85, median of {a.reps}")
    # Peak anonymous memory (RssAnon sampled every 10 ms): the children's ru_maxrss would
    # start at this script's own high-water mark from writing the TIFF.
    print(f"{'tool':<32} {'wall s':>8} {'peak anon MB':>13}")
    med = {}
    for name, r in runs.items():
        med[name] = statistics.median(x[0] for x in r)
        print(f"{name:<32} {med[name]:>8.2f} {statistics.median(anon[name]):>13.0f}")
    names = list(tools)
    print(f"giga / pyvips with the conversion: {med[names[0]] / med[names[1]]:.2f}; without: {med[names[2]] / med[names[3]]:.2f}")
    print(f"the conversion costs giga {med[names[0]] - med[names[2]]:.2f} s, pyvips {med[names[1]] - med[names[3]]:.2f} s")
    shutil.rmtree(runs_dir, ignore_errors=True)
    if not a.keep:
        tif.unlink(missing_ok=True)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
