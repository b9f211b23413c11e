"""The performance dashboard: Markdown and self-contained HTML, rendered from run metrics by templates.

Everything shown comes from the metrics JSON of the runs in the history (and
the model's training log); nothing is typed in. Plots are PNG files beside the
Markdown and embedded (base64) in the HTML, so the page renders offline. All
files are written atomically.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from stegwatch.evaluation.plots import figure_png
from stegwatch.format.files import write_bytes_atomic, write_text_atomic
from stegwatch.monitoring.rules import QUIET_WHEN, Rule, rule_holds, value_rule_for

if TYPE_CHECKING:
    import pandas as pd

TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_DASHBOARD = Path("docs") / "grok" / "performance_dashboard.md"


def _figure_png(draw) -> bytes:
    # Runs and boosting iterations are whole numbers.
    return figure_png(draw, size=(7.5, 3.6), integer_x=True)


def trend_plots(history: list[dict], rules: list[Rule]) -> dict[str, bytes]:
    """FPR with its interval band (and the FPR rule's threshold), detection per method, latency, over the runs (oldest first)."""
    fpr_rule = value_rule_for(rules, ("false_positive_rate", "rate"))
    x = list(range(1, len(history) + 1))
    metrics = [run["metrics"] for run in history]

    def fpr(axis):
        rates = [100 * (m["false_positive_rate"]["rate"] or 0) for m in metrics]
        # The cover-group interval (runs recorded before it existed show their file-level one).
        low = [100 * m["false_positive_rate"].get("group_ci_low", m["false_positive_rate"]["ci_low"]) for m in metrics]
        high = [100 * m["false_positive_rate"].get("group_ci_high", m["false_positive_rate"]["ci_high"]) for m in metrics]
        axis.fill_between(x, low, high, alpha=0.25, label="95% interval over cover groups")
        axis.plot(x, rates, "o-", label="false-positive rate")
        if fpr_rule is not None:
            axis.axhline(100 * fpr_rule.threshold, color="red", linestyle="--", label=f"rule {fpr_rule.name}: {100 * fpr_rule.threshold:g}%")
        axis.set_xlabel("run")
        axis.set_ylabel("%")
        axis.legend(fontsize=8)

    def detection(axis):
        methods = sorted({k for m in metrics for k in m["detection_rate_by_method"]})
        for method in methods:
            axis.plot(x, [100 * (m["detection_rate_by_method"].get(method, {}).get("rate") or 0) for m in metrics], "o-", label=method)
        axis.set_xlabel("run")
        axis.set_ylabel("detection %")
        axis.legend(fontsize=7, ncol=3)

    def latency(axis):
        for key in ("p50", "p95"):
            axis.plot(x, [(m.get("latency") or {}).get("per_image_ms", {}).get(key, 0) for m in metrics], "o-", label=key)
        axis.set_xlabel("run")
        axis.set_ylabel("ms per image")
        axis.legend(fontsize=8)

    def general(axis):
        for side, style in (("in_source", "o-"), ("out_of_source", "s--")):
            for key, label in (("false_positive_rate", "FPR"), ("detection_rate", "detection")):
                values = [100 * ((m.get("generalization") or {}).get(side, {}).get(key, {}).get("rate") or float("nan"))
                          for m in metrics]
                axis.plot(x, values, style, label=f"{label}, {side.replace('_', '-')}")
        axis.set_xlabel("run")
        axis.set_ylabel("%")
        axis.legend(fontsize=7, ncol=2)

    plots = {"trend_fpr.png": _figure_png(fpr), "trend_detection.png": _figure_png(detection),
             "trend_latency.png": _figure_png(latency)}
    if any((m.get("generalization") or {}).get("available") for m in metrics):
        plots["trend_generalization.png"] = _figure_png(general)
    return plots


def training_plot(table: pd.DataFrame | None) -> bytes | None:
    """Training and validation loss over boosting iterations, from a parsed training log (``parse_logs(...).table``)."""
    if table is None or table.empty:
        return None
    from stegwatch.evaluation.logs import loss_names

    def draw(axis):
        train_name, val_name = loss_names(set(table["metric"]))
        for name, style in ((train_name, "-"), (val_name, "--")):
            if name:
                curve = table[table["metric"] == name].groupby("step")["value"].last()
                axis.plot(curve.index, curve.values, style, label=name)
        axis.set_xlabel("boosting iteration")
        axis.set_ylabel("log loss")
        axis.legend(fontsize=8)

    return _figure_png(draw)


def _target(rules: list[Rule], keys: tuple[str, ...], value: float | None, percent: bool, note: str = "") -> tuple[str, str]:
    """Target text and status of one metric from the value rule that watches it (``-`` when none does)."""
    rule = value_rule_for(rules, keys)
    if rule is None:
        return "-", "-"
    bound = f"{100 * rule.threshold:g}%" if percent else f"{rule.threshold:g}"
    status = "-" if value is None else ("ok" if rule_holds(rule, value) else "missed")
    return f"{QUIET_WHEN[rule.condition]} {bound}{note} ({rule.name})", status


def metric_rows(metrics: dict, rules: list[Rule]) -> list[dict]:
    """The "Current metrics" table: metric, value with interval and n, and the target and status from ``rules``."""
    def rate_row(name: str, record: dict, keys: tuple[str, ...] | None = None, value_key: str = "rate", note: str = "") -> dict:
        target, status = _target(rules, keys, record.get(value_key), True, note) if keys else ("-", "-")
        return {"metric": name, "value": rate_text(record), "target": target, "status": status}

    fpr = metrics["false_positive_rate"]
    rows = [rate_row("False-positive rate (all clean)", fpr, ("false_positive_rate", "group_upper_bound"), "group_upper_bound",
                     " upper bound over cover groups")]
    for category, record in metrics["false_positive_rate_by_category"].items():
        rows.append(rate_row(f"FPR: {category}", record))
    for method, record in metrics["detection_rate_by_method"].items():
        rows.append(rate_row(f"Detection: {method}", record, ("detection_rate_by_method", method, "rate")))
    if metrics.get("roc_auc") is not None:
        rows.append({"metric": "ROC AUC", "value": f"{metrics['roc_auc']:.4f}", "target": "-", "status": "-"})
    latency = metrics.get("latency")
    if latency:
        rows.append({"metric": "Latency p50 / p95", "value": f"{latency['per_image_ms']['p50']:.1f} / {latency['per_image_ms']['p95']:.1f} ms",
                     "target": "-", "status": "-"})
        rows.append({"metric": "Throughput", "value": f"{latency['images_per_second']:.1f} images/s", "target": "-", "status": "-"})
    general = metrics.get("generalization") or {}
    if general.get("available"):
        for side, label in (("in_source", "in-source"), ("out_of_source", "out-of-source")):
            rows.append(rate_row(f"FPR {label} (leave-one-cover-source-out)", general[side]["false_positive_rate"]))
            rows.append(rate_row(f"Detection {label}", general[side]["detection_rate"]))
        ratio = general["gap"]["fpr_upper_bound_ratio"]
        target, status = _target(rules, ("generalization", "gap", "fpr_upper_bound_ratio"), ratio, False)
        rows.append({"metric": "Out-of-source / in-source FPR upper bound", "value": "-" if ratio is None else f"{ratio:.2f}x",
                     "target": target, "status": status})
    dataset = metrics.get("dataset")
    if dataset:
        deviation = dataset["balance"]["label"]["max_deviation"]
        target, status = _target(rules, ("dataset", "balance", "label", "max_deviation"), deviation, False)
        rows.append({"metric": "Dataset balance (clean/stego deviation)", "value": f"{deviation:.3f}", "target": target, "status": status})
    return rows


def rate_text(record: dict) -> str:
    """A rate with its file-level and cover-group 95% intervals and "n files (k cover groups)"."""
    if record["rate"] is None:
        return "-"
    text = f"{100 * record['rate']:.3f}% (files {100 * record['ci_low']:.3f}-{100 * record['ci_high']:.3f}%"
    if "group_ci_low" in record:
        text += f"; cover groups {100 * record['group_ci_low']:.3f}-{100 * record['group_ci_high']:.3f}%"
        return text + f"), n={record['n']} files ({record['n_groups']} cover groups)"
    return text + f"), n={record['n']} files"


def short_rate(record: dict | None) -> str:
    """``rate (count/n files, k groups; group upper bound)``: a rate in a narrow table cell."""
    if not record or record.get("rate") is None:
        return "-"
    return (f"{100 * record['rate']:.2f}% ({record['count']}/{record['n']}, {record['n_groups']} groups; "
            f"upper bound {100 * record['group_upper_bound']:.2f}%)")


def gap_text(gap: dict | None) -> str:
    """A paired difference in points with its cluster-bootstrap 95% interval."""
    if not gap or gap.get("difference") is None:
        return "-"
    return (f"{100 * gap['difference']:+.2f} points (95% interval {100 * gap['ci_low']:+.2f} to {100 * gap['ci_high']:+.2f}, "
            f"{gap['groups']} cover groups)")


def html_template(name: str | None) -> bool:
    """Autoescape HTML templates (``*.html.j2``), never Markdown ones."""
    return bool(name) and ".html" in name


# What Markdown (or the HTML a Markdown renderer passes through) would act on inside a table cell.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&!#])")


def _one_line(value: object) -> str:
    return " ".join(str(value).splitlines())


def markdown_text(value: object) -> str:
    """``value`` as literal text in Markdown: punctuation Markdown or HTML would act on is
    backslash-escaped (so ``<script>`` stays text), line breaks become spaces (a table row stays one row)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _one_line(value))


def markdown_code(value: object) -> str:
    """``value`` as an inline code span nothing can break out of: fenced by more backticks than any
    run inside it, ``|`` escaped (table cells), line breaks as spaces."""
    text = _one_line(value).replace("|", "\\|")
    if not text:
        return "-"
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text[0] == "`" or text[-1] == "`" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def template_environment(*extra: Path) -> jinja2.Environment:
    """The dashboard templates (and ``extra`` folders searched first), HTML autoescaped, strict.

    Markdown templates escape every string that comes from outside (paths,
    model and rule names, commands) with the ``md`` and ``code`` filters.
    """
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader([*extra, TEMPLATES]), autoescape=html_template,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(md=markdown_text, code=markdown_code, ratepct=short_rate, gap=gap_text)
    return environment


def dashboard_context(history: list[dict], current: dict, status: str, alerts: list[dict], rules: list[Rule],
                      training_table: pd.DataFrame | None = None, recent: list[dict] | None = None) -> tuple[dict, dict[str, bytes]]:
    """What the dashboard templates show (targets from the monitor's ``rules``), and the PNG plots by file name."""
    plots = trend_plots(history, rules)
    training = training_plot(training_table)
    if training is not None:
        plots["training_loss.png"] = training
    context = {
        "run": current["run"], "status": status, "in_sample": bool(current.get("in_sample")),
        "excluded": current.get("excluded_in_sample") or {"training_covers_known": False, "files": 0, "cover_groups": 0, "kept": False},
        "generalization": current.get("generalization"), "refits": current.get("refits"), "rows": metric_rows(current, rules), "alerts": alerts, "history": history,
        "recent": recent or [],
        "plots": sorted(plots), "training": current.get("training"),
        "images": {name: base64.b64encode(data).decode() for name, data in plots.items()},
    }
    return context, plots


def render_dashboard(history: list[dict], current: dict, status: str, alerts: list[dict], dashboard: Path, rules: list[Rule],
                     training_table: pd.DataFrame | None = None, recent: list[dict] | None = None) -> list[Path]:
    """Write the Markdown dashboard, its PNG plots and the HTML twin; returns the paths written.

    ``training_table`` is the model's parsed training log (``parse_logs(...).table``), or None.
    ``dashboard`` names the Markdown file; named ``.html``, it names the twin
    and the Markdown goes beside it as ``.md`` (one never overwrites the
    other). The plots' names are fixed: one dashboard per folder.
    """
    if dashboard.suffix.lower() == ".html":
        dashboard = dashboard.with_suffix(".md")
    folder = dashboard.parent
    context, plots = dashboard_context(history, current, status, alerts, rules, training_table, recent)
    written = []
    for name, data in plots.items():
        write_bytes_atomic(folder / name, data)
        written.append(folder / name)
    environment = template_environment()
    write_text_atomic(dashboard, environment.get_template("dashboard.md.j2").render(**context))
    html = dashboard.with_suffix(".html")
    write_text_atomic(html, environment.get_template("dashboard.html.j2").render(**context))
    return [dashboard, html, *written]
