import json

import numpy as np
from PIL import Image

from stegwatch.corpus.validate import validate_corpus
from stegwatch.format.manifest import read_manifest

from .conftest import png_bytes


def _entry(root, **match):
    return next(e for e in read_manifest(root).entries if all(getattr(e, k) == v for k, v in match.items()))


def test_smoke_corpus_passes(smoke_corpus):
    report = validate_corpus(smoke_corpus)
    assert report.ok
    by_method = report.by_method()
    assert all(row.passed == row.checked > 0 for row in by_method.values())
    # Clean files hold no payload-shaped message, except the metadata_text negatives' non-blank
    # EXIF UserComments: ordinary camera and user text that the exif extractor cannot tell from a payload
    # (issue 14's look-alikes; the detectors have to learn the difference).
    shaped = {category: row.payload_shaped for category, row in report.by_clean_category().items() if row.payload_shaped}
    assert set(shaped) <= {"metadata_text"}
    findings = [f for c in report.checks if c.status == "payload-found" for f in c.found]
    assert all(f["method"] == "exif" and f["stream"] == "EXIF UserComment" for f in findings)


def test_parallel_validation_agrees(smoke_corpus):
    one = validate_corpus(smoke_corpus, workers=1).to_json_dict()
    two = validate_corpus(smoke_corpus, workers=2).to_json_dict()
    assert one == two


def test_a_stego_file_whose_payload_was_damaged_fails(corpus_copy):
    import hashlib

    entry = _entry(corpus_copy, method="lsb.rgb")
    path = corpus_copy / entry.file_path
    image = Image.open(path)
    pixels = np.array(image)
    pixels.reshape(-1)[:8] ^= 1  # flip the first payload byte's bits
    Image.fromarray(pixels).save(path, image.format)
    # Keep the manifest's file hash honest, so only the payload check can fail.
    lines = (corpus_copy / "manifest.jsonl").read_text().splitlines()
    new_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    lines = [line.replace(entry.sha256, new_sha) for line in lines]
    (corpus_copy / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    report = validate_corpus(corpus_copy)
    assert not report.ok
    failed = [c for c in report.checks if c.status == "failed"]
    assert [c.file_path for c in failed] == [entry.file_path]
    assert "payload_sha256" in failed[0].reason


def test_changed_bytes_missing_sidecar_and_unreadable_file_are_reported(corpus_copy):
    changed = _entry(corpus_copy, method="eoi")
    (corpus_copy / changed.file_path).write_bytes((corpus_copy / changed.file_path).read_bytes() + b"x")
    no_sidecar = _entry(corpus_copy, method="alpha")
    (corpus_copy / (no_sidecar.file_path + ".json")).unlink()
    broken = _entry(corpus_copy, category="photo")
    (corpus_copy / broken.file_path).write_bytes(b"")
    report = validate_corpus(corpus_copy)
    status = {c.file_path: (c.status, c.reason) for c in report.checks}
    assert status[changed.file_path] == ("failed", "file bytes differ from the manifest's sha256")
    assert status[no_sidecar.file_path][1].startswith("no sidecar")
    assert status[broken.file_path] == ("error", "empty file (0 bytes)")
    assert report.by_clean_category()["photo"].errors == 1
    assert len(report.checks) == len(read_manifest(corpus_copy).entries)


def test_a_message_planted_in_a_clean_file_is_reported(corpus_copy):
    import hashlib

    entry = _entry(corpus_copy, category="rgb_no_alpha")
    path = corpus_copy / entry.file_path
    data = path.read_bytes() + b"a message someone slipped into a clean file\x00"
    path.write_bytes(data)
    lines = (corpus_copy / "manifest.jsonl").read_text().replace(entry.sha256, hashlib.sha256(data).hexdigest())
    (corpus_copy / "manifest.jsonl").write_text(lines)
    report = validate_corpus(corpus_copy)
    check = next(c for c in report.checks if c.file_path == entry.file_path)
    assert check.status == "payload-found" and check.found[0]["method"] == "eoi"
    assert report.by_clean_category()["rgb_no_alpha"].payload_shaped == 1
    assert report.ok  # a finding on a clean file is reported, not a failed label


def test_manifest_line_escaping_the_root_is_an_error_not_a_read(corpus_copy):
    manifest = corpus_copy / "manifest.jsonl"
    line = json.loads(manifest.read_text().splitlines()[0])
    line["file_path"] = "../../etc/passwd"
    manifest.write_text(manifest.read_text() + json.dumps(line) + "\n")
    report = validate_corpus(corpus_copy)
    assert not report.ok
    assert "escapes" in report.manifest_errors[0].reason
    assert report.manifest_errors[0].where.endswith(f":{len(manifest.read_text().splitlines())}")


def test_planted_clean_file_with_png_bytes(tmp_path):
    # A tiny corpus written by hand: one clean PNG, checked without the builder.
    from stegwatch.format.manifest import write_manifest
    from stegwatch.format.records import ManifestEntry
    import hashlib

    data = png_bytes(Image.new("RGB", (8, 8), (10, 20, 30)))
    (tmp_path / "a.png").write_bytes(data)
    write_manifest(tmp_path, [ManifestEntry(file_path="a.png", label="clean", method=None, category="photo", cover_id="x",
                                            sha256=hashlib.sha256(data).hexdigest(), format="PNG", mode="RGB", width=8, height=8)])
    report = validate_corpus(tmp_path)
    assert report.ok and report.checks[0].status == "clean"


def test_a_simulated_file_changed_after_the_fact_fails_its_change_rate(corpus_copy):
    import hashlib

    from stegwatch.stego.dct import read_dct, write_dct

    entry = _entry(corpus_copy, method="nsf5")
    path = corpus_copy / entry.file_path
    image = read_dct(path.read_bytes())
    flat = image.Y.reshape(-1)
    flat[1] += 1  # one more changed coefficient than the sidecar claims
    data = write_dct(image)
    path.write_bytes(data)
    manifest = corpus_copy / "manifest.jsonl"
    manifest.write_text(manifest.read_text().replace(entry.sha256, hashlib.sha256(data).hexdigest()))
    report = validate_corpus(corpus_copy)
    check = next(c for c in report.checks if c.file_path == entry.file_path)
    assert check.status == "failed" and "the sidecar claims" in check.reason
    others = [c for c in report.checks if c.method in ("nsf5", "juniward") and c.file_path != entry.file_path]
    assert others and all(c.status == "passed" and c.proof == "change rate" for c in others)


def test_jpeg_labels_are_proven_by_extraction_or_change_rate(smoke_corpus):
    report = validate_corpus(smoke_corpus)
    rows = report.by_method()
    for key in ("jsteg", "f5", "outguess", "steghide"):
        if key in rows:
            assert rows[key].passed == rows[key].checked and rows[key].by_change_rate == 0
    for key in ("nsf5", "juniward"):
        assert rows[key].passed == rows[key].by_change_rate == rows[key].checked > 0


def test_extract_file_reads_the_sidecar_for_bit_order_and_key(smoke_corpus):
    from stegwatch.corpus.validate import extract_file
    from stegwatch.format.manifest import read_sidecar

    entry = _entry(smoke_corpus, method="lsbm")
    path = smoke_corpus / entry.file_path
    record = extract_file(path)
    assert record["error"] is None and record["path"] == str(path)
    assert record["format"] == entry.format and record["size"] == [entry.width, entry.height]
    found = record["streams"]["lsbm"]
    assert found and found[0]["length"] == entry.payload_bytes
    json.dumps(record)  # JSON-ready
    # A key given by the caller wins over the sidecar's: with a wrong one, the payload is not found.
    wrong = extract_file(path, method="lsbm", key="not-the-key")["streams"]
    assert list(wrong) == ["lsbm"] and found[0]["preview"] not in [x["preview"] for x in wrong["lsbm"]]
    ordered = smoke_corpus / _entry(smoke_corpus, method="palette").file_path
    bit_order = read_sidecar(ordered).embedding.bit_order
    candidates = extract_file(ordered, method="palette")["streams"]["palette"]
    assert candidates and {x["bit_order"] for x in candidates} == {bit_order}


def test_extract_file_records_an_unreadable_file_and_refuses_an_unknown_method(tmp_path):
    import pytest

    from stegwatch.corpus.validate import extract_file
    from stegwatch.errors import ConfigError

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n")
    record = extract_file(bad)
    assert record["error"] and record["streams"] == {} and "format" not in record
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        extract_file(bad, method="nope")
