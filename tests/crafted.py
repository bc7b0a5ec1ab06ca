"""Small crafted files that claim far more than they hold (issue 18): each must be
refused with one line, never abort giga or take memory beyond its budget."""
import struct
import zlib


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width, height, interlaced=False, idat=b"", extra=b""):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 1 if interlaced else 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", idat or zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b"")


def png_big_iccp(mb=300):
    """A valid 8x8 PNG whose iCCP chunk inflates to `mb` MB."""
    comp = zlib.compressobj(9)
    data = comp.compress(b"\0" * (mb << 20)) + comp.flush()
    raw = b"".join(b"\0" + b"\x80" * 32 for _ in range(8))
    return png(8, 8, idat=zlib.compress(raw), extra=png_chunk(b"iCCP", b"icc\0\0" + data))


def tiff(width, height, entries_extra=(), compression=1, rows_per_strip=None, strip_bytes=64, data=b"\0" * 64):
    """A little-endian classic TIFF, 8-bit RGB, one strip; `entries_extra` are (tag, type, count, value)."""
    entries = [
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, compression),
        (262, 3, 1, 1), (273, 4, 1, 0), (277, 3, 1, 1), (278, 4, 1, rows_per_strip or height), (279, 4, 1, strip_bytes),
    ] + list(entries_extra)
    entries.sort()
    ifd_at = 8
    data_at = ifd_at + 2 + 12 * len(entries) + 4
    out = bytearray(b"II*\0" + struct.pack("<I", ifd_at) + struct.pack("<H", len(entries)))
    for tag, typ, count, value in entries:
        if tag == 273:
            value = data_at
        if typ == 3 and count == 1:
            out += struct.pack("<HHIHH", tag, typ, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, typ, count, value)
    out += b"\0\0\0\0" + data
    return bytes(out)


def tiff_huge_icc():
    """A small TIFF whose ICC tag (34675) claims 2^30 - 1 bytes."""
    return tiff(8, 8, [(34675, 7, (1 << 30) - 1, 200)], strip_bytes=192, data=b"\x80" * 192 + b"\0" * 9000)


def tiff_one_deflate_strip():
    """100,000 x 100,000 RGB8 in one deflate strip (30 GB decoded) in a few hundred bytes."""
    return tiff(100_000, 100_000, compression=8, data=zlib.compress(b"\0" * 4096))


def tiff_wide():
    return tiff(0xFFFFFFFF, 1, data=b"\0" * 64)


def pam_wide():
    return b"P7\nWIDTH 4294967295\nHEIGHT 1\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n" + b"\0" * 64


def ppm_wide():
    return b"P6\n4294967295 1\n255\n" + b"\0" * 64


def jpeg_progressive(width, height):
    """A small progressive JPEG whose SOF2 header is patched to `width` x `height`."""
    import io
    from PIL import Image
    b = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 130, 140)).save(b, "JPEG", progressive=True, quality=50)
    return patch_jpeg_size(b.getvalue(), width, height)


def patch_jpeg_size(data, width, height):
    data = bytearray(data)
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5:i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length
    raise ValueError("no SOF")


def all_cases():
    return {
        "huge-icc.tif": tiff_huge_icc(),
        "one-strip.tif": tiff_one_deflate_strip(),
        "wide.tif": tiff_wide(),
        "interlaced.png": png(100_000, 100_000, interlaced=True),
        "wide.png": png((1 << 31) - 1, 1),
        "big-iccp.png": png_big_iccp(),
        "wide.pam": pam_wide(),
        "wide.ppm": ppm_wide(),
        "progressive.jpg": jpeg_progressive(30_000, 30_000),
        "progressive-max.jpg": jpeg_progressive(65_500, 65_500),
    }


if __name__ == "__main__":
    import sys
    from pathlib import Path
    d = Path(sys.argv[1])
    d.mkdir(parents=True, exist_ok=True)
    for name, data in all_cases().items():
        (d / name).write_bytes(data)
        print(name, len(data))
