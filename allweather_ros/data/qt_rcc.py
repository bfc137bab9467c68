"""Read one file out of a Qt resource file (.rcc), as GCompris ships its pictures.

The binary layout is Qt's (`QResourceRoot`): a header, a tree of 14-byte nodes (22 from format
version 2 on), a names table (UTF-16 names after a hash) and the data, each blob prefixed with its
length and, when compressed, with zlib (flag 1) or zstd (flag 4).

usage: python -m allweather_ros.data.qt_rcc RCC MEMBER OUT   (writes MEMBER of RCC to OUT)
"""
from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

_COMPRESSED, _DIRECTORY, _ZSTD = 1, 2, 4


def rcc_members(data: bytes) -> dict[str, tuple[int, int]]:
    """Every file in the resource: path -> (its node's flags, the offset of its blob)."""
    if data[:4] != b"qres":
        raise ValueError("not a Qt resource file (no 'qres' magic)")
    version, tree, blobs, names = struct.unpack(">IIII", data[4:20])
    node_size = 22 if version >= 2 else 14

    def name_at(offset: int) -> str:
        (length,) = struct.unpack(">H", data[names + offset : names + offset + 2])
        start = names + offset + 6  # length, then a 4-byte hash
        return data[start : start + 2 * length].decode("utf-16-be")

    found: dict[str, tuple[int, int]] = {}
    stack = [(0, "")]
    while stack:
        index, prefix = stack.pop()
        node = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", data[node : node + 6])
        path = f"{prefix}{name_at(name_offset)}" if index else ""
        if flags & _DIRECTORY:
            count, first = struct.unpack(">II", data[node + 6 : node + 14])
            stack += [(child, f"{path}/" if index else "") for child in range(first, first + count)]
        else:
            (offset,) = struct.unpack(">I", data[node + 10 : node + 14])
            found[path] = (flags, blobs + offset)
    return found


def rcc_read(data: bytes, member: str) -> bytes:
    """The bytes of `member` (a path inside the resource, without a leading slash)."""
    members = rcc_members(data)
    if member not in members:
        raise KeyError(f"{member} is not in this resource file")
    flags, at = members[member]
    (size,) = struct.unpack(">I", data[at : at + 4])
    blob = data[at + 4 : at + 4 + size]
    if flags & _COMPRESSED:
        return zlib.decompress(blob[4:])  # zlib data after Qt's 4-byte uncompressed length
    if flags & _ZSTD:
        import zstandard

        return zstandard.ZstdDecompressor().decompress(blob)
    return blob


if __name__ == "__main__":
    rcc, member, out = sys.argv[1:4]
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(rcc_read(Path(rcc).read_bytes(), member))
