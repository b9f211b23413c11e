"""Steganography methods: one module each, the same embed/extract shape, one registry.

>>> from stegwatch.stego import get_method
>>> get_method("lsb.rgb").technique
'lsb.rgb'

Adding a method: write one module exposing ``METHOD`` (a :class:`StegoMethod`)
and add one line to :data:`METHODS`.
"""

from __future__ import annotations

from stegwatch.format.files import CarrierFile
from stegwatch.format.records import BitOrder
from stegwatch.stego import alpha, eoi, exif, f5, jsteg, juniward, lsb_rgb, lsbm, lsbr, nsf5, outguess, palette, steghide
from stegwatch.stego.base import (
    AI42,
    BIT_ORDERS,
    EmbedError,
    EmbedOptions,
    Extraction,
    StegoFile,
    StegoMethod,
)

METHODS: dict[str, StegoMethod] = {
    m.key: m
    for m in (
        alpha.METHOD,
        palette.METHOD,
        lsb_rgb.METHOD,
        exif.METHOD,
        eoi.METHOD,
        lsbm.METHOD,
        lsbr.METHOD,
        jsteg.METHOD,
        f5.METHOD,
        nsf5.METHOD,
        juniward.METHOD,
        outguess.METHOD,
        steghide.METHOD,
    )
}

#: The DCT-domain (JPEG) methods.
DCT_METHODS = tuple(key for key, m in METHODS.items() if m.category == "dct")

#: The five methods of the Starlight format.
STARLIGHT_METHODS = ("alpha", "palette", "lsb.rgb", "exif", "eoi")


def get_method(key: str) -> StegoMethod:
    """The method registered under ``key``; KeyError names the known keys."""
    try:
        return METHODS[key]
    except KeyError:
        raise KeyError(f"unknown method {key!r}; known: {', '.join(METHODS)}") from None


def method_for_technique(technique: str) -> StegoMethod | None:
    """The method whose sidecar technique is ``technique`` (``raw`` -> ``eoi``)."""
    for method in METHODS.values():
        if method.technique == technique:
            return method
    return None


def extract_all(
    carrier: CarrierFile,
    *,
    methods: list[str] | tuple[str, ...] | None = None,
    bit_order: BitOrder | None = None,
    key: str | None = None,
) -> dict[str, list[Extraction]]:
    """Run every method's extractor (or those named) on one decoded file.

    Ordered methods try both bit orders unless ``bit_order`` is given; keyed
    methods find nothing without ``key``. Returns method key -> candidates.
    """
    return {
        name: get_method(name).extract(carrier, bit_order=bit_order, key=key)
        for name in (methods or METHODS)
    }


__all__ = [
    "extract_all",
    "AI42",
    "BIT_ORDERS",
    "DCT_METHODS",
    "METHODS",
    "STARLIGHT_METHODS",
    "EmbedError",
    "EmbedOptions",
    "Extraction",
    "StegoFile",
    "StegoMethod",
    "get_method",
    "method_for_technique",
]
