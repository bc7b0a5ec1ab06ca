"""Reference geometry and pixels for tile pyramids, written from
OpenSeadragon's tile sources and the formulas in docs/spec/tiles.md,
independently of giga's Rust code."""
import math

import numpy as np


def ceil_log2(n):
    return 0 if n <= 1 else math.ceil(math.log2(n))


def halve(w, h, floor=False):
    if floor:
        return max(w // 2, 1), max(h // 2, 1)
    return -(-w // 2), -(-h // 2)


def span(i, tile, overlap, extent):
    start = i * tile - (overlap if i > 0 else 0)
    end = min((i + 1) * tile + overlap, extent)
    return start, end


def levels(layout, W, H, tile=256):
    """[(number, Lw, Lh)] from full resolution down, as OpenSeadragon numbers them."""
    if layout in ("dzi", "custom"):
        M = ceil_log2(max(W, H))
        return [(M - k, -(-W // 2**k), -(-H // 2**k)) for k in range(M + 1)]
    if layout in ("iiif3", "iiif2"):
        out, k = [], 0
        while True:
            lw, lh = -(-W // 2**k), -(-H // 2**k)
            out.append((lw, lh))
            if lw <= tile and lh <= tile:
                break
            k += 1
        n = len(out) - 1
        return [(n - i, lw, lh) for i, (lw, lh) in enumerate(out)]
    if layout == "zoomify":
        sizes = [(W, H)]
        w, h = W, H
        while w > tile or h > tile:
            w, h = w // 2, h // 2
            sizes.append((w, h))
        n = len(sizes) - 1
        return [(n - i, lw, lh) for i, (lw, lh) in enumerate(sizes)]
    if layout == "xyz":
        M = ceil_log2(max(W, H))
        return [(z, -(-W // 2 ** (M - 8 - z)), -(-H // 2 ** (M - 8 - z))) for z in range(M - 8, -1, -1)]
    if layout == "tms":
        bw, bh = -(-W // 256) * 256, -(-H // 256) * 256
        max_level = math.ceil(math.log2(max(bw, bh) / 256)) - 1
        return [(L, -(-W // 2 ** (max_level - L)), -(-H // 2 ** (max_level - L))) for L in range(max_level, -1, -1)]
    raise ValueError(layout)


def tile_files(layout, name, W, H, tile, overlap, ext):
    """{relative path: (number, col, row, x0, y0, w, h, level_w, level_h)} of every tile."""
    files = {}
    lv = levels(layout, W, H, tile)
    zoomify_offsets = {}
    if layout == "zoomify":
        acc = 0
        for number, lw, lh in sorted(lv):
            zoomify_offsets[number] = acc
            acc += -(-lw // tile) * -(-lh // tile)
    for index, (number, lw, lh) in enumerate(lv):
        cols, rows = -(-lw // tile), -(-lh // tile)
        for r in range(rows):
            for c in range(cols):
                x0, x1 = span(c, tile, overlap, lw)
                y0, y1 = span(r, tile, overlap, lh)
                if layout in ("dzi",):
                    p = f"{name}_files/{number}/{c}_{r}.{ext}"
                elif layout == "custom":
                    p = f"{name}/{number}/{c}_{r}.{ext}"
                elif layout == "xyz":
                    p = f"{name}/{number}/{c}/{r}.{ext}"
                elif layout == "tms":
                    p = f"{name}/{number}/{c}/{rows - 1 - r}.{ext}"
                elif layout == "zoomify":
                    n = zoomify_offsets[number] + r * cols + c
                    p = f"{name}/TileGroup{n // 256}/{number}-{c}-{r}.{ext}"
                else:
                    p = iiif_path(layout, name, W, H, tile, index, lw, lh, c, r, ext)
                # IIIF 2 names tiles by width alone: the largest level keeps a shared name.
                files.setdefault(p, (number, c, r, x0, y0, x1 - x0, y1 - y0, lw, lh))
    return files


def iiif_path(layout, name, W, H, tile, k, lw, lh, x, y, ext):
    """OpenSeadragon's IIIFTileSource.getTileUrl for a level `k` halvings below full size."""
    v3 = layout == "iiif3"
    if lw < tile and lh < tile:
        if not v3 and lw == W:
            size = "full"
        elif v3 and lw == W and lh == H:
            size = "max"
        elif v3:
            size = f"{lw},{lh}"
        else:
            size = f"{lw},"
        return f"{name}/full/{size}/0/default.{ext}"
    s = tile * 2**k
    tx, ty = x * s, y * s
    tw, th = min(s, W - tx), min(s, H - ty)
    region = "full" if (x == 0 and y == 0 and tw == W and th == H) else f"{tx},{ty},{tw},{th}"
    sw, sh = min(tile, lw - x * tile), min(tile, lh - y * tile)
    if not v3 and sw == W:
        size = "full"
    elif v3 and sw == W and sh == H:
        size = "max"
    elif not v3:
        size = f"{sw},"
    else:
        size = f"{sw},{sh}"
    return f"{name}/{region}/{size}/0/default.{ext}"


def reduce2x2(a, floor=False):
    """Alpha-weighted 2x2 box reduction of an (h, w, c) uint8 array."""
    h, w, c = a.shape
    if floor:
        a = a[: max(h // 2 * 2, 1), : max(w // 2 * 2, 1)]
        if a.shape[0] == 1:
            a = np.concatenate([a, a], 0)
        if a.shape[1] == 1:
            a = np.concatenate([a, a], 1)
    else:
        if h % 2:
            a = np.concatenate([a, a[-1:]], 0)
        if w % 2:
            a = np.concatenate([a, a[:, -1:]], 1)
    h2, w2 = a.shape[0] // 2, a.shape[1] // 2
    b = a.reshape(h2, 2, w2, 2, c).astype(np.uint32)
    if c in (2, 4):
        wt = b[..., -1:]
        total = wt.sum(axis=(1, 3))
        col = (b[..., :-1] * wt).sum(axis=(1, 3))
        with np.errstate(divide="ignore", invalid="ignore"):
            colour = np.where(total > 0, (col + total // 2) // np.maximum(total, 1), 0)
        alpha = (total + 2) // 4
        return np.concatenate([colour, alpha], -1).astype(np.uint8)
    return ((b.sum(axis=(1, 3)) + 2) // 4).astype(np.uint8)
