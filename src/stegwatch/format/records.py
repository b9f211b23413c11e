"""Typed records of the Starlight format, and the one place their JSON form is defined.

See the format page shipped in ``docs/format.md``: an embedding type
(``category`` / ``technique`` / ``ai42`` / ``bit_order``), a sidecar beside
every stego file, and one manifest line per corpus file.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BitOrder = Literal["msb-first", "lsb-first"]
Label = Literal["clean", "stego"]

#: Techniques whose bits are laid out in pixels in a chosen order: their sidecar names it.
ORDERED_TECHNIQUES = frozenset({"palette", "lsb.rgb"})


class EmbeddingType(BaseModel):
    """How a stego file was made: ``category`` / ``technique`` / ``ai42`` (+ ``bit_order``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    category: str = Field(description="pixel, metadata, eoi or dct")
    technique: str = Field(description="alpha, palette, lsb.rgb, exif, raw, lsbm, lsbr, ...")
    ai42: bool = Field(description="True when the payload is framed with the AI42 marker")
    bit_order: BitOrder | None = Field(
        default=None,
        description="present exactly for palette and lsb.rgb; absent means unknown order",
    )

    def to_json_dict(self) -> dict[str, Any]:
        data = self.model_dump(exclude_none=True)
        # Written exactly as the format says: bit_order only where bits have an order.
        if self.technique not in ORDERED_TECHNIQUES:
            data.pop("bit_order", None)
        return data


class Sidecar(BaseModel):
    """The ``X.json`` file written beside every stego file ``X``."""

    model_config = ConfigDict(extra="allow")

    embedding: EmbeddingType
    clean_file: str | None = Field(
        default=None, description="corpus-relative path of the cover this file was made from"
    )
    key: str | None = Field(
        default=None,
        description="secret key or passphrase, for keyed methods only (lsbm, lsbr, f5, outguess, steghide)",
    )

    def to_json_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"embedding": self.embedding.to_json_dict(), "clean_file": self.clean_file}
        if self.key is not None:
            data["key"] = self.key
        for name, value in (self.model_extra or {}).items():
            data[name] = value
        return data


def check_relative_path(value: str) -> str:
    """Refuse absolute paths and any ``..`` component; return the POSIX form.

    The POSIX form is ``str(PurePosixPath(value))`` with backslashes read as
    slashes (empty and ``.`` components dropped), built from the string's own
    parts: every manifest line passes here twice, so pathlib's parsing cost
    a monitor run seconds (tests/test_manifest.py checks the two forms agree).
    """
    if not value or "\x00" in value:
        raise ValueError("empty path or NUL byte in path")
    if value.startswith(("/", "\\")) or (len(value) > 1 and value[1] == ":"):
        raise ValueError(f"absolute path not allowed: {value!r}")
    parts = [part for part in value.replace("\\", "/").split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"path escapes the corpus root: {value!r}")
    return "/".join(parts) or "."


class ManifestEntry(BaseModel):
    """One line of ``manifest.jsonl``: a corpus file, clean or stego."""

    model_config = ConfigDict(extra="allow")

    file_path: str = Field(description="path relative to the corpus root; never absolute, never '..'")
    label: Label
    method: str | None = Field(description="method key for stego, null for clean")
    category: str = Field(
        description="clean: 'photo' or a negatives category; stego: the embedding category"
    )
    constraint: str | None = Field(default=None, description="for negatives: the rule it teaches")
    cover_id: str = Field(description="original photo or generator the file descends from")
    cover_source: str | None = Field(
        default=None, description="where the cover came from: the package shipping the photograph (a Debian package, "
        "or pypi:NAME for the built-in ones), user, synthetic"
    )
    payload_bytes: int | None = Field(default=None, ge=0)
    payload_bpp: float | None = Field(default=None, ge=0, description="payload bits per pixel")
    payload_bpnzac: float | None = Field(
        default=None, ge=0, description="JPEG methods: payload bits per non-zero AC coefficient of the luminance"
    )
    payload_sha256: str | None = Field(
        default=None,
        description="hash of the payload bytes without framing; null only for simulator-only methods "
        "(nsf5, juniward), whose labels are proven by change rate",
    )
    payload_kind: Literal["text", "random", "unframed"] | None = Field(
        default=None,
        description="text: a Starlight-framed UTF-8 message; random: framed random bytes; unframed: random bytes "
        "with no marker and no terminator (proven by reading the embedded bits back)",
    )
    split: Literal["train", "monitor"] | None = Field(
        default=None,
        description="train or monitor, by a hash of cover_id (about 80/20): no cover group is in both",
    )
    cover_file: str | None = Field(
        default=None,
        description="stego only, optional: file_path of the exact clean file this stego file was embedded into "
        "(a line of the same manifest; the sidecar's clean_file). Written by training builds; absent when unknown",
    )
    sha256: str
    format: str
    mode: str
    width: int = Field(ge=1)
    height: int = Field(ge=1)

    @field_validator("file_path")
    @classmethod
    def _safe_path(cls, value: str) -> str:
        return check_relative_path(value)

    @field_validator("cover_file")
    @classmethod
    def _safe_cover_path(cls, value: str | None) -> str | None:
        return None if value is None else check_relative_path(value)

    @model_validator(mode="after")
    def _label_fields(self) -> ManifestEntry:
        if self.label == "stego":
            missing = [
                name
                for name in ("method", "payload_bytes")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"stego entry lacks {', '.join(missing)}")
        elif self.method is not None:
            raise ValueError("clean entry must have method null")
        elif self.cover_file is not None:
            raise ValueError("clean entry must have no cover_file")
        return self

    def to_json_line(self) -> str:
        data = self.model_dump(mode="json")
        # Optional fields added after the format was fixed are written only when set, so the
        # manifest of a corpus built before them keeps its bytes (and its sha256).
        for name in OPTIONAL_WHEN_SET:
            if data.get(name) is None:
                data.pop(name, None)
        return json.dumps(data, sort_keys=True, ensure_ascii=False)


#: Manifest fields written only when they have a value (see ``ManifestEntry.to_json_line``).
OPTIONAL_WHEN_SET = ("cover_file",)


#: Share of cover groups in the ``monitor`` split, in percent.
MONITOR_PERCENT = 20


def split_of(cover_id: str) -> Literal["train", "monitor"]:
    """The split of a cover group: ``monitor`` for about :data:`MONITOR_PERCENT` % of ``cover_id`` hashes, else ``train``.

    A hash, not a draw: the same cover group lands in the same split in every
    corpus and every build, so models trained on ``train`` never meet a
    ``monitor`` cover.
    """
    bucket = int.from_bytes(hashlib.sha256(cover_id.encode("utf-8")).digest()[:8], "big") % 100
    return "monitor" if bucket < MONITOR_PERCENT else "train"


class FileError(BaseModel):
    """A file that could not be used, and why. Batches record these and go on."""

    path: str
    reason: str


SCHEMAS: dict[str, type[BaseModel]] = {
    "manifest": ManifestEntry,
    "sidecar": Sidecar,
    "embedding": EmbeddingType,
}


def json_schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a pydantic record type."""
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema.setdefault("title", model.__name__)
    return schema


def export_schema(name: str) -> dict[str, Any]:
    """JSON Schema of a format record type by name (``manifest``, ``sidecar``, ``embedding``)."""
    try:
        return json_schema_of(SCHEMAS[name])
    except KeyError:
        raise KeyError(f"unknown schema {name!r}; choose from {', '.join(sorted(SCHEMAS))}") from None
