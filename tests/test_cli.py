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
        "alpha", "palette", "lsb.rgb", "exif", "eoi", "lsbm", "jsteg", "f5", "nsf5", "juniward", "outguess", "steghide"
    ]
    assert {r["payload_unit"] for r in rows if r["category"] == "dct"} == {"bpnzac"}


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


def test_build_verb(tmp_path):
    result = invoke("corpus", "build", "--out", tmp_path / "c", "--preset", "smoke", "--seed", 3, "--workers", 1, "--json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["files"] == len(read_manifest(tmp_path / "c").entries) > 0
    assert invoke("corpus", "build", "--out", tmp_path / "c", "--preset", "smoke", "--seed", 4).exit_code == 2
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
