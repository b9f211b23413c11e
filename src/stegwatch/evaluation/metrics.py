"""Metrics as pure functions: arrays in, numbers out.

Conventions: ``scores`` are probability-like (higher = more likely stego);
a file is flagged when ``score >= threshold``; rates come as
:func:`stegwatch.stats.rate_record` dictionaries.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from stegwatch.stats import cluster_bootstrap_difference, group_rate_record, rate_record, threshold_for_fpr

#: Replicates of the paired cluster bootstrap.
BOOTSTRAP = 2000


def container_of(entry) -> str:
    """A file's container as the per-method statistics match it: its format and mode (``JPEG/L``, ``PNG/RGBA``)."""
    return f"{getattr(entry, 'format', None)}/{getattr(entry, 'mode', None)}"


def containers_of(entries) -> np.ndarray:
    """:func:`container_of` of every entry, as the ``containers`` argument of :func:`key_and_peers` and :func:`by_key`."""
    return np.asarray([container_of(e) for e in entries], dtype=object)


def key_and_peers(stego: np.ndarray, keys: np.ndarray, containers: np.ndarray | None = None) -> Iterable[tuple[str, np.ndarray]]:
    """For each key of the stego files (a method, or method@rate): the mask of its stego files and their clean peers.

    The peers are the clean files in the containers (:func:`container_of`) the
    key's stego files come in: JSteg's files against the clean JPEGs of their
    modes, ``lsb.rgb``'s against the clean RGB PNGs and BMPs. Against every
    clean file, a detector that only knows which containers a method writes
    (that a PNG carries no JSteg) would score well without seeing any
    embedding. Without ``containers``, every clean file is a peer.
    """
    stego = np.asarray(stego, dtype=bool)
    keys = np.asarray(keys, dtype=object)
    clean = ~stego
    for key in sorted({str(k) for k in keys[stego]} - {""}):
        mine = stego & (keys == key)
        peers = clean if containers is None else clean & np.isin(containers, np.unique(containers[mine]))
        yield key, mine | peers


def by_key(statistic, stego: np.ndarray, scores: np.ndarray, keys: np.ndarray,
           containers: np.ndarray | None = None) -> dict[str, float | None]:
    """``statistic(stego, scores)`` (AUC, P_E) of each key's stego files against their clean peers (:func:`key_and_peers`)."""
    stego = np.asarray(stego, dtype=bool)
    return {key: statistic(stego[rows], scores[rows]) for key, rows in key_and_peers(stego, keys, containers)}


def _roc(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.metrics import roc_curve

    # Every threshold's point: sklearn's default drops collinear points, and with tied scores one of them can be the
    # best point at or below 5% FPR (MD5 read from the thinned curve came out up to 0.05 too high).
    fpr, tpr, _ = roc_curve(np.asarray(labels, dtype=bool), scores, drop_intermediate=False)
    return fpr, tpr


def p_e(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Minimum over thresholds of the average of false-alarm and missed-detection rates."""
    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        return None
    fpr, tpr = _roc(labels, scores)
    return float(np.min(0.5 * (fpr + 1 - tpr)))


def md5(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Missed-detection rate at 5% false alarms (the best threshold with FPR <= 5%)."""
    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        return None
    fpr, tpr = _roc(labels, scores)
    return float(1 - np.max(tpr[fpr <= 0.05]))


def detection_at_fpr(clean_scores: np.ndarray, stego_scores: np.ndarray, fpr: float,
                     clean_groups=None, stego_groups=None) -> dict:
    """The ROC curve read at ``fpr``: detection at the threshold that gives at most ``fpr`` on these very clean scores.

    An *oracle* reading: the threshold is chosen on the files it reports on, so
    no deployed detector could do as well; it describes the score's ranking,
    not a decision. With the cover groups of the files, the rates carry group intervals.
    """
    clean_scores, stego_scores = np.asarray(clean_scores), np.asarray(stego_scores)
    threshold = threshold_for_fpr(clean_scores, fpr)

    def record(flags, groups):
        return rate_record(int(flags.sum()), flags.size) if groups is None else group_rate_record(flags, groups)

    return {
        "oracle": True,
        "target_fpr": fpr,
        "threshold": threshold,
        "false_positive_rate": record(clean_scores >= threshold, clean_groups),
        "detection_rate": record(stego_scores >= threshold, stego_groups),
        "resolvable": len(clean_scores) * fpr >= 1,
    }


def confusion(true: list[str], predicted: list[str]) -> dict:
    """Confusion matrix of method attribution: rows true method, columns predicted."""
    labels = sorted(set(true) | set(predicted))
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(true, predicted, strict=True):
        matrix[index[t], index[p]] += 1
    return {"labels": labels, "matrix": matrix.tolist()}


def payload_bin(method: str | None, payload_kind: str | None, bpnzac: float | None, bpp: float | None) -> str:
    """``method@text`` or ``method@rate`` (bpnzac for JPEG methods, bpp otherwise), rate rounded to 2 places."""
    if payload_kind == "text":
        return f"{method}@text"
    rate = bpnzac if bpnzac is not None else bpp
    return f"{method}@{round(float(rate or 0.0), 2)}"


def mcnemar_exact(before: dict, after: dict) -> dict:
    """Exact McNemar test on paired decisions (files evaluated in both runs).

    ``before`` and ``after`` hold ``evaluated`` and ``flagged`` lists of file
    hashes. Returns the discordant counts (flagged only before, only after) and
    the two-sided exact binomial p-value.
    """
    from scipy.stats import binomtest

    common = set(before["evaluated"]) & set(after["evaluated"])
    was, now = set(before["flagged"]) & common, set(after["flagged"]) & common
    only_before, only_after = len(was - now), len(now - was)
    discordant = only_before + only_after
    p = float(binomtest(only_before, discordant, 0.5).pvalue) if discordant else 1.0
    return {"paired_files": len(common), "only_before": only_before, "only_after": only_after, "p_value": p}


def paired_bootstrap(before: dict, after: dict, seed: int, reps: int = BOOTSTRAP) -> dict:
    """95% interval of rate(after) - rate(before) by a paired cluster bootstrap: cover groups, not files, are resampled.

    ``before`` and ``after`` are decision sets (``evaluated``, ``groups``,
    ``flagged``) of the same files; a set without ``groups`` (older metrics)
    makes each file its own group.
    """
    groups_of = dict(zip(after["evaluated"], after.get("groups") or after["evaluated"], strict=True))
    files = sorted(set(before["evaluated"]) & set(after["evaluated"]))
    was, now = set(before["flagged"]), set(after["flagged"])
    b = np.asarray([f in was for f in files], dtype=float)
    a = np.asarray([f in now for f in files], dtype=float)
    return cluster_bootstrap_difference(b, a, [groups_of[f] for f in files], seed=seed, reps=reps)
