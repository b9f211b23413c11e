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
from stegwatch.format.framing import _is_exif, framing_of, with_exif_segment, with_framing_of
from stegwatch.format.structure import jpeg_component_ids, jpeg_segments, with_jpeg_header_of
from stegwatch.stego import METHODS, EmbedError, EmbedOptions
from stegwatch.stego.dct import DctImage, read_dct, write_dct

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


def _encoder_marks(data: bytes) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
    """What says which encoder wrote a JPEG: its APP0 segments (byte for byte) and its component ids."""
    return tuple(data[begin:end] for marker, begin, end in jpeg_segments(data) if marker == 0xE0), jpeg_component_ids(data)


def _jpeg_covers(camera_jpeg: bytes) -> dict[str, bytes]:
    """Covers as different writers lay them out: a phone's, Pillow's plain JFIF, grayscale, EXIF without JFIF
    (as many cameras write), and components named by letters (as Adobe's encoders name R, G, B)."""
    plain, gray = io.BytesIO(), io.BytesIO()
    random_rgb(4, 96, 128).save(plain, "JPEG", quality=85)
    random_rgb(5, 128, 96).convert("L").save(gray, "JPEG", quality=75)
    app0_end = next(end for marker, _, end in jpeg_segments(camera_jpeg) if marker == 0xE0)
    exif_only = camera_jpeg[:2] + camera_jpeg[app0_end:]
    lettered = bytearray(plain.getvalue())
    for marker, begin, end in jpeg_segments(bytes(lettered)):
        first, step = (begin + 10, 3) if marker == 0xC0 else (begin + 5, 2) if marker == 0xDA else (None, 0)
        for at in range(first, end, step) if first else ():
            if at < end - (0 if marker == 0xC0 else 3):
                lettered[at] = {1: ord("R"), 2: ord("G"), 3: ord("B")}[lettered[at]]
    return {"camera": camera_jpeg, "jfif": plain.getvalue(), "gray": gray.getvalue(), "exif_only": exif_only,
            "lettered": bytes(lettered)}


def test_covers_for_the_header_tests_are_what_they_claim(camera_jpeg):
    covers = _jpeg_covers(camera_jpeg)
    assert _encoder_marks(covers["exif_only"])[0] == () and framing_of(covers["exif_only"]).metadata[0][4:10] == b"Exif\x00\x00"
    assert _encoder_marks(covers["lettered"])[1] == (82, 71, 66) and _encoder_marks(covers["gray"])[1] == (1,)
    assert np.array_equal(_pixels(covers["lettered"]), _pixels(covers["jfif"]))


@pytest.mark.parametrize("key", ["jsteg", "f5", "nsf5", "juniward"])
def test_jpeg_stego_has_its_covers_header_not_the_encoders(camera_jpeg, key):
    # libjpeg (through jpeglib) would add a JFIF segment of its own and number the components from 0: every
    # file it wrote would say so, and a detector could learn the tool instead of the payload (issue 16).
    for kind, cover in _jpeg_covers(camera_jpeg).items():
        stego = METHODS[key].embed(carrier_from_bytes(cover), bytes(range(1, 21)), EmbedOptions(carrier="JPEG", key="1234"))
        assert _encoder_marks(stego.data) == _encoder_marks(cover), (key, kind)
        assert framing_of(stego.data).metadata == framing_of(cover).metadata, (key, kind)
        assert METHODS[key].extract(carrier_from_bytes(stego.data), key="1234") or key in ("nsf5", "juniward"), (key, kind)


def test_the_header_changes_nothing_a_decoder_reads(camera_jpeg):
    for kind, cover in _jpeg_covers(camera_jpeg).items():
        image = read_dct(cover)
        image.jpeg.Y[0, 0, 0, 1] += 1
        written = write_dct(DctImage(image.jpeg))  # no source: the encoder's own header
        assert _encoder_marks(written) != _encoder_marks(cover), kind
        fixed = with_jpeg_header_of(cover, written)
        assert _encoder_marks(fixed) == _encoder_marks(cover), kind
        assert np.array_equal(_pixels(fixed), _pixels(written)), kind
        before, after = read_dct(written).jpeg, read_dct(fixed).jpeg
        for channel in ("Y", "Cb", "Cr"):
            assert (getattr(before, channel) is None) == (getattr(after, channel) is None)
            if getattr(before, channel) is not None:
                np.testing.assert_array_equal(getattr(before, channel), getattr(after, channel))
        np.testing.assert_array_equal(before.qt, after.qt)


def test_the_header_is_left_alone_when_the_two_files_do_not_match(camera_jpeg):
    covers = _jpeg_covers(camera_jpeg)
    colour, gray = covers["jfif"], covers["gray"]
    assert with_jpeg_header_of(gray, colour) == colour  # three components against one
    assert with_jpeg_header_of(b"not a jpeg", colour) == colour
    assert with_jpeg_header_of(gray, colour[:400]) == colour[:400]  # broken off: nothing to rewrite safely
    assert with_jpeg_header_of(colour, colour) == colour


def test_an_exif_payload_keeps_the_jfif_header_and_the_cameras_tags(camera_jpeg):
    exif = METHODS["exif"]
    covers = _jpeg_covers(camera_jpeg)
    stego = exif.embed(carrier_from_bytes(covers["camera"]), b"hidden words", EmbedOptions(carrier="JPEG"))
    assert _encoder_marks(stego.data) == _encoder_marks(covers["camera"])
    tags = piexif.load(Image.open(io.BytesIO(stego.data)).info["exif"])
    assert tags["0th"][piexif.ImageIFD.Make] == b"Canon" and tags["0th"][piexif.ImageIFD.Model] == b"EOS 5D"
    # In place of the camera's EXIF segment; everything else (comment, trailer, scan) byte for byte.
    assert [s[:2] for s in framing_of(stego.data).metadata] == [b"\xff\xe1", b"\xff\xfe"]
    assert framing_of(stego.data).trailer == TRAILER
    assert stego.data.endswith(covers["camera"][covers["camera"].index(b"\xff\xdb"):])
    assert exif.extract(carrier_from_bytes(stego.data))[0].payload == b"hidden words"
    # A file without EXIF gets it right after its JFIF segment; one without JFIF keeps having none.
    for kind in ("jfif", "exif_only"):
        stego = exif.embed(carrier_from_bytes(covers[kind]), b"more words", EmbedOptions(carrier="JPEG"))
        assert _encoder_marks(stego.data) == _encoder_marks(covers[kind]), kind
        assert np.array_equal(_pixels(stego.data), _pixels(covers[kind])), kind
        assert exif.extract(carrier_from_bytes(stego.data))[0].payload == b"more words"


def test_exif_that_outgrows_one_segment_is_an_embed_error_and_bad_exif_is_replaced(camera_jpeg):
    big = piexif.dump({"0th": {piexif.ImageIFD.ImageDescription: b"x" * 30_000}, "Exif": {}})
    buffer = io.BytesIO()
    random_rgb(3, 64, 64).save(buffer, "JPEG", quality=90, exif=big)
    with pytest.raises(EmbedError, match="do not fit one APP1 segment"):
        METHODS["exif"].embed(carrier_from_bytes(buffer.getvalue()), b"y" * 40_000, EmbedOptions(carrier="JPEG"))
    with pytest.raises(ValueError, match="not a JPEG"):
        with_exif_segment(b"GIF89a", big)
    # EXIF piexif cannot read is not kept: the comment stands alone.
    broken = camera_jpeg.replace(b"Exif\x00\x00MM", b"Exif\x00\x00XX", 1).replace(b"Exif\x00\x00II", b"Exif\x00\x00XX", 1)
    stego = METHODS["exif"].embed(carrier_from_bytes(broken), b"words", EmbedOptions(carrier="JPEG"))
    assert METHODS["exif"].extract(carrier_from_bytes(stego.data))[0].payload == b"words"
    assert sum(_is_exif(s) for s in framing_of(stego.data).metadata) == 1


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

    checked = framed = jpegs = 0
    for line in (smoke_corpus / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["label"] != "stego":
            continue
        sidecar = json.loads((smoke_corpus / (entry["file_path"] + ".json")).read_text())
        cover_bytes = (smoke_corpus / sidecar["clean_file"]).read_bytes()
        stego_bytes = (smoke_corpus / entry["file_path"]).read_bytes()
        if cover_bytes.startswith(b"\xff\xd8") and stego_bytes.startswith(b"\xff\xd8"):
            # Whichever tool wrote it, a stego JPEG has its cover's JFIF segments and component ids.
            assert _encoder_marks(stego_bytes) == _encoder_marks(cover_bytes), entry["file_path"]
            jpegs += 1
        cover, stego = framing_of(cover_bytes), framing_of(stego_bytes)
        kept = set(cover.metadata)
        if METHODS[entry["method"]].category in WRITES_FRAMING:
            kept = {s for s in kept if not _is_exif(s)}  # its own EXIF wins
            assert stego.trailer.startswith(cover.trailer), entry["file_path"]  # eoi's payload follows it
        else:
            assert stego.trailer == cover.trailer, entry["file_path"]
        assert kept <= set(stego.metadata), entry["file_path"]
        checked += 1
        framed += bool(cover.metadata or cover.trailer)
    assert checked > 50 and framed > 0 and jpegs > 10
