"""Reading and writing ``manifest.jsonl`` and sidecars, with path safety.

A manifest can come from anywhere, so every ``file_path`` is checked: no
absolute paths, no ``..``, and no symbolic link that leads out of the corpus
root. A bad line is reported with its line number; the other lines still load.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from stegwatch.format.files import write_text_atomic
from stegwatch.errors import EmptyCorpus, ManifestError
from stegwatch.format.records import ManifestEntry, Sidecar, check_relative_path

MANIFEST_NAME = "manifest.jsonl"


@dataclass
class ManifestRead:
    """What :func:`read_manifest` found: good entries and rejected lines."""

    entries: list[ManifestEntry] = field(default_factory=list)
    errors: list[ManifestError] = field(default_factory=list)
    #: SHA-256 of the manifest's bytes as read (the corpus version every run records).
    sha256: str = ""


class RootResolver:
    """Resolves many manifest paths under one corpus root, each proven to stay inside it.

    Equal to :func:`resolve_in_root` for every path (symbolic links anywhere on
    the way are followed before the containment check), but the real path of
    each folder is worked out once per resolver instead of once per file: one
    ``lstat`` per file instead of one per path component. Keep a resolver for
    one batch of work, so a link changed later is seen by the next batch.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.base = os.path.realpath(root)
        self._inside = self.base.rstrip(os.sep) + os.sep
        self._folders: dict[str, str] = {}

    def resolve(self, relative: str) -> str:
        """The real path of ``relative`` under the root, as a string; ValueError if it is unsafe or leads outside."""
        clean = check_relative_path(relative)
        head, name = os.path.split(clean)
        folder = self._folders.get(head)
        if folder is None:
            folder = self._folders[head] = os.path.realpath(os.path.join(self.base, head))
        target = os.path.join(folder, name)
        if os.path.islink(target):
            target = os.path.realpath(target)
        if target != self.base and not target.startswith(self._inside):
            raise ValueError(f"path leads outside the corpus root (through a symbolic link?): {relative!r}")
        return target

    def __call__(self, relative: str) -> Path:
        return Path(self.resolve(relative))


def resolve_in_root(root: str | os.PathLike[str], relative: str) -> Path:
    """Join ``relative`` onto ``root`` and prove the result stays inside ``root``.

    Symbolic links are followed before the check, so a link inside the corpus
    that points outside it is refused. Raises :class:`ValueError`. For many
    paths under one root, use one :class:`RootResolver`.
    """
    return RootResolver(root)(relative)


def _summarize_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ())) or "line"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


def read_manifest(root: str | os.PathLike[str], *, strict: bool = False) -> ManifestRead:
    """Read ``root/manifest.jsonl``.

    Lines that are not JSON, fail the schema, point outside ``root``, or list
    a ``file_path`` another line lists too (both lines are refused) are
    collected in ``errors`` (``strict=True`` raises the first instead). A
    manifest that lists nothing raises :class:`EmptyCorpus`.
    """
    manifest_path = Path(root) / MANIFEST_NAME
    result = ManifestRead()
    try:
        raw = manifest_path.read_bytes()
        result.sha256 = hashlib.sha256(raw).hexdigest()
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ManifestError(str(manifest_path), "no manifest.jsonl in this folder") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(str(manifest_path), f"cannot read: {exc}") from None
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise EmptyCorpus(str(manifest_path), "the manifest lists no files (empty corpus)")
    first_line: dict[str, int] = {}  # file_path -> the first line listing it
    repeated: set[str] = set()
    resolver = RootResolver(root)
    for number, line in lines:
        where = f"{manifest_path}:{number}"
        try:
            entry = ManifestEntry.model_validate(json.loads(line))
            resolver.resolve(entry.file_path)
        except json.JSONDecodeError as exc:
            error = ManifestError(where, f"not valid JSON: {exc.msg}")
        except ValidationError as exc:
            error = ManifestError(where, _summarize_validation(exc))
        except ValueError as exc:
            error = ManifestError(where, str(exc))
        else:
            earlier = first_line.setdefault(entry.file_path, number)
            if earlier == number:
                result.entries.append(entry)
                continue
            # Counting one file twice skews every rate; neither line can be trusted over the other.
            repeated.add(entry.file_path)
            error = ManifestError(where, f"file_path {entry.file_path!r} is listed twice (lines {earlier} and {number}); "
                                         "both lines are refused")
        if strict:
            raise error
        result.errors.append(error)
    result.entries = [e for e in result.entries if e.file_path not in repeated]
    return result


def write_manifest(root: str | os.PathLike[str], entries: list[ManifestEntry]) -> Path:
    """Write ``root/manifest.jsonl`` atomically, lines sorted by ``file_path``."""
    path = Path(root) / MANIFEST_NAME
    lines = [entry.to_json_line() for entry in sorted(entries, key=lambda e: e.file_path)]
    write_text_atomic(path, "".join(line + "\n" for line in lines))
    return path


def sidecar_path(file_path: str | os.PathLike[str]) -> Path:
    """``X`` -> ``X.json``."""
    p = Path(file_path)
    return p.with_name(p.name + ".json")


def sidecar_text(sidecar: Sidecar) -> str:
    return json.dumps(sidecar.to_json_dict(), sort_keys=True, ensure_ascii=False) + "\n"


def write_sidecar(file_path: str | os.PathLike[str], sidecar: Sidecar) -> Path:
    path = sidecar_path(file_path)
    write_text_atomic(path, sidecar_text(sidecar), durable=False)
    return path


def read_sidecar(file_path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Sidecar | None:
    """The sidecar beside ``file_path``, ``None`` when there is none.

    Raises :class:`ManifestError` when it exists but is malformed, or, with a
    corpus ``root``, when it is a symbolic link (or under one) that leads
    outside the root: the file itself was proven to stay inside, and its
    sidecar must too.
    """
    path = sidecar_path(file_path)
    if root is not None and os.path.lexists(path):
        inside = os.path.realpath(root).rstrip(os.sep) + os.sep
        if not os.path.realpath(path).startswith(inside):
            raise ManifestError(str(path), "sidecar leads outside the corpus root (through a symbolic link?)")
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(str(path), f"cannot read sidecar: {exc}") from None
    try:
        return Sidecar.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise ManifestError(str(path), f"sidecar is not valid JSON: {exc.msg}") from None
    except ValidationError as exc:
        raise ManifestError(str(path), f"sidecar does not match the schema: {_summarize_validation(exc)}") from None
