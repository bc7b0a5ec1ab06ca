"""Gigapixel render check: a 4-gigapixel equirectangular canvas (about 89,000 x 45,000)
from 374 rectilinear 24-MP JPEG frames (22 columns x 17 rows of 10-degree lenses, a third
overlapping), rendered by `giga render` into a KRO (16 GB) or with --tiles into a DZI
pyramid. The frames' pixels are 12 distinct images cut from the sample photo, each used by
many frames: decoding and remapping cost what real frames cost. Prints wall time, peak RSS,
peak anonymous memory and canvas megapixels per second. Needs ~20 GB free in --dir.
No peer is run: Hugin's blenders hold the whole canvas (14-43 bytes per pixel, so 56-170 GB
here; docs/spec/render-background.md)."""
import random
import shutil
import sys
from pathlib import Path

from PIL import Image

from common import GIGA, ROOT, measure, parser

PHOTO = ROOT / "samples" / "aitzgorri.jpg"
FW, FH, HFOV, COLS, ROWS = 6000, 4000, 10.0, 22, 17


def make(d):
    d.mkdir(parents=True, exist_ok=True)
    photo = Image.open(PHOTO).convert("RGB")
    rng = random.Random(1)
    for k in range(12):
        if not (d / f"f{k}.jpg").exists():
            w, h = photo.size
            cw, ch = int(w * 0.6), int(h * 0.6)
            x, y = rng.randrange(0, w - cw), rng.randrange(0, h - ch)
            photo.crop((x, y, x + cw, y + ch)).resize((FW, FH), Image.BICUBIC).save(d / f"f{k}.jpg", quality=90)
    import math

    focal = FW / (2 * math.tan(math.radians(HFOV) / 2))
    step_x, step_y = HFOV * 2 / 3, HFOV * FH / FW * 2 / 3
    span_x, span_y = step_x * COLS + HFOV / 3, step_y * ROWS + HFOV * FH / FW / 3
    w = int(math.radians(span_x) * focal)
    h = int(math.radians(span_y) * focal)
    lines = [f"p f2 w{w} h{h} v{span_x:.4f} E0 R0", "m i0"]
    for j in range(ROWS):
        for i in range(COLS):
            yaw = -span_x / 2 + HFOV / 2 + i * step_x
            pitch = span_y / 2 - HFOV * FH / FW / 2 - j * step_y
            lines.append(
                f'i w{FW} h{FH} f0 v{HFOV} y{yaw:.4f} p{pitch:.4f} r{rng.uniform(-0.5, 0.5):.3f} '
                f'Eev{rng.uniform(0, 0.3):.3f} Rt1 Vm5 Va1 Vb-0.1 n"f{(j * COLS + i) % 12}.jpg"'
            )
    (d / "big.pto").write_text("\n".join(lines) + "\n")
    return d / "big.pto", w, h


def main():
    ap = parser(__doc__)
    ap.add_argument("--tiles", action="store_true", help="render into a DZI pyramid instead of a KRO")
    ap.add_argument("--seams", choices=["content", "voronoi"], default="content", help="giga render --seams (content: the frames' 12 images disagree in every overlap, the seam pre-pass's worst case)")
    a = ap.parse_args()
    d = Path(a.dir) / "render-big"
    pto, w, h = make(d)
    print(f"canvas {w}x{h} ({w * h / 1e9:.2f} GP), {COLS * ROWS} frames of {FW}x{FH}", flush=True)
    out = d / ("site" if a.tiles else "big.kro")
    cmd = [GIGA, "render", str(pto), *(["--tiles", str(out)] if a.tiles else [str(out)]), "--quiet", "--seams", a.seams]
    anon = []
    t, rss = measure(cmd, anon=anon)
    print(f"giga render --seams {a.seams}: {t:.1f} s, peak RSS {rss:.0f} MB, peak anonymous {anon[0]:.0f} MB, {w * h / 1e6 / t:.1f} MP/s")
    if not a.tiles:
        with open(out, "rb") as f:
            f.seek(20 + (h // 2) * w * 4)
            row = f.read(w * 4)
        covered = sum(1 for i in range(3, len(row), 4) if row[i] == 255) / w
        print(f"middle row covered: {covered:.1%}")
    if not a.keep:
        shutil.rmtree(d)


if __name__ == "__main__":
    sys.exit(main())
