"""Refits kept on disk, so that a long ``evaluate --folds``, ``ablate`` or ``baseline`` resumes where it stopped.

A grouped-fold evaluation of V4 refits the model a dozen times (folds, left-out
sources, ablation variants), each a few minutes on 2 cores; a run that is
stopped keeps nothing. :class:`CheckpointedRefits` wraps a detector so that
each refit is stored under a key made of everything the refit reads:

- the detector's settings (:meth:`refit_identity`: V4's model card, by hash);
- the training rows, in order: their feature values and their manifest entries
  (label, method, category, cover ...);
- the refit's options (seed, target FPR, left-out categories or streams);
- the code that fits: the source of :mod:`stegwatch.detectors`, of
  :mod:`stegwatch.stats` and of :mod:`stegwatch.features.streams`, and the
  versions of LightGBM, scikit-learn and numpy.

Equal keys mean the same fit (the fits are deterministic), so a stored refit
gives the decisions a new one would. Anything else, a changed feature value or
a new commit of the fitting code, is a new key and a new fit. Detectors without
``refit_identity`` (V3, whose recalibration takes seconds) are refitted as
before.

Refits are stored with :mod:`joblib` (pickle): load only a checkpoint folder
this user's own runs wrote, as with any joblib cache. An unreadable checkpoint
is logged and fitted again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np

from stegwatch.features.corpus import CorpusFeatures
from stegwatch.format.files import write_bytes_atomic

log = logging.getLogger(__name__)

#: Rows hashed at a time (bounds the copy made of the feature matrix).
_CHUNK = 1024


def fitting_code() -> str:
    """sha256 of the source a refit runs and the versions of the libraries it fits with."""
    import lightgbm
    import sklearn

    import stegwatch

    root = Path(stegwatch.__file__).parent
    files = sorted((root / "detectors").glob("*.py")) + [root / "stats.py", root / "features" / "streams.py"]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(f"lightgbm {lightgbm.__version__} sklearn {sklearn.__version__} numpy {np.__version__}".encode())
    return digest.hexdigest()


def refit_key(identity: dict, data: CorpusFeatures, train: np.ndarray, *, seed: int, target_fpr: float,
              variant: dict, code: str) -> str:
    """The key of a refit: sha256 over its settings, options, code and training rows (features and entries, in order)."""
    digest = hashlib.sha256()
    settings = {"detector": identity, "seed": int(seed), "target_fpr": float(target_fpr), "code": code,
                "variant": {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(variant.items())},
                "rows": int(train.size), "columns": int(data.features.shape[1]), "dtype": str(data.features.dtype)}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for start in range(0, train.size, _CHUNK):
        rows = train[start:start + _CHUNK]
        digest.update(np.ascontiguousarray(data.features[rows]).tobytes())
        for i in rows:
            digest.update(data.entries[int(i)].model_dump_json().encode() + b"\n")
    return digest.hexdigest()


class CheckpointedRefits:
    """``detector`` whose refits are stored in ``directory`` and taken from there when the same refit comes again.

    Everything but :meth:`refit` is the wrapped detector's. ``fitted`` (refits
    made now) and ``reused`` (taken from the folder) count this object's refits.
    """

    def __init__(self, detector, directory: str | Path) -> None:
        self.detector = detector
        self.directory = Path(directory)
        self.fitted = 0
        self.reused = 0
        self._code: str | None = None

    def __getattr__(self, name: str):
        # Only called for names this object lacks. Before __init__ has run (copy, pickle) there is no ``detector``:
        # asking the wrapped detector then would call this method again, without end.
        if name == "detector" or (name.startswith("__") and name.endswith("__")):
            raise AttributeError(name)
        return getattr(self.detector, name)

    def refit(self, data: CorpusFeatures, train: np.ndarray, *, seed: int, target_fpr: float, **variant):
        identity = getattr(self.detector, "refit_identity", None)
        if identity is None:
            self.fitted += 1
            return self.detector.refit(data, train, seed=seed, target_fpr=target_fpr, **variant)
        import joblib

        if self._code is None:
            self._code = fitting_code()
        train = np.asarray(train, dtype=int)
        key = refit_key(identity(), data, train, seed=seed, target_fpr=target_fpr, variant=variant, code=self._code)
        path = self.directory / f"{key}.joblib"
        if path.exists():
            try:
                fitted = joblib.load(path)
            except Exception as exc:  # a truncated or foreign file: fit again and replace it
                log.warning("checkpoint %s is unreadable (%s: %s); refitting", path, type(exc).__name__, exc)
            else:
                self.reused += 1
                log.info("refit %s taken from its checkpoint (%d training rows)", key[:12], train.size)
                return fitted
        started = time.perf_counter()
        fitted = self.detector.refit(data, train, seed=seed, target_fpr=target_fpr, **variant)
        self.fitted += 1
        seconds = time.perf_counter() - started
        try:
            self._store(fitted, path)
        except Exception as exc:  # a full disk or an object that cannot be pickled: the run goes on without it
            log.warning("refit %s fitted in %.0f s but not checkpointed (%s: %s)", key[:12], seconds, type(exc).__name__, exc)
        else:
            log.info("refit %s fitted in %.0f s and checkpointed (%d training rows)", key[:12], seconds, train.size)
        return fitted

    def _store(self, fitted, path: Path) -> None:
        """Write ``fitted`` to ``path`` atomically and durably (readers see no file or the whole one)."""
        import io

        import joblib

        buffer = io.BytesIO()
        joblib.dump(fitted, buffer)
        write_bytes_atomic(path, buffer.getvalue())

    def record(self) -> dict:
        """What this run's refits were: fitted now or taken from the checkpoint folder (``kept``: false for a detector
        whose refits are not checkpointed)."""
        return {"directory": str(self.directory), "kept": getattr(self.detector, "refit_identity", None) is not None,
                "fitted": self.fitted, "reused": self.reused}


def with_checkpoints(detector, directory: str | Path | None):
    """``detector`` with its refits checkpointed in ``directory`` (the detector itself when there is none)."""
    if directory is None or isinstance(detector, CheckpointedRefits):
        return detector
    return CheckpointedRefits(detector, directory)
