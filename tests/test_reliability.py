"""Hostile input and faults (issue 17): each case fails cleanly, with a reason, and never hangs.

docs/reliability.md lists every class of bad input or fault, what stegwatch
does about it, and which test here shows it.
"""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from stegwatch.cli import app
from stegwatch.format.files import DEFAULT_LIMITS, UnreadableFile, carrier_from_bytes, load_carrier
from stegwatch.format.manifest import EmptyCorpus, read_manifest

from .conftest import png_bytes, random_rgb

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _one_line_error(result, code: int = 2) -> str:
    """The command failed with ``code`` and a message, not a traceback."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result.output


# --- empty and duplicated manifests (items 6 and 7) ------------------------------------------


def _manifest_lines(corpus: Path) -> list[str]:
    return (corpus / "manifest.jsonl").read_text().splitlines()


@pytest.mark.parametrize("verb", [
    ["validate-streams", "{c}"],
    ["dataset-metrics", "{c}", "--no-validate"],
    ["evaluate", "--model", "v3", "--corpus", "{c}", "--latency-sample", "0", "--workers", "1"],
    ["fp-regression", "--model", "v3", "--corpus", "{c}", "--workers", "1"],
    ["monitor", "--model-version", "v3", "--dataset-path", "{c}", "--db", "{c}/h.db", "--dashboard", "{c}/d/dash.md",
     "--workers", "1"],
    ["train", "--model", "v3", "--corpus", "{c}", "--out", "{c}/model", "--workers", "1"],
    ["baseline", "--models", "v3", "--corpus", "{c}", "--out", "{c}/report.md", "--workers", "1"],
    ["ablate", "--corpus", "{c}", "--by", "category", "--workers", "1"],
])
def test_an_empty_corpus_is_a_clear_error_in_every_verb(tmp_path, verb):
    (tmp_path / "manifest.jsonl").write_text("\n")
    result = invoke(*[part.format(c=tmp_path) for part in verb])
    assert "empty corpus" in _one_line_error(result)


def test_a_corpus_whose_files_are_all_unreadable_is_a_clear_error(corpus_copy):
    for line in _manifest_lines(corpus_copy):
        (corpus_copy / json.loads(line)["file_path"]).write_bytes(b"")
    result = invoke("evaluate", "--model", "v3", "--corpus", corpus_copy, "--latency-sample", "0", "--workers", "1")
    assert "no file of the corpus can be used" in _one_line_error(result)


def test_a_file_listed_twice_is_refused_naming_both_lines(corpus_copy):
    lines = _manifest_lines(corpus_copy)
    clean = next(i for i, line in enumerate(lines) if json.loads(line)["label"] == "clean")
    lines.append(lines[clean])
    (corpus_copy / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    read = read_manifest(corpus_copy)
    path = json.loads(lines[clean])["file_path"]
    assert path not in {e.file_path for e in read.entries}
    assert [e.reason for e in read.errors] == [
        f"file_path {path!r} is listed twice (lines {clean + 1} and {len(lines)}); both lines are refused"]
    result = invoke("evaluate", "--model", "v3", "--corpus", corpus_copy, "--latency-sample", "0", "--workers", "1", "--json")
    metrics = json.loads(result.stdout)
    assert metrics["false_positive_rate"]["n"] == sum(json.loads(x)["label"] == "clean" for x in lines[:-1]) - 1
    validated = invoke("validate-streams", corpus_copy, "--json", "--workers", "1")
    assert validated.exit_code == 1 and "listed twice" in validated.stdout


def test_the_manifest_reader_refuses_an_empty_manifest(tmp_path):
    (tmp_path / "manifest.jsonl").write_text("")
    with pytest.raises(EmptyCorpus, match="empty corpus"):
        read_manifest(tmp_path)


# --- files whose structure breaks off after the first frame (item 14) ------------------------


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _three_frame_gif() -> bytes:
    frames = [random_rgb(seed, 64, 64).quantize(64) for seed in range(3)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])


def _png_chunks(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, type) of every chunk of a PNG."""
    chunks, i = [], 8
    while i + 12 <= len(data):
        length = int.from_bytes(data[i:i + 4], "big")
        chunks.append((i, data[i + 4:i + 8]))
        i += 12 + length
    return chunks


def test_a_gif_cut_in_its_last_frame_is_an_error_record_not_a_clean_image(tmp_path):
    gif = _three_frame_gif()
    assert Image.open(io.BytesIO(gif)).n_frames == 3
    cut = tmp_path / "cut.gif"
    cut.write_bytes(gif[: len(gif) - 200])  # inside the third frame's image data
    with pytest.raises(UnreadableFile, match="truncated or corrupt GIF"):
        load_carrier(cut)
    from stegwatch.detectors import load_detector

    for model in ("v3", "v4"):
        [record] = load_detector(model).detect([str(cut)])
        assert record.error and "truncated" in record.error and record.is_stego is None and record.score is None


def test_a_png_cut_after_its_pixels_or_with_a_broken_chunk_is_refused():
    png = png_bytes(random_rgb(3, 48, 48))
    with pytest.raises(UnreadableFile, match="truncated"):
        carrier_from_bytes(png[:-12])  # IEND missing: Pillow alone decodes it
    # A private chunk after the pixels, with one bit flipped: Pillow never reads it, its CRC fails.
    iend = next(offset for offset, kind in _png_chunks(png) if kind == b"IEND")
    body = b"prVt" + b"anything"
    chunk = len(body[4:]).to_bytes(4, "big") + body + (zlib.crc32(body) ^ 1).to_bytes(4, "big")
    broken = png[:iend] + chunk + png[iend:]
    assert Image.open(io.BytesIO(broken)).load() is not None
    with pytest.raises(UnreadableFile, match="CRC"):
        carrier_from_bytes(broken)
    # A trailer after IEND (the eoi method, camera thumbnails) is not a fault.
    assert carrier_from_bytes(png + b"payload\x00").image.size == (48, 48)


# --- memory per file (item 15) ----------------------------------------------------------------

_PEAK_SCRIPT = """
import resource, sys
from stegwatch.detectors import load_detector
detector = load_detector("v4")
[record] = detector.detect([sys.argv[1]])
print(record.error or "ok", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _scan_peak(path: Path) -> tuple[str, int]:
    """(error or "ok", peak resident memory in bytes) of scanning one file with V4 in a fresh process."""
    done = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(path)], capture_output=True, text=True, timeout=300,
                          env=os.environ | {"STEGWATCH_FEATURE_CACHE": str(path.parent / "cache.sqlite")})
    assert done.returncode == 0, done.stderr
    verdict, kib = done.stdout.split()[-2:]
    return verdict, int(kib) * 1024


def test_a_highly_compressible_huge_png_is_refused_from_its_header(tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("RGB", (7000, 7000)).save(bomb)  # 49 megapixels in about 150 KB
    assert bomb.stat().st_size < 300_000
    with pytest.raises(UnreadableFile, match="decompression bomb"):
        load_carrier(bomb)


@pytest.mark.slow
def test_peak_memory_for_the_largest_accepted_file_stays_under_one_gigabyte(tmp_path):
    side = int(DEFAULT_LIMITS.max_pixels ** 0.5)
    largest = tmp_path / "largest.png"
    # RGBA is the widest mode; the noise in the alpha LSBs makes every statistic do its full work.
    pixels = np.full((side, side, 4), 200, dtype=np.uint8)
    pixels[..., 3] ^= np.random.default_rng(0).integers(0, 2, size=(side, side), dtype=np.uint8)
    Image.fromarray(pixels, "RGBA").save(largest)
    verdict, peak = _scan_peak(largest)
    assert verdict == "ok"
    assert peak < 1024**3, f"peak {peak / 2**20:.0f} MiB"
