"""Reading leniently: files from other Starlight generators, and eoi structure."""

import io

import numpy as np
import piexif
from PIL import Image

from stegwatch.format.files import carrier_from_bytes
from stegwatch.stego import EmbedOptions, get_method
from stegwatch.stego.eoi import end_of_gif, end_of_jpeg, end_of_png, split_trailer

from .conftest import jpeg_bytes, png_bytes, random_rgb


def _gif(image):
    buffer = io.BytesIO()
    image.convert("RGB").quantize(64).save(buffer, "GIF")
    return buffer.getvalue()


def test_structure_walkers_find_the_true_end(photo):
    for data, walker in ((jpeg_bytes(photo), end_of_jpeg), (png_bytes(photo), end_of_png), (_gif(photo), end_of_gif)):
        assert walker(data) == len(data)
        assert walker(data + b"trailing") == len(data)
        assert walker(data[: len(data) // 2]) is None


def test_eoi_payload_containing_ffd9_is_read_whole(photo):
    payload = "before \udcff".encode("utf-8", "surrogateescape") + b"\xd9 after"
    stego = get_method("eoi").embed(photo, payload, EmbedOptions(carrier="JPEG"))
    found = get_method("eoi").extract(carrier_from_bytes(stego.data))
    assert [x.payload for x in found] == [payload]


def test_second_jpeg_after_ffd9_is_not_a_payload(photo):
    data = jpeg_bytes(photo) + jpeg_bytes(photo.resize((20, 20)))
    assert get_method("eoi").extract(carrier_from_bytes(data)) == []
    trailer, skipped = split_trailer(data)
    assert trailer == b"" and skipped == 1


def test_payload_after_a_legitimate_second_jpeg_is_still_found(photo):
    data = jpeg_bytes(photo) + jpeg_bytes(photo.resize((20, 20))) + b"hidden words here\x00"
    found = get_method("eoi").extract(carrier_from_bytes(data))
    assert found[0].payload == b"hidden words here" and "1 embedded JPEG" in found[0].note


def test_payload_after_a_phones_trailer_is_found(photo):
    """Appended after padding, a motion photo's video or a Samsung SEF trailer, a payload is read where the
    bytes no known structure explains begin; the clean file with that trailer holds no payload."""
    from stegwatch.corpus._lookalike_parts import mp4_video, samsung_sef

    rng = np.random.default_rng(3)
    video = mp4_video(rng, 3000)
    for trailer in (b"\x00" * 512, video, samsung_sef(rng, ["Image_UTC_Data"], video)):
        clean = carrier_from_bytes(jpeg_bytes(photo) + trailer)
        assert not [x for x in get_method("eoi").extract(clean) if x.payload.startswith(b"hidden")]
        stego = get_method("eoi").embed(clean, b"hidden words here")
        assert stego.data.startswith(clean.data)
        found = get_method("eoi").extract(carrier_from_bytes(stego.data))
        assert [(x.payload, x.note) for x in found if x.payload == b"hidden words here"] == [
            (b"hidden words here", "after the known trailer structures")], trailer[:16]


def test_eoi_without_nul_and_with_ai42_marker(photo):
    for base in (png_bytes(photo), jpeg_bytes(photo), _gif(photo)):
        found = get_method("eoi").extract(carrier_from_bytes(base + b"no terminator at all"))
        assert found[0].payload == b"no terminator at all" and not found[0].terminated
        found = get_method("eoi").extract(carrier_from_bytes(base + b"AI42agent message\x00"))
        assert found[0].payload == b"agent message" and found[0].ai42 and found[0].payload_shaped
        # A payload that begins with the marker's bytes is read whole too.
        found = get_method("eoi").extract(carrier_from_bytes(base + b"AI42\x00"))
        assert [x.payload for x in found] == [b"AI42"]
        found = get_method("eoi").extract(carrier_from_bytes(base + b"AI42AI42x\x00"))
        assert [(x.payload, x.ai42) for x in found] == [(b"AI42x", True), (b"AI42AI42x", False)]


def test_exif_without_nul_and_other_charset_headers(photo):
    for comment, expected in (
        (b"ASCII\x00\x00\x00no nul here", b"no nul here"),
        (b"UNICODE\x00" + "wide text".encode("utf-16-be"), b"wide text"),
        (b"\x00" * 8 + b"undefined code\x00", b"undefined code"),
    ):
        exif = piexif.dump({"Exif": {piexif.ExifIFD.UserComment: comment}})
        buffer = io.BytesIO()
        photo.save(buffer, "JPEG", exif=exif)
        found = get_method("exif").extract(carrier_from_bytes(buffer.getvalue()))
        assert found[0].payload == expected


def test_blank_camera_comment_is_not_a_payload(photo):
    for comment in (b"ASCII\x00\x00\x00" + b" " * 64, b"\x00" * 8 + b"\x00" * 256, b"UNICODE\x00" + b"\x00 " * 20):
        exif = piexif.dump({"Exif": {piexif.ExifIFD.UserComment: comment}})
        buffer = io.BytesIO()
        photo.save(buffer, "JPEG", exif=exif)
        assert get_method("exif").extract(carrier_from_bytes(buffer.getvalue())) == []


def test_malformed_exif_is_not_a_crash(photo):
    data = jpeg_bytes(photo)
    app1 = b"\xff\xe1" + (2 + 6 + 8).to_bytes(2, "big") + b"Exif\x00\x00" + b"MM\x00*\xff\xff\xff\xff"
    broken = data[:2] + app1 + data[2:]
    carrier = carrier_from_bytes(broken)
    assert get_method("exif").extract(carrier) == []


def test_lsb_rgb_from_another_generator_without_sidecar_order():
    """A file written LSB-first by someone else is found when the order is unknown."""
    cover = np.asarray(random_rgb(3, 40, 40)).copy()
    message = b"written elsewhere, read here\x00"
    bits = np.unpackbits(np.frombuffer(message, np.uint8), bitorder="little")
    flat = cover.reshape(-1)
    flat[: bits.size] = (flat[: bits.size] & 0xFE) | bits
    found = get_method("lsb.rgb").extract(carrier_from_bytes(png_bytes(Image.fromarray(cover))))
    shaped = [(x.payload, x.bit_order) for x in found if x.payload_shaped]
    assert shaped == [(b"written elsewhere, read here", "lsb-first")]


def test_lsb_rgb_reads_rgba_files_skipping_alpha(photo):
    stego = get_method("lsb.rgb").embed(photo, b"through the colour channels", EmbedOptions())
    rgba = carrier_from_bytes(stego.data).image.convert("RGBA")
    found = get_method("lsb.rgb").extract(carrier_from_bytes(png_bytes(rgba)))
    assert b"through the colour channels" in [x.payload for x in found]
