"""Proving a corpus's labels by extraction (``validate-streams``).

Every stego file is extracted with its own method and sidecar, and the payload
is checked against ``payload_sha256``. Every clean file is run through every
extractor that needs no key, in both bit orders; a payload-shaped message in a
clean file is reported, since it is either a label problem or an extractor
that is too eager.
"""

from __future__ import annotations

import functools
import hashlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stegwatch.errors import ConfigError
from stegwatch.parallel import map_unordered
from stegwatch.format.files import DEFAULT_LIMITS, CarrierFile, ReadLimits, UnreadableFile, load_carrier, read_file_bytes
from stegwatch.format.manifest import ManifestError, read_manifest, read_sidecar, resolve_in_root
from stegwatch.format.records import ManifestEntry, Sidecar
from stegwatch.stego import BIT_ORDERS, METHODS, Extraction, extract_all
from stegwatch.stego.dct import count_changes

#: Allowed relative difference between the recounted and the claimed changes of a simulated
#: method. Both files sit in the corpus, so the counts agree exactly unless one was altered.
CHANGE_TOLERANCE = 0.0


@dataclass
class FileCheck:
    """The verdict on one corpus file.

    ``status``: ``passed`` / ``failed`` / ``unverified`` (stego; unverified when
    a program the check needs is missing here), ``clean`` / ``payload-found``
    (clean), ``error`` (unreadable: counted apart, never as clean or stego).
    ``proof`` says how a pass was proven: ``extraction`` or ``change rate``.
    """

    file_path: str
    label: str
    method: str | None
    category: str
    status: str
    reason: str | None = None
    proof: str | None = None
    found: list[dict] = field(default_factory=list)


@dataclass
class GroupCounts:
    checked: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    unverified: int = 0
    by_change_rate: int = 0
    payload_shaped: int = 0


@dataclass
class ValidationReport:
    root: str
    checks: list[FileCheck]
    manifest_errors: list[ManifestError]

    @property
    def ok(self) -> bool:
        """True when every stego label is proven and nothing was unreadable."""
        return not self.manifest_errors and all(
            c.status in ("passed", "clean", "payload-found", "unverified") for c in self.checks
        )

    @property
    def unverified(self) -> list[FileCheck]:
        return [c for c in self.checks if c.status == "unverified"]

    def by_method(self) -> dict[str, GroupCounts]:
        table: dict[str, GroupCounts] = defaultdict(GroupCounts)
        for check in self.checks:
            if check.label != "stego":
                continue
            row = table[check.method or "?"]
            row.checked += 1
            row.passed += check.status == "passed"
            row.failed += check.status == "failed"
            row.errors += check.status == "error"
            row.unverified += check.status == "unverified"
            row.by_change_rate += check.proof == "change rate"
        return dict(sorted(table.items()))

    def by_clean_category(self) -> dict[str, GroupCounts]:
        table: dict[str, GroupCounts] = defaultdict(GroupCounts)
        for check in self.checks:
            if check.label != "clean":
                continue
            row = table[check.category]
            row.checked += 1
            row.payload_shaped += check.status == "payload-found"
            row.errors += check.status == "error"
        return dict(sorted(table.items()))

    def to_json_dict(self) -> dict:
        def counts(table: dict[str, GroupCounts]) -> dict:
            return {k: vars(v) for k, v in table.items()}

        return {
            "root": self.root,
            "ok": self.ok,
            "files": len(self.checks),
            "by_method": counts(self.by_method()),
            "by_clean_category": counts(self.by_clean_category()),
            "manifest_errors": [{"where": e.where, "reason": e.reason} for e in self.manifest_errors],
            "problems": [vars(c) for c in self.checks if c.status in ("failed", "error", "payload-found", "unverified")],
            "note": "Keyed methods (lsbm, lsbr, f5, outguess, steghide) cannot be searched in clean files without "
            "their key, and simulator-only methods (nsf5, juniward) write no message; clean files are checked "
            "with every extractor that needs neither.",
        }


def describe(extraction: Extraction) -> dict:
    return {
        "method": extraction.method,
        "stream": extraction.stream,
        "bit_order": extraction.bit_order,
        "length": len(extraction.payload),
        "terminated": extraction.terminated,
        "ai42": extraction.ai42,
        "preview": extraction.preview(),
        "note": extraction.note,
    }


def extract_file(
    path: str | Path, *, method: str | None = None, key: str | None = None, limits: ReadLimits = DEFAULT_LIMITS
) -> dict:
    """What each stream of one file holds, as a JSON-ready record (``stegwatch extract``).

    Every extractor runs (or only ``method``'s), in both bit orders, with
    lenient framing. A sidecar beside the file narrows the bit order and gives
    the key of keyed methods (``key`` overrides it); a malformed sidecar is
    ignored. Returns ``{"path", "error", "streams"}``, plus ``format``,
    ``mode`` and ``size`` (width, height) when the file could be read;
    ``error`` is the reason an unreadable file was skipped (None otherwise)
    and ``streams`` maps method key -> candidates (:func:`describe` plus
    ``payload_shaped``). Raises :class:`ConfigError` for an unknown ``method``.
    """
    if method and method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    record: dict = {"path": str(path), "error": None, "streams": {}}
    try:
        carrier = load_carrier(path, limits)
    except UnreadableFile as exc:
        record["error"] = exc.reason
        return record
    bit_order = None
    try:
        sidecar = read_sidecar(path)
    except ManifestError:
        sidecar = None
    if sidecar is not None:
        bit_order, key = sidecar.embedding.bit_order, key or sidecar.key
    found = extract_all(carrier, methods=[method] if method else None, bit_order=bit_order, key=key)
    record["format"], record["mode"], record["size"] = carrier.format, carrier.image.mode, list(carrier.image.size)
    record["streams"] = {name: [describe(x) | {"payload_shaped": x.payload_shaped} for x in xs] for name, xs in found.items()}
    return record


def check_entry(root: Path, limits: ReadLimits, entry: ManifestEntry) -> FileCheck:
    """Check one manifest entry; never raises for a bad file."""
    check = FileCheck(entry.file_path, entry.label, entry.method, entry.category, status="error")
    try:
        path = resolve_in_root(root, entry.file_path)
        carrier = load_carrier(path, limits)
    except UnreadableFile as exc:
        check.reason = exc.reason
        return check
    except ValueError as exc:
        check.reason = str(exc)
        return check
    if hashlib.sha256(carrier.data).hexdigest() != entry.sha256:
        check.status, check.reason = "failed", "file bytes differ from the manifest's sha256"
        return check
    if entry.label == "clean":
        shaped = [x for found in extract_all(carrier).values() for x in found if x.payload_shaped]
        check.status = "payload-found" if shaped else "clean"
        check.found = [describe(x) for x in shaped]
        return check
    return _check_stego(root, path, carrier, entry, check, limits)


def _check_stego(root: Path, path: Path, carrier: CarrierFile, entry: ManifestEntry, check: FileCheck, limits: ReadLimits) -> FileCheck:
    check.status = "failed"
    method = METHODS.get(entry.method or "")
    if method is None:
        check.reason = f"no extractor for method {entry.method!r}"
        return check
    if method.missing_tools():
        check.status = "unverified"
        check.reason = f"{', '.join(method.missing_tools())} not installed here; install with: {method.install_hint}"
        return check
    try:
        sidecar = read_sidecar(path, root)
    except ManifestError as exc:
        check.reason = exc.reason
        return check
    if sidecar is None:
        check.reason = "no sidecar (.json) beside the file"
        return check
    if sidecar.embedding.technique != method.technique:
        check.reason = f"sidecar technique {sidecar.embedding.technique!r} does not match method {entry.method!r}"
        return check
    if entry.cover_file is not None and entry.cover_file != sidecar.clean_file:
        check.reason = f"manifest cover_file {entry.cover_file!r} differs from the sidecar's clean_file {sidecar.clean_file!r}"
        return check
    if method.simulated:
        return _check_change_rate(root, carrier, sidecar, check, limits)
    if (sidecar.model_extra or {}).get("framing") == "none":
        return _check_unframed(method, carrier, sidecar, entry, check)
    found = method.extract(carrier, bit_order=sidecar.embedding.bit_order, key=sidecar.key)
    if any(hashlib.sha256(x.payload).hexdigest() == entry.payload_sha256 for x in found):
        check.status, check.proof = "passed", "extraction"
        return check
    check.reason = f"no extracted payload matches payload_sha256 ({len(found)} candidate(s) found)"
    check.found = [describe(x) for x in found]
    return check


def _check_unframed(method, carrier: CarrierFile, sidecar: Sidecar, entry: ManifestEntry, check: FileCheck) -> FileCheck:
    """Prove an unframed label: the embedded bits, read raw along the method's path, hash to payload_sha256."""
    n_bytes = entry.payload_bytes or 0
    orders = [sidecar.embedding.bit_order] if sidecar.embedding.bit_order else list(BIT_ORDERS)
    for order in orders:
        raw = method.read_unframed(carrier, n_bytes, order)
        if raw is not None and hashlib.sha256(raw).hexdigest() == entry.payload_sha256:
            check.status, check.proof = "passed", "raw bits"
            return check
    check.reason = f"the first {n_bytes} bytes of raw {method.key} bits do not match payload_sha256"
    return check


def _check_change_rate(root: Path, carrier: CarrierFile, sidecar: Sidecar, check: FileCheck, limits: ReadLimits) -> FileCheck:
    """Prove a simulator's label: the coefficients that differ from the cover are the ones the sidecar claims."""
    simulation = (sidecar.model_extra or {}).get("simulation")
    if not isinstance(simulation, dict) or "changed_coefficients" not in simulation:
        check.reason = "sidecar has no simulation record (changed_coefficients)"
        return check
    if not sidecar.clean_file:
        check.reason = "sidecar names no clean_file to compare with"
        return check
    try:
        cover = read_file_bytes(resolve_in_root(root, sidecar.clean_file), limits)
        changed, nzac = count_changes(cover, carrier.data)
    except UnreadableFile as exc:
        check.reason = f"cover {sidecar.clean_file}: {exc.reason}"
        return check
    except ValueError as exc:
        check.reason = f"cannot compare with cover {sidecar.clean_file}: {exc}"
        return check
    claimed = int(simulation["changed_coefficients"])
    if nzac != simulation.get("cover_nzac", nzac):
        check.reason = f"cover has {nzac} non-zero AC coefficients, the sidecar says {simulation.get('cover_nzac')}"
    elif changed == 0:
        check.reason = "no coefficient differs from the cover"
    elif abs(changed - claimed) > CHANGE_TOLERANCE * claimed:
        check.reason = f"{changed} coefficients differ from the cover, the sidecar claims {claimed}"
    else:
        check.status, check.proof = "passed", "change rate"
        check.reason = None
    return check


def validate_corpus(
    root: str | Path,
    *,
    workers: int = 1,
    limits: ReadLimits = DEFAULT_LIMITS,
    progress: Callable[[int, int], None] | None = None,
) -> ValidationReport:
    """Check every file of the corpus at ``root``.

    Raises :class:`ManifestError` only when there is no readable manifest at
    all; bad lines and bad files are recorded in the report.
    """
    root = Path(root)
    read = read_manifest(root)
    checks: list[FileCheck] = []
    total = len(read.entries)
    if progress:
        progress(0, total)
    for results in map_unordered(functools.partial(check_entry, root, limits), read.entries, workers=workers, chunk_size=32):
        checks.extend(results)
        if progress:
            progress(len(checks), total)
    checks.sort(key=lambda c: c.file_path)
    return ValidationReport(root=str(root), checks=checks, manifest_errors=read.errors)
