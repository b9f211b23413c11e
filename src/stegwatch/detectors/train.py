"""Training (V4) and calibration (V3) on a corpus, with honest held-out numbers.

The corpus is split by ``cover_id`` (scikit-learn's ``GroupShuffleSplit``):
a test part that training never sees (its numbers go into the model card), a
validation part where the decision threshold is chosen for the target
false-positive rate, and the training part. All descendants of one
photograph stay in one part.
"""

from __future__ import annotations

import logging
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from stegwatch import __version__
from stegwatch.errors import ModelError
from stegwatch.evaluation.metrics import by_key, containers_of
from stegwatch.features.corpus import CorpusFeatures, load_corpus_features
from stegwatch.features.streams import FEATURE_VERSION
from stegwatch.format.records import ManifestEntry
from stegwatch.provenance import git_commit, git_dirty
from stegwatch.stats import DEFAULT_TARGET_FPR, group_rate_record, grouped_rates, roc_auc

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything that decides what ``train`` produces; recorded in the model card."""

    model: str = "v4"
    seed: int = 0
    target_fpr: float = DEFAULT_TARGET_FPR
    exclude_categories: tuple[str, ...] = ()
    drop_streams: tuple[str, ...] = ()
    test_size: float = 0.25
    val_size: float = 0.25
    #: V4 (LightGBM per format family): the most boosting rounds; early stopping on the validation loss keeps fewer.
    n_estimators: int = 1000
    learning_rate: float = 0.1
    num_leaves: int = 15
    subsample: float = 0.8
    #: Fraction of the features each tree draws from. All: with thousands of rich features, a fifth left most trees
    #: without the few decisive classical statistics (detection at the deployed threshold fell, e.g. jsteg 99% to 42%).
    colsample_bytree: float = 1.0
    #: Rounds without a lower validation loss after which boosting stops (the best round is kept).
    early_stopping_rounds: int = 30
    #: V4: weight the clean files of each family as much together as its stego files (:func:`stegwatch.detectors.v4.clean_weights`).
    balance_clean: bool = True
    #: V4: also fit one binary model per method (that method's files against the family's clean files); one joins the
    #: score where it adds validation detections with a margin on the clean files (:func:`stegwatch.detectors.v4.fit_v4`).
    #: Off: out-of-fold it raised detection but flagged more clean files, most of all from photograph sources left out
    #: of training (CHANGELOG.md names the runs).
    method_models: bool = False
    #: V4: the most boosting rounds of a method model (a separable method never stops early; 200 rounds saturate it).
    method_estimators: int = 200
    #: V4: V3's statistics decide where their clean tail (fitted on the fitting part's clean files) puts the fraction of
    #: clean files as far out at most this fraction of ``target_fpr`` (:mod:`stegwatch.detectors.decisive`); 0: off.
    decisive_fraction: float = 0.001
    #: V4: 0 chooses the threshold on the validation part's clean files; K >= 2 on cross-fitted scores of every clean
    #: file of the training and validation parts, each scored by the recipe fitted without its cover's inner fold
    #: (:func:`stegwatch.detectors.v4.crossfit_threshold`; K more fits). 4: with about 1,800 validation clean files the
    #: largest one decided the threshold (one framed caption moved every method's); cross-fitted, about 7,000 do.
    threshold_folds: int = 4
    #: V4: ``eoi`` and ``exif`` are learned by a model of their own on the ``meta`` stream of every file (JPEG or not,
    #: unweighted), and the family models never see their files (:data:`stegwatch.detectors.v4.METADATA_METHODS`).
    #: Off, not shipped: out-of-fold it lifted detection (a JPEG ``exif`` file no longer stops at about 0.975), but
    #: an unseen framed caption scores as high as a payload (0.9997) and then holds the one threshold above every
    #: family model's stego files (the module docstring and CHANGELOG.md give both measurements).
    metadata_model: bool = False
    #: V4: ``eoi`` and ``exif`` decided by V3's targeted evidence (:class:`stegwatch.detectors.decisive.EvidenceStage`):
    #: a file beyond every fitting clean file's ``exif/comment_evidence``, ``exif/binary_comment`` or
    #: ``eoi/unexplained_trailer`` scores 1; the family models never see their files. Not with ``metadata_model``.
    #: On: out-of-fold on the baseline report's folds, detection 2,872 to 3,272 of 6,120 and false positives 2 to 1
    #: of 8,800, the framed captions no longer holding every method's threshold up (CHANGELOG.md).
    metadata_evidence: bool = True
    workers: int = 1
    #: The corpus split trained on: the ``monitor`` split's covers never reach training.
    split: str | None = "train"


def split_by_cover(entries: list[ManifestEntry], seed: int, test_size: float, val_size: float) -> dict[str, np.ndarray]:
    """Indices of train / val / test, grouped by ``cover_id`` (no cover in two parts)."""
    from sklearn.model_selection import GroupShuffleSplit

    groups = np.asarray([e.cover_id for e in entries])
    index = np.arange(len(entries))
    rest, test = next(GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed).split(index, groups=groups))
    train, val = next(GroupShuffleSplit(n_splits=1, test_size=val_size, random_state=seed + 1).split(rest, groups=groups[rest]))
    return {"train": rest[train], "val": rest[val], "test": test}


def grouped_holdout(rows: np.ndarray, groups: np.ndarray, seed: int, size: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` split by cover (``groups``, one per row of the data) into a fitting part and a held-out ``size`` of
    the covers (the part a refit stops its boosting and chooses its threshold on); both as rows of the data."""
    from sklearn.model_selection import GroupShuffleSplit

    fit, held = next(GroupShuffleSplit(n_splits=1, test_size=size, random_state=seed).split(rows, groups=groups[rows]))
    return rows[fit], rows[held]


def quality(entries: list[ManifestEntry], scores: np.ndarray, threshold: float, predicted_methods: list[str | None]) -> dict:
    """Held-out numbers: FPR overall and per clean category, detection per method and rate, AUC, attribution."""
    flagged = scores >= threshold
    labels = np.asarray([e.label == "stego" for e in entries])
    clean = ~labels
    methods = np.asarray([e.method or "" for e in entries])
    rate_keys = []
    for e in entries:
        rate = e.payload_bpnzac if e.payload_bpnzac is not None else e.payload_bpp
        rate_keys.append(f"{e.method}@{'text' if e.payload_kind == 'text' else round(float(rate or 0), 2)}")
    detected = labels & flagged
    groups = np.asarray([e.cover_id for e in entries], dtype=object)
    hits = np.flatnonzero(detected)
    right = np.asarray([predicted_methods[i] == entries[i].method for i in hits], dtype=bool)
    return {
        "n_files": len(entries),
        "cover_groups": len(set(groups.tolist())),
        "false_positive_rate": group_rate_record(flagged[clean], groups[clean]),
        "false_positive_rate_by_category": grouped_rates(flagged[clean], [e.category for e in entries if e.label == "clean"], groups[clean]),
        "detection_rate_by_method": grouped_rates(flagged[labels], methods[labels], groups[labels]),
        "detection_rate_by_method_and_payload": grouped_rates(flagged[labels], np.asarray(rate_keys, dtype=object)[labels], groups[labels]),
        "auc": roc_auc(labels, scores),
        # against the clean files of the method's containers
        "auc_by_method": by_key(roc_auc, labels, scores, methods, containers_of(entries)),
        "attribution_accuracy": group_rate_record(right, groups[hits]),
    }


def _provenance(corpus: Path, data: CorpusFeatures, config: TrainConfig, command: str, split: dict) -> dict:
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "stegwatch_version": __version__,
        "git_commit": git_commit(),
        # True when the code differed from that commit (untracked model outputs aside).
        "git_dirty": git_dirty(),
        "corpus": {"path": str(corpus), "manifest_sha256": data.manifest_sha256, "files": len(data.entries),
                   "unreadable": len(data.errors)},
        "feature_version": FEATURE_VERSION,
        "config": asdict(config),
        "split": {part: {"files": int(idx.size), "cover_ids": len({data.entries[i].cover_id for i in idx})}
                  for part, idx in split.items()},
        # Every cover group fitting or threshold choice saw: evaluation leaves their files out (never scored in-sample).
        "training_cover_ids": sorted({data.entries[i].cover_id for part in ("train", "val") for i in split[part]}),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }


def train(corpus: str | Path, out: str | Path, config: TrainConfig = TrainConfig(), *, command: str = "", progress=None,
          extra: list[str | Path] = ()) -> dict:
    """Train (or calibrate) the detector kind ``config.model`` on ``corpus``; write the model and its card into ``out``.

    The kind's own recipe (``DetectorKind.train``) does the fitting; this
    function loads the features, splits by ``cover_id`` and records provenance.
    ``extra`` names more corpora (a training build) whose ``train`` split joins
    ``corpus``'s before the split, so a photograph's files from every corpus
    land in one part. Returns the model card.
    """
    from stegwatch.detectors.registry import KINDS

    kind = KINDS.get(config.model)
    if kind is None or kind.train is None:
        trainable = ", ".join(k for k, v in KINDS.items() if v.train is not None)
        raise ModelError(f"--model {config.model}: cannot be trained; trainable kinds: {trainable}")
    corpus, out = Path(corpus), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_corpus_features(corpus, workers=config.workers, progress=progress, split=config.split)
    joined = []
    if extra:
        from stegwatch.evaluation.folds import join_extra

        pool = join_extra(data, extra, workers=config.workers, progress=progress)
        data, joined = pool.union, pool.record()
    split = split_by_cover(data.entries, config.seed, config.test_size, config.val_size)
    log.info("training %s on %s: %s", kind.key, corpus, ", ".join(f"{part} {idx.size} files" for part, idx in split.items()))
    split["train"] = split["train"][~data.in_categories(config.exclude_categories)[split["train"]]]
    provenance = _provenance(corpus, data, config, command, split)
    provenance["extra_training"] = joined
    return kind.train(data, split, config, provenance, out)
