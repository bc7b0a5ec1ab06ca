"""Benchmark: `giga tile` beside libvips' dzsave on the same generated
400-megapixel RGBA KRO, in one run, tools alternating: DZI 254/1 and 256/0,
JPEG quality 85, alpha flattened onto white (the Debian vips CLI can't
flatten on the fly and gets black; see docs/benchmarks.md). Prints median
wall time, peak RSS, tiles per second and giga's time ratio to each peer,
and the floor (read once + JPEG-encode every tile / cores, + creating the
tile files) measured by crates/pyramid/examples/floor.rs."""
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
src, out, w, h, t, o = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
im = pyvips.Image.rawload(src, w, h, 4, offset=20).copy(interpretation="srgb")
im.dzsave(out, tile_size=t, overlap=o, Q=85)
"""


def count_tiles(d):
    return sum(1 for p in Path(d).rglob("*") if p.suffix in (".jpg", ".jpeg"))


def main():
    ap = parser(__doc__)
    ap.add_argument("--out", help="where the tiles go (default: DIR/tile-runs); a tmpfs such as "
                    "/dev/shm/giga-bench takes the file system's inode allocation out of the comparison")
    a = ap.parse_args()
    d, src = panorama(a)
    w, h = a.width, a.height
    runs_dir = Path(a.out) if a.out else d / "tile-runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    vips_v = subprocess.run(["vips", "--version"], capture_output=True, text=True).stdout.strip()
    try:
        pyv = subprocess.run([PY, "-c", "import pyvips; print('%d.%d' % (pyvips.version(0), pyvips.version(1)))"], capture_output=True, text=True, check=True).stdout.strip()
    except subprocess.CalledProcessError:
        pyv = None

    for tile, overlap in [(254, 1), (256, 0)]:
        tools = {
            "giga": lambda out: [GIGA, "tile", str(src), str(out), "--tile-size", str(tile), "--overlap", str(overlap), "--quality", "85", "--no-viewer", "--quiet"],
            f"vips CLI ({vips_v})": lambda out: ["vips", "rawload", str(src), f"{out}/pano.dz[container=fs,tile-size={tile},overlap={overlap},suffix=.jpg[Q=85]]", str(w), str(h), "4", "--offset", "20", "--interpretation", "srgb"],
        }
        if pyv:
            tools[f"pyvips (libvips {pyv})"] = lambda out: [PY, "-c", PYVIPS, str(src), str(out / "pano"), str(w), str(h), str(tile), str(overlap)]
        runs = {k: [] for k in tools}
        floors = []
        for rep in range(a.reps):
            # The floor once per round too: file creation swings with the file system's state.
            floors.append(json.loads(subprocess.run([FLOOR, str(src), str(tile), "85", str(runs_dir / f"floor-{tile}-{rep}")], capture_output=True, text=True, check=True).stdout))
            for k, (name, cmd) in enumerate(tools.items()):
                # A fresh folder each run, all deleted at the end: ext4 slows inode allocation
                # down right after mass deletions, which would charge one tool for another's files.
                out = runs_dir / f"{tile}-{overlap}-{rep}-{k}"
                out.mkdir(parents=True)
                anon = []
                t, m = measure(cmd(out), anon)
                runs[name].append((t, m, count_tiles(out), anon[0]))
        print(f"\nDZI {tile}/{overlap}, JPEG Q85, {w}x{h} RGBA  (median of {a.reps}, {os.cpu_count()} cores)")
        print(f"{'tool':<30} {'wall s':>8} {'peak RSS MB':>12} {'anon MB':>8} {'tiles':>7} {'tiles/s':>8} {'giga time / tool':>17}")
        g = statistics.median(r[0] for r in runs["giga"])
        for name, r in runs.items():
            t = statistics.median(x[0] for x in r)
            m = statistics.median(x[1] for x in r)
            n = r[0][2]
            an = statistics.median(x[3] for x in r)
            print(f"{name:<30} {t:>8.2f} {m:>12.0f} {an:>8.0f} {n:>7} {n / t:>8.0f} {('-' if name == 'giga' else f'{g / t:.2f}'):>17}")
        floor = {k: statistics.median(f[k] for f in floors) for k in ("floor_s", "read_s", "encode_all_s", "encode_mp_per_s", "floor_with_files_s", "create_files_s", "tiles")}
        print(f"{'floor: read + encode / cores':<30} {floor['floor_s']:>8.2f}   (read {floor['read_s']:.2f} s, encode {floor['encode_all_s']:.2f} s at {floor['encode_mp_per_s']:.0f} MP/s/core)")
        spread = sorted(f["create_files_s"] for f in floors)
        print(f"{'floor + creating the files':<30} {floor['floor_with_files_s']:>8.2f}   (creating {floor['tiles']:.0f} files: {floor['create_files_s']:.2f} s, {spread[0]:.2f}-{spread[-1]:.2f} s over the rounds)")
        if spread[-1] > 3 * spread[0] or spread[0] > 0.5:
            print("  (file creation is slow or swinging: on ext4 without a journal, inodes freed in the last ~5 minutes slow allocation down; see docs/benchmarks.md)")
        print(f"giga / floor: {g / floor['floor_s']:.2f}, giga / floor with files: {g / floor['floor_with_files_s']:.2f}", flush=True)
    print("(peak RSS includes mapped file pages: pyvips' rawload maps the whole input; anon is RssAnon sampled every 10 ms)")
    shutil.rmtree(runs_dir, ignore_errors=True)
    if not a.keep:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
