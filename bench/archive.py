"""Benchmark: one-file tile pyramids on the same generated 400-megapixel RGBA KRO, in
one run, tools alternating: `giga tile --archive pmtiles` (256-px JPEG Q85 tiles),
giga's own folder of tiles (DZI 256/0, the same tiles as files), and libvips 8.18's
`dzsave(container="zip")` (an SZI-style zip of a DZI). Prints median wall time, peak
RSS, anonymous memory, output size, giga's time ratio to each, and the floor (read
once + JPEG-encode every tile / cores; no tile file is created for an archive),
measured by crates/pyramid/examples/floor.rs."""
import json
import os
import shutil
import statistics
import subprocess
from pathlib import Path

from common import GIGA, PY, ROOT, measure, panorama, parser

FLOOR = str(ROOT / "target" / "release" / "examples" / "floor")

PYVIPS = """
import sys, pyvips
src, out, w, h = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:5])
im = pyvips.Image.rawload(src, w, h, 4, offset=20).copy(interpretation="srgb")
im.dzsave(out, tile_size=256, overlap=0, Q=85, container="zip")
"""


def size(d):
    return sum(p.stat().st_size for p in Path(d).rglob("*") if p.is_file())


def main():
    ap = parser(__doc__)
    ap.add_argument("--out", help="where the outputs go (default: DIR/archive-runs)")
    a = ap.parse_args()
    d, src = panorama(a)
    w, h = a.width, a.height
    runs_dir = Path(a.out) if a.out else d / "archive-runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    pyv = subprocess.run([PY, "-c", "import pyvips; print('%d.%d' % (pyvips.version(0), pyvips.version(1)))"], capture_output=True, text=True, check=True).stdout.strip()
    tools = {
        "giga --archive pmtiles": lambda out: [GIGA, "tile", str(src), str(out), "--archive", "pmtiles", "--quality", "85", "--no-viewer", "--quiet"],
        "giga folder (DZI 256/0)": lambda out: [GIGA, "tile", str(src), str(out), "--tile-size", "256", "--overlap", "0", "--quality", "85", "--no-viewer", "--quiet"],
        f"pyvips {pyv} dzsave zip": lambda out: [PY, "-c", PYVIPS, str(src), str(out / "pano"), str(w), str(h)],
    }
    runs = {k: [] for k in tools}
    floors = []
    for rep in range(a.reps):
        floors.append(json.loads(subprocess.run([FLOOR, str(src), "256", "85", str(runs_dir / f"floor-{rep}")], capture_output=True, text=True, check=True).stdout))
        for k, (name, cmd) in enumerate(tools.items()):
            out = runs_dir / f"{rep}-{k}"
            out.mkdir(parents=True)
            anon = []
            t, m = measure(cmd(out), anon)
            runs[name].append((t, m, anon[0], size(out)))
            shutil.rmtree(out)
    print(f"\n{w}x{h} RGBA -> 256-px JPEG Q85 tiles in one file  (median of {a.reps}, {os.cpu_count()} cores)")
    print(f"{'tool':<28} {'wall s':>8} {'peak RSS MB':>12} {'anon MB':>8} {'output MB':>10} {'giga archive / tool':>20}")
    g = statistics.median(r[0] for r in runs["giga --archive pmtiles"])
    for name, r in runs.items():
        t = statistics.median(x[0] for x in r)
        print(f"{name:<28} {t:>8.2f} {statistics.median(x[1] for x in r):>12.0f} {statistics.median(x[2] for x in r):>8.0f} "
              f"{r[0][3] / 1e6:>10.1f} {g / t:>20.2f}")
    floor = statistics.median(f["floor_s"] for f in floors)
    print(f"{'floor: read + encode / cores':<28} {floor:>8.2f}")
    print(f"giga archive / floor: {g / floor:.2f}", flush=True)
    shutil.rmtree(runs_dir, ignore_errors=True)
    if not a.keep:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
