"""The training build (issue 16): exact cover/stego pairs of the learned methods, train split only."""

import hashlib
import json
import shutil
from collections import Counter, defaultdict

import pytest
from PIL import Image

from stegwatch.corpus.build import (
    LEARNED_METHODS,
    PAYLOAD_VARIANTS,
    PRESETS,
    RATES_BPP,
    STATE_DIR,
    UNFRAMED,
    _preset_fingerprint,
    build_corpus,
    check_cover_split,
    cover_stego_pairs,
    plan_jobs,
    stego_variant,
)
from stegwatch.corpus.sources import builtin_sources
from stegwatch.corpus.validate import check_entry
from stegwatch.errors import CorpusError
from stegwatch.format.files import DEFAULT_LIMITS
from stegwatch.format.manifest import read_manifest, read_sidecar
from stegwatch.format.records import ManifestEntry, split_of
from stegwatch.stego import METHODS

SEED = 5


def _available(methods=LEARNED_METHODS):
    return [m for m in methods if not METHODS[m].missing_tools()]


@pytest.fixture(scope="session")
def training_smoke(tmp_path_factory):
    """(folder, report) of a training-smoke build (read-only for tests)."""
    root = tmp_path_factory.mktemp("training-smoke") / "corpus"
    report = build_corpus(root, preset="training-smoke", seed=SEED, workers=1)
    assert not report.errors
    return root, report


def _tree_digest(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and STATE_DIR not in p.parts}


def test_training_preset_plans_3000_pairs_of_each_learned_method_and_nothing_else():
    preset = PRESETS["training"]
    jobs = plan_jobs(preset, 0)
    per_method = Counter(j.name for j in jobs if j.kind == "stego")
    assert per_method == {m: 3000 for m in LEARNED_METHODS}
    assert Counter(j.kind for j in jobs) == {"photo": 3000, "jpeg": 3000, "stego": 3000 * len(LEARNED_METHODS)}
    assert preset.cover_split == "train" and preset.shared_covers and preset.covers == "listed"
    # every photo crop is an RGB PNG: each can carry lsbm, lsbr and lsb.rgb
    assert {preset.photo_container(i) for i in range(3000)} == {("PNG", "RGB")}
    assert all(METHODS[m].accepts("PNG", "RGB") for m in ("lsbm", "lsbr", "lsb.rgb"))


@pytest.mark.parametrize("method", LEARNED_METHODS)
def test_training_payloads_span_the_method_rates_evenly(method):
    preset = PRESETS["training"]
    variants = Counter(stego_variant(METHODS[method], i, preset) for i in range(preset.stego_count(METHODS[method])))
    assert max(variants.values()) - min(variants.values()) <= 1  # evenly cycled
    payloads = {v for _, v in variants}
    if method == "lsb.rgb":  # random payloads only, framed and unframed, at every rate, both bit orders
        assert payloads == set(UNFRAMED) | set(RATES_BPP)
        assert {order for order, _ in variants} == {"msb-first", "lsb-first"}
    else:
        assert payloads == set(PAYLOAD_VARIANTS[method])  # the default preset's rates


def test_the_default_presets_plans_are_unchanged_by_the_training_fields():
    """Corpora built before the training fields existed must not be refused as built with other settings."""
    for name in ("smoke", "default"):
        fingerprint = _preset_fingerprint(PRESETS[name])
        assert set(fingerprint) == {"name", "photos", "negatives_per_category", "stego_per_method", "jpeg_covers",
                                    "dct_stego_per_method", "description", "covers"}
    assert _preset_fingerprint(PRESETS["training"])["cover_split"] == "train"


def test_only_train_split_covers_reach_the_build(training_smoke):
    root, report = training_smoke
    entries = read_manifest(root, strict=True).entries
    assert entries and all(e.split == "train" and split_of(e.cover_id) == "train" for e in entries)
    monitor = {s.cover_id for s in builtin_sources() if split_of(s.cover_id) == "monitor"}
    assert monitor  # the built-in photographs include monitor ones, and none of them is used
    assert not monitor & {e.cover_id for e in entries}
    # the photo crops spread over the colour photographs of the train split
    assert len({e.cover_id for e in entries if e.file_path.startswith("clean/photo-")}) == PRESETS["training-smoke"].photos


def test_a_file_from_a_monitor_cover_stops_the_build_before_the_manifest():
    monitor_id = next(s.cover_id for s in builtin_sources() if split_of(s.cover_id) == "monitor")
    stray = ManifestEntry(file_path="clean/photo-00000.png", label="clean", method=None, category="photo",
                          cover_id=monitor_id, sha256="ab" * 32, format="PNG", mode="RGB", width=8, height=8)
    with pytest.raises(CorpusError, match="train"):
        check_cover_split([stray], PRESETS["training-smoke"])
    check_cover_split([stray], PRESETS["smoke"])  # other presets take every split


def test_the_training_build_takes_no_user_covers(tmp_path):
    (tmp_path / "mine").mkdir()
    with pytest.raises(CorpusError, match="no --covers"):
        build_corpus(tmp_path / "c", preset="training-smoke", covers=[tmp_path / "mine"])
    assert not (tmp_path / "c").exists()


def test_every_stego_file_names_its_exact_cover_in_the_same_build(training_smoke):
    root, _ = training_smoke
    entries = read_manifest(root, strict=True).entries
    by_path = {e.file_path: e for e in entries}
    stego = [e for e in entries if e.label == "stego"]
    assert {e.method for e in stego} == set(_available())
    for entry in stego:
        cover = by_path[entry.cover_file]
        assert cover.label == "clean" and cover.method is None
        assert read_sidecar(root / entry.file_path).clean_file == entry.cover_file
        assert (cover.cover_id, cover.format, cover.mode, cover.width, cover.height) == (
            entry.cover_id, entry.format, entry.mode, entry.width, entry.height)
        with Image.open(root / cover.file_path) as a, Image.open(root / entry.file_path) as b:
            assert (a.format, a.mode, a.size) == (b.format, b.mode, b.size)
    assert all(e.cover_file is None for e in entries if e.label == "clean")


def test_covers_are_shared_across_methods(training_smoke):
    root, _ = training_smoke
    entries = read_manifest(root).entries
    carried = defaultdict(Counter)
    for entry in entries:
        if entry.label == "stego":
            carried[entry.cover_file][entry.method] += 1
    crops = [e.file_path for e in entries if e.file_path.startswith("clean/photo-")]
    assert crops and all(e.mode == "RGB" for e in entries if e.file_path in crops)
    for crop in crops:  # one clean crop carries one lsbm, one lsbr and one lsb.rgb file
        assert carried[crop] == {"lsbm": 1, "lsbr": 1, "lsb.rgb": 1}
    # stego job i of every JPEG method embeds into JPEG cover i. Only where cover i cannot carry the
    # payload does a job take another cover of the build: outguess cannot read grayscale JPEGs, J-UNIWARD's
    # simulation does not converge on every cover, and a small cover can be too small for the payload
    # (none of the last is the case for these methods at this seed).
    for entry in entries:
        if entry.method in ("jsteg", "f5", "nsf5", "steghide"):
            index = entry.file_path.rsplit("-", 1)[1].split(".")[0]
            assert entry.cover_file.startswith(f"clean/jpeg/photo-{index}-q")


def test_pairs_are_counted_per_method(training_smoke):
    root, report = training_smoke
    pairs = PRESETS["training-smoke"].stego_per_method
    assert report.pairs_by_method == {m: pairs for m in sorted(_available())}
    assert report.to_json_dict()["pairs_by_method"] == report.pairs_by_method
    entries = read_manifest(root).entries
    assert cover_stego_pairs(entries) == report.pairs_by_method
    # a stego file whose named cover is missing, or in another container, is no pair
    stego = next(e for e in entries if e.label == "stego")
    others = [e for e in entries if e.file_path != stego.cover_file]
    assert cover_stego_pairs(others)[stego.method] == pairs - 1


@pytest.mark.slow
def test_the_manifest_is_the_same_for_a_fixed_seed_whatever_the_worker_count(training_smoke, tmp_path):
    root, _ = training_smoke
    again = build_corpus(tmp_path / "again", preset="training-smoke", seed=SEED, workers=2)
    assert not again.errors
    assert (tmp_path / "again" / "manifest.jsonl").read_bytes() == (root / "manifest.jsonl").read_bytes()
    assert _tree_digest(tmp_path / "again") == _tree_digest(root)


def test_validation_refuses_a_cover_file_other_than_the_sidecars(training_smoke):
    root, _ = training_smoke
    entries = read_manifest(root).entries
    entry = next(e for e in entries if e.method == "lsbm")
    assert check_entry(root, DEFAULT_LIMITS, entry).status == "passed"
    other = next(e.file_path for e in entries if e.label == "clean" and e.file_path != entry.cover_file)
    check = check_entry(root, DEFAULT_LIMITS, entry.model_copy(update={"cover_file": other}))
    assert check.status == "failed" and "cover_file" in check.reason


def test_cover_file_is_optional_and_written_only_when_set(smoke_corpus):
    """Manifests without cover_file (every corpus built before it) read as before and keep their bytes."""
    lines = (smoke_corpus / "manifest.jsonl").read_text().splitlines()
    assert not any("cover_file" in line for line in lines)
    for line in lines[:50]:
        entry = ManifestEntry.model_validate(json.loads(line))
        assert entry.cover_file is None and entry.to_json_line() == line
    clean = json.loads(next(line for line in lines if '"clean"' in line))
    with pytest.raises(ValueError, match="cover_file"):
        ManifestEntry.model_validate({**clean, "cover_file": "clean/photo-00001.png"})
    stego = json.loads(next(line for line in lines if '"stego"' in line))
    with pytest.raises(ValueError):
        ManifestEntry.model_validate({**stego, "cover_file": "../outside.png"})


def test_a_resumed_training_build_changes_nothing(training_smoke, tmp_path):
    root, _ = training_smoke
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    report = build_corpus(copy, preset="training-smoke", seed=SEED)
    assert report.jobs_run == 0 and (copy / "manifest.jsonl").read_bytes() == (root / "manifest.jsonl").read_bytes()
