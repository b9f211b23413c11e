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
import subprocess

from stegwatch.format.files import CarrierFile
from stegwatch.format.records import BitOrder
from stegwatch.stego._base import Cover, EmbedError, EmbedOptions, Extraction, StegoFile, StegoMethod
from stegwatch.stego._dct import jpeg_bytes_of, luma_nzac
from stegwatch.stego._seeded import namespaces_available, seeded_command, write_seed_file
from stegwatch.stego._tools import ToolMissing, last_words, run_tool, with_files

KEY = "steghide"


def capacity(cover: Cover) -> int:
    # steghide's own `info` reports about 0.4 bits per non-zero AC coefficient; stay under it.
    return int(0.3 * luma_nzac(cover) / 8)


def embed(cover: Cover, payload: bytes, options: EmbedOptions = EmbedOptions()) -> StegoFile:
    if not options.key:
        raise EmbedError("steghide: a passphrase (key) is required")
    data = jpeg_bytes_of(cover, options.jpeg_quality)

    seeded = namespaces_available()

    def work(folder):
        args = ["steghide", "embed", "-cf", str(folder / "cover.jpg"), "-ef", str(folder / "message"),
                "-sf", str(folder / "stego.jpg"), "-p", options.key, "-e", "none", "-Z", "-N", "-f", "-q"]
        if seeded:
            if shutil.which("steghide") is None:
                raise ToolMissing("steghide is not installed")
            write_seed_file(folder / "urandom", f"{options.key}:{hashlib.sha256(payload).hexdigest()}")
            args = seeded_command(folder / "urandom", args)
        try:
            result = run_tool(args)
        except subprocess.TimeoutExpired:
            raise EmbedError("steghide: timed out") from None
        stego = folder / "stego.jpg"
        if result.returncode != 0 or not stego.exists() or stego.stat().st_size == 0:
            raise EmbedError(f"steghide: {last_words(result)}")
        return stego.read_bytes()

    stego_data = with_files({"cover.jpg": data, "message": payload}, work)
    return StegoFile(
        data=stego_data, format="JPEG", embedding=METHOD.embedding(), key=options.key,
        sidecar_extra={"urandom": "seeded" if seeded else "system"},
    )


def extract(carrier: CarrierFile, *, bit_order: BitOrder | None = None, key: str | None = None) -> list[Extraction]:
    if not key or not carrier.data.startswith(b"\xff\xd8"):
        return []

    def work(folder):
        args = ["steghide", "extract", "-sf", str(folder / "stego.jpg"), "-p", key, "-xf", str(folder / "out"), "-f", "-q"]
        try:
            result = run_tool(args)
        except (subprocess.TimeoutExpired, ToolMissing):
            return None
        out = folder / "out"
        return out.read_bytes() if result.returncode == 0 and out.exists() else None

    payload = with_files({"stego.jpg": carrier.data}, work)
    if not payload:
        return []
    return [Extraction(method=KEY, stream="steghide extract", payload=payload)]


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
