"""Dataset quality: counts, balance, entropy, near-duplicates and label validity of a corpus.

- Balance: for each grouping (label, method, negatives category), the shares
  of its groups and the largest absolute deviation from an even split, in
  share points; flagged when over 0.10 (ten percentage points).
- Entropy: Shannon entropy of the method and category distributions divided
  by log(number of groups), so 1 means even and it never exceeds 1.
- Near-duplicates: 64-bit perceptual hashes (imagehash's pHash); two files
  are near-duplicates when their hashes differ in at most ``max_distance``
  bits. Within a ``cover_id`` they are expected (a stego file and its cover);
  across ``cover_id`` groups they leak information between folds.
- Independent photographs: :func:`independent_photographs`.
"""

from __future__ import annotations

import functools
import io
import math
from collections import Counter
from pathlib import Path

import numpy as np

from stegwatch.parallel import map_unordered
from stegwatch.stego.dct import ijg_quality
from stegwatch.corpus.sources import independent_photograph_ids
from stegwatch.corpus.build import WRITES_FRAMING
from stegwatch.corpus.validate import validate_corpus
from stegwatch.format.files import UnreadableFile, load_carrier, read_file_bytes
from stegwatch.format.framing import framing_of
from stegwatch.format.structure import jpeg_component_ids, jpeg_segments
from stegwatch.errors import EmptyCorpus
from stegwatch.format.manifest import MANIFEST_NAME, ManifestRead, read_manifest, resolve_in_root

IMBALANCE_FLAG = 0.10
NEAR_DUPLICATE_BITS = 4
#: Container attributes a shortcut-learning detector could use instead of the embedding.
#: ``metadata_segments`` and ``trailer_bytes`` are its framing (:mod:`stegwatch.format.framing`).
#: ``jfif_segments`` and ``first_component_id`` are a JPEG's header as its writer laid it out (the JFIF APP0
#: segments, the number of the first colour component): a library that rewrites every stego JPEG leaves them its own.
CONTAINER_ATTRIBUTES = ("format", "mode", "width", "height", "jpeg_quality", "palette_size", "has_alpha", "bit_depth",
                        "jfif_segments", "first_component_id", "metadata_segments", "trailer_bytes")


def jpeg_header(data: bytes) -> tuple[int, int]:
    """(APP0 segments, id of the first component) of a JPEG's header, read up to its first scan; (0, -1) otherwise."""
    app0 = 0
    for marker, _, _ in jpeg_segments(data):
        if marker == 0xDA:
            break
        app0 += marker == 0xE0
    ids = jpeg_component_ids(data)
    return app0, ids[0] if ids else -1


_BIT_DEPTH = {"1": 1, "L": 8, "P": 8, "LA": 8, "PA": 8, "RGB": 8, "RGBA": 8, "CMYK": 8, "YCbCr": 8, "I;16": 16, "I": 32, "F": 32}


def balance(counts: dict[str, int]) -> dict:
    """Shares, and the largest deviation from an even split (flagged over :data:`IMBALANCE_FLAG`)."""
    total = sum(counts.values())
    k = len(counts)
    if not total or k < 2:
        return {"shares": {key: 1.0 for key in counts}, "max_deviation": 0.0, "flagged": False, "ratio_max_min": 1.0}
    shares = {key: value / total for key, value in sorted(counts.items())}
    deviation = max(abs(share - 1 / k) for share in shares.values())
    return {"shares": shares, "max_deviation": deviation, "flagged": deviation > IMBALANCE_FLAG,
            "ratio_max_min": max(counts.values()) / max(1, min(counts.values()))}


def normalized_entropy(counts: dict[str, int]) -> float:
    """Shannon entropy / log(k): 1 for an even split, 0 for one group; never above 1."""
    values = np.asarray([v for v in counts.values() if v > 0], dtype=float)
    if values.size < 2:
        return 0.0
    p = values / values.sum()
    return float(min(1.0, -(p * np.log(p)).sum() / math.log(values.size)))


def independent_photographs(entries) -> int:
    """How many distinct real photographs the clean photo files come from.

    Counted: the distinct ``cover_id`` of clean files of category ``photo``
    whose ``cover_id`` is ``photo:<scene_id>``, the id stegwatch gives a
    photograph of its curated cover list (one camera photograph per scene,
    built-in or from a Debian package). Not counted: synthetic images, user
    covers (``user:...``, their origin is unknown: one photograph may be
    there many times) and corpora from other generators.
    """
    return len(independent_photograph_ids(entries))


def _phash(root: Path, file_path: str) -> tuple[str, int | None]:
    import imagehash

    try:
        carrier = load_carrier(resolve_in_root(root, file_path))
    except (UnreadableFile, ValueError):
        return file_path, None
    bits = imagehash.phash(carrier.image.convert("RGB")).hash.reshape(-1)
    return file_path, int("".join("1" if b else "0" for b in bits), 2)


def container_attributes(root: Path, file_path: str) -> tuple[str, dict | None]:
    """The container of one file, without decoding pixels: format, mode, size, JPEG quality, palette size, alpha,
    bit depth, and its framing (metadata segments, trailer length)."""
    from PIL import Image

    try:
        path = resolve_in_root(root, file_path)
        data = read_file_bytes(path)
        framing = framing_of(data)
        with Image.open(io.BytesIO(data)) as image:  # the bytes already read, not the file again
            tables = getattr(image, "quantization", None) or {}
            palette = image.getpalette() if image.mode in ("P", "PA") else None
            return file_path, {
                "format": image.format or "UNKNOWN", "mode": image.mode, "width": image.width, "height": image.height,
                "jpeg_quality": ijg_quality(tables.get(0)) if image.format == "JPEG" else None,
                "palette_size": len(palette) // 3 if palette else 0,
                "has_alpha": image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info,
                "bit_depth": _BIT_DEPTH.get(image.mode, 8),
                **dict(zip(("jfif_segments", "first_component_id"), jpeg_header(data), strict=True)),
                "metadata_segments": len(framing.metadata), "trailer_bytes": len(framing.trailer),
            }
    except (OSError, ValueError, UnreadableFile, Image.DecompressionBombError):
        return file_path, None


def could_carry(method, attributes: dict) -> bool:
    """True when a clean file with these container attributes is one the method could have used as its cover."""
    modes = getattr(method, "modes", None)
    return attributes["format"] in method.carriers and (not modes or attributes["mode"] in modes)


def container_auc(entries: list, attributes: dict[str, dict], *, folds: int = 5, seed: int = 0) -> dict[str, float | None]:
    """Per method: out-of-fold ROC AUC of a classifier that sees only container attributes.

    It separates the method's stego files from the clean files that could
    carry it (:func:`could_carry`), grouped by ``cover_id`` (``StratifiedGroupKFold``).
    0.5 means the container says nothing about the label; near 1 means a
    detector could learn the container instead of the embedding. The
    framing attributes are left out for methods whose payload is framing
    (``exif``, ``eoi``: :data:`~stegwatch.corpus.build.WRITES_FRAMING`).
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedGroupKFold

    from stegwatch.stats import roc_auc
    from stegwatch.stego import METHODS

    out: dict[str, float | None] = {}
    for key in sorted({e.method for e in entries if e.method}):
        method = METHODS.get(key)
        if method is None:
            continue
        rows = [e for e in entries if e.file_path in attributes and (
            e.method == key or (e.label == "clean" and could_carry(method, attributes[e.file_path])))]
        labels = np.asarray([e.label == "stego" for e in rows])
        if labels.sum() < folds or (~labels).sum() < folds:
            out[key] = None
            continue
        table = [attributes[e.file_path] for e in rows]
        categories = {name: sorted({str(t[name]) for t in table}) for name in ("format", "mode")}
        features = np.asarray([
            [categories["format"].index(str(t["format"])), categories["mode"].index(str(t["mode"])), t["width"], t["height"],
             -1.0 if t["jpeg_quality"] is None else t["jpeg_quality"], t["palette_size"], float(t["has_alpha"]), t["bit_depth"],
             t.get("jfif_segments", 0), t.get("first_component_id", -1), t["metadata_segments"], t["trailer_bytes"]]
            for t in table], dtype=float)
        if method.category in WRITES_FRAMING:
            features = features[:, :-2]  # exif and eoi write framing: there it is the embedding, not a shortcut
        groups = np.asarray([e.cover_id for e in rows])
        # Each fold needs a cover group of each class to hold out: a small corpus gets fewer folds, or no AUC.
        splits = min(folds, *(len(set(groups[labels == side])) for side in (True, False)))
        if splits < 2:
            out[key] = None
            continue
        scores = np.zeros(len(rows))
        splitter = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
        for train, test in splitter.split(features, labels, groups):
            model = RandomForestClassifier(n_estimators=100, min_samples_leaf=5, random_state=seed, n_jobs=1)
            model.fit(features[train], labels[train])
            proba = model.predict_proba(features[test])
            scores[test] = proba[:, list(model.classes_).index(True)] if True in model.classes_ else 0.0
        out[key] = roc_auc(labels, scores)
    return out


def near_duplicates(hashes: np.ndarray, groups: np.ndarray, max_distance: int = NEAR_DUPLICATE_BITS) -> dict:
    """Fractions of files with a near-duplicate inside their own group and in another group."""
    n = hashes.size
    within = np.zeros(n, dtype=bool)
    across = np.zeros(n, dtype=bool)
    for start in range(0, n, 512):
        block = hashes[start:start + 512, None] ^ hashes[None, :]
        distance = np.bitwise_count(block) if hasattr(np, "bitwise_count") else np.vectorize(lambda v: bin(int(v)).count("1"))(block)
        close = distance <= max_distance
        rows = np.arange(start, min(start + 512, n))
        close[np.arange(rows.size), rows] = False  # a file is not its own duplicate
        same = groups[rows, None] == groups[None, :]
        within[rows] = (close & same).any(axis=1)
        across[rows] = (close & ~same).any(axis=1)
    return {"max_hamming_distance": max_distance, "files": int(n),
            "within_cover_rate": float(within.mean()) if n else 0.0,
            "across_cover_rate": float(across.mean()) if n else 0.0,
            "across_cover_files": int(across.sum())}


def dataset_metrics(corpus: str | Path, *, workers: int = 1, validate: bool = True, duplicates: bool = True,
                    container: bool = True, manifest: ManifestRead | None = None) -> dict:
    """Everything above, for the corpus at ``corpus``.

    ``duplicates=False`` skips the perceptual hashes, ``container=False`` the
    container-shortcut AUCs (which read every file's header), ``validate=False``
    the label proofs; ``manifest``: the corpus's manifest as a caller already
    read it (it is not read again).
    """
    root = Path(corpus)
    read = manifest if manifest is not None else read_manifest(root)
    entries = read.entries
    if not entries:
        raise EmptyCorpus(str(root / MANIFEST_NAME), f"no usable manifest line ({len(read.errors)} refused; first: {read.errors[0]})")
    labels = Counter(e.label for e in entries)
    methods = Counter(e.method for e in entries if e.method)
    categories = Counter(e.category for e in entries if e.label == "clean" and e.category != "photo")
    hashes: dict[str, int] = {}
    for chunk in map_unordered(functools.partial(_phash, root), [e.file_path for e in entries] if duplicates else [],
                               workers=workers, chunk_size=64):
        hashes.update({path: value for path, value in chunk if value is not None})
    hashed = [e for e in entries if e.file_path in hashes]
    near = near_duplicates(np.asarray([hashes[e.file_path] for e in hashed], dtype=np.uint64),
                           np.asarray([e.cover_id for e in hashed]))
    metrics = {
        "corpus": str(root),
        "files": len(entries),
        "manifest_errors": len(read.errors),
        "counts": {
            "label": dict(sorted(labels.items())),
            "method": dict(sorted(methods.items())),
            "category": dict(sorted(Counter(e.category for e in entries).items())),
            "format": dict(sorted(Counter(e.format for e in entries).items())),
            "mode": dict(sorted(Counter(e.mode for e in entries).items())),
            "size": dict(sorted(Counter(f"{e.width}x{e.height}" for e in entries).items())),
        },
        "balance": {"label": balance(dict(labels)), "method": balance(dict(methods)), "negatives_category": balance(dict(categories))},
        "entropy": {"method": normalized_entropy(dict(methods)), "category": normalized_entropy(dict(Counter(e.category for e in entries)))},
        "near_duplicates": (near | {"unhashed": len(entries) - len(hashed)}) if duplicates else None,
        "cover_sources": dict(sorted(Counter(e.cover_source or "unknown" for e in entries).items())),
        "distinct_cover_sources": len({e.cover_source for e in entries}),
        "distinct_cover_ids": len({e.cover_id for e in entries}),
        "independent_photographs": independent_photographs(entries),
    }
    if container:
        attributes: dict[str, dict] = {}
        for chunk in map_unordered(functools.partial(container_attributes, root), [e.file_path for e in entries],
                                   workers=workers, chunk_size=256):
            attributes.update({path: value for path, value in chunk if value is not None})
        metrics["container_auc"] = container_auc(entries, attributes)
    if validate:
        report = validate_corpus(root, workers=workers)
        stego = [c for c in report.checks if c.label == "stego"]
        metrics["label_validity"] = {
            "stego_checked": len(stego),
            "stego_passed": sum(c.status == "passed" for c in stego),
            "stego_failed": sum(c.status == "failed" for c in stego),
            "stego_unverified": sum(c.status == "unverified" for c in stego),
            "unreadable": sum(c.status == "error" for c in report.checks),
            "clean_payload_shaped": sum(c.status == "payload-found" for c in report.checks),
        }
    return metrics
