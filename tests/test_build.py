import hashlib
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from stegwatch.corpus import negatives
from stegwatch.corpus.build import (
    JOURNAL,
    PRESETS,
    STATE_DIR,
    BuildConflict,
    build_corpus,
    plan_jobs,
    stego_variant,
)
from stegwatch.format.manifest import read_manifest, read_sidecar
from stegwatch.stego import METHODS

from .conftest import png_bytes, random_rgb


def _tree_digest(root):
    """sha256 of every corpus file under root but the build journal (whose line order is completion order)."""
    digests = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and STATE_DIR not in path.parts:
            digests[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def test_default_preset_meets_the_corpus_targets():
    preset = PRESETS["default"]
    jobs = plan_jobs(preset, 0)
    clean = [j for j in jobs if j.kind in ("photo", "negative")]
    assert len(clean) >= 6000
    per_category = {c: sum(1 for j in jobs if j.name == c) for c in negatives.GENERATORS}
    assert min(per_category.values()) >= 300
    per_method = {m: sum(1 for j in jobs if j.kind == "stego" and j.name == m) for m in METHODS}
    assert all(per_method[m] >= (300 if METHODS[m].category == "dct" else 600) for m in METHODS)
    assert sum(1 for j in jobs if j.kind == "jpeg") >= 1000


def test_rate_sweep_and_bit_orders_are_balanced_in_the_default_preset():
    n = PRESETS["default"].stego_per_method
    for key in ("lsb.rgb", "lsbm", "lsbr"):
        variants = [stego_variant(METHODS[key], i) for i in range(n)]
        rates = {v[1] for v in variants if v[1] != "text" and not str(v[1]).startswith("unframed:")}
        assert rates == {0.05, 0.1, 0.2, 0.4}
    for key in ("lsb.rgb", "alpha", "palette"):
        variants = [stego_variant(METHODS[key], i)[1] for i in range(n)]
        unframed = [v for v in variants if str(v).startswith("unframed:")]
        assert len(unframed) >= n / 3 and {v.split(":")[1] for v in unframed} == {"0.05", "0.1", "0.2", "0.4"}
    orders = [stego_variant(METHODS["palette"], i)[0] for i in range(n)]
    assert orders.count("msb-first") == orders.count("lsb-first")


def test_same_seed_gives_byte_identical_corpora_whatever_the_worker_count(smoke_corpus, tmp_path):
    other = tmp_path / "again"
    build_corpus(other, preset="smoke", seed=7, workers=2)
    assert (other / "manifest.jsonl").read_bytes() == (smoke_corpus / "manifest.jsonl").read_bytes()
    assert _tree_digest(other) == _tree_digest(smoke_corpus)


def test_rerun_changes_nothing(corpus_copy):
    before = {p: p.stat().st_mtime_ns for p in corpus_copy.rglob("*") if p.is_file() and STATE_DIR not in p.parts}
    assert before
    report = build_corpus(corpus_copy, preset="smoke", seed=7)
    assert report.jobs_run == 0 and report.jobs_reused == report.jobs_total
    after = {p: p.stat().st_mtime_ns for p in corpus_copy.rglob("*") if p.is_file() and STATE_DIR not in p.parts}
    assert before == after


def test_interrupted_build_resumes(corpus_copy, smoke_corpus):
    journal = corpus_copy / STATE_DIR / JOURNAL
    lines = journal.read_text().splitlines()
    # Simulate a kill: the journal lost its last 30 lines and the last one was cut mid-write,
    # one finished file was deleted and another damaged, and the manifest was never written.
    journal.write_text("\n".join(lines[:-30]) + "\n" + lines[-30][:25])
    entries = read_manifest(corpus_copy).entries
    (corpus_copy / entries[0].file_path).unlink()
    (corpus_copy / entries[1].file_path).write_bytes(b"damaged")
    (corpus_copy / "manifest.jsonl").unlink()
    report = build_corpus(corpus_copy, preset="smoke", seed=7)
    assert report.jobs_run == 32
    assert _tree_digest(corpus_copy) == _tree_digest(smoke_corpus)


def test_other_settings_into_the_same_folder_are_refused(corpus_copy):
    with pytest.raises(BuildConflict):
        build_corpus(corpus_copy, preset="smoke", seed=99)


def test_manifest_lines_are_complete_and_consistent(smoke_corpus):
    entries = read_manifest(smoke_corpus, strict=True).entries
    by_path = {e.file_path: e for e in entries}
    categories = {e.category for e in entries if e.label == "clean"}
    assert categories == {"photo"} | set(negatives.GENERATORS)
    assert {e.method for e in entries if e.label == "stego"} == set(METHODS)
    for entry in entries:
        data = (smoke_corpus / entry.file_path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry.sha256
        image = Image.open(smoke_corpus / entry.file_path)
        assert (image.format, image.mode, image.width, image.height) == (entry.format, entry.mode, entry.width, entry.height)
        if entry.category in negatives.CONSTRAINTS:
            assert entry.constraint == negatives.CONSTRAINTS[entry.category]
        if entry.label == "stego":
            sidecar = read_sidecar(smoke_corpus / entry.file_path)
            cover = by_path[sidecar.clean_file]
            assert cover.label == "clean" and cover.cover_id == entry.cover_id
            assert sidecar.embedding.technique == METHODS[entry.method].technique
            assert (sidecar.embedding.bit_order is not None) == METHODS[entry.method].ordered
            assert entry.payload_bpp == pytest.approx(8 * entry.payload_bytes / (entry.width * entry.height), abs=1e-6)


def test_sizes_and_formats_vary_but_are_mostly_256(smoke_corpus):
    entries = read_manifest(smoke_corpus).entries
    photos = [e for e in entries if e.category == "photo"]
    assert sum(e.width == 256 for e in photos) > len(photos) / 2
    assert {e.format for e in entries} >= {"PNG", "JPEG", "GIF"}


def test_negatives_use_photo_crops_except_synthetic_categories(smoke_corpus):
    for entry in read_manifest(smoke_corpus).entries:
        if entry.category == "patterns":
            assert entry.cover_source == "synthetic"
        elif entry.label == "clean":
            assert entry.cover_source.startswith("pypi:")  # smoke: the built-in photographs only


def test_user_covers_are_added_and_bad_ones_are_reported(tmp_path):
    covers = tmp_path / "mine"
    (covers / "sub").mkdir(parents=True)
    (covers / "a.png").write_bytes(png_bytes(random_rgb(1, 80, 64)))
    (covers / "sub" / "b.png").write_bytes(png_bytes(random_rgb(2, 64, 64)))
    (covers / "dup.png").write_bytes((covers / "a.png").read_bytes())
    (covers / "empty.png").write_bytes(b"")
    (covers / "notes.txt").write_text("not an image")
    (covers / "cut.png").write_bytes(png_bytes(random_rgb(3, 64, 64))[:200])
    report = build_corpus(tmp_path / "c", preset="smoke", seed=1, covers=[covers, tmp_path / "missing"])
    reasons = {os.path.basename(e.path): e.reason for e in report.errors}
    assert set(reasons) == {"empty.png", "notes.txt", "cut.png", "missing"}
    assert "empty" in reasons["empty.png"] and "not an image" in reasons["notes.txt"]
    user = [e for e in report.entries if e.cover_source == "user"]
    clean_user = [e for e in user if e.label == "clean"]
    assert len(clean_user) == 2  # the duplicate is one cover
    assert len({e.cover_id for e in clean_user}) == 2
    for entry in clean_user:
        original = covers / ("a.png" if entry.width == 80 else "sub/b.png")
        assert (tmp_path / "c" / entry.file_path).read_bytes() == original.read_bytes()


def test_jpeg_covers_are_clean_files_in_three_qualities_grayscale_and_colour(smoke_corpus):
    entries = read_manifest(smoke_corpus).entries
    jpeg_covers = [e for e in entries if e.file_path.startswith("clean/jpeg/")]
    assert len(jpeg_covers) == PRESETS["smoke"].jpeg_covers
    assert {e.file_path.rsplit("-q", 1)[1] for e in jpeg_covers} == {"75.jpg", "85.jpg", "95.jpg"}
    assert {e.mode for e in jpeg_covers} == {"L", "RGB"}
    by_path = {e.file_path: e for e in entries}
    dct = [e for e in entries if e.category == "dct"]
    assert {e.method for e in dct} == {"jsteg", "f5", "nsf5", "juniward", "outguess", "steghide"}
    for entry in dct:
        cover = read_sidecar(smoke_corpus / entry.file_path).clean_file
        assert by_path[cover].format == "JPEG"
        assert entry.payload_bpnzac is not None and entry.payload_bpnzac > 0
        assert (entry.payload_sha256 is None) == (entry.method in ("nsf5", "juniward"))


def test_user_jpegs_join_the_jpeg_pool_untouched(tmp_path):
    from stegwatch.corpus.build import BuildContext, clean_file, cover_candidates
    from stegwatch.corpus.sources import builtin_sources, scan_user_covers

    from .conftest import jpeg_bytes

    (tmp_path / "mine").mkdir()
    original = jpeg_bytes(random_rgb(4, 64, 64), quality=70)
    (tmp_path / "mine" / "holiday.jpg").write_bytes(original)
    (tmp_path / "mine" / "drawing.png").write_bytes(png_bytes(random_rgb(5, 64, 64)))
    covers, errors = scan_user_covers([tmp_path / "mine"])
    assert not errors
    ctx = BuildContext(seed=0, preset=PRESETS["smoke"], sources=builtin_sources(), user_covers=tuple(covers), out=tmp_path)
    holiday = ("user", "", next(i for i, c in enumerate(covers) if c.format == "JPEG"))
    drawing = ("user", "", next(i for i, c in enumerate(covers) if c.format == "PNG"))
    assert holiday in cover_candidates(ctx, METHODS["jsteg"]) and drawing not in cover_candidates(ctx, METHODS["jsteg"])
    assert clean_file(ctx, holiday).data == original


def test_journal_lines_are_json(smoke_corpus):
    for line in (smoke_corpus / STATE_DIR / JOURNAL).read_text().splitlines():
        record = json.loads(line)
        assert set(record) == {"job", "entries"}


def test_failed_jobs_are_the_jobs_that_failed_whatever_their_kind_and_not_unusable_covers():
    from stegwatch.corpus.build import BuildReport
    from stegwatch.format.records import FileError

    cover = FileError(path="mine/empty.png", reason="empty file")
    jobs = [FileError(path=f"{kind}::0", reason="boom") for kind in ("photo", "jpeg", "user", "negative", "stego")]
    report = BuildReport(out="c", preset="smoke", seed=0, entries=[], jobs_total=5, jobs_run=5, jobs_reused=0, seconds=0.0,
                         bytes_on_disk=0, cover_errors=[cover], failed_jobs=jobs)
    assert report.failed_jobs == jobs
    assert report.errors == [cover, *jobs]
    assert [e["path"] for e in report.to_json_dict()["errors"]] == ["mine/empty.png", *(j.path for j in jobs)]


def test_an_unknown_preset_is_a_corpus_error_and_makes_no_folder(tmp_path):
    from stegwatch.errors import CorpusError

    with pytest.raises(CorpusError, match="unknown preset 'huge'; choose from smoke, default"):
        build_corpus(tmp_path / "c", preset="huge")
    assert not (tmp_path / "c").exists()


def test_preset_corpus_builds_in_root_with_seed_0_unless_told(tmp_path, monkeypatch):
    from stegwatch.corpus import build

    calls = []
    monkeypatch.setattr(build, "build_corpus", lambda out, **kw: calls.append((out, kw)) or build.BuildReport(
        out=str(out), preset=kw["preset"], seed=kw["seed"], entries=[], jobs_total=0, jobs_run=0, jobs_reused=0,
        seconds=0.0, bytes_on_disk=0))
    assert build.preset_corpus("smoke", root=tmp_path, workers=2) == tmp_path / "smoke-corpus"
    assert build.preset_corpus("default", seed=5, root=tmp_path) == tmp_path / "default-corpus"
    assert [(out, kw["preset"], kw["seed"], kw["workers"]) for out, kw in calls] == [
        (tmp_path / "smoke-corpus", "smoke", 0, 2), (tmp_path / "default-corpus", "default", 5, 1)]
    assert build.preset_corpus.__kwdefaults__["root"] == build.PRESET_CORPUS_ROOT == Path("build")
