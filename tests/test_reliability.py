"""Hostile input and faults (issue 17): each case fails cleanly, with a reason, and never hangs.

docs/reliability.md lists every class of bad input or fault, what stegwatch
does about it, and which test here shows it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stegwatch.cli import app
from stegwatch.format.manifest import EmptyCorpus, read_manifest

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
