"""Training-log parsing for every supported format, on real-shaped samples."""

import json
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stegwatch.cli import app
from stegwatch.evaluation.logs import convergence, detect_format, parse_logs

DATA = Path(__file__).parent / "data" / "logs"
runner = CliRunner()


def _values(table, run, metric):
    rows = table[(table["run"] == run) & (table["metric"] == metric)].sort_values("step")
    return list(zip(rows["step"], rows["value"], strict=True))


def test_lightning_csv_with_sparse_rows():
    parsed = parse_logs([DATA / "lightning_metrics.csv"])
    assert parsed.formats == {"lightning_metrics": "csv"} and not parsed.problems
    assert _values(parsed.table, "lightning_metrics", "val_loss") == [(99, 0.6402), (199, 0.5566), (299, 0.561)]
    assert len(_values(parsed.table, "lightning_metrics", "train_loss_step")) == 6


def test_keras_csv_and_history_json():
    parsed = parse_logs([DATA / "keras_log.csv", DATA / "keras_history.json"])
    assert parsed.formats == {"keras_log": "csv", "keras_history": "keras-history"}
    assert _values(parsed.table, "keras_log", "val_loss")[1] == (1, 0.6012)
    assert _values(parsed.table, "keras_history", "loss") == [(1, 0.693), (2, 0.601), (3, 0.522), (4, 0.47)]
    summary = convergence(parsed.table)
    assert summary["keras_log"]["best_step"] == 2 and summary["keras_log"]["final_val_loss"] == 0.635
    assert summary["keras_log"]["train_val_gap"] == pytest.approx(0.635 - 0.3901)


def test_starlight_stdout_new_and_old_variants():
    parsed = parse_logs([DATA / "starlight_v4_stdout.txt", DATA / "starlight_v3_stdout_old.txt"])
    assert set(parsed.formats.values()) == {"starlight"}
    table = parsed.table
    assert _values(table, "starlight_v4_stdout", "train_loss")[0] == (1, 0.7125)
    assert _values(table, "starlight_v4_stdout", "val_bitorder_acc")[-1] == (4, 0.679)
    assert _values(table, "starlight_v3_stdout_old", "val_stego_acc") == [(1, 0.59), (2, 0.652), (3, 0.681)]
    assert not any(m.startswith("val_bitorder") for m in table[table["run"] == "starlight_v3_stdout_old"]["metric"])
    summary = convergence(table)
    assert summary["starlight_v4_stdout"]["best_step"] == 3
    assert summary["starlight_v3_stdout_old"]["final_val_loss"] == 0.5901


def test_stegwatch_training_log_and_a_malformed_line(tmp_path):
    shipped = Path(__file__).parents[1] / "src" / "stegwatch" / "detectors" / "models" / "v4" / "training_log.jsonl"
    log = tmp_path / "training_log.jsonl"
    lines = shipped.read_text().splitlines()
    log.write_text("\n".join(lines[:3] + ["{broken json", "not even close"] + lines[3:]) + "\n")
    parsed = parse_logs([log])
    assert parsed.formats == {"training_log": "stegwatch"}
    assert [p["line"] for p in parsed.problems] == [4, 5]
    assert parsed.table["step"].nunique() == len(lines)
    assert {"train_loss", "val_loss", "val_auc", "elapsed_seconds"} <= set(parsed.table["metric"])


def test_tensorboard_file_written_by_the_tensorboard_package(tmp_path):
    event_file_writer = pytest.importorskip("tensorboard.summary.writer.event_file_writer")
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary

    run = tmp_path / "tb_run"
    writer = event_file_writer.EventFileWriter(str(run))
    for step in range(1500):  # more than TensorBoard's default sample of 1,000 scalars
        values = [Summary.Value(tag="loss/train", simple_value=1.0 / (step + 1)),
                  Summary.Value(tag="loss/val", simple_value=1.2 / (step + 1) + (0.001 * step if step > 1000 else 0))]
        writer.add_event(Event(wall_time=time.time(), step=step, summary=Summary(value=values)))
    writer.close()
    assert detect_format(run) == "tensorboard"
    parsed = parse_logs([run])
    assert len(_values(parsed.table, "tb_run", "loss_train")) == 1500


def test_cli_plots_and_reports(tmp_path):
    plot = tmp_path / "curves.png"
    bad = tmp_path / "empty.csv"
    bad.write_text("")
    result = runner.invoke(app, ["logs", str(DATA / "keras_log.csv"), str(DATA / "starlight_v4_stdout.txt"), str(bad),
                                 "--plot", str(plot), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # Best validation loss at epoch 2, two epochs after it: fewer than the patience of 3, so not stalled yet.
    assert report["convergence"]["keras_log"]["stopped_improving"] is False
    assert any(p["run"] == "empty" for p in report["problems"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert runner.invoke(app, ["logs", str(bad), "--format", "nope"]).exit_code == 2
    shutil.rmtree(tmp_path)


def test_stalled_validation_loss_is_reported_with_its_step(tmp_path):
    history = tmp_path / "stalled.json"
    history.write_text(json.dumps({"loss": [0.9, 0.7, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1],
                                   "val_loss": [0.95, 0.8, 0.7, 0.72, 0.75, 0.74, 0.8, 0.85]}))
    summary = convergence(parse_logs([history]).table)["stalled"]
    assert summary["stopped_improving"] is True and summary["stopped_improving_since"] == 3
    assert summary["train_val_gap"] == pytest.approx(0.85 - 0.1)


def test_non_finite_steps_and_values_are_reported_and_skipped(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"step": 1, "loss": 0.5}\n{"step": 1e400, "loss": 0.4}\n{"step": 3, "loss": NaN}\n')
    (tmp_path / "b.csv").write_text("step,loss\n1,0.5\ninf,0.4\nnan,0.3\n4,nan\n5,0.2\n")
    parsed = parse_logs([tmp_path / "a.jsonl", tmp_path / "b.csv"])
    assert sorted(parsed.table["step"].tolist()) == [1, 1, 5]
    reasons = " ".join(p["reason"] for p in parsed.problems)
    assert "not a finite number" in reasons and "no finite step value" in reasons and "not finite (skipped)" in reasons
    result = CliRunner().invoke(app, ["logs", str(tmp_path / "b.csv"), "--json"])
    assert result.exit_code == 0 and "NaN" not in result.stdout and "Infinity" not in result.stdout
