"""A sparse 62-gigapixel archive: the 400 MP benchmark panorama at the centre of a
350,000 x 177,000 RGBA KRO (248 GB apparent, holes elsewhere: alpha 0), tiled with
`giga tile --archive pmtiles` (blank tiles kept, so 1.3 million tiles are addressed,
deduplicated to a few distinct ones). Prints the time, peak RSS, the archive's size,
its root and leaf directory sizes, and the ranges a viewer fetches before its first
tile (simulated on the file with the viewer's own rule: 16 KB, then one leaf)."""
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from common import GIGA, measure, panorama, parser

W, H = 350_000, 177_000


def main():
    ap = parser(__doc__)
    a = ap.parse_args()
    d, src = panorama(a)
    big = d / "sparse62.kro"
    with open(big, "wb") as f:
        f.write(b"KRO\x01" + np.array([W, H, 8, 4], ">u4").tobytes())
        f.truncate(20 + W * H * 4)
        x0, y0 = (W - a.width) // 2, (H - a.height) // 2
        with open(src, "rb") as s:
            s.seek(20)
            for y in range(a.height):
                f.seek(20 + ((y0 + y) * W + x0) * 4)
                f.write(s.read(a.width * 4))
    out = d / "sparse62-site"
    shutil.rmtree(out, ignore_errors=True)
    t, m = measure([GIGA, "tile", str(big), str(out), "--archive", "pmtiles", "--quiet", "--name", "pano"])
    arc = out / "pano.pmtiles"
    from pmtiles.reader import MmapSource, Reader
    with open(arc, "rb") as f:
        h = Reader(MmapSource(f)).header()
    print(f"\n{W}x{H} sparse KRO -> PMTiles (JPEG Q85, blank tiles kept): {t:.1f} s, peak RSS {m:.0f} MB")
    print(f"archive {arc.stat().st_size / 1e6:.1f} MB; tiles addressed {h['addressed_tiles_count']}, "
          f"entries {h['tile_entries_count']}, stored {h['tile_contents_count']}; zooms {h['min_zoom']}-{h['max_zoom']}")
    print(f"root directory {h['root_length']} bytes (header + root within the first 16,384), "
          f"leaf directories {h['leaf_directory_length']} bytes")
    first = 16384 + (h["leaf_directory_length"] and min(h["leaf_directory_length"], 65536 - 16384))
    print(f"before the first tile a viewer fetches the first 16 KB{' and one leaf' if h['leaf_directory_length'] else ''}: at most {first} bytes")
    big.unlink()
    shutil.rmtree(out, ignore_errors=True)
    if not a.keep:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
