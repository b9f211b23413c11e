"""The detector registry: one :class:`DetectorKind` per detector, found by key.

Adding a detector is one module that defines a detector class (the
:class:`~stegwatch.detectors.base.Detector` protocol) and a ``KIND``, plus one
line in :mod:`stegwatch.detectors` (or a :func:`register` call from your own
code), exactly as a steganography method is one module plus one registry line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stegwatch.detectors.base import Detector
from stegwatch.errors import ConfigError, ModelError


@dataclass(frozen=True)
class DetectorKind:
    """How to load (and, where it can be, train) one kind of detector.

    ``load(path, threshold)`` builds a detector from a model file (``None``:
    the shipped model, if any); ``shipped`` is that file; ``model_file`` is the
    name the trainer writes (its suffix tells a model file of this kind);
    ``train(data, split, config, provenance, out)`` fits on a corpus split and
    writes the model and its card into ``out`` (None: this kind cannot be trained).
    """

    key: str
    description: str
    load: Callable[[Path | None, float | None], Detector]
    shipped: Path | None = None
    model_file: str | None = None
    train: Callable[..., dict] | None = None


KINDS: dict[str, DetectorKind] = {}


def register(kind: DetectorKind) -> DetectorKind:
    """Make ``kind`` available by its key (``--model KEY``); a later registration of a key replaces it."""
    KINDS[kind.key] = kind
    return kind


def kind_of(spec: str | Path) -> tuple[DetectorKind, Path | None]:
    """The kind and model file for ``spec``: a registered key (its shipped model) or a model file (by suffix)."""
    if str(spec) in KINDS:
        kind = KINDS[str(spec)]
        if kind.shipped is not None and not kind.shipped.exists():
            raise ModelError(f"no model at {kind.shipped} (the package ships none yet: run `stegwatch train --model {kind.key}`)")
        return kind, kind.shipped
    path = Path(spec)
    for kind in KINDS.values():
        if kind.model_file and path.suffix == Path(kind.model_file).suffix:
            if not path.exists():
                raise ModelError(f"no model at {path}")
            return kind, path
    known = ", ".join(KINDS)
    suffixes = ", ".join(sorted({Path(k.model_file).suffix for k in KINDS.values() if k.model_file}))
    raise ModelError(f"unknown model {str(spec)!r}: use one of {known}, or a model file ({suffixes})")


def load_detector(spec: str | Path, threshold: float | None = None) -> Detector:
    """A detector from a registered key (``v3``, ``v4``, ...) or a model file; ``threshold`` overrides the model's.

    Every detector's score is a probability of stego, so a threshold outside
    [0, 1] (or NaN) would flag nothing or everything: it is refused
    (:class:`~stegwatch.errors.ConfigError`) rather than quietly applied.
    """
    if threshold is not None and not (0.0 <= threshold <= 1.0):  # NaN fails both comparisons
        raise ConfigError(f"threshold {threshold} is not a score: give a number from 0 to 1")
    kind, path = kind_of(spec)
    return kind.load(path, threshold)


def model_path(spec: str | Path) -> Path | None:
    """The model file behind ``spec`` (None for a kind with no file)."""
    return kind_of(spec)[1]
