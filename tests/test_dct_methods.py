"""JPEG-domain methods: JSteg and F5 (stegwatch's own), nsF5 and J-UNIWARD (conseal), OutGuess and steghide (real tools)."""

import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from stegwatch.format.files import carrier_from_bytes
from stegwatch.stego import EmbedError, EmbedOptions, get_method
from stegwatch.stego.dct import count_changes, nonzero_ac, read_dct
from stegwatch.stego._seeded import namespaces_available
from stegwatch.stego._tools import run_tool

from .conftest import astronaut_jpeg, jpeg_bytes

needs_outguess = pytest.mark.skipif(shutil.which("outguess") is None, reason="outguess not installed (apt-get install outguess)")
needs_steghide = pytest.mark.skipif(shutil.which("steghide") is None, reason="steghide not installed (apt-get install steghide)")


@pytest.fixture(scope="module")
def cover_jpeg() -> bytes:
    return astronaut_jpeg()


def _jpeg(photo, quality, gray):
    image = photo.resize((64, 64)).convert("L" if gray else "RGB")
    return carrier_from_bytes(jpeg_bytes(image, quality) if not gray else _gray_jpeg(image, quality))


def _gray_jpeg(image, quality):
    import io

    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


payloads = st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"\x00", b"\x01"))


@pytest.mark.parametrize("key", ["jsteg", "f5"])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(payload=payloads, quality=st.sampled_from([75, 85, 95]), gray=st.booleans(), seed=st.integers(1, 10**6))
def test_own_dct_methods_round_trip(photo, key, payload, quality, gray, seed):
    method = get_method(key)
    cover = _jpeg(photo, quality, gray)
    if len(payload) > method.capacity(cover):
        return
    stego = method.embed(cover, payload, EmbedOptions(key=str(seed)))
    decoded = carrier_from_bytes(stego.data)
    assert decoded.format == "JPEG" and decoded.image.mode == cover.image.mode
    assert payload in [x.payload for x in method.extract(decoded, key=stego.key)]


def test_jsteg_leaves_dc_zeros_and_ones_alone(cover_jpeg):
    stego = get_method("jsteg").embed(carrier_from_bytes(cover_jpeg), b"x" * 200, EmbedOptions())
    before, after = read_dct(cover_jpeg).Y, read_dct(stego.data).Y
    changed = before != after
    assert changed.any()
    assert not changed[..., 0, 0].any()
    assert not changed[np.isin(before, (0, 1))].any()
    assert np.all(np.abs(after.astype(int) - before) <= 1)


def test_f5_only_shrinks_absolute_values_and_needs_its_key(cover_jpeg):
    stego = get_method("f5").embed(carrier_from_bytes(cover_jpeg), b"f5 message" * 20, EmbedOptions(key="k"))
    before, after = read_dct(cover_jpeg).Y.astype(int), read_dct(stego.data).Y.astype(int)
    assert (before != after).any()
    assert np.all(np.abs(after) <= np.abs(before))
    assert np.all(np.sign(after) * np.sign(before) >= 0)
    decoded = carrier_from_bytes(stego.data)
    assert get_method("f5").extract(decoded, key="other") in ([],) or all(
        x.payload != b"f5 message" * 20 for x in get_method("f5").extract(decoded, key="other")
    )
    assert get_method("f5").extract(decoded) == []


def test_f5_refuses_a_payload_that_cannot_fit(cover_jpeg):
    nzac = nonzero_ac(read_dct(cover_jpeg).Y)
    with pytest.raises(EmbedError):
        get_method("f5").embed(carrier_from_bytes(cover_jpeg), b"z" * nzac, EmbedOptions(key="k"))


@pytest.mark.parametrize("key", ["nsf5", "juniward"])
def test_simulators_record_the_changes_they_make(cover_jpeg, key):
    method = get_method(key)
    nzac = nonzero_ac(read_dct(cover_jpeg).Y)
    low = method.embed(carrier_from_bytes(cover_jpeg), b"a" * int(0.1 * nzac / 8), EmbedOptions(key="1"))
    high = method.embed(carrier_from_bytes(cover_jpeg), b"a" * int(0.4 * nzac / 8), EmbedOptions(key="1"))
    again = method.embed(carrier_from_bytes(cover_jpeg), b"a" * int(0.4 * nzac / 8), EmbedOptions(key="1"))
    assert high.data == again.data
    for stego in (low, high):
        simulation = stego.sidecar_extra["simulation"]
        changed, cover_nzac = count_changes(cover_jpeg, stego.data)
        assert changed == simulation["changed_coefficients"] > 0
        assert cover_nzac == simulation["cover_nzac"] == nzac
    assert high.sidecar_extra["simulation"]["changed_coefficients"] > low.sidecar_extra["simulation"]["changed_coefficients"]
    assert method.extract(carrier_from_bytes(high.data)) == []


def test_juniward_refuses_sides_that_are_not_multiples_of_8(photo):
    cover = carrier_from_bytes(jpeg_bytes(photo.resize((60, 52))))
    with pytest.raises(EmbedError, match="multiples of 8"):
        get_method("juniward").embed(cover, b"q" * 10, EmbedOptions(key="1"))


@needs_outguess
def test_outguess_round_trip(cover_jpeg):
    method = get_method("outguess")
    payload = bytes(range(1, 120))
    stego = method.embed(carrier_from_bytes(cover_jpeg), payload, EmbedOptions(key="garden"))
    assert stego.key == "garden" and stego.data != cover_jpeg
    decoded = carrier_from_bytes(stego.data)
    assert [x.payload for x in method.extract(decoded, key="garden")] == [payload]
    assert payload not in [x.payload for x in method.extract(decoded, key="wrong")]
    assert method.embed(carrier_from_bytes(cover_jpeg), payload, EmbedOptions(key="garden")).data == stego.data


@needs_outguess
def test_outguess_refuses_a_cover_it_reads_back_wrong(cover_jpeg, monkeypatch):
    # OutGuess 0.4 reads another payload back from about 2% of small, smooth covers (seen
    # on crops of GCompris' WebP photographs); such a cover must fail the embedding, so the
    # builder moves to another cover instead of failing the job.
    from stegwatch.stego import outguess

    monkeypatch.setattr(outguess, "extract_with_tool", lambda args, data: b"something else")
    with pytest.raises(EmbedError, match="reads back another payload"):
        get_method("outguess").embed(carrier_from_bytes(cover_jpeg), b"a payload of some length", EmbedOptions(key="k"))


@needs_outguess
def test_outguess_error_becomes_embed_error(photo):
    gray = carrier_from_bytes(_gray_jpeg(photo.convert("L"), 85))
    assert get_method("outguess").capacity(gray) == 0
    with pytest.raises(EmbedError, match="outguess"):
        get_method("outguess").embed(gray, b"into a grayscale JPEG", EmbedOptions(key="k"))


@needs_steghide
def test_steghide_round_trip(cover_jpeg):
    method = get_method("steghide")
    payload = bytes(range(1, 100))
    stego = method.embed(carrier_from_bytes(cover_jpeg), payload, EmbedOptions(key="pass phrase"))
    decoded = carrier_from_bytes(stego.data)
    assert [x.payload for x in method.extract(decoded, key="pass phrase")] == [payload]
    assert method.extract(decoded, key="not it") == []


@needs_steghide
@pytest.mark.skipif(not namespaces_available(), reason="no user namespaces here: steghide output cannot be seeded")
def test_steghide_is_deterministic_when_seeded(cover_jpeg):
    method = get_method("steghide")
    outputs = {method.embed(carrier_from_bytes(cover_jpeg), b"same" * 20, EmbedOptions(key="p")).data for _ in range(4)}
    assert len(outputs) == 1


def test_tool_runner_has_a_timeout_and_no_shell():
    with pytest.raises(subprocess.TimeoutExpired):
        run_tool(["sleep", "5"], timeout=0.2)
    result = run_tool(["echo", "$HOME;", "&&", "rm"])
    assert result.stdout == b"$HOME; && rm\n"


def test_a_missing_tool_is_skipped_cleanly(tmp_path, monkeypatch):
    from stegwatch.corpus.build import build_corpus
    from stegwatch.corpus.validate import validate_corpus
    from stegwatch.stego import base as _base

    real_which = shutil.which
    monkeypatch.setattr(_base.shutil, "which", lambda name, *a, **k: None if name == "outguess" else real_which(name, *a, **k))
    report = build_corpus(tmp_path / "c", preset="smoke", seed=5)
    assert "outguess" in report.skipped_methods and "apt-get install outguess" in report.skipped_methods["outguess"]
    assert not [e for e in report.entries if e.method == "outguess"]
    assert not report.errors
    assert not (tmp_path / "c" / "stego" / "outguess").exists()
    assert validate_corpus(tmp_path / "c").ok


@needs_outguess
def test_validation_without_the_tool_reports_unverified(corpus_copy, monkeypatch):
    from stegwatch.corpus.validate import validate_corpus
    from stegwatch.stego import base as _base

    real_which = shutil.which
    monkeypatch.setattr(_base.shutil, "which", lambda name, *a, **k: None if name == "outguess" else real_which(name, *a, **k))
    report = validate_corpus(corpus_copy)
    unverified = report.unverified
    assert unverified and all(c.method == "outguess" for c in unverified)
    assert "apt-get install outguess" in unverified[0].reason


@pytest.mark.parametrize("key", ["nsf5", "juniward"])
def test_simulators_refuse_more_than_one_bit_per_coefficient(cover_jpeg, key):
    nzac = nonzero_ac(read_dct(cover_jpeg).Y)
    with pytest.raises(EmbedError, match="more than 1"):
        get_method(key).embed(carrier_from_bytes(cover_jpeg), b"b" * (nzac // 8 + 10), EmbedOptions(key="1"))


def test_unreadable_jpeg_gives_no_extraction_and_no_crash(cover_jpeg):
    truncated = cover_jpeg[: len(cover_jpeg) // 2]
    from stegwatch.format.files import CarrierFile

    carrier = CarrierFile(path="cut.jpg", data=truncated, image=Image.new("RGB", (8, 8)))
    for key in ("jsteg", "f5", "outguess", "steghide"):
        assert not [x for x in get_method(key).extract(carrier, key="k") if x.payload_shaped]


def test_a_cmyk_jpeg_cover_is_an_embed_error_for_juniward_not_a_crash():
    """libjpeg cannot give a CMYK JPEG's luminance: the builder then tries the next cover, as for any EmbedError."""
    import io

    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 4), dtype=np.uint8)
    Image.fromarray(noise, "CMYK").save(buffer, "JPEG", quality=90)
    with pytest.raises(EmbedError, match="luminance"):
        get_method("juniward").embed(carrier_from_bytes(buffer.getvalue()), b"x" * 8, EmbedOptions(key="k"))


@pytest.mark.parametrize("mode", ["CMYK", "PA"])
@pytest.mark.parametrize("method", ["exif", "eoi"])
def test_a_cover_png_cannot_hold_is_an_embed_error(mode, method):
    image = Image.new("CMYK", (16, 16)) if mode == "CMYK" else Image.new("P", (16, 16)).convert("PA")
    with pytest.raises(EmbedError, match=f"cannot write a {mode} image as PNG"):
        get_method(method).embed(image, b"hello", EmbedOptions(carrier="PNG"))


def _open_descriptors() -> int:
    import os

    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


@pytest.mark.parametrize("in_memory", [True, False], ids=["memfd", "temporary-folder"])
def test_coefficients_read_and_written_through_either_scratch_file_are_the_same(cover_jpeg, in_memory, monkeypatch):
    """jpeglib opens files by name: on Linux the bytes go through an in-memory file, elsewhere a temporary folder;
    both give the same coefficients, the same written file and the same luminance, and keep no descriptor open."""
    from stegwatch.stego import dct

    reference = read_dct(cover_jpeg)
    written = dct.write_dct(reference)
    luma = dct.read_luma_spatial(cover_jpeg)
    if not in_memory:
        monkeypatch.setattr(dct, "_memory_file", lambda: None)
    before = _open_descriptors()
    for _ in range(3):
        again = read_dct(cover_jpeg)
        assert all(np.array_equal(getattr(again.jpeg, c), getattr(reference.jpeg, c)) for c in ("Y", "Cb", "Cr", "qt"))
        assert dct.write_dct(again) == written
        assert np.array_equal(dct.read_luma_spatial(cover_jpeg), luma)
    with pytest.raises(ValueError, match="cannot read JPEG coefficients"):
        read_dct(cover_jpeg[:200])
    assert _open_descriptors() == before
    with dct.scratch_path(b"abc") as path:
        assert path.startswith("/proc/self/fd/") == in_memory or not hasattr(__import__("os"), "memfd_create")
        assert open(path, "rb").read() == b"abc"
