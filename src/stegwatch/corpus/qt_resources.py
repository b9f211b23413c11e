"""Reading files out of Qt resource bundles (``.rcc``), for covers that ship inside one.

GCompris ships its photographs as WebP files inside ``.rcc`` bundles. The
format (Qt's ``rcc`` tool, versions 1-3): a ``qres`` header with the offsets
of a tree of nodes, a data area and a names area, all big-endian. A node is a
name offset and flags, then either a child count and first child (a folder)
or a locale and a data offset (a file); from version 2 each node also carries
a 64-bit modification time. A file's data is a 32-bit size and the bytes; a
zlib-compressed file (flag 1) starts with its 32-bit uncompressed size.
Reference: Qt's ``src/corelib/io/qresource.cpp``.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

_DIRECTORY = 0x02
_ZLIB = 0x01
_ZSTD = 0x04


class ResourceError(Exception):
    """A bundle that cannot be read, or a resource it does not hold."""


def read_qt_resource(bundle: str | Path | bytes, name: str) -> bytes:
    """The bytes of resource ``name`` (for example ``/gcompris/src/x.webp``) in a ``.rcc`` bundle.

    ``bundle`` is the bundle's path or its bytes. Raises :class:`ResourceError`
    when the bundle is malformed or does not hold ``name``.
    """
    data = bundle if isinstance(bundle, bytes) else Path(bundle).read_bytes()
    try:
        return _Bundle(data).read(name)
    except (struct.error, zlib.error, IndexError, UnicodeDecodeError) as exc:
        raise ResourceError(f"malformed Qt resource bundle ({exc})") from None


class _Bundle:
    def __init__(self, data: bytes) -> None:
        if data[:4] != b"qres":
            raise ResourceError("not a Qt resource bundle (no 'qres' header)")
        self.data = data
        version, self.tree, self.payload, self.names = struct.unpack_from(">iiii", data, 4)
        if not 1 <= version <= 3:
            raise ResourceError(f"unsupported Qt resource bundle version {version}")
        self.node_size = 22 if version >= 2 else 14

    def _name(self, node: int) -> str:
        (offset,) = struct.unpack_from(">i", self.data, self.tree + node * self.node_size)
        (length,) = struct.unpack_from(">H", self.data, self.names + offset)
        start = self.names + offset + 6  # length, then a 32-bit hash, then UTF-16 characters
        return self.data[start:start + 2 * length].decode("utf-16-be")

    def read(self, name: str) -> bytes:
        node = 0
        for part in [p for p in name.split("/") if p]:
            flags, count, first = self._folder(node)
            if not flags & _DIRECTORY:
                raise ResourceError(f"{name}: not in the bundle")
            node = next((child for child in range(first, first + count) if self._name(child) == part), -1)
            if node < 0:
                raise ResourceError(f"{name}: not in the bundle")
        base = self.tree + node * self.node_size
        (flags,) = struct.unpack_from(">H", self.data, base + 4)
        if flags & _DIRECTORY:
            raise ResourceError(f"{name}: a folder, not a file")
        (offset,) = struct.unpack_from(">i", self.data, base + 10)
        (size,) = struct.unpack_from(">I", self.data, self.payload + offset)
        raw = self.data[self.payload + offset + 4:self.payload + offset + 4 + size]
        if flags & _ZSTD:
            raise ResourceError(f"{name}: zstd-compressed resources are not supported")
        return zlib.decompress(raw[4:]) if flags & _ZLIB else raw

    def _folder(self, node: int) -> tuple[int, int, int]:
        base = self.tree + node * self.node_size
        (flags,) = struct.unpack_from(">H", self.data, base + 4)
        count, first = struct.unpack_from(">ii", self.data, base + 6)
        return flags, count, first
