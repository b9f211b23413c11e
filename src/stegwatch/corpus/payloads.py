"""Payloads: UTF-8 messages of varied length, and random bytes sized to a target rate.

The messages are a small set of texts written for stegwatch, combined and cut
to length (on a character boundary, so every message is valid UTF-8). Random
payloads never contain a NUL byte: the Starlight framing uses NUL as its
terminator, so a NUL inside a payload would end it early.
"""

from __future__ import annotations

import math

import numpy as np

TEXTS = (
    "Meet at the old lighthouse when the tide turns; bring the second key.",
    "Ledger 7 balances only if the March entries are read backwards.",
    "AI-to-AI handshake: agent Vega acknowledges block 812,004 and requests the next shard.",
    "The orchard keeps its secrets in the third row, under the pear trees.",
    "Status: all relays green. Rotate credentials at 04:00 UTC, not before.",
    "Rendez-vous au café près de la gare, à midi précis. Apportez la carte.",
    "Die Brücke bleibt bis Donnerstag gesperrt; nehmt den Umweg über den Hafen.",
    "Coordinates 48.8584 N, 2.2945 E - wait for the signal from the blue window.",
    "Nothing here is what it seems: the painting is a copy, the copy is the original.",
    "晚上八点在老地方见面，别忘了带上那本书。",
    "Inventory: 14 crates of tea, 3 of copper wire, 1 sealed envelope (do not open).",
    "If you can read this, the watermark survived another round of compression ✓",
    "Protocol note: every message ends with a NUL byte, every key is used once.",
    "The committee will vote on the proposal after the long weekend; keep it quiet.",
)


def text_payload(rng: np.random.Generator, length: int) -> bytes:
    """A UTF-8 message of at most ``length`` bytes (and at least one), from shuffled texts."""
    length = max(1, length)
    pieces: list[bytes] = []
    total = 0
    while total < length:
        piece = TEXTS[int(rng.integers(len(TEXTS)))].encode("utf-8")
        pieces.append(piece)
        total += len(piece) + 1
    data = b" ".join(pieces)[:length]
    # Cut back to a character boundary so the message stays valid UTF-8.
    return data.decode("utf-8", errors="ignore").encode("utf-8") or TEXTS[0][:1].encode()


def text_length(rng: np.random.Generator, low: int = 20, high: int = 3000) -> int:
    """A message length, log-uniform between ``low`` and ``high`` bytes."""
    return int(round(math.exp(rng.uniform(math.log(low), math.log(high)))))


def random_payload(rng: np.random.Generator, n_bytes: int) -> bytes:
    """``n_bytes`` random bytes, none of them NUL."""
    return rng.integers(1, 256, size=n_bytes, dtype=np.uint8).tobytes()


def bytes_for_rate(rate_bpp: float, width: int, height: int) -> int:
    """Payload bytes that carry ``rate_bpp`` bits per pixel in a ``width`` x ``height`` image."""
    return max(1, int(round(rate_bpp * width * height / 8)))
