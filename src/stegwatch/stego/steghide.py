"""``steghide``: the real steghide program (Debian package ``steghide``), driven as a subprocess.

Embeds with ``steghide embed -cf cover.jpg -ef message -sf stego.jpg -p PASS
-e none -Z -N`` (no encryption, no compression, no embedded file name: the
payload's bits go in as they are). steghide also draws from ``/dev/urandom``
while it embeds, so where the machine allows user namespaces (Linux
``unshare``) it runs with ``/dev/urandom`` replaced by bytes derived from the
passphrase and payload, and the same seed gives the same file; elsewhere the
files differ from run to run (the sidecar's ``urandom`` says which). Extracts
with ``steghide extract -sf stego.jpg -p PASS -xf out``. The passphrase is
recorded in the sidecar.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from stegwatch.format.files import CarrierFile
from stegwatch.format.records import BitOrder
from stegwatch.stego.base import Cover, EmbedError, EmbedOptions, Extraction, StegoFile, StegoMethod
from stegwatch.stego.dct import jpeg_bytes_of, luma_nzac
from stegwatch.stego._seeded import namespaces_available, seeded_command, write_seed_file
from stegwatch.stego._tools import ToolMissing, embed_with_tool, extract_with_tool

KEY = "steghide"


def capacity(cover: Cover) -> int:
    # steghide's own `info` reports about 0.4 bits per non-zero AC coefficient; stay under it.
    return int(0.3 * luma_nzac(cover) / 8)


def embed(cover: Cover, payload: bytes, options: EmbedOptions = EmbedOptions()) -> StegoFile:
    if not options.key:
        raise EmbedError("steghide: a passphrase (key) is required")
    passphrase = options.key
    seeded = namespaces_available() and shutil.which("steghide") is not None

    def args(folder: Path) -> list[str]:
        command = ["steghide", "embed", "-cf", str(folder / "cover.jpg"), "-ef", str(folder / "message"),
                   "-sf", str(folder / "stego.jpg"), "-p", passphrase, "-e", "none", "-Z", "-N", "-f", "-q"]
        return seeded_command(folder / "urandom", command) if seeded else command

    def prepare(folder: Path) -> None:
        if seeded:
            write_seed_file(folder / "urandom", f"{passphrase}:{hashlib.sha256(payload).hexdigest()}")

    if shutil.which("steghide") is None:
        raise ToolMissing("steghide is not installed")
    data = embed_with_tool("steghide", args, jpeg_bytes_of(cover, options.jpeg_quality), payload, prepare)
    return StegoFile(
        data=data, format="JPEG", embedding=METHOD.embedding(), key=passphrase,
        sidecar_extra={"urandom": "seeded" if seeded else "system"},
    )


def extract(carrier: CarrierFile, *, bit_order: BitOrder | None = None, key: str | None = None) -> list[Extraction]:
    if not key:
        return []
    payload = extract_with_tool(
        lambda f: ["steghide", "extract", "-sf", str(f / "stego.jpg"), "-p", key, "-xf", str(f / "out"), "-f", "-q"],
        carrier.data,
    )
    return [Extraction(method=KEY, stream="steghide extract", payload=payload)] if payload else []


METHOD = StegoMethod(
    key=KEY,
    category="dct",
    technique="steghide",
    ai42=False,
    carriers=("JPEG",),
    embed=embed,
    extract=extract,
    capacity=capacity,
    keyed=True,
    description="the steghide 0.5 program (graph-theoretic DCT embedding)",
    payload_unit="bpnzac",
    framing="tool",
    requires=("steghide",),
    install_hint="apt-get install steghide",
)
