"""A file's framing (metadata and trailer), and stego files given their cover's framing back."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import piexif
import pytest
from PIL import Image, PngImagePlugin

from stegwatch.format.files import carrier_from_bytes
from stegwatch.format.framing import framing_of, with_framing_of
from stegwatch.stego import METHODS, EmbedOptions
from stegwatch.stego.dct import read_dct

from .conftest import random_rgb

TRAILER = b"SEFH" + bytes(range(200)) + b"SEFT"


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


@pytest.fixture(scope="module")
def camera_jpeg() -> bytes:
    """A JPEG as a phone writes it: EXIF, a comment, a vendor trailer."""
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Canon", piexif.ImageIFD.Model: b"EOS 5D"}, "Exif": {}})
    buffer = io.BytesIO()
    random_rgb(3, 128, 128).save(buffer, "JPEG", quality=90, exif=exif, comment=b"edited")
    return buffer.getvalue() + TRAILER


def test_framing_of_a_camera_jpeg_names_its_segments_and_trailer(camera_jpeg):
    framing = framing_of(camera_jpeg)
    assert framing.container == "JPEG"
    assert [segment[:2] for segment in framing.metadata] == [b"\xff\xe1", b"\xff\xfe"]
    assert framing.metadata[0][4:10] == b"Exif\x00\x00"
    assert framing.trailer == TRAILER
    bare = io.BytesIO()
    random_rgb(3, 64, 64).save(bare, "JPEG", quality=90)
    assert framing_of(bare.getvalue()).metadata == () and framing_of(bare.getvalue()).trailer == b""


@pytest.mark.parametrize("key", ["jsteg", "f5", "nsf5", pytest.param("steghide", marks=pytest.mark.skipif(
    shutil.which("steghide") is None, reason="steghide not installed (apt-get install steghide)"))])
def test_jpeg_stego_gets_its_covers_framing_and_keeps_its_coefficients(camera_jpeg, key):
    method = METHODS[key]
    carrier = carrier_from_bytes(camera_jpeg)
    payload = bytes(range(1, 25))
    stego = method.embed(carrier, payload, EmbedOptions(carrier="JPEG", key="1234"))
    framed = with_framing_of(camera_jpeg, stego.data)
    assert framing_of(framed).metadata == framing_of(camera_jpeg).metadata
    assert framing_of(framed).trailer == TRAILER
    before, after = read_dct(stego.data).jpeg, read_dct(framed).jpeg
    for channel in ("Y", "Cb", "Cr"):
        np.testing.assert_array_equal(getattr(before, channel), getattr(after, channel))
    assert Image.open(io.BytesIO(framed)).getexif()[271] == "Canon"
    if not method.simulated:
        found = method.extract(carrier_from_bytes(framed), bit_order=stego.embedding.bit_order, key=stego.key)
        assert any(x.payload == payload for x in found)


def test_png_and_gif_stego_get_their_covers_text_chunks_comments_and_trailers():
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "GIMP 2.10")
    buffer = io.BytesIO()
    random_rgb(4, 64, 64).save(buffer, "PNG", pnginfo=info)
    png = buffer.getvalue() + b"\x00" * 37
    stego = METHODS["lsbm"].embed(carrier_from_bytes(png), b"y" * 40, EmbedOptions(carrier="PNG", key="5"))
    framed = with_framing_of(png, stego.data)
    assert framing_of(stego.data).metadata == () and framing_of(stego.data).trailer == b""
    assert Image.open(io.BytesIO(framed)).info["Software"] == "GIMP 2.10"
    assert framing_of(framed).trailer == b"\x00" * 37
    np.testing.assert_array_equal(_pixels(framed), _pixels(stego.data))

    buffer = io.BytesIO()
    random_rgb(5, 64, 64).quantize(64).save(buffer, "GIF", comment=b"made with an editor")
    gif = buffer.getvalue()
    stego = METHODS["palette"].embed(carrier_from_bytes(gif), b"z" * 20, EmbedOptions(carrier="GIF"))
    framed = with_framing_of(gif, stego.data)
    assert Image.open(io.BytesIO(framed)).info["comment"] == b"made with an editor"
    assert stego.data[:6] == b"GIF87a" and framed[:6] == gif[:6] == b"GIF89a"  # a GIF with a comment is GIF89a
    np.testing.assert_array_equal(_pixels(framed), _pixels(stego.data))
    assert METHODS["palette"].extract(carrier_from_bytes(framed))[0].payload == b"z" * 20
    # One walk of the GIF's blocks serves both its end and its comments.
    from stegwatch.format.structure import end_of_gif, walk_gif

    walk = walk_gif(framed + b"after")
    assert walk.end == end_of_gif(framed) == len(framed)
    assert [framed[b:e] for label, b, e in walk.extensions if label == 0xFE] == list(framing_of(framed).metadata)
    assert walk_gif(framed[:-30]).end is None  # cut short: no trailer found
    assert walk_gif(b"not a gif at all") is None


def test_an_exif_payload_keeps_its_own_exif_and_gets_the_rest(camera_jpeg):
    exif = METHODS["exif"]
    stego = exif.embed(carrier_from_bytes(camera_jpeg), b"hidden words", EmbedOptions(carrier="JPEG"))
    framed = with_framing_of(camera_jpeg, stego.data)
    exif_segments = [s for s in framing_of(framed).metadata if s[4:10] == b"Exif\x00\x00"]
    assert len(exif_segments) == 1 and framing_of(framed).trailer == TRAILER
    assert exif.extract(carrier_from_bytes(framed))[0].payload == b"hidden words"

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "holiday")
    buffer = io.BytesIO()
    random_rgb(7, 64, 64).save(buffer, "PNG", pnginfo=info, exif=Image.Exif())
    png = buffer.getvalue() + b"\x00" * 20
    stego = exif.embed(carrier_from_bytes(png), b"more words", EmbedOptions(carrier="PNG"))
    framed = with_framing_of(png, stego.data)
    assert Image.open(io.BytesIO(framed)).info["Comment"] == "holiday"
    assert sum(s[4:8] == b"eXIf" for s in framing_of(framed).metadata) == 1
    assert framing_of(framed).trailer == b"\x00" * 20
    assert exif.extract(carrier_from_bytes(framed))[0].payload == b"more words"


def test_fill_bytes_before_a_marker_are_walked_over(camera_jpeg):
    # FF fill bytes may precede any marker (ITU T.81 B.1.1.2); the segment then starts at the last FF.
    padded = camera_jpeg[:2] + b"\xff\xff\xff" + camera_jpeg[2:]
    assert np.array_equal(_pixels(padded), _pixels(camera_jpeg))
    assert framing_of(padded).metadata == framing_of(camera_jpeg).metadata
    bare = io.BytesIO()
    random_rgb(3, 64, 64).save(bare, "JPEG", quality=90)
    framed = with_framing_of(padded, bare.getvalue())
    assert framing_of(framed).metadata == framing_of(camera_jpeg).metadata


def test_framing_is_not_doubled_mixed_or_grafted_onto_a_broken_file(camera_jpeg):
    # Segments the stego already has are not repeated; its own trailer stays alone.
    assert with_framing_of(camera_jpeg, camera_jpeg) == camera_jpeg
    own = camera_jpeg[: -len(TRAILER)] + b"payload"
    assert framing_of(with_framing_of(camera_jpeg, own)).trailer == b"payload"
    png = io.BytesIO()
    random_rgb(6, 32, 32).save(png, "PNG")
    assert with_framing_of(camera_jpeg, png.getvalue()) == png.getvalue()
    broken = camera_jpeg[:300]
    assert with_framing_of(camera_jpeg, broken) == broken
    bmp = io.BytesIO()
    random_rgb(6, 32, 32).save(bmp, "BMP")
    assert framing_of(bmp.getvalue()).metadata == () and with_framing_of(bmp.getvalue(), bmp.getvalue()) == bmp.getvalue()


def test_container_attributes_read_the_framing_of_real_bytes(tmp_path, camera_jpeg):
    from stegwatch.evaluation.dataset import container_attributes

    (tmp_path / "camera.jpg").write_bytes(camera_jpeg)
    _, attributes = container_attributes(tmp_path, "camera.jpg")
    assert attributes["metadata_segments"] == 2 and attributes["trailer_bytes"] == len(TRAILER)
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert container_attributes(tmp_path, "empty.jpg") == ("empty.jpg", None)


def test_corpus_stego_keeps_its_covers_framing(smoke_corpus):
    from stegwatch.corpus.build import WRITES_FRAMING
    from stegwatch.format.framing import _is_exif

    checked = framed = 0
    for line in (smoke_corpus / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["label"] != "stego":
            continue
        sidecar = json.loads((smoke_corpus / (entry["file_path"] + ".json")).read_text())
        cover = framing_of((smoke_corpus / sidecar["clean_file"]).read_bytes())
        stego = framing_of((smoke_corpus / entry["file_path"]).read_bytes())
        kept = set(cover.metadata)
        if METHODS[entry["method"]].category in WRITES_FRAMING:
            kept = {s for s in kept if not _is_exif(s)}  # its own EXIF wins
            assert stego.trailer.startswith(cover.trailer), entry["file_path"]  # eoi's payload follows it
        else:
            assert stego.trailer == cover.trailer, entry["file_path"]
        assert kept <= set(stego.metadata), entry["file_path"]
        checked += 1
        framed += bool(cover.metadata or cover.trailer)
    assert checked > 50 and framed > 0
