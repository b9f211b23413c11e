"""A corpus as a feature table: its readable manifest entries, one feature row each, and its errors."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stegwatch.errors import ConfigError, EmptyCorpus
from stegwatch.features.cache import DEFAULT_CACHE, FeatureCache
from stegwatch.features.streams import feature_names
from stegwatch.features.table import features_for_paths
from stegwatch.format.manifest import MANIFEST_NAME, ManifestRead, RootResolver, read_manifest
from stegwatch.format.records import ManifestEntry

log = logging.getLogger(__name__)


@dataclass
class CorpusFeatures:
    """Readable entries of a corpus with their full stream feature rows (``features[i]`` is ``entries[i]``).

    ``errors`` lists the files (and manifest lines) that could not be used, each
    with its reason; ``manifest_sha256`` identifies the corpus version.
    """

    entries: list[ManifestEntry]
    features: np.ndarray
    errors: list[dict] = field(default_factory=list)
    manifest_sha256: str = ""
    #: The manifest as read (every entry, readable or not), for callers that count files without reading them again.
    manifest: ManifestRead | None = None
    #: Where the labels came from: ``manifest`` (a stegwatch corpus) or ``labels-csv`` (``--labels``), and how groups were formed.
    labels: dict = field(default_factory=lambda: {"source": "manifest", "groups": "cover_id"})
    #: Entries not read at all because their cover was left out before reading (``leave_out_covers``): never rows, never errors.
    left_out: list[ManifestEntry] = field(default_factory=list)

    def subset(self, keep: np.ndarray) -> CorpusFeatures:
        """The same corpus restricted to rows ``keep`` (errors, hash, manifest and left-out entries unchanged)."""
        keep = np.asarray(keep, dtype=int)
        return CorpusFeatures([self.entries[i] for i in keep], self.features[keep], self.errors, self.manifest_sha256,
                              self.manifest, self.labels, self.left_out)

    def in_categories(self, categories) -> np.ndarray:
        """A mask over the rows: True where the entry's category is one of ``categories`` (a left-out category)."""
        chosen = set(categories)
        return np.asarray([e.category in chosen for e in self.entries], dtype=bool)

    @property
    def groups(self) -> np.ndarray:
        """The cover group (``cover_id``) of every row."""
        return np.asarray([e.cover_id for e in self.entries], dtype=object)


def load_corpus_features(
    corpus: str | Path, *, workers: int = 1, progress=None, scheduler: str | None = None,
    cache: FeatureCache | str | Path | None = DEFAULT_CACHE,
    split: str | None = None,
    leave_out_covers: frozenset[str] | set[str] | None = None,
) -> CorpusFeatures:
    """Feature rows for every readable file of a corpus, through the feature cache (default: the default cache file; None: none).

    ``split`` keeps only the entries of that split (``train`` or ``monitor``);
    entries of a corpus made before splits existed (no ``split``) count as ``train``.
    ``leave_out_covers``: entries of these cover groups are not read at all (a
    run that would only drop them, such as one that leaves out a model's
    training covers); they are listed in ``left_out``, unless that would leave
    nothing to read (then every entry is read). The manifest as read
    (``manifest``) still holds every entry.
    """
    if split not in (None, "train", "monitor"):
        raise ConfigError(f"split must be train or monitor, not {split!r}")
    root = Path(corpus)
    read = read_manifest(root)
    if split is not None:
        read.entries = [e for e in read.entries if (e.split or "train") == split]
    wanted, left_out = read.entries, []
    if leave_out_covers and any(e.cover_id not in leave_out_covers for e in read.entries):
        wanted = [e for e in read.entries if e.cover_id not in leave_out_covers]
        left_out = [e for e in read.entries if e.cover_id in leave_out_covers]
    resolve = RootResolver(root).resolve
    paths = [resolve(e.file_path) for e in wanted]
    rows = features_for_paths(paths, workers=workers, cache=cache, progress=progress, scheduler=scheduler)
    keep = [i for i, r in enumerate(rows) if r.vector is not None]
    errors = [{"path": rows[i].path, "reason": rows[i].error} for i in range(len(rows)) if rows[i].vector is None]
    errors += [{"path": e.where, "reason": e.reason} for e in read.errors]
    if not keep:
        first = f"; first: {errors[0]['path']}: {errors[0]['reason']}" if errors else ""
        what = f"the {split} split of the corpus" if split else "the corpus"
        unread = f"; {len(left_out)} files of {len({e.cover_id for e in left_out})} left-out cover groups not read" if left_out else ""
        raise EmptyCorpus(str(root / MANIFEST_NAME),
                          f"no file of {what} can be used ({len(errors)} refused or unreadable{unread}{first})")
    features = np.stack([rows[i].vector for i in keep]) if keep else np.zeros((0, len(feature_names())))
    log.info("%s: %d files with features, %d unreadable or rejected", root, len(keep), len(errors))
    if left_out:
        log.info("%s: %d files of %d left-out cover groups not read", root, len(left_out), len({e.cover_id for e in left_out}))
    return CorpusFeatures([wanted[i] for i in keep], features, errors, read.sha256, read, left_out=left_out)
