"""The look-alike negatives (issue 14): present, deterministic, decodable, and holding every kind they promise."""

from __future__ import annotations

import io
import struct

import numpy as np
import piexif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from stegwatch.corpus import negatives
from stegwatch.corpus._lookalike_parts import IEND, caption, mp4_video, samsung_sef
from stegwatch.corpus.sources import builtin_sources, load_source
from stegwatch.format.files import CarrierFile, decode_image, load_carrier
from stegwatch.format.manifest import read_manifest
from stegwatch.stego import extract_all
from stegwatch.format.structure import PNG_SIGNATURE, end_of_image, end_of_png
from stegwatch.stego.eoi import split_trailer

LOOKALIKES = ("metadata_text", "trailer_lookalike", "pipeline_alpha", "quantized_palette")
#: Enough draws that every kind of every category shows up (the rarest, a caption in a JPEG COM segment, about 1 in 40).
DRAWS = 160


@pytest.fixture(scope="module")
def crops() -> list[Image.Image]:
    """64x64 crops of four built-in photographs, colour and grayscale."""
    out = []
    for source in builtin_sources()[:4]:
        image = load_source(source.path)
        image = image if image.mode in ("RGB", "L") else image.convert("RGB")
        out.append(image.crop((40, 40, 104, 104)))
    return out


@pytest.fixture(scope="module")
def drawn(crops) -> dict[str, list[negatives.Negative]]:
    return {
        category: [negatives.GENERATORS[category](np.random.default_rng(seed), crops[seed % len(crops)]) for seed in range(DRAWS)]
        for category in LOOKALIKES
    }


def _decode(negative: negatives.Negative) -> Image.Image:
    image = decode_image(negative.data, "negative")
    assert image.format == negative.format
    return image


def test_lookalike_categories_are_registered_with_a_constraint():
    for category in LOOKALIKES:
        assert category in negatives.GENERATORS
        assert negatives.CONSTRAINTS[category].strip()
    assert set(negatives.GENERATORS) == set(negatives.CONSTRAINTS)


def test_each_lookalike_category_is_in_the_smoke_corpus_with_its_constraint(smoke_corpus):
    entries = [e for e in read_manifest(smoke_corpus).entries if e.category in LOOKALIKES]
    for category in LOOKALIKES:
        mine = [e for e in entries if e.category == category]
        assert len(mine) == 8
        assert {e.constraint for e in mine} == {negatives.CONSTRAINTS[category]}
        assert all(e.label == "clean" and e.method is None for e in mine)
    for entry in entries:
        carrier = load_carrier(smoke_corpus / entry.file_path)
        assert (carrier.format, carrier.image.mode) == (entry.format, entry.mode)


@pytest.mark.parametrize("category", LOOKALIKES)
def test_generators_are_deterministic_for_a_seed(category, crops):
    generate = negatives.GENERATORS[category]
    first = [generate(np.random.default_rng(seed), crops[seed % 4]) for seed in range(6)]
    again = [generate(np.random.default_rng(seed), crops[seed % 4]) for seed in range(6)]
    assert first == again
    assert len({n.data for n in first}) == len(first)


@pytest.mark.parametrize("category", LOOKALIKES)
def test_every_file_decodes_and_variants_vary(category, drawn):
    for negative in drawn[category]:
        _decode(negative)
    assert len({n.variant for n in drawn[category]}) > DRAWS // 3


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, i = [], len(PNG_SIGNATURE)
    while i + 12 <= len(data):
        length = struct.unpack(">I", data[i : i + 4])[0]
        chunks.append((data[i + 4 : i + 8], data[i + 8 : i + 8 + length]))
        if data[i + 4 : i + 8] == b"IEND":
            break
        i += 12 + length
    return chunks


def test_metadata_text_holds_every_kind_in_jpeg_and_png(drawn):
    files = drawn["metadata_text"]
    places = {p for n in files for p in n.variant.split(":")[1].split("+")}
    assert {"camera_description", "camera_user_comment", "xp_comment", "xmp", "gps",
            "software_comment@COM", "software_comment@tEXt", "caption@COM", "caption@iTXt"} <= places
    assert {p for p in places if p.startswith("caption@")} >= {"caption@ImageDescription", "caption@UserComment", "caption@XPTitle"}
    jpegs = [n for n in files if n.format == "JPEG"]
    pngs = [n for n in files if n.format == "PNG"]
    assert jpegs and pngs
    # The containers an exif payload is written into, RGBA and palette PNGs included: none tells text from payload.
    assert {("PNG", "RGB"), ("PNG", "RGBA"), ("PNG", "P"), ("JPEG", "RGB")} <= {(n.format, _decode(n).mode) for n in files}
    # XMP: APP1 with the Adobe namespace in JPEG, iTXt XML:com.adobe.xmp in PNG.
    assert any(b"http://ns.adobe.com/xap/1.0/\x00<?xpacket" in n.data and b"<x:xmpmeta" in n.data for n in jpegs)
    png_chunks = [_png_chunks(n.data) for n in pngs]
    kinds = {kind for chunks in png_chunks for kind, _ in chunks}
    assert {b"eXIf", b"tEXt", b"iTXt"} <= kinds
    assert any(kind == b"iTXt" and body.startswith(b"XML:com.adobe.xmp\x00") for chunks in png_chunks for kind, body in chunks)
    assert any(_decode(n).info.get("comment") for n in jpegs)  # a COM segment
    comments, gps = [], 0
    for negative in files:
        raw = _decode(negative).info.get("exif")
        if raw:
            exif = piexif.load(raw)
            gps += bool(exif["GPS"])
            if piexif.ExifIFD.UserComment in exif["Exif"]:
                comments.append(exif["Exif"][piexif.ExifIFD.UserComment])
    assert gps
    assert {c[:8] for c in comments} >= {b"ASCII\x00\x00\x00", b"UNICODE\x00"}
    assert any(c.endswith((b" ", b"\x00")) for c in comments)  # padding as cameras write it


def test_captions_are_printable_text_of_realistic_length():
    texts = [caption(np.random.default_rng(seed)) for seed in range(300)]
    assert all(5 <= len(t) <= 200 and t.isprintable() for t in texts)
    assert any(not t.isascii() for t in texts) and any(t.isascii() for t in texts)
    assert min(map(len, texts)) < 20 and max(map(len, texts)) > 100


def test_trailer_lookalike_holds_every_kind(drawn):
    by_kind: dict[str, list[negatives.Negative]] = {}
    for negative in drawn["trailer_lookalike"]:
        by_kind.setdefault(negative.variant.split(":")[0], []).append(negative)
    assert set(by_kind) == set(negatives.TRAILER_KINDS)
    for kind, files in by_kind.items():
        for negative in files:
            _, end = end_of_image(negative.data)
            assert end is not None
            trailer = negative.data[end:]
            if kind == "motion_photo_google":
                assert trailer[4:8] == b"ftyp" and b"mdat" in trailer and b"moov" in trailer
                assert b"GCamera:MotionPhoto" in negative.data[:end]
            elif kind == "motion_photo_samsung":
                assert trailer.endswith(b"SEFT") and b"SEFH" in trailer
                video = trailer.find(b"MotionPhoto_Data") + len(b"MotionPhoto_Data")
                assert trailer[video + 4 : video + 8] == b"ftyp"
            elif kind == "samsung_sef":
                assert trailer.endswith(b"SEFT") and b"SEFH" in trailer
            elif kind == "zero_padding":
                assert trailer and set(trailer) == {0}
            elif kind == "ff_padding":
                assert trailer and set(trailer) == {0xFF}
            elif kind == "png_duplicate_iend":
                assert trailer and trailer == IEND * (len(trailer) // len(IEND))
            elif kind == "png_stray_zeros":
                assert 1 <= len(trailer) <= 16 and set(trailer) == {0}
            elif kind == "png_truncated_second":
                assert trailer.startswith(PNG_SIGNATURE + b"\x00\x00\x00\x0dIHDR") and end_of_png(trailer) is None
            else:
                assert negative.format == "GIF" and trailer == b""
                assert b"\x21\xfe" in negative.data and _decode(negative).info.get("comment")
    formats = {n.format for n in by_kind["zero_padding"] + by_kind["ff_padding"]}
    assert formats == {"JPEG", "PNG", "GIF"}
    # PNGs with a trailer come in the PNG photo crops' modes (an eoi payload also follows RGBA and palette PNGs).
    pngs = [n for n in drawn["trailer_lookalike"] if n.format == "PNG"]
    assert {_decode(n).mode for n in pngs} >= {"RGB", "RGBA", "P"}


def test_no_trailer_lookalike_reads_as_a_payload(drawn):
    # What real files carry after the end is binary: the eoi extractor may see bytes, never a message.
    for negative in drawn["trailer_lookalike"]:
        found = extract_all(CarrierFile("x", negative.data, _decode(negative)))
        assert not any(e.payload_shaped for e in found.get("eoi", []))


def test_mp4_video_boxes_add_up():
    video = mp4_video(np.random.default_rng(3), 5000)
    i, kinds = 0, []
    while i < len(video):
        size, kind = struct.unpack(">I4s", video[i : i + 8])
        kinds.append(kind)
        i += size
    assert i == len(video) and kinds == [b"ftyp", b"mdat", b"moov"]
    assert video.startswith(b"\x00\x00\x00") and video[4:8] == b"ftyp"


def test_samsung_sef_directory_points_at_its_blocks():
    trailer = samsung_sef(np.random.default_rng(0), ["Image_UTC_Data", "MCC_Data"])
    size = struct.unpack("<I", trailer[-8:-4])[0]
    directory = trailer[-8 - size : -8]
    assert directory.startswith(b"SEFH")
    count = struct.unpack("<I", directory[8:12])[0]
    start = len(trailer) - 8 - size
    for k in range(count):
        _, offset, length = struct.unpack("<4sII", directory[12 + 12 * k : 24 + 12 * k])
        block = trailer[start - offset : start - offset + length]
        assert block[:2] == b"\x00\x00" and block[8:].startswith((b"Image_UTC_Data", b"MCC_Data"))


def test_pipeline_alpha_holds_every_kind_with_soft_alpha(drawn, crops):
    files = drawn["pipeline_alpha"]
    assert {n.variant.split(":")[0] for n in files} == set(negatives.ALPHA_KINDS)
    assert any("alpha-bits=" in n.variant for n in files)
    assert {n.variant.split(":")[1].split(",")[0] for n in files if n.variant.startswith("composited")} == {
        "drop_shadow", "overlay", "grain"}
    premultiplied_changed = 0
    for seed, negative in enumerate(files):
        image = _decode(negative)
        assert negative.format == "PNG" and image.mode == "RGBA"
        alpha = np.asarray(image)[..., 3]
        assert ((alpha > 0) & (alpha < 255)).any()  # soft edges, not a hard 0/255 mask
        if negative.variant.startswith("premultiplied"):
            # Colour is the photo's where alpha is 255; premultiplication rounds it away elsewhere.
            colour = np.asarray(image)[..., :3].astype(int)
            photo = np.asarray(crops[seed % 4].convert("RGB")).astype(int)
            opaque, faint = alpha == 255, (alpha > 0) & (alpha < 128)
            assert np.array_equal(colour[opaque], photo[opaque])
            premultiplied_changed += bool((colour[faint] != photo[faint]).any())
    assert premultiplied_changed


def test_quantized_palette_covers_quantizers_dithering_orders_and_formats(drawn):
    files = drawn["quantized_palette"]
    assert {n.format for n in files} == {"PNG", "GIF"}
    fields = [n.variant.split(":")[1].split(",") for n in files]
    assert {f[0] for f in fields} >= {"mediancut", "maxcoverage", "fastoctree"}
    assert any(f[0] in ("libimagequant", "fastoctree(no-libimagequant)") for f in fields)
    assert {f[2] for f in fields} == {"fs", "nodither"}
    assert {f[3] for f in fields} == {f"order={o}" for o in negatives.PALETTE_ORDERS}
    sizes = [int(f[1].removeprefix("colours=")) for f in fields]
    assert min(sizes) < 64 and max(sizes) > 200 and max(sizes) <= 256
    for negative in files:
        assert _decode(negative).mode == "P"


@pytest.mark.parametrize("order", ["frequency", "luminance", "random"])
def test_reordering_a_palette_keeps_every_colour(order, crops):
    image = crops[0].convert("RGB").quantize(colors=64)
    reordered = negatives.reorder_palette(image, order, np.random.default_rng(1))
    assert np.array_equal(np.asarray(reordered.convert("RGB")), np.asarray(image.convert("RGB")))
    assert order == "frequency" or not np.array_equal(np.asarray(reordered), np.asarray(image))
    if order == "frequency":
        counts = np.bincount(np.asarray(reordered).ravel())
        assert counts[0] == counts.max()


@pytest.mark.parametrize("category", LOOKALIKES)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), width=st.integers(1, 48), height=st.integers(1, 48), grey=st.booleans())
def test_every_lookalike_generator_returns_a_decodable_file(category, seed, width, height, grey, crops):
    base = crops[seed % 4].crop((0, 0, width, height))
    base = base.convert("L") if grey else base.convert("RGB")
    negative = negatives.GENERATORS[category](np.random.default_rng(seed), base)
    image = _decode(negative)
    assert image.size == (width, height)
    Image.open(io.BytesIO(negative.data)).load()
