"""``outguess``: the real OutGuess program (Debian package ``outguess``), driven as a subprocess.

``outguess -k KEY -d message cover.jpg stego.jpg`` embeds; ``outguess -k KEY
-r stego.jpg out`` extracts (its own framing: the length is stored by the
tool). The key is recorded in the sidecar. OutGuess 0.4 needs a colour JPEG
cover (it refuses grayscale). On some covers (seen on small, smooth crops of
lossy WebP photographs, about 2% of them) it writes a file whose payload it
reads back wrong; :func:`embed` extracts each file back and refuses those
covers, so the corpus builder moves on to another. OutGuess recompresses
the image at the quality given with ``-p``: :func:`embed` passes the cover's
own (from its quantization table) and refuses a cover whose tables the
result does not keep, so a stego file has its cover's container.
"""

from __future__ import annotations

import io

from PIL import Image

from stegwatch.format.files import CarrierFile
from stegwatch.format.records import BitOrder
from stegwatch.stego.base import Cover, EmbedError, EmbedOptions, Extraction, StegoFile, StegoMethod
from stegwatch.stego.dct import ijg_quality, jpeg_bytes_of, luma_nzac
from stegwatch.stego._tools import embed_with_tool, extract_with_tool

KEY = "outguess"
#: The quality OutGuess recompresses at unless told otherwise (its ``-p`` default).
OUTGUESS_QUALITY = 75


def capacity(cover: Cover) -> int:
    image = cover.image if isinstance(cover, CarrierFile) else cover
    if image.mode not in ("RGB", "YCbCr"):
        return 0  # OutGuess 0.4 refuses grayscale JPEGs
    # OutGuess reports about 0.34 correctable bits per non-zero AC coefficient; stay under it.
    return int(0.25 * luma_nzac(cover) / 8)


def embed(cover: Cover, payload: bytes, options: EmbedOptions = EmbedOptions()) -> StegoFile:
    if not options.key:
        raise EmbedError("outguess: a key is required")
    key = options.key
    # A cover that is not a JPEG file is encoded at OutGuess's own default quality (75): at higher ones
    # the program often cannot read its own payload back.
    cover_jpeg = jpeg_bytes_of(cover, OUTGUESS_QUALITY)
    tables = _tables(cover_jpeg)
    # OutGuess recompresses at the quality given with -p (75 unless told): give it the cover's own, so
    # that the stego file keeps the cover's quantization tables (its container).
    quality = str(ijg_quality(tables.get(0)) or OUTGUESS_QUALITY)
    data = embed_with_tool(
        "outguess",
        lambda f: ["outguess", "-k", key, "-p", quality, "-d", str(f / "message"), str(f / "cover.jpg"), str(f / "stego.jpg")],
        cover_jpeg,
        payload,
    )
    if _tables(data) != tables:
        raise EmbedError("outguess: cannot keep this cover's quantization tables (not libjpeg's standard ones)")
    if _read_back(data, key) != payload:
        raise EmbedError("outguess: the program reads back another payload from this cover")
    return StegoFile(data=data, format="JPEG", embedding=METHOD.embedding(), key=key)


def _tables(data: bytes) -> dict:
    with Image.open(io.BytesIO(data)) as image:
        return {k: list(v) for k, v in (getattr(image, "quantization", None) or {}).items()}


def _read_back(data: bytes, key: str) -> bytes | None:
    return extract_with_tool(lambda f: ["outguess", "-k", key, "-r", str(f / "stego.jpg"), str(f / "out")], data)


def extract(carrier: CarrierFile, *, bit_order: BitOrder | None = None, key: str | None = None) -> list[Extraction]:
    if not key:
        return []
    payload = _read_back(carrier.data, key)
    return [Extraction(method=KEY, stream="outguess -r", payload=payload)] if payload else []


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
