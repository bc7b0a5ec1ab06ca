"""ICC v2 display profiles built from published primaries, for the tests and the colour
benchmark: no profile files are committed or downloaded."""
import struct

D50 = (0.9642, 1.0, 0.8249)
# Colorants adapted to D50 (Bradford), as in the published profiles, and the tone curve's gamma.
ADOBE = ((0.6097, 0.3111, 0.0195), (0.2053, 0.6257, 0.0609), (0.1492, 0.0632, 0.7446), 563 / 256)
PROPHOTO = ((0.7977, 0.2880, 0.0), (0.1352, 0.7119, 0.0), (0.0313, 0.0001, 0.8249), 1.8)


def s15(v):
    return struct.pack(">i", round(v * 65536))


def icc_profile(name, colorants=None, gamma=2.2, space=b"RGB "):
    """An ICC v2 display profile: matrix and tone curves (RGB) or one tone curve (GRAY)."""
    desc = name.encode() + b"\0"
    tags = [(b"desc", b"desc\0\0\0\0" + struct.pack(">I", len(desc)) + desc + b"\0" * 12 + b"\0" * 67)]
    tags.append((b"wtpt", b"XYZ \0\0\0\0" + b"".join(map(s15, D50))))
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256))
    if space == b"RGB ":
        for sig, xyz in zip((b"rXYZ", b"gXYZ", b"bXYZ"), colorants):
            tags.append((sig, b"XYZ \0\0\0\0" + b"".join(map(s15, xyz))))
        tags += [(b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    else:
        tags.append((b"kTRC", curve))
    tags.append((b"cprt", b"text\0\0\0\0no copyright, test profile\0"))
    table, data = b"", b""
    offset = 128 + 4 + 12 * len(tags)
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = struct.pack(">I4sI4s4s4s", size, b"\0\0\0\0", 0x02100000, b"mntr", space, b"XYZ ")
    header += b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0) + b"".join(map(s15, D50))
    header += b"\0" * (128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + data


ADOBE_ICC = icc_profile("Adobe RGB (1998) test", ADOBE[:3], ADOBE[3])
PROPHOTO_ICC = icc_profile("ProPhoto RGB test", PROPHOTO[:3], PROPHOTO[3])
GRAY_ICC = icc_profile("Gray gamma 2.2 test", gamma=2.2, space=b"GRAY")
