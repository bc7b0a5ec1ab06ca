"""Benchmark: `giga render` beside Hugin's pipeline on the same synthetic project
(tests/render_synth.py: six rectilinear frames with distortion, exposure and
vignetting, taken from a real photo). Hugin renders in two steps: `nona` remaps
each frame to a layer (TIFF_m, cropped to the frame), then `verdandi` (Hugin's built-in blender,
`--seam=hard`, the closest to giga's nearest-centre seams) merges them. giga does
both in one streamed pass. Alternating the tools, median wall time and peak RSS; also
`giga preview` (2,000 px wide) against giga's full render."""
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from common import GIGA, ROOT, measure, parser

PHOTO = ROOT / "samples" / "aitzgorri.jpg"


def main():
    ap = parser(__doc__)
    ap.add_argument("--scale", type=float, default=2.0, help="frames of 1600*S x 1200*S px; canvas grows with S^2")
    ap.add_argument("--grid", action="store_true", help="195 JPEG frames of 1000x750 (15 x 13, 12-degree lenses) on a 66 MP canvas instead")
    a = ap.parse_args()
    d = Path(a.dir) / "render"
    s = a.scale
    # In a child process: a forked child's peak RSS starts at its parent's, so this process stays small.
    if a.grid:
        print("generating 195 frames of 1000x750 ...", flush=True)
        code = f"import render_synth as r; r.make({str(PHOTO)!r}, {str(d)!r}, frame_w=1000, frame_h=750, hfov=12.0, canvas_scale=None, frames=r.grid(15, 13, 112, 72), ext='jpg')"
    else:
        print(f"generating six {int(1600 * s)}x{int(1200 * s)} frames ...", flush=True)
        code = f"import render_synth; render_synth.make({str(PHOTO)!r}, {str(d)!r}, frame_w={int(1600 * s)}, frame_h={int(1200 * s)}, canvas_scale={s})"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT / "tests")
    pto = d / "project.pto"
    header = pto.read_text().splitlines()[1]
    w, h = (int(t[1:]) for t in header.split()[2:4])
    nframes = pto.read_text().count("\ni ")
    # nona writes each layer cropped to the frame's footprint (as Hugin's own makefiles do)
    hugin_pto = d / "hugin.pto"
    hugin_pto.write_text(pto.read_text().replace('n"TIFF_m c:NONE"', 'n"TIFF_m c:NONE r:CROP"'))
    print(f"canvas {w}x{h} ({w * h / 1e6:.0f} MP), {nframes} frames, 8-bit", flush=True)
    rows = {"giga render": [], "giga render --blend feather": [], "giga preview (2000 px)": [], "nona (remap)": [], "verdandi --seam=hard (blend)": [], "nona + verdandi": []}
    for rep in range(a.reps):
        out = d / "giga.tif"
        t, m = measure([GIGA, "render", str(pto), str(out), "--quiet"])
        rows["giga render"].append((t, m))
        out.unlink()
        rows["giga render --blend feather"].append(measure([GIGA, "render", str(pto), str(out), "--blend", "feather", "--quiet"]))
        out.unlink()
        rows["giga preview (2000 px)"].append(measure([GIGA, "preview", str(pto), str(d / "preview.png"), "--quiet"]))
        t1, m1 = measure(["nona", "-o", str(d / "layer_"), str(hugin_pto)])
        rows["nona (remap)"].append((t1, m1))
        layers = sorted(str(p) for p in d.glob("layer_*.tif"))
        t2, m2 = measure(["verdandi", "--seam=hard", "-o", str(d / "hugin.tif"), *layers])
        rows["verdandi --seam=hard (blend)"].append((t2, m2))
        rows["nona + verdandi"].append((t1 + t2, max(m1, m2)))
        for p in layers + [str(d / "hugin.tif")]:
            Path(p).unlink(missing_ok=True)
        print(f"rep {rep + 1}/{a.reps} done", flush=True)
    ref = statistics.median(t for t, _ in rows["nona + verdandi"])
    print(f"\n{w}x{h} canvas from {nframes} frames, medians of {a.reps}")
    print(f"{'tool':32} {'wall s':>8} {'peak RSS MB':>12} {'MP/s':>7} {'giga/peer':>10}")
    mine = statistics.median(t for t, _ in rows["giga render"])
    for name, v in rows.items():
        t = statistics.median(x for x, _ in v)
        m = statistics.median(y for _, y in v)
        # giga's rows: against nona + verdandi; the peers' rows: giga's default render against them.
        ratio = f"{t / ref:.2f}" if name.startswith("giga") else f"{mine / t:.2f}"
        print(f"{name:32} {t:8.2f} {m:12.0f} {w * h / 1e6 / t:7.1f} {ratio:>10}")
    quick = statistics.median(x for x, _ in rows["giga preview (2000 px)"])
    print(f"giga preview / giga render: {quick / mine:.3f} (the preview aims at 0.1 or less)")
    if not a.keep:
        shutil.rmtree(d)


if __name__ == "__main__":
    main()
