"""Benchmark: KRO -> tiled deflate BigTIFF, and a 1000x1000 crop, with giga
beside GDAL (gdal_translate) and libvips (Debian's vips CLI, and pyvips with
the newest libvips from PyPI) on the same generated panorama, in one run.

Tools alternate within each repetition; the figures are the median wall time
and the median peak RSS (wait4's ru_maxrss, which counts the file pages a
tool maps: vips' rawload maps the input). Run it with scripts/bench."""
import os
import shutil
import statistics
import subprocess

from common import GIGA, PY, measure, panorama, parser


def have_pyvips():
    try:
        subprocess.run([PY, "-c", "import pyvips"], check=True, capture_output=True)
        return True
    except subprocess.CalledProcessError:
        return False


PYVIPS_CONVERT = """
import sys, pyvips
src, out, w, h = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
im = pyvips.Image.rawload(src, w, h, 4, offset=20)
im.tiffsave(out, tile=True, tile_width=256, tile_height=256, compression="deflate", bigtiff=True)
"""
PYVIPS_CROP = """
import sys, pyvips
src, out, w, h, x, y = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
pyvips.Image.rawload(src, w, h, 4, offset=20).crop(x, y, 1000, 1000).tiffsave(out, tile=True, compression="deflate")
"""


def main():
    a = parser(__doc__).parse_args()
    d, src = panorama(a)
    w, h = a.width, a.height
    out = d / "out.tif"
    vips_version = subprocess.run(["vips", "--version"], capture_output=True, text=True).stdout.strip()
    gdal_version = subprocess.run(["gdal_translate", "--version"], capture_output=True, text=True).stdout.strip().split(",")[0]

    convert = {
        "giga": [GIGA, "convert", str(src), str(out), "--bigtiff", "--quiet"],
        f"gdal_translate ({gdal_version})": ["gdal_translate", "-q", "-co", "TILED=YES", "-co", "COMPRESS=DEFLATE", "-co", "BIGTIFF=YES", "-co", "NUM_THREADS=ALL_CPUS", str(src), str(out)],
        f"vips CLI ({vips_version})": ["vips", "rawload", str(src), f"{out}[tile,tile-width=256,tile-height=256,compression=deflate,bigtiff]", str(w), str(h), "4", "--offset", "20"],
    }
    x, y = w // 2 - 500, h // 2 - 500
    crop = {
        "giga": [GIGA, "crop", str(src), str(out), "--rect", f"{x},{y},1000,1000", "--quiet"],
        f"gdal_translate ({gdal_version})": ["gdal_translate", "-q", "-srcwin", str(x), str(y), "1000", "1000", "-co", "TILED=YES", "-co", "COMPRESS=DEFLATE", str(src), str(out)],
    }
    if have_pyvips():
        ver = subprocess.run([PY, "-c", "import pyvips; print('%d.%d' % (pyvips.version(0), pyvips.version(1)))"], capture_output=True, text=True).stdout.strip()
        convert[f"pyvips (libvips {ver})"] = [PY, "-c", PYVIPS_CONVERT, str(src), str(out), str(w), str(h)]
        crop[f"pyvips (libvips {ver})"] = [PY, "-c", PYVIPS_CROP, str(src), str(out), str(w), str(h), str(x), str(y)]

    for title, tools in [(f"KRO {w}x{h} RGBA -> tiled deflate BigTIFF", convert), ("crop 1000x1000 from the middle -> TIFF", crop)]:
        runs = {k: [] for k in tools}
        for _ in range(a.reps):
            for name, cmd in tools.items():
                t, m = measure(cmd)
                runs[name].append((t, m, out.stat().st_size))
                out.unlink(missing_ok=True)
        print(f"\n{title}  (median of {a.reps}, {os.cpu_count()} cores)")
        print(f"{'tool':<34} {'wall s':>8} {'peak RSS MB':>12} {'output MB':>10} {'MP/s':>8} {'giga time ratio':>16}")
        giga_t = statistics.median(t for t, _, _ in runs["giga"])
        for name, r in runs.items():
            t = statistics.median(v[0] for v in r)
            m = statistics.median(v[1] for v in r)
            size = statistics.median(v[2] for v in r) / 1e6
            mps = w * h / 1e6 / t if "crop" not in title else 1.0 / t
            ratio = f"{giga_t / t:.2f}" if name != "giga" else "-"
            print(f"{name:<34} {t:>8.3f} {m:>12.0f} {size:>10.1f} {mps:>8.1f} {ratio:>16}")
        print("(ratio = giga's time / the tool's time: below 1 means giga is faster; MP/s for the crop is crops per second;", flush=True)
        print(" peak RSS includes mapped file pages: pyvips' rawload maps the whole input)", flush=True)
    if not a.keep:
        src.unlink()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
