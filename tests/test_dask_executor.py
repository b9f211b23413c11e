"""The Dask path gives the same results as the local process pool."""

import json

import pytest
from typer.testing import CliRunner

from stegwatch.cli import app
from stegwatch.parallel import LOCAL_CLUSTER
from stegwatch.detectors import load_detector
from stegwatch.format.manifest import read_manifest

pytest.importorskip("dask.distributed")
runner = CliRunner()


@pytest.mark.slow
def test_dask_local_cluster_scan_equals_local(smoke_corpus, tmp_path):
    paths = [str(smoke_corpus / e.file_path) for e in read_manifest(smoke_corpus).entries[:40]] + [str(tmp_path / "missing.png")]
    detector = load_detector("v4")
    local = [d.to_json_dict() for d in detector.detect(paths, workers=1)]
    on_dask = [d.to_json_dict() for d in detector.detect(paths, workers=2, scheduler=LOCAL_CLUSTER)]
    assert on_dask == local
    assert on_dask[-1]["error"] == "no such file"


def test_executor_flags(smoke_corpus):
    entry = read_manifest(smoke_corpus).entries[0]
    bad = runner.invoke(app, ["scan", str(smoke_corpus / entry.file_path), "--executor", "spark"])
    assert bad.exit_code == 2
    needs_dask = runner.invoke(app, ["scan", str(smoke_corpus / entry.file_path), "--scheduler", "tcp://127.0.0.1:1"])
    assert needs_dask.exit_code == 2
    ok = runner.invoke(app, ["scan", str(smoke_corpus / entry.file_path), "--executor", "dask", "--workers", "1", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)[0]["path"].endswith(entry.file_path)
