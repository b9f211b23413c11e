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
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from pathlib import Path

import numpy as np

from stegwatch.corpus._parallel import map_unordered
from stegwatch.corpus.validate import validate_corpus
from stegwatch.format.files import UnreadableFile, load_carrier
from stegwatch.format.manifest import MANIFEST_NAME, EmptyCorpus, read_manifest, resolve_in_root

IMBALANCE_FLAG = 0.10
NEAR_DUPLICATE_BITS = 4


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


def _phash(root: Path, file_path: str) -> tuple[str, int | None]:
    import imagehash

    try:
        carrier = load_carrier(resolve_in_root(root, file_path))
    except (UnreadableFile, ValueError):
        return file_path, None
    bits = imagehash.phash(carrier.image.convert("RGB")).hash.reshape(-1)
    return file_path, int("".join("1" if b else "0" for b in bits), 2)


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


def dataset_metrics(corpus: str | Path, *, workers: int = 1, validate: bool = True, duplicates: bool = True) -> dict:
    """Everything above, for the corpus at ``corpus`` (``duplicates=False`` skips the perceptual hashes)."""
    root = Path(corpus)
    read = read_manifest(root)
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
    }
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
