"""The V3-vs-V4 baseline report: one command, one run, every table regenerated from measurements.

For each model, ``evaluate`` with grouped folds (every model refitted per
fold: V4 retrained, V3 recalibrated, so both are out-of-fold) and its
generalization section (leave-one-cover-source-out); a model's column can
instead be a stored ``evaluate`` run of the same settings (``evaluations``:
:func:`stored_evaluation` checks corpus, folds and their assignment, target,
sections and training files), so a long report can be made a model at a
time. For each pair of
consecutive models: a paired cluster bootstrap over cover groups for the
difference in detection rate (per method and overall) and in false-positive
rate, which decides significance; the exact McNemar test on the paired file
decisions stays beside it as a file-level reference. Ablations (``stegwatch
ablate``) are included when their JSON is given.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import numpy as np

from stegwatch import __version__
from stegwatch.features.corpus import load_corpus_features
from stegwatch.monitoring.dashboard import gap_text, html_template
from stegwatch.errors import ConfigError
from stegwatch.evaluation.cost import FAMILIES, path_family, stegwatch_feature_cost, timed_files
from stegwatch.detectors import load_detector, model_path
from stegwatch.evaluation.evaluate import corpus_identity, evaluate, model_identity
from stegwatch.evaluation.metrics import mcnemar_exact, paired_bootstrap
from stegwatch.provenance import git_commit, new_run_id
from stegwatch.stats import DEFAULT_TARGET_FPR, significant_change
from stegwatch.evaluation.plots import figure_png
from stegwatch.format.files import write_bytes_atomic, write_text_atomic
from stegwatch.format.manifest import RootResolver

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"


def _overall(decisions: dict, prefix: str) -> dict:
    sets = [v for k, v in decisions.items() if k.startswith(prefix)]
    return {"evaluated": [f for g in sets for f in g["evaluated"]], "flagged": [f for g in sets for f in g["flagged"]],
            "groups": [c for g in sets for c in (g.get("groups") or g["evaluated"])]}


def compare_pair(a: dict, b: dict, seed: int) -> dict:
    """Significance of b against a: per method and overall (detection), and for the false-positive rate."""
    da, db = a["decisions"], b["decisions"]
    rows = {}
    for key in sorted(k for k in db if k.startswith("method:")):
        if key in da:
            rows[key.split(":", 1)[1]] = {"mcnemar": mcnemar_exact(da[key], db[key]), "bootstrap": paired_bootstrap(da[key], db[key], seed)}
    stego_a, stego_b = _overall(da, "method:"), _overall(db, "method:")
    rows["all methods"] = {"mcnemar": mcnemar_exact(stego_a, stego_b), "bootstrap": paired_bootstrap(stego_a, stego_b, seed)}
    fpr = {"mcnemar": mcnemar_exact(da["clean"], db["clean"]), "bootstrap": paired_bootstrap(da["clean"], db["clean"], seed)}
    for row in [*rows.values(), fpr]:
        # Significant when the cover-group interval excludes 0 and the sign test over cover groups agrees; McNemar
        # (files as independent) is a reference only.
        row["significant"] = significant_change(row["bootstrap"])
    return {"detection": rows, "false_positive_rate": fpr}


def verdicts(name_a: str, name_b: str, comparison: dict) -> list[str]:
    """Plain sentences: which differences are significant, and where the newer model is not better."""
    sentences = []
    for method, row in comparison["detection"].items():
        diff, p = row["bootstrap"]["difference"], row["mcnemar"]["p_value"]
        if diff is None:
            continue
        interval = (f"95% interval over cover groups {100 * row['bootstrap']['ci_low']:+.1f} to "
                    f"{100 * row['bootstrap']['ci_high']:+.1f}{_sign(row['bootstrap'])}; file-level McNemar p={p:.3g}")
        if row["significant"] and diff > 0:
            what = "stego files over all methods" if method == "all methods" else f"{method} files"
            sentences.append(f"{name_b} detects more {what} than {name_a}: {100 * diff:+.1f} points ({interval}).")
        elif row["significant"]:
            sentences.append(f"{name_b} is worse than {name_a} on {method}: {100 * diff:+.1f} points ({interval}).")
        else:
            sentences.append(f"{name_b} is not significantly better than {name_a} on {method}: {100 * diff:+.1f} points "
                             f"({interval}).")
    fpr = comparison["false_positive_rate"]
    diff = fpr["bootstrap"]["difference"]
    if diff is not None:
        detail = (f"({100 * diff:+.3f} points; 95% interval over cover groups {100 * fpr['bootstrap']['ci_low']:+.3f} to "
                  f"{100 * fpr['bootstrap']['ci_high']:+.3f}{_sign(fpr['bootstrap'])}; file-level McNemar "
                  f"p={fpr['mcnemar']['p_value']:.3g})")
        if diff == 0:
            sentences.append(f"{name_b}'s false-positive rate equals {name_a}'s on these files {detail}.")
        else:
            kind = "significantly" if fpr["significant"] else "not significantly"
            sentences.append(f"{name_b}'s false-positive rate is {kind} {'higher' if diff > 0 else 'lower'} than "
                             f"{name_a}'s {detail}.")
    return sentences


def _sign(bootstrap: dict) -> str:
    sign = bootstrap.get("sign_test")
    return "" if sign is None else (f"; sign test over cover groups {sign['groups_up']} up, {sign['groups_down']} down, "
                                    f"p={sign['p_value']:.3g}")


def report_rate(record: dict | None) -> str:
    """A rate with its cover-group 95% interval and "count/n files (k cover groups)"."""
    if not record or record.get("rate") is None:
        return "-"
    low, high = record.get("group_ci_low", record["ci_low"]), record.get("group_ci_high", record["ci_high"])
    groups = f" ({record['n_groups']} cover groups)" if "n_groups" in record else ""
    return f"{100 * record['rate']:.2f}% ({100 * low:.2f}-{100 * high:.2f}%, {record['count']}/{record['n']} files{groups})"


def charts(results: dict[str, dict]) -> dict[str, bytes]:
    """Detection against payload rate per method (one curve per model), and ROC curves per method."""
    out = {}
    methods = sorted({k.split("@")[0] for m in results.values() for k in m["detection_rate_by_payload"]})
    for method in methods:
        def rates(axis, method=method):
            for name, metrics in results.items():
                points = sorted((float(k.split("@")[1]), v["rate"]) for k, v in metrics["detection_rate_by_payload"].items()
                                if k.split("@")[0] == method and k.split("@")[1] != "text")
                if points:
                    axis.plot([p[0] for p in points], [100 * (p[1] or 0) for p in points], "o-", label=name)
            axis.set_xlabel("payload rate (bpp, or bits per non-zero AC coefficient for JPEG methods)")
            axis.set_ylabel("detection %")
            axis.set_title(method)
            axis.legend(fontsize=8)
        if any(k.startswith(f"{method}@") and not k.endswith("@text") for m in results.values() for k in m["detection_rate_by_payload"]):
            out[f"rate_{method}.png"] = figure_png(rates)

        def roc(axis, method=method):
            for name, metrics in results.items():
                curve = metrics["roc_curves"].get(method)
                if curve:
                    axis.plot(curve["fpr"], curve["tpr"], label=name)
            axis.plot([0, 1], [0, 1], ":", color="grey")
            axis.set_xlabel("false-positive rate")
            axis.set_ylabel("detection rate")
            axis.set_title(f"ROC: {method}")
            axis.legend(fontsize=8)
        out[f"roc_{method}.png"] = figure_png(roc)
    return out


def anchor_metrics(anchor: str, data, corpus: Path, *, folds: int, seed: int, target_fpr: float, command: str,
                   workers: int = 1) -> dict:
    """Schema-valid metrics of the reference pipeline ``anchor`` on the same grouped folds as the detectors."""
    from stegwatch.evaluation.anchor import anchor_decisions
    from stegwatch.evaluation.evaluate import cross_validation_record, metrics_from_decisions
    from stegwatch.evaluation.folds import fold_assignment
    from stegwatch.evaluation.schema import Metrics

    assignment = fold_assignment(data, folds, seed)
    log.info("anchor %s: its own features and classifier on the same %d folds", anchor, folds)
    decided = anchor_decisions(data, Path(corpus), assignment, seed=seed, target_fpr=target_fpr, workers=workers)
    n = len(data.entries)
    cross = cross_validation_record(data, assignment, decided["scores"], decided["flags"], decided["thresholds"], True, seed)
    model = {"name": f"{anchor}-anchor", "version": f"{decided['version']} DCTR+SPAM FLD-ensemble", "path": None, "sha256": None}
    metrics = metrics_from_decisions(
        data, decided["scores"], decided["flags"], [""] * n, model=model, root=Path(corpus), split=None, command=command,
        target_fpr=target_fpr, threshold=None, in_sample={"training_covers_known": True, "files": 0, "cover_groups": 0, "kept": False},
        cross_validation=cross)
    metrics["latency"] = decided["latency"]
    metrics["anchor"] = {"library": anchor, "version": decided["version"], "cost_ms_by_family": decided["cost_ms_by_family"],
                         "attribution": "none: the anchor is binary",
                         "cost_files_timed": decided["cost_files_timed"], "unreadable_files": decided["unreadable_files"]}
    return Metrics.model_validate(metrics).model_dump(mode="json")


def read_evaluation(path: Path) -> dict:
    """A stored ``evaluate`` run (its ``metrics.json``, or ``runs/<run id>.json``), schema-checked."""
    from pydantic import ValidationError

    from stegwatch.evaluation.schema import Metrics

    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        metrics = Metrics.model_validate(document).model_dump(mode="json")
    except FileNotFoundError:
        raise ConfigError(f"evaluation {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"evaluation {path}: cannot be read as JSON: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(f"evaluation {path}: not a stegwatch metrics document ({exc.error_count()} schema errors)") from None
    if not metrics.get("decisions"):
        raise ConfigError(f"evaluation {path}: it holds no per-file decisions, which the significance tests pair")
    return metrics


def _training_files(record: list) -> list[dict]:
    """The training-only corpora of a run by what they hold, not by how their path was typed."""
    return [{k: source.get(k) for k in ("manifest_sha256", "files", "cover_groups", "unreadable")} for source in record]


def stored_evaluation(path: Path, metrics: dict, detector, data, *, folds: int, seed: int, target_fpr: float,
                      extra_record: list) -> None:
    """Refuse a stored evaluation that is not what this report would have run for its model.

    It must be of this corpus (manifest sha256, file count, no split), with grouped folds of the same number, the same
    assignment of every cover to its fold and the same seed (where the run recorded it), the model refitted per fold
    when it can be, the same target FPR, the leave-one-source-out section, and the same training-only files. For a
    detector that cannot be refitted, the files of its training covers are left out first, as :func:`evaluate` does.
    """
    from stegwatch.evaluation.evaluate import exclude_in_sample
    from stegwatch.evaluation.folds import fold_assignment

    def refuse(reason: str) -> None:
        raise ConfigError(f"evaluation {path} (run {metrics['run']['run_id']}) cannot stand for its model here: {reason}")

    trainable = bool(detector.trainable)
    if not trainable:
        data, _ = exclude_in_sample(detector, data, False)
    corpus = metrics["run"]["corpus"]
    if corpus.get("manifest_sha256") != data.manifest_sha256:
        refuse(f"it is of another corpus (manifest sha256 {str(corpus.get('manifest_sha256'))[:16]}…, this one "
               f"{data.manifest_sha256[:16]}…)")
    if corpus.get("files") != len(data.entries) + len(data.errors):
        refuse(f"it read {corpus.get('files')} files of the corpus, this report {len(data.entries) + len(data.errors)}")
    if corpus.get("split") is not None:
        refuse(f"it evaluated the {corpus['split']} split only; the report evaluates every file")
    if metrics.get("fpr_target") != target_fpr:
        refuse(f"its target FPR is {metrics.get('fpr_target')}, this report's {target_fpr}")
    cross = metrics.get("cross_validation")
    if not cross or cross.get("folds") != folds:
        refuse(f"it has {cross.get('folds') if cross else 'no'} grouped folds; this report {folds} (evaluate --folds {folds})")
    if bool(cross.get("trained_per_fold")) != trainable:
        refuse("the model was not refitted per fold" if trainable else "it was refitted per fold, which this model cannot be")
    if cross.get("seed") is not None and cross["seed"] != seed:
        refuse(f"its seed is {cross['seed']}, this report's {seed}")
    assignment = fold_assignment(data, folds, seed)
    if cross.get("fold_of_cover") != {e.cover_id: int(assignment[i]) for i, e in enumerate(data.entries)}:
        refuse("its folds put covers in other folds than this report's seed does")
    if not metrics.get("generalization"):
        refuse("it has no leave-one-cover-source-out section (evaluate --by-source)")
    if _training_files(cross.get("extra_training") or []) != _training_files(extra_record):
        refuse("its refits trained on other training-only files than this report's --train-extra")


def _same_model(run_model: dict, identity: dict) -> bool:
    """The same model: name, version and model file sha256 (the file may lie in another checkout)."""
    return all(run_model.get(key) == identity[key] for key in ("name", "version", "sha256"))


def baseline_report(models: list[str], corpus, *, folds: int = 5, seed: int = 0, target_fpr: float = DEFAULT_TARGET_FPR,
                    out: Path = Path("docs/grok/baseline_report.md"), ablations: list[Path] | None = None,
                    workers: int = 1, command: str = "", latency_sample: int = 50, anchor: str | None = None,
                    train_extra: list[Path] | None = None, evaluations: list[Path] | None = None,
                    checkpoints: Path | None = None) -> dict:
    """Run everything and write the Markdown report, its HTML twin, its charts and ``baseline_report.json``.

    ``anchor`` (``sealwatch``) adds the field's reference pipeline as a last column, trained on the same folds
    (:mod:`stegwatch.evaluation.anchor`); without its optional extra the report is refused before any work.
    ``evaluations``: stored ``evaluate --folds K --by-source`` runs (``metrics.json``) that stand for the models they
    evaluated (same model file, by sha256) instead of evaluating them again; each is checked by
    :func:`stored_evaluation`, named in the report, and one that matches none of ``models`` is refused.
    ``checkpoints``: a folder where the models' refits are kept and taken from
    (:mod:`~stegwatch.evaluation.checkpoints`), so a stopped report resumes.
    """
    if anchor is not None:
        from stegwatch.evaluation.anchor import ANCHORS, require_sealwatch

        if anchor not in ANCHORS:
            raise ConfigError(f"unknown anchor {anchor!r}; choose from {', '.join(ANCHORS)}")
        require_sealwatch()
    stored = {Path(p): read_evaluation(Path(p)) for p in evaluations or []}
    detectors = {model: load_detector(model) for model in models} if stored else {}
    identities = {model: model_identity(detector, model_path(model)) for model, detector in detectors.items()}
    for path, metrics in stored.items():
        twins = [other for other, m in stored.items() if other != path and _same_model(m["run"]["model"], metrics["run"]["model"])]
        if twins:
            raise ConfigError(f"evaluations {path} and {twins[0]} are of the same model: give one")
        if not any(_same_model(metrics["run"]["model"], identity) for identity in identities.values()):
            model = metrics["run"]["model"]
            raise ConfigError(f"evaluation {path} is of {model['name']} {model['version']} (sha256 "
                              f"{str(model['sha256'])[:16]}…), none of --models")
    data = load_corpus_features(corpus, workers=workers)  # read and hashed once, for every model and experiment
    extra = None
    if train_extra:  # training-only files joined to every detector's refits (the anchor's extraction cost keeps it out)
        from stegwatch.evaluation.folds import join_extra

        extra = join_extra(data, train_extra, workers=workers)
    # Every stored run is checked before any model is evaluated: a refusal costs nothing.
    standing = {}
    for model in models:
        for path, metrics in stored.items():
            if model in identities and _same_model(metrics["run"]["model"], identities[model]):
                stored_evaluation(path, metrics, detectors[model], data, folds=folds, seed=seed, target_fpr=target_fpr,
                                  extra_record=extra.record() if extra is not None else [])
                standing[model] = (path, metrics)
    results, reused = {}, {}
    for model in models:
        if model in standing:
            path, metrics = standing[model]
            log.info("%s: the stored evaluation run %s (%s)", model, metrics["run"]["run_id"], path)
        else:
            metrics = evaluate(model, corpus, folds=folds, seed=seed, target_fpr=target_fpr, workers=workers,
                               latency_sample=latency_sample, command=command, data=data, by_source=True,
                               train_extra=extra, detector=detectors.get(model), checkpoints=checkpoints)
        name = f"{metrics['run']['model']['name']} {metrics['run']['model']['version']}"
        results[name] = metrics
        if model in standing:
            reused[name] = {"file": str(standing[model][0]), "command": metrics["run"]["command"],
                            "git_commit": metrics["run"]["git_commit"], "timestamp": metrics["run"]["timestamp"],
                            "stegwatch_version": metrics["run"].get("stegwatch_version"), "model": identities[model]}
            if metrics["run"].get("stegwatch_version") != __version__:
                log.warning("%s: the stored run %s was made by stegwatch %s, this is %s", model, metrics["run"]["run_id"],
                            metrics["run"].get("stegwatch_version"), __version__)
    feature_cost = measure_feature_cost(data, Path(corpus), workers=workers)  # the files the anchor's cost is timed on
    if anchor is not None:
        metrics = anchor_metrics(anchor, data, Path(corpus), folds=folds, seed=seed, target_fpr=target_fpr, command=command,
                                 workers=workers)
        results[f"{metrics['run']['model']['name']} {metrics['run']['model']['version']}"] = metrics
    names = list(results)
    comparisons = []
    for a, b in zip(names, names[1:], strict=False):
        comparison = compare_pair(results[a], results[b], seed)
        comparisons.append({"from": a, "to": b, "comparison": comparison, "verdicts": verdicts(a, b, comparison)})
    loso = {name: results[name].get("generalization") for name in names}
    ablation_results = [json.loads(Path(p).read_text(encoding="utf-8")) for p in ablations or []]
    identity = {
        "run_id": new_run_id(suffix=hashlib.sha256("".join(r["run"]["run_id"] for r in results.values()).encode()).hexdigest()[:8]),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        # this run's reading of the corpus and of the model files (a stored run's may be another checkout's)
        "corpus": corpus_identity(data, Path(corpus), None) if reused else next(iter(results.values()))["run"]["corpus"],
        "git_commit": git_commit() if reused else next(iter(results.values()))["run"]["git_commit"],
        "models": {name: reused[name]["model"] if name in reused else r["run"]["model"] for name, r in results.items()},
        "evaluation_runs": {name: r["run"]["run_id"] for name, r in results.items()},
        "reused_evaluations": reused,
        "folds": folds, "seed": seed,
    }
    report = {"identity": identity, "results": results, "comparisons": comparisons, "generalization": loso,
              "ablations": ablation_results, "feature_cost": feature_cost}
    slim = report | {"results": {n: {k: v for k, v in r.items() if k != "decisions"} for n, r in results.items()}}
    write_text_atomic(out.with_suffix(".json"), json.dumps(slim, indent=1, sort_keys=True) + "\n")
    render_report(slim, out)
    return report


def measure_feature_cost(data, corpus: Path, *, workers: int = 1) -> dict:
    """stegwatch's feature cost per file by family (:func:`stegwatch.evaluation.cost.stegwatch_feature_cost`), on the
    files :func:`~stegwatch.evaluation.cost.timed_files` draws: the same the anchor's cost is timed on."""
    resolve = RootResolver(corpus)
    paths = [resolve(e.file_path) for e in data.entries]
    families = np.asarray([path_family(p) for p in paths], dtype=object)
    log.info("timing stegwatch's features on the files the anchor's cost is timed on")
    return {"stegwatch": stegwatch_feature_cost(paths, families, timed_files(families), workers=workers),
            "workers": workers}


def feature_cost_cells(report: dict) -> dict:
    """Per report column, its feature cost by family (ms), and stegwatch's cost as a fraction of the anchor's per family;
    empty for a report stored before feature costs were timed."""
    measured = (report.get("feature_cost") or {}).get("stegwatch")
    if not measured:
        return {}
    cells = {name: (result.get("anchor") or {}).get("cost_ms_by_family") if result.get("anchor") else measured["ms_by_family"]
             for name, result in report["results"].items()}
    anchor = next((r["anchor"]["cost_ms_by_family"] for r in report["results"].values() if r.get("anchor")), None)
    fraction = {f: measured["ms_by_family"][f] / anchor[f] for f in FAMILIES
                if anchor and f in anchor and anchor[f] > 0 and f in measured["ms_by_family"]}
    return {"cells": cells, "fraction_of_anchor": fraction, "files_timed": measured["files_timed"],
            "workers": report["feature_cost"].get("workers", 1)}


def column_order(report: dict) -> list[str]:
    """The report's models in the order they were run (the chain of pairwise comparisons): a stored
    ``baseline_report.json`` has its keys sorted, so the order of ``results`` is not the run's."""
    chain = report.get("comparisons") or []
    names = [chain[0]["from"], *(c["to"] for c in chain)] if chain else []
    return names + sorted(set(report["results"]) - set(names))


def in_run_order(report: dict) -> dict:
    """``report`` with its mappings in the order the run made them (models as run, each comparison's methods sorted
    with "all methods" last), whatever order its JSON stored them in."""
    names = column_order(report)

    def ordered(mapping: dict | None) -> dict | None:
        return None if mapping is None else {n: mapping[n] for n in names if n in mapping}

    def pair(item: dict) -> dict:
        detection = item["comparison"]["detection"]
        methods = sorted(k for k in detection if k != "all methods") + [k for k in detection if k == "all methods"]
        return item | {"comparison": item["comparison"] | {"detection": {m: detection[m] for m in methods}}}

    identity = report["identity"]
    return report | {"results": ordered(report["results"]), "generalization": ordered(report.get("generalization")),
                     "comparisons": [pair(c) for c in report.get("comparisons") or []],
                     "identity": identity | {k: ordered(identity[k]) for k in ("models", "evaluation_runs") if k in identity}}


def render_report(report: dict, out: Path) -> list[Path]:
    """Write the Markdown report, its HTML twin and its charts from a report's numbers (``baseline_report.json``).

    Rendering reads only ``report``: re-rendering a stored report after a
    template change reproduces every number of the run that made it.
    """
    report = in_run_order(report)
    names, results = list(report["results"]), report["results"]
    images = charts(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in images.items():
        write_bytes_atomic(out.parent / name, data)
        written.append(out.parent / name)
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=html_template,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters["pct"] = lambda r: "-" if r is None else f"{100 * r:.2f}%"
    environment.filters["rate"] = report_rate
    environment.filters["gap"] = gap_text
    environment.filters["num"] = lambda x: "-" if x is None else f"{x:.4f}"
    context = report | {"names": names, "charts": sorted(images), "cost": feature_cost_cells(report),
                        "images": {k: base64.b64encode(v).decode() for k, v in images.items()}}
    write_text_atomic(out, environment.get_template("baseline_report.md.j2").render(**context))
    write_text_atomic(out.with_suffix(".html"), environment.get_template("baseline_report.html.j2").render(**context))
    return [out, out.with_suffix(".html"), *written]
