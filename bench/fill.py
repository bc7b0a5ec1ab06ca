"""Benchmark: giga fill and giga autocrop on the generated 400-megapixel
RGBA panorama (wavy transparent border): median wall time, peak RSS and
megapixels per second. There is no streaming peer for either (libvips and
GDAL hold or re-read regions; GDAL's FillNodata is an inverse-distance fill
in memory), so the figures stand against the issue's targets: fill >= 40
MP/s, autocrop at disk read speed, peak RSS < 500 MB."""
import os
import shutil
import statistics
import subprocess
import time

from common import GIGA, measure, panorama, parser


def main():
    a = parser(__doc__).parse_args()
    d, src = panorama(a)
    w, h = a.width, a.height
    t0 = time.perf_counter()
    subprocess.run(["cat", str(src)], stdout=subprocess.DEVNULL, check=True)
    read = time.perf_counter() - t0
    out = d / "filled.kro"
    jobs = {
        "giga fill (KRO -> KRO)": [GIGA, "fill", str(src), str(out), "--quiet"],
        "giga autocrop --print": [GIGA, "autocrop", str(src), "--print"],
    }
    runs = {k: [] for k in jobs}
    for _ in range(a.reps):
        for name, cmd in jobs.items():
            runs[name].append(measure(cmd))
            out.unlink(missing_ok=True)
    mp = w * h / 1e6
    print(f"\n{w}x{h} RGBA ({mp:.0f} MP, {w * h * 4 / 1e9:.1f} GB), median of {a.reps}, {os.cpu_count()} cores")
    print(f"{'job':<28} {'wall s':>8} {'peak RSS MB':>12} {'MP/s':>8}")
    for name, r in runs.items():
        t = statistics.median(x[0] for x in r)
        m = statistics.median(x[1] for x in r)
        print(f"{name:<28} {t:>8.2f} {m:>12.0f} {mp / t:>8.1f}")
    print(f"{'reading the file (cat, warm)':<28} {read:>8.2f} {'':>12} {mp / read:>8.1f}")
    if not a.keep:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
