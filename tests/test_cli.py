import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from stegwatch.cli import app
from stegwatch.format.manifest import read_manifest

from .test_bad_input import bad_files

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_schema_verb_prints_valid_schemas():
    for name in ("manifest", "sidecar"):
        result = invoke("schema", name)
        assert result.exit_code == 0
        jsonschema.Draft202012Validator.check_schema(json.loads(result.stdout))
    assert invoke("schema", "nope").exit_code == 2


def test_methods_verb_lists_the_registry():
    rows = json.loads(invoke("methods", "--json").stdout)
    assert [r["key"] for r in rows] == [
        "alpha", "palette", "lsb.rgb", "exif", "eoi", "lsbm", "lsbr", "jsteg", "f5", "nsf5", "juniward", "outguess",
        "steghide"
    ]
    assert {r["payload_unit"] for r in rows if r["category"] == "dct"} == {"bpnzac"}
    assert {r["payload_unit_description"] for r in rows if r["category"] == "dct"} == {"bits per non-zero AC coefficient"}


def test_extract_on_bad_files_reports_each_and_never_crashes(tmp_path):
    paths = bad_files(tmp_path)
    result = invoke("extract", "--json", *paths.values())
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in records] == [str(p) for p in paths.values()]
    assert all(r["error"] for r in records)
    assert "Traceback" not in result.output


def test_extract_finds_a_stego_payload_and_uses_the_sidecar(smoke_corpus):
    entry = next(e for e in read_manifest(smoke_corpus).entries if e.method == "lsbm")
    result = invoke("extract", "--json", smoke_corpus / entry.file_path)
    assert result.exit_code == 0
    record = json.loads(result.stdout)
    found = record["streams"]["lsbm"]
    assert found and found[0]["length"] == entry.payload_bytes
    human = invoke("extract", smoke_corpus / entry.file_path)
    assert human.exit_code == 0 and "lsbm" in human.stdout


def test_validate_streams_exit_codes(smoke_corpus, corpus_copy):
    ok = invoke("validate-streams", "--json", "--workers", 1, smoke_corpus)
    assert ok.exit_code == 0 and json.loads(ok.stdout)["ok"] is True
    entry = next(e for e in read_manifest(corpus_copy).entries if e.method == "exif")
    (corpus_copy / entry.file_path).write_bytes(b"\xff\xd8\xff" + b"\x00" * 10)
    bad = invoke("validate-streams", "--workers", 1, corpus_copy)
    assert bad.exit_code == 1
    assert "some labels could not be proven" in bad.stdout
    assert invoke("validate-streams", corpus_copy / "nowhere").exit_code == 2


def test_build_verb(corpus_copy, tmp_path):
    # The verb over a built corpus of the same seed (a fresh build through the verb: test_console_script_end_to_end and
    # test_every_seed_builds_the_smoke_preset_in_full): nothing to make, and its summary counts the whole corpus.
    result = invoke("corpus", "build", "--out", corpus_copy, "--preset", "smoke", "--seed", 7, "--workers", 1, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["files"] == len(read_manifest(corpus_copy).entries) > 0 and summary["errors"] == []
    assert invoke("corpus", "build", "--out", corpus_copy, "--preset", "smoke", "--seed", 4).exit_code == 2
    assert invoke("corpus", "build", "--out", tmp_path / "d", "--preset", "huge").exit_code == 2


@pytest.mark.slow
def test_console_script_end_to_end(tmp_path):
    """The installed `stegwatch` command builds and validates a corpus with a process pool."""
    exe = shutil.which("stegwatch", path=str(Path(sys.executable).parent))
    assert exe, "the console script is installed with the package"
    env = {**os.environ, "COLUMNS": "200"}
    build = subprocess.run([exe, "corpus", "build", "--out", str(tmp_path / "c"), "--preset", "smoke", "--workers", "2"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert build.returncode == 0, build.stderr
    files = len(read_manifest(tmp_path / "c").entries)
    assert "lsbm" in build.stdout and f"{files} made, 0 already there" in build.stdout
    check = subprocess.run([exe, "validate-streams", str(tmp_path / "c"), "--workers", "2"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert check.returncode == 0, check.stderr
    assert "every stego label proven" in check.stdout


def test_scan_fills_the_feature_cache_and_no_cache_leaves_none(smoke_corpus, tmp_path):
    from stegwatch.features.cache import FeatureCache

    images = sorted(str(p) for p in (smoke_corpus / "clean").rglob("*.png"))[:3]
    cache = tmp_path / "cache" / "features.sqlite"
    first = invoke("scan", *images, "--model", "v3", "--jsonl", "--workers", "1", "--cache", cache)
    assert first.exit_code == 0
    with FeatureCache(cache) as store:
        assert len(store) == 3
    again = invoke("scan", *images, "--model", "v3", "--jsonl", "--workers", "1", "--cache", cache)
    assert again.stdout == first.stdout
    other = tmp_path / "none.sqlite"
    invoke("scan", *images, "--model", "v3", "--jsonl", "--workers", "1", "--cache", other, "--no-cache")
    assert not other.exists()


def test_a_failed_jpeg_cover_job_makes_corpus_build_exit_1(tmp_path, monkeypatch):
    """Regression: failed jobs were once picked by job-id prefix, a list that missed ``jpeg:``, so this exited 0."""
    from stegwatch.corpus import build

    def broken(ctx, index):
        raise OSError("disk full")

    monkeypatch.setitem(build._CLEAN_FILES, "jpeg", broken)
    result = runner.invoke(app, ["corpus", "build", "--out", str(tmp_path / "c"), "--preset", "smoke", "--workers", "1", "--json"])
    assert result.exit_code == 1
    errors = json.loads(result.stdout)["errors"]
    jpeg_jobs = [e for e in errors if e["path"].startswith("jpeg:")]
    assert len(jpeg_jobs) == build.PRESETS["smoke"].jpeg_covers and all("disk full" in e["reason"] for e in jpeg_jobs)
    assert all(e["path"].startswith(("jpeg:", "stego:")) for e in errors)  # stego jobs on those covers fail with them


def _verbs(typer_app, top=True):
    """Every function a command line can run: commands, and the callbacks of sub-apps (``stegwatch baseline``)."""
    if not top and typer_app.registered_callback is not None:
        yield typer_app.registered_callback.callback
    for command in typer_app.registered_commands:
        yield command.callback
    for group in typer_app.registered_groups:
        yield from _verbs(group.typer_instance, top=False)


def test_every_verb_goes_through_the_error_frame():
    verbs = list(_verbs(app))
    assert len(verbs) >= 18
    assert [v.__name__ for v in verbs if not getattr(v, "stegwatch_verb", False)] == []


def test_library_errors_exit_with_their_code_and_one_line_on_stderr(monkeypatch, tmp_path):
    from stegwatch.errors import StegwatchError

    class Odd(StegwatchError):
        exit_code = 3

    def broken(*args, **kwargs):
        raise Odd("the corpus is\n  upside down")

    monkeypatch.setattr("stegwatch.evaluation.dataset.dataset_metrics", broken)
    result = invoke("dataset-metrics", tmp_path)
    assert result.exit_code == 3
    assert result.stderr == "error: the corpus is upside down\n" and result.stdout == ""
    unknown = invoke("scan", tmp_path, "--model", "nope")
    assert unknown.exit_code == 2 and unknown.stderr.startswith("error: unknown model 'nope'")
    # A missing history database, then a missing run in an existing one (BaselineNotFound): one line each.
    missing_db = invoke("baseline", "accept", "nope", "--db", tmp_path / "h.db")
    assert missing_db.exit_code == 2 and missing_db.stderr.startswith("error: no history database at ")
    from stegwatch.monitoring import history

    with history.connect(tmp_path / "h.db"):  # an empty, valid history
        pass
    missing = invoke("baseline", "accept", "nope", "--db", tmp_path / "h.db")
    assert missing.exit_code == 2 and missing.stderr.startswith("error: no run 'nope' in ")


def test_library_log_records_reach_stderr_and_machine_output_keeps_only_warnings(monkeypatch, tmp_path):
    import logging

    log = logging.getLogger("stegwatch.test")

    def export(db):
        log.info("info-for-people")
        log.warning("warning-for-all")
        return ""

    def metrics(*args, **kwargs):
        export(None)
        return {}

    monkeypatch.setattr("stegwatch.monitoring.history.export_jsonl", export)
    monkeypatch.setattr("stegwatch.evaluation.dataset.dataset_metrics", metrics)
    human = invoke("history", "export", "--db", tmp_path / "h.db")
    assert human.exit_code == 0 and human.stdout == ""
    assert "info-for-people" in human.stderr and "warning-for-all" in human.stderr
    machine = invoke("dataset-metrics", tmp_path, "--json")
    assert machine.exit_code == 0 and json.loads(machine.stdout) == {}
    assert "info-for-people" not in machine.stderr and "warning-for-all" in machine.stderr


def test_train_with_a_preset_builds_the_preset_corpus_with_its_own_seed(monkeypatch, tmp_path):
    calls = {}

    def preset_corpus(preset, **kwargs):
        calls["corpus"] = (preset, kwargs)
        return tmp_path / "built"

    def train(corpus, out, config, **kwargs):
        calls["train"] = (corpus, config.seed, config.model)
        return {"card": True}

    monkeypatch.setattr("stegwatch.corpus.build.preset_corpus", preset_corpus)
    monkeypatch.setattr("stegwatch.detectors.train.train", train)
    result = invoke("train", "--preset", "smoke", "--seed", 5, "--out", tmp_path / "m", "--workers", 1, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"card": True}
    preset, kwargs = calls["corpus"]
    assert preset == "smoke" and "seed" not in kwargs  # the corpus keeps its seed (0), whatever the model's
    assert calls["train"] == (tmp_path / "built", 5, "v4")
    assert invoke("train", "--out", tmp_path / "m").exit_code == 2


def test_train_accepts_only_registered_trainable_kinds(monkeypatch, tmp_path):
    from stegwatch.detectors.registry import KINDS

    assert invoke("train", "--corpus", tmp_path, "--out", tmp_path / "m", "--model", "nope").exit_code == 2
    untrainable = next((key for key, kind in KINDS.items() if kind.train is None), None)
    if untrainable:
        assert invoke("train", "--corpus", tmp_path, "--out", tmp_path / "m", "--model", untrainable).exit_code == 2


def test_evaluate_and_ablate_leave_writing_their_files_to_the_library(monkeypatch, tmp_path):
    seen = {}

    def evaluate(model, corpus, **kwargs):
        seen["evaluate"] = kwargs["out"]
        return {"fake": 1}

    def ablate(model, corpus, **kwargs):
        seen["ablate"] = kwargs["out"]
        rate = {"count": 0, "n": 1}
        return {"full": {"false_positive_rate": rate, "roc_auc": 1.0}, "variants": {}}

    monkeypatch.setattr("stegwatch.evaluation.evaluate.evaluate", evaluate)
    monkeypatch.setattr("stegwatch.evaluation.ablation.ablate", ablate)
    result = invoke("evaluate", "--model", "v3", "--corpus", tmp_path, "--out", tmp_path / "run", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == {"fake": 1}
    assert invoke("ablate", "--corpus", tmp_path, "--by", "stream", "--out", tmp_path / "a.json").exit_code == 0
    assert seen == {"evaluate": tmp_path / "run", "ablate": tmp_path / "a.json"}
    assert not (tmp_path / "run").exists() and not (tmp_path / "a.json").exists()


def test_the_cli_modules_are_thin_and_take_shared_defaults_from_the_library():
    import stegwatch.cli

    folder = Path(stegwatch.cli.__file__).parent
    for module in folder.glob("*.py"):
        text = module.read_text(encoding="utf-8")
        assert len(text.splitlines()) < 300, module.name
        for literal in ("0.0005", "history.db", "metrics.json\""):
            assert literal not in text, f"{module.name} hard-codes {literal}"


def _png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (24, 24), (90, 120, 150)).save(path)
    return path


def test_expand_paths_takes_existing_names_as_they_are_and_keeps_what_no_glob_matched(tmp_path):
    from stegwatch.detectors.scan import expand_paths

    literal, other = _png(tmp_path / "img[1].png"), _png(tmp_path / "img1.png")
    (tmp_path / "sub").mkdir()
    inside = _png(tmp_path / "sub" / "a.png")
    (tmp_path / "dangling.png").symlink_to(tmp_path / "gone.png")
    unmatched = str(tmp_path / "nothing*.png")
    assert expand_paths([str(literal)]) == [str(literal)]  # not the glob that would pick img1.png
    assert expand_paths([str(tmp_path / "img?.png")]) == [str(other)]
    assert expand_paths([str(tmp_path / "su*")]) == [str(inside)]  # a matched folder is walked
    assert expand_paths([str(tmp_path / "dang*.png")]) == [str(tmp_path / "dangling.png")]  # read later: an error record
    assert expand_paths([unmatched]) == [unmatched]


def test_scan_and_extract_show_markup_in_names_and_payloads_as_text(tmp_path, monkeypatch):
    """A file name or a payload holding rich markup ("[/]", "[bold]") is printed as it is, never parsed."""
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    Path("d").mkdir()
    Path("d/x[").mkdir()
    _png(Path("d/x[/]y.png"))
    _png(Path("d/[bold]e.png"))
    Path("d/[red]f.png").write_bytes(b"")
    Image.new("RGB", (32, 32), (200, 40, 40)).save("d/t.jpg", quality=90)
    payload = b"text with [/] and [bold]more[/bold]"
    Path("d/t.jpg").write_bytes(Path("d/t.jpg").read_bytes() + payload + b"\x00")
    result = invoke("scan", "d", "--extract", "--no-cache", "--workers", 1)
    assert result.exit_code == 0, result.output
    for name in ("d/x[/]y.png", "d/[bold]e.png", "d/[red]f.png", "d/t.jpg"):
        assert name in result.stdout
    assert "4 files: 1 flagged, 1 unreadable" in result.stdout
    assert "[/]" in result.stdout.split("d/t.jpg", 1)[1]  # the payload preview, as written
    extracted = invoke("extract", "d/t.jpg", "d/[red]f.png")
    assert "[/]" in extracted.stdout and "[bold]" in extracted.stdout  # the preview (wrapped in its column)
    assert "d/[red]f.png" in extracted.stderr or "d/[red]f.png" in extracted.output


@pytest.mark.parametrize("verb, words", [(["baseline"], "stegwatch[anchor]"), (["monitor"], "[generalization]"), (["serve"], "[serve]")])
def test_help_texts_keep_their_bracketed_words(verb, words):
    """Help is rich markup: a bracketed word (an extra, a config table) must be escaped or it vanishes."""
    result = runner.invoke(app, [*verb, "--help"], env={"COLUMNS": "200"})
    assert words in result.stdout


@pytest.mark.parametrize("value", ["2", "nan", "-1"])
def test_a_threshold_that_is_not_a_score_is_refused(tmp_path, value):
    result = runner.invoke(app, ["scan", str(_png(tmp_path / "a.png")), "--threshold", value, "--no-cache", "--jsonl"])
    assert result.exit_code == 2 and "is not a score" in result.output and result.stdout.strip() == ""


def test_scan_csv_carries_the_evidence_and_every_method_score(tmp_path):
    import csv
    import io

    result = runner.invoke(app, ["scan", str(_png(tmp_path / "a.png")), "--csv", "--no-cache", "--workers", "1"])
    assert result.exit_code == 0, result.output
    row = next(csv.DictReader(io.StringIO(result.stdout)))
    assert row["path"].endswith("a.png")
    assert isinstance(json.loads(row["evidence"]), dict) and json.loads(row["method_scores"])


def test_evaluate_prints_a_labels_path_holding_markup_as_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = Path("ev[") / "]x"
    folder.mkdir(parents=True)
    rows = ["path,label,method"]
    for i in range(6):
        _png(folder / f"f{i}.png")
        rows.append(f"f{i}.png,clean," if i % 2 == 0 else f"f{i}.png,stego,lsb.rgb")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    result = invoke("evaluate", "--model", "v3", "--labels", "ev[/]x/labels.csv", "--latency-sample", 2, "--workers", 1)
    assert result.exit_code == 0, result.output
    assert "ev[/]x/labels.csv" in result.stdout
