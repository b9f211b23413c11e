"""Every bad-input kind gets a clear reason, never a library traceback."""

import struct
import zlib

import pytest
from PIL import Image

from stegwatch.format.files import ReadLimits, UnreadableFile, load_carrier

from .conftest import jpeg_bytes, png_bytes, random_rgb


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def bad_files(tmp_path):
    image = random_rgb(1, 64, 64)
    png = png_bytes(image)
    jpg = jpeg_bytes(image)
    files = {
        "empty": b"",
        "text": b"hello, this is not an image\n",
        "truncated_png": png[: len(png) // 2],
        "truncated_jpeg": jpg[: len(jpg) // 3],
        "corrupt_header": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        "bomb": _png_header_only(100_000, 100_000),
    }
    paths = {}
    for name, data in files.items():
        path = tmp_path / f"{name}.png"
        path.write_bytes(data)
        paths[name] = path
    return paths


@pytest.mark.parametrize(
    "name, reason",
    [
        ("empty", "empty file"),
        ("text", "not an image"),
        ("truncated_png", "truncated"),
        ("truncated_jpeg", "truncated"),
        ("corrupt_header", "corrupt"),
        # Pillow refuses this one itself, at its own, far larger, limit: the reason names stegwatch's.
        ("bomb", f"refused as a decompression bomb: over the limit of {ReadLimits().max_pixels} pixels"),
    ],
)
def test_each_bad_kind_has_a_clear_reason(tmp_path, name, reason):
    path = bad_files(tmp_path)[name]
    with pytest.raises(UnreadableFile) as info:
        load_carrier(path)
    assert reason in info.value.reason
    assert info.value.path == str(path)


def test_pixel_limit_is_checked_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes(Image.new("RGB", (300, 300))))
    with pytest.raises(UnreadableFile, match="90000 pixels"):
        load_carrier(path, ReadLimits(max_pixels=50_000))


def test_oversized_file_is_refused_by_size(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes(random_rgb(2, 64, 64)))
    with pytest.raises(UnreadableFile, match="over the limit"):
        load_carrier(path, ReadLimits(max_bytes=1000))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(UnreadableFile, match="no such file"):
        load_carrier(tmp_path / "nope.png")
    with pytest.raises(UnreadableFile, match="not a regular file"):
        load_carrier(tmp_path)


def test_a_truncated_bmp_is_a_truncated_image(tmp_path):
    import io

    buffer = io.BytesIO()
    random_rgb(3, 64, 64).save(buffer, "BMP")
    path = tmp_path / "cut.bmp"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(UnreadableFile, match="truncated") as info:
        load_carrier(path)
    assert info.value.path == str(path)
