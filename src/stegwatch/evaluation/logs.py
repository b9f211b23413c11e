"""Training logs from several trainers, parsed into one tidy table: run, step, metric, value.

Formats (detected from the file, or named with ``format``):

- ``stegwatch``: ``training_log.jsonl`` (one JSON object per step);
- ``csv``: PyTorch Lightning's CSVLogger (sparse rows: each row fills some
  columns) and Keras's CSVLogger (``epoch`` plus one column per metric);
- ``keras-history``: ``History.history`` dumped to JSON (metric -> list per epoch);
- ``tensorboard``: event files (every scalar is read, not a sample; needs the
  ``tensorboard`` package, the ``logs`` extra);
- ``starlight``: the Starlight trainer's stdout, ``Epoch e/E: Loss=..., Stego
  Acc=..., ...`` followed by ``Val Loss=..., ...`` (older runs lack the bit-order
  fields; any ``Key=value`` pairs are read).

A malformed line is reported with its line number and skipped; a binary or
unreadable file is reported and skipped. When nothing at all can be read,
:func:`parse_logs` raises :class:`NoTrainingLog`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

FORMATS = ("stegwatch", "csv", "keras-history", "tensorboard", "starlight")
_STEP_KEYS = ("step", "epoch", "iteration", "global_step")
_EPOCH_LINE = re.compile(r"^\s*Epoch\s+(\d+)\s*/\s*(\d+)\s*[:\-]?\s*(.*)$", re.IGNORECASE)
_VAL_LINE = re.compile(r"^\s*Val(?:idation)?\b[:\s]*(.*)$", re.IGNORECASE)
_PAIR = re.compile(r"([A-Za-z][A-Za-z0-9 _\-/()]*?)\s*[=:]\s*(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)")


class NoTrainingLog(ValueError):
    """None of the given files holds a training metric that could be read."""


@dataclass
class ParsedLog:
    """A tidy table (columns run, step, metric, value) and the problems met while reading."""

    table: pd.DataFrame
    problems: list[dict] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _number(value) -> float | None:
    """A finite number, or None (empty, text, NaN, infinite: a step or a curve point needs a real value)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _non_finite(value) -> bool:
    """A value that reads as a number but is NaN or infinite (a diverged loss): reported, not plotted."""
    if isinstance(value, bool) or value in (None, ""):
        return False
    try:
        return not math.isfinite(float(value))
    except OverflowError:  # an integer beyond any float (10**400)
        return True
    except (TypeError, ValueError):
        return False


def detect_format(path: Path) -> str:
    """Guess a log's format from its name and first bytes."""
    if path.is_dir() or path.name.startswith("events.out.tfevents"):
        return "tensorboard"
    head = path.read_bytes()[:4096].decode("utf-8", errors="replace")
    stripped = head.lstrip()
    if stripped.startswith("{"):
        first_line = stripped.splitlines()[0] if stripped else ""
        try:
            first = json.loads(first_line)
            if isinstance(first, dict) and "step" in first:
                return "stegwatch"
        except json.JSONDecodeError:
            pass
        return "keras-history"
    if _EPOCH_LINE.search(head.splitlines()[0] if head else "") or re.search(r"^\s*Epoch\s+\d+\s*/\s*\d+", head, re.M):
        return "starlight"
    return "csv"


def _rows_stegwatch(text: str, run: str, problems: list) -> list[tuple]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            step = _number(record["step"])
            if step is None:
                raise ValueError(f"step {record['step']!r} is not a finite number")
            step = int(step)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            problems.append({"run": run, "line": number, "reason": f"not a training-log record: {exc}"})
            continue
        for key, value in record.items():
            if key != "step" and (number_value := _number(value)) is not None:
                rows.append((run, step, key, number_value))
            elif key != "step" and _non_finite(value):
                problems.append({"run": run, "line": number, "reason": f"{key} = {value} is not finite (skipped)"})
    return rows


def _rows_csv(text: str, run: str, problems: list) -> list[tuple]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        problems.append({"run": run, "line": 1, "reason": "no CSV header"})
        return []
    step_key = next((k for k in _STEP_KEYS if k in reader.fieldnames), None)
    rows = []
    for number, record in enumerate(reader, start=2):
        if None in record or any(v is None for v in record.values()):
            problems.append({"run": run, "line": number, "reason": "wrong number of fields"})
            continue
        step = _number(record.get(step_key)) if step_key else number - 2
        if step is None:
            problems.append({"run": run, "line": number, "reason": f"no finite {step_key} value"})
            continue
        for key, value in record.items():
            if key in _STEP_KEYS:
                continue
            number_value = _number(value)
            if number_value is not None:  # sparse rows (Lightning) leave most cells empty
                rows.append((run, int(step), _snake(key), number_value))
            elif _non_finite(value):
                problems.append({"run": run, "line": number, "reason": f"{key} = {value} is not finite (skipped)"})
    # Lightning logs both "epoch" and "step": prefer step when both exist, as the x axis.
    return rows


def _rows_keras_history(text: str, run: str, problems: list) -> list[tuple]:
    try:
        history = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append({"run": run, "line": exc.lineno, "reason": f"not JSON: {exc.msg}"})
        return []
    if not isinstance(history, dict):
        problems.append({"run": run, "line": 1, "reason": "expected an object of metric -> list of values"})
        return []
    rows = []
    for key, values in history.items():
        if not isinstance(values, list):
            problems.append({"run": run, "line": 1, "reason": f"{key}: not a list"})
            continue
        for epoch, value in enumerate(values, start=1):
            if (number_value := _number(value)) is not None:
                rows.append((run, epoch, _snake(key), number_value))
    return rows


def _pairs(text: str, prefix: str) -> dict[str, float]:
    found = {}
    for key, value in _PAIR.findall(text):
        name = _snake(key)
        if prefix and not name.startswith(prefix):
            name = f"{prefix}{name}"
        found[name] = float(value)
    return found


def _rows_starlight(text: str, run: str, problems: list) -> list[tuple]:
    rows = []
    epoch = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _EPOCH_LINE.match(line)
        if match:
            epoch = int(match.group(1))
            pairs = _pairs(match.group(3), "")
            if not pairs:
                problems.append({"run": run, "line": number, "reason": "epoch line without Key=value pairs"})
            for key, value in pairs.items():
                name = key if key.startswith("train_") else f"train_{key}"
                rows.append((run, epoch, name, value))
            continue
        val = _VAL_LINE.match(line)
        if val and epoch is not None:
            pairs = _pairs(val.group(1), "")
            if not pairs:
                problems.append({"run": run, "line": number, "reason": "validation line without Key=value pairs"})
            for key, value in pairs.items():
                rows.append((run, epoch, key if key.startswith("val_") else f"val_{key}", value))
            continue
        if "=" in line:
            problems.append({"run": run, "line": number, "reason": "unrecognized line"})
    return rows


def _rows_tensorboard(path: Path, run: str, problems: list) -> list[tuple]:
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        problems.append({"run": run, "line": None, "reason": "reading TensorBoard files needs the tensorboard package "
                                                             "(pip install 'stegwatch[logs]')"})
        return []
    accumulator = EventAccumulator(str(path), size_guidance={"scalars": 0})  # 0: keep every scalar
    try:
        accumulator.Reload()
    except Exception as exc:  # a corrupt event file raises assorted errors
        problems.append({"run": run, "line": None, "reason": f"cannot read event file: {exc}"})
        return []
    rows = []
    for tag in accumulator.Tags().get("scalars", []):
        for event in accumulator.Scalars(tag):
            rows.append((run, int(event.step), _snake(tag), float(event.value)))
    return rows


def parse_logs(paths: list[Path], fmt: str | None = None) -> ParsedLog:
    """Parse every log into one tidy table; each file is its own run (named after its file or folder)."""
    all_rows: list[tuple] = []
    problems: list[dict] = []
    formats: dict[str, str] = {}
    for path in paths:
        run = path.stem if path.is_file() else path.name
        if run in formats:
            run = str(path)
        try:
            kind = fmt or detect_format(path)
        except OSError as exc:
            problems.append({"run": run, "line": None, "reason": f"cannot read: {exc.strerror or exc}"})
            continue
        formats[run] = kind
        if kind == "tensorboard":
            all_rows += _rows_tensorboard(path, run, problems)
            continue
        try:
            raw = path.read_bytes()
        except OSError as exc:
            problems.append({"run": run, "line": None, "reason": f"cannot read: {exc.strerror or exc}"})
            continue
        if b"\x00" in raw[:65536]:
            problems.append({"run": run, "line": None, "reason": "a binary file, not a text training log"})
            continue
        text = raw.decode("utf-8", errors="replace")
        parser = {"stegwatch": _rows_stegwatch, "csv": _rows_csv, "keras-history": _rows_keras_history,
                  "starlight": _rows_starlight}[kind]
        all_rows += parser(text, run, problems)
    table = pd.DataFrame(all_rows, columns=["run", "step", "metric", "value"])
    table = table[table["value"].map(lambda v: not math.isnan(v)).astype(bool)].reset_index(drop=True)
    if table.empty:
        detail = "; ".join(f"{p['run']}: {p['reason']}" for p in problems[:3]) or "no step with a numeric metric"
        raise NoTrainingLog(f"no training metric could be read from {', '.join(str(p) for p in paths)} ({detail})")
    return ParsedLog(table=table, problems=problems, formats=formats)


def loss_names(metrics: set[str]) -> tuple[str | None, str | None]:
    train = next((m for m in ("train_loss", "loss", "train_loss_epoch", "train_loss_step") if m in metrics), None)
    val = next((m for m in ("val_loss", "val_loss_epoch", "validation_loss") if m in metrics), None)
    return train, val


def convergence(table: pd.DataFrame, *, patience: int | None = None, min_delta: float = 1e-4) -> dict[str, dict]:
    """Per run: best step, final train and validation loss, their gap, and whether validation loss stalled."""
    summary = {}
    for run, group in table.groupby("run", sort=True):
        train_name, val_name = loss_names(set(group["metric"]))
        series = {name: group[group["metric"] == name].groupby("step")["value"].last().sort_index()
                  for name in (train_name, val_name) if name}
        train = series.get(train_name) if train_name else None
        val = series.get(val_name) if val_name else None
        watched = val if val is not None and len(val) else train
        record = {"train_metric": train_name, "val_metric": val_name, "steps": int(group["step"].nunique())}
        if watched is None or not len(watched):
            summary[str(run)] = record | {"best_step": None}
            continue
        best_step = int(watched.idxmin())
        wait = patience or max(3, len(watched) // 10)
        improved_after = watched[watched.index > best_step]
        stalled = len(improved_after) >= wait and float(improved_after.min()) > float(watched.min()) - min_delta
        record |= {
            "best_step": best_step,
            "best_value": float(watched.min()),
            "final_train_loss": float(train.iloc[-1]) if train is not None and len(train) else None,
            "final_val_loss": float(val.iloc[-1]) if val is not None and len(val) else None,
            "stopped_improving": bool(stalled),
            "stopped_improving_since": best_step if stalled else None,
        }
        if record["final_train_loss"] is not None and record["final_val_loss"] is not None:
            record["train_val_gap"] = record["final_val_loss"] - record["final_train_loss"]
        summary[str(run)] = record
    return summary


def plot_losses(table: pd.DataFrame, path: Path) -> Path:
    """Loss curves (train solid, validation dashed) for every run, as a PNG (matplotlib, Agg)."""
    from stegwatch.evaluation.plots import figure_png
    from stegwatch.format.files import write_bytes_atomic

    def draw(axis):
        for run, group in table.groupby("run", sort=True):
            train_name, val_name = loss_names(set(group["metric"]))
            for name, style in ((train_name, "-"), (val_name, "--")):
                if name:
                    curve = group[group["metric"] == name].groupby("step")["value"].last().sort_index()
                    axis.plot(curve.index, curve.values, style, label=f"{run}: {name}")
        axis.set_xlabel("step / epoch")
        axis.set_ylabel("loss")
        axis.legend(fontsize=8)

    write_bytes_atomic(path, figure_png(draw, size=(8, 4.5)))
    return path
