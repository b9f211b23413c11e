"""``outguess``: the real OutGuess program (Debian package ``outguess``), driven as a subprocess.

``outguess -k KEY -d message cover.jpg stego.jpg`` embeds; ``outguess -k KEY
-r stego.jpg out`` extracts (its own framing: the length is stored by the
tool). The key is recorded in the sidecar. OutGuess 0.4 needs a colour JPEG
cover (it refuses grayscale).
"""

from __future__ import annotations

import subprocess

from stegwatch.format.files import CarrierFile
from stegwatch.format.records import BitOrder
from stegwatch.stego._base import Cover, EmbedError, EmbedOptions, Extraction, StegoFile, StegoMethod
from stegwatch.stego._dct import jpeg_bytes_of, luma_nzac
from stegwatch.stego._tools import ToolMissing, last_words, run_tool, with_files

KEY = "outguess"


def capacity(cover: Cover) -> int:
    image = cover.image if isinstance(cover, CarrierFile) else cover
    if image.mode not in ("RGB", "YCbCr"):
        return 0  # OutGuess 0.4 refuses grayscale JPEGs
    # OutGuess reports about 0.34 correctable bits per non-zero AC coefficient; stay under it.
    return int(0.25 * luma_nzac(cover) / 8)


def embed(cover: Cover, payload: bytes, options: EmbedOptions = EmbedOptions()) -> StegoFile:
    if not options.key:
        raise EmbedError("outguess: a key is required")
    data = jpeg_bytes_of(cover, options.jpeg_quality)

    def work(folder):
        try:
            result = run_tool(["outguess", "-k", options.key, "-d", str(folder / "message"), str(folder / "cover.jpg"), str(folder / "stego.jpg")])
        except subprocess.TimeoutExpired:
            raise EmbedError("outguess: timed out") from None
        stego = folder / "stego.jpg"
        if result.returncode != 0 or not stego.exists() or stego.stat().st_size == 0:
            raise EmbedError(f"outguess: {last_words(result)}")
        return stego.read_bytes()

    stego_data = with_files({"cover.jpg": data, "message": payload}, work)
    return StegoFile(data=stego_data, format="JPEG", embedding=METHOD.embedding(), key=options.key)


def extract(carrier: CarrierFile, *, bit_order: BitOrder | None = None, key: str | None = None) -> list[Extraction]:
    if not key or not carrier.data.startswith(b"\xff\xd8"):
        return []

    def work(folder):
        try:
            result = run_tool(["outguess", "-k", key, "-r", str(folder / "stego.jpg"), str(folder / "out")])
        except (subprocess.TimeoutExpired, ToolMissing):
            return None
        out = folder / "out"
        return out.read_bytes() if result.returncode == 0 and out.exists() else None

    payload = with_files({"stego.jpg": carrier.data}, work)
    if not payload:
        return []
    return [Extraction(method=KEY, stream="outguess -r", payload=payload)]


METHOD = StegoMethod(
    key=KEY,
    category="dct",
    technique="outguess",
    ai42=False,
    carriers=("JPEG",),
    embed=embed,
    extract=extract,
    capacity=capacity,
    keyed=True,
    description="the OutGuess 0.4 program (statistics-preserving DCT embedding)",
    payload_unit="bpnzac",
    framing="tool",
    requires=("outguess",),
    install_hint="apt-get install outguess",
)
