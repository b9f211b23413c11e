"""Property tests: every method's extract returns exactly what its embed hid."""

import hashlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from stegwatch.format.files import carrier_from_bytes
from stegwatch.stego import BIT_ORDERS, METHODS, EmbedError, EmbedOptions, extract_all, get_method

payload_bytes = st.binary(min_size=1, max_size=300).map(lambda b: b.replace(b"\x00", b"\x01"))
payload_text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=120).map(
    lambda s: s.encode("utf-8")
)
sizes = st.tuples(st.integers(24, 96), st.integers(24, 96))


def _cover(seed: int, width: int, height: int, mode: str) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    return image.convert(mode) if mode != "RGB" else image


PIXEL_AND_METADATA = [k for k, m in METHODS.items() if m.category != "dct"]  # JPEG methods: test_dct_methods.py
NUL_FRAMED = [k for k, m in METHODS.items() if m.framing == "nul"]


@pytest.mark.parametrize("key", PIXEL_AND_METADATA)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=st.one_of(payload_bytes, payload_text),
    size=sizes,
    seed=st.integers(0, 2**16),
    mode=st.sampled_from(["RGB", "L"]),
    order_index=st.integers(0, 1),
    carrier_index=st.integers(0, 2),
)
def test_embed_then_extract_returns_the_payload(key, payload, size, seed, mode, order_index, carrier_index):
    method = get_method(key)
    cover = _cover(seed, *size, mode)
    payload = payload[: max(1, method.capacity(cover))]
    if b"\x00" in payload or len(payload) > method.capacity(cover):
        return
    carrier = method.carriers[carrier_index % len(method.carriers)]
    options = EmbedOptions(bit_order=BIT_ORDERS[order_index], carrier=carrier, key=str(seed) if method.keyed else None)
    if key == "exif" and not payload.strip(b" \x00\t\r\n"):
        with pytest.raises(EmbedError, match="only blanks"):  # a camera's empty comment: it could never be read back
            method.embed(cover, payload, options)
        return
    stego = method.embed(cover, payload, options)
    assert stego.format == carrier
    decoded = carrier_from_bytes(stego.data)
    assert decoded.format == carrier
    found = method.extract(decoded, bit_order=stego.embedding.bit_order, key=stego.key)
    assert payload in [x.payload for x in found]
    # A reader that does not know the bit order (sidecar without bit_order) must still find it.
    assert payload in [x.payload for x in method.extract(decoded, key=stego.key)]


@pytest.mark.parametrize("key", [k for k, m in METHODS.items() if m.ordered])
def test_ordered_methods_record_and_use_their_bit_order(key, photo):
    method = get_method(key)
    message = "order matters: a sentence long enough to be unambiguous".encode()
    for order in BIT_ORDERS:
        stego = method.embed(photo, message, EmbedOptions(bit_order=order))
        assert stego.embedding.bit_order == order
        found = method.extract(carrier_from_bytes(stego.data), bit_order=order)
        assert [x.payload for x in found] == [message]
        assert found[0].bit_order == order


@pytest.mark.parametrize("key", PIXEL_AND_METADATA)
def test_payload_that_does_not_fit_is_refused(key):
    method = get_method(key)
    cover = _cover(0, 16, 16, "RGB")
    too_big = b"x" * (method.capacity(cover) + 1)
    with pytest.raises(EmbedError):
        method.embed(cover, too_big, EmbedOptions(key="1"))


@pytest.mark.parametrize("key", NUL_FRAMED)
def test_nul_inside_payload_is_refused(key, photo):
    with pytest.raises(EmbedError, match="NUL"):
        get_method(key).embed(photo, b"ab\x00cd", EmbedOptions(key="1"))


def test_alpha_framing_is_ai42_then_payload_then_nul_lsb_first(photo):
    stego = get_method("alpha").embed(photo, b"hi", EmbedOptions())
    alpha = np.asarray(carrier_from_bytes(stego.data).image.getchannel("A")).reshape(-1)
    bits = alpha[: 7 * 8] & 1
    raw = np.packbits(bits, bitorder="little").tobytes()
    assert raw == b"AI42hi\x00"
    assert stego.embedding.ai42 is True


def test_lsb_rgb_goes_r_g_b_from_the_top_left(photo):
    stego = get_method("lsb.rgb").embed(photo, b"A", EmbedOptions(bit_order="msb-first"))
    samples = np.asarray(carrier_from_bytes(stego.data).image).reshape(-1)
    assert np.packbits(samples[:16] & 1, bitorder="big").tobytes() == b"A\x00"


def test_lsbm_changes_samples_by_at_most_one_and_needs_the_key(photo):
    message = b"matching, not replacing" * 4
    stego = get_method("lsbm").embed(photo, message, EmbedOptions(key="secret"))
    before = np.asarray(photo, dtype=np.int16)
    after = np.asarray(carrier_from_bytes(stego.data).image, dtype=np.int16)
    assert np.abs(after - before).max() == 1
    decoded = carrier_from_bytes(stego.data)
    assert get_method("lsbm").extract(decoded, key="secret")[0].payload == message
    wrong = get_method("lsbm").extract(decoded, key="wrong")
    assert message not in [x.payload for x in wrong]
    assert not any(x.payload_shaped for x in wrong)
    assert get_method("lsbm").extract(decoded) == []


def test_lsbr_replaces_lsbs_scattered_over_the_image_on_its_own_key_schedule(photo):
    message = bytes(range(1, 256)) * 2  # 510 bytes + NUL: 4,088 bits into 23,040 samples
    stego = get_method("lsbr").embed(photo, message, EmbedOptions(key="secret"))
    before = np.asarray(photo, dtype=np.int16).reshape(-1)
    after = np.asarray(carrier_from_bytes(stego.data).image, dtype=np.int16).reshape(-1)
    changed = np.flatnonzero(after != before)
    # replacement: only the LSB moves, 2k <-> 2k+1 (LSB matching would also carry across pairs)
    assert np.array_equal(after >> 1, before >> 1) and changed.size > 0
    # spread over the whole path, not a prefix: each quarter of the samples holds about a quarter of the changes
    quarters = np.bincount(changed * 4 // before.size, minlength=4) / changed.size
    assert quarters.min() > 0.2, quarters
    decoded = carrier_from_bytes(stego.data)
    assert get_method("lsbr").extract(decoded, key="secret")[0].payload == message
    assert message not in [x.payload for x in get_method("lsbr").extract(decoded, key="wrong")]
    # the same key walks another path than lsbm's
    assert message not in [x.payload for x in get_method("lsbm").extract(decoded, key="secret")]
    assert get_method("lsbr").extract(decoded) == []


def test_extractors_find_nothing_payload_shaped_in_a_clean_photo(photo):
    from .conftest import png_bytes

    found = extract_all(carrier_from_bytes(png_bytes(photo)))
    assert not [x for xs in found.values() for x in xs if x.payload_shaped]


@pytest.mark.parametrize("key", list(METHODS))
def test_embedding_is_deterministic(key):
    from stegwatch.stego._seeded import namespaces_available

    method = get_method(key)
    if method.missing_tools():
        pytest.skip(f"{method.missing_tools()} not installed")
    if key == "steghide" and not namespaces_available():
        pytest.skip("steghide output cannot be seeded without user namespaces")
    cover = _cover(7, 128, 128, "RGB")
    options = EmbedOptions(key="7")
    a = method.embed(cover, b"same input, same bytes", options)
    b = method.embed(cover, b"same input, same bytes", options)
    assert hashlib.sha256(a.data).digest() == hashlib.sha256(b.data).digest()


@pytest.mark.parametrize("payload", [b"\n", b" ", b"\t \r\n"])
def test_exif_refuses_a_payload_of_blanks_it_could_not_read_back(payload):
    with pytest.raises(EmbedError, match="only blanks"):
        get_method("exif").embed(_cover(0, 24, 24, "RGB"), payload, EmbedOptions(carrier="JPEG"))
