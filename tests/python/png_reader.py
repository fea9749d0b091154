"""A minimal PNG reader for the tests: 8-bit RGB / RGBA / grey, no interlacing.

Written against the PNG specification (chunk layout, CRC-32 over type + data, zlib stream of
filtered scanlines, filter types 0-4) so the tests check engram's PNG files without any imaging
package: Debian's python3-pil is not installed on the build machines.
"""
import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 6: 4}  # colour type -> samples per pixel


def chunks(data):
    """(type, payload) of every chunk; asserts the signature, lengths and every CRC."""
    assert data[:8] == SIGNATURE, "not a PNG signature"
    pos, out = 8, []
    while pos < len(data):
        assert pos + 12 <= len(data), f"truncated chunk header at byte {pos}"
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        payload = data[pos + 8:pos + 8 + length]
        assert len(payload) == length, f"chunk {kind!r} truncated"
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF, f"bad CRC in chunk {kind!r}"
        out.append((kind.decode("ascii"), payload))
        pos += 12 + length
    assert out and out[0][0] == "IHDR" and out[-1][0] == "IEND", [k for k, _ in out]
    return out


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode(data):
    """-> (width, height, channels, rows): rows[y] is a bytes object of width * channels."""
    parts = chunks(data)
    width, height, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", parts[0][1])
    assert depth == 8 and ctype in CHANNELS and comp == 0 and filt == 0 and interlace == 0
    bpp = CHANNELS[ctype]
    raw = zlib.decompress(b"".join(p for k, p in parts if k == "IDAT"))
    stride = width * bpp
    assert len(raw) == height * (stride + 1), "decompressed size does not match IHDR"
    rows, prev = [], bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                line[i] = (line[i] + _paeth(a, b, c)) & 0xFF
            else:
                assert ftype == 0, f"row {y}: unknown filter type {ftype}"
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def pixel(rows, bpp, x, y):
    return tuple(rows[y][x * bpp:(x + 1) * bpp])


def count(rows, bpp, rgb):
    """How many pixels have exactly this colour."""
    target = bytes(rgb)
    return sum(1 for row in rows for x in range(0, len(row), bpp) if row[x:x + bpp] == target)
