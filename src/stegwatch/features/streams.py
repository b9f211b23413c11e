"""The eight streams of Starlight's V4, plus ``dct``, ``sequential`` and ``matching``: features from one decoded file.

Each stream is a named group of features, so a stream can be dropped for an
ablation. :func:`extract_streams` takes a :class:`CarrierFile` (one read, one
pixel decode) and returns every stream's vector; :data:`FEATURE_NAMES` names
each value. Bump :data:`FEATURE_VERSION` whenever a value's meaning changes
(it keys the feature cache and is recorded in model cards).

The field's rich features come as two more streams (:data:`RICH_STREAMS`):
``spam`` (686 values, every file) and ``dctr`` (8,000, JPEG files; zeros for
others), from :mod:`stegwatch.features.rich`.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from stegwatch.features import rich
from stegwatch.features.statistics import (
    SequentialEvidence,
    adjacency_hcf_com,
    byte_entropy,
    calibrated_hcf_com,
    chi_square_attack,
    chi_square_from_histogram,
    downsample_2x2,
    embedded_fraction,
    hcf_com,
    jpeg_calibrations,
    lsb_flat_inconsistency,
    outguess_slope_drop,
    palette_ws_terms,
    prefix_bounds,
    prefix_counts,
    prefix_histograms,
    sample_pair_analysis,
    sequential_chi_square,
    sequential_chi_square_evidence,
    sequential_pairs_likelihood_ratio,
    sequential_ws_evidence,
    weighted_stego,
    ws_estimate,
    ws_terms,
)
from stegwatch.format.files import CarrierFile
from stegwatch.format.structure import trailer_parts
from stegwatch.parallel import one_blas_thread
from stegwatch.stego import get_method
from stegwatch.stego.alpha import alpha_plane
from stegwatch.stego.base import AI42, BIT_ORDERS, from_bits, looks_printable
from stegwatch.stego.eoi import end_of_image, trailer_start
from stegwatch.stego.exif import ASCII_HEADER, decode_user_comment, read_user_comment
from stegwatch.stego.lsb_rgb import rgb_samples
from stegwatch.stego.palette import index_plane

if TYPE_CHECKING:
    from stegwatch.stego.dct import DctImage

#: 6: ``meta``'s trailer evidence finds a Samsung SEF trailer that appended bytes follow (the bytes stay unexplained).
#: 7: ``dct`` gains the OutGuess blockiness slopes (:func:`~stegwatch.features.statistics.outguess_blockiness_slopes`).
#: 8: ``sequential.rgb_ws_whole``, WS over the whole RGB path (:func:`~stegwatch.features.statistics.ws_estimate`).
FEATURE_VERSION = 8
STREAMS = ("pixel", "meta", "alpha", "lsb", "palette", "palette_lsb", "format", "content", "dct", "sequential", "matching",
           "spam", "dctr")
#: The field's rich features (FEATURE_VERSION 5): many small fractions, rounded to float32 when extracted (the
#: feature cache stores them so and the models read float32), so a cached row equals a fresh one bit for bit.
RICH_STREAMS = ("spam", "dctr")

_T = 3  # residuals are truncated to [-T, T]
FEATURE_NAMES: dict[str, tuple[str, ...]] = {
    "pixel": tuple(f"res_h_{v}" for v in range(-_T, _T + 1))
    + tuple(f"res_v_{v}" for v in range(-_T, _T + 1))
    + ("res2_log_var", "odd_fraction"),
    "meta": ("has_exif", "comment_nonblank", "comment_log_len", "trailer_log_len", "trailer_printable",
             "embedded_jpegs", "trailer_ai42",
             # Evidence of a payload rather than ordinary text or a vendor trailer (FEATURE_VERSION 4).
             "comment_starlight_framed", "comment_binary", "comment_entropy", "comment_padded",
             "trailer_known_structures", "trailer_unexplained_log_len", "trailer_unexplained_entropy",
             "trailer_unexplained_text", "trailer_unexplained_terminated"),
    "alpha": ("has_alpha", "alpha_log_unique", "alpha_lsb_mean", "alpha_lsb_flat_inconsistency", "alpha_chi2",
              "alpha_ai42", "alpha_opaque_fraction"),
    "lsb": ("chi2_all", "chi2_prefix", "seq_fraction", "spa", "ws", "lsb_neighbour_agreement", "lsb_bit1_agreement",
            "lsb_mean"),
    "palette": ("is_palette", "log2_colours", "twin_distance", "index_chi2", "twin_used_fraction"),
    "palette_lsb": ("index_lsb_mean", "index_lsb_flat_inconsistency", "index_lsb_agreement", "index_seq_fraction"),
    "format": ("fmt_png", "fmt_jpeg", "fmt_gif", "fmt_bmp", "fmt_other", "mode_rgb", "mode_rgba", "mode_l",
               "mode_p", "mode_other", "log2_width", "log2_height", "bytes_per_pixel"),
    "content": ("printable_fraction", "printable_run_log", "nul_early", "head_entropy", "rgb_payload_shaped",
                "index_payload_shaped", "text_payload_log_len"),
    "dct": ("is_jpeg", "qt_dc", "jsteg_chi2", *(f"ac_hist_{v}" for v in range(-3, 4)), "h1_h2_ratio",
            "zero_fraction", "f5_calibration_beta", "jsteg_seq_chi2", "jsteg_seq_fraction", "jsteg_seq_pairs",
            "jsteg_seq_pairs_fraction",
            # Fridrich-Goljan-Hogea's blockiness attack on OutGuess (FEATURE_VERSION 7): the slopes and 1 - S1/S0.
            "outguess_stego_slope", "outguess_cover_slope", "outguess_slope_drop"),
    # Sequential LSB-replacement attacks along each embedding path (statistics.py): RGB samples interleaved
    # from the top-left (lsb.rgb), alpha row-major (alpha), palette indices row-major (palette). The bit order
    # within a byte does not change which samples carry bits, so one value serves both orders.
    "sequential": tuple(f"{path}_{attack}" for path in ("rgb", "alpha", "index")
                        for attack in ("chi2", "chi2_fraction", "pairs", "pairs_fraction", "ws", "ws_fraction"))
    # WS over the whole RGB path (FEATURE_VERSION 8): Ker-Böhme's predictor on the same terms, so it sees LSB
    # replacement at scattered positions (lsbr), which no prefix concentrates.
    + ("rgb_ws_whole",),
    # LSB matching (+-1): HCF-COM and Ker's calibrated and adjacency forms, mean over the colour channels.
    "matching": ("hcf_com", "calibrated_hcf_com", "adjacency_hcf_com"),
    # "spam.straight_-3_-3_-3" ...: the names rich.spam_names and rich.dctr_names give, under this stream's name.
    "spam": tuple(n.split(".", 1)[1] for n in rich.spam_names()),
    "dctr": tuple(n.split(".", 1)[1] for n in rich.dctr_names()),
}


def feature_names(streams: tuple[str, ...] = STREAMS) -> list[str]:
    """``stream.name`` for every feature of ``streams``, in vector order."""
    return [f"{s}.{n}" for s in streams for n in FEATURE_NAMES[s]]


@functools.lru_cache(maxsize=8)
def _positions(streams: tuple[str, ...]) -> dict[str, int]:
    return {name: i for i, name in enumerate(feature_names(streams))}


def feature_columns(names: list[str], streams: tuple[str, ...] = STREAMS) -> np.ndarray:
    """Positions of ``names`` in the feature vector of ``streams``.

    One dictionary lookup per name: ``list.index`` over the 8,800 names cost half a second per model. A name this
    version does not compute (a model card of another feature version) is a ValueError naming the first few.
    """
    positions = _positions(tuple(streams))
    unknown = [n for n in names if n not in positions]
    if unknown:
        raise ValueError(f"{len(unknown)} feature(s) this stegwatch does not compute, e.g. {', '.join(unknown[:3])}")
    return np.asarray([positions[n] for n in names], dtype=np.intp)


def _samples(image: Image.Image) -> np.ndarray:
    """Colour samples as (H, W, C) uint8: RGB, or L for grayscale; palette images via their colours."""
    if image.mode in ("L", "RGB"):
        pixels = np.asarray(image)
    elif image.mode in ("RGBA", "LA"):
        pixels = np.asarray(image)[..., :-1]
    else:
        pixels = np.asarray(image.convert("RGB"))
    return pixels if pixels.ndim == 3 else pixels[..., None]


def _pixel(luma: np.ndarray) -> np.ndarray:
    x = luma.astype(np.int16)  # residuals of 8-bit values fit; the statistics are computed in float64 as before
    out = []
    for residual in (x[:, 1:] - x[:, :-1], x[1:, :] - x[:-1, :]):
        clipped = np.clip(residual, -_T, _T) + _T
        hist = np.bincount(clipped.reshape(-1), minlength=2 * _T + 1).astype(float)
        out.extend(hist / max(1.0, hist.sum()))
    second = x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2] if x.shape[1] > 2 else np.zeros(1)
    out.append(math.log1p(float(np.var(second))))
    out.append(float(np.mean(luma & 1)))
    return np.asarray(out)


_BLANK = b" \x00\t\r\n"


def comment_evidence(comment: bytes | None) -> dict[str, float]:
    """What an EXIF UserComment looks like: a payload, ordinary text or a camera's blank.

    ``nonblank`` and ``log_len`` (log1p of its text's bytes, blanks stripped);
    ``starlight_framed``: exactly Starlight's writing, ``ASCII\\0\\0\\0`` +
    text + one NUL, nothing after (cameras pad with blanks, phones write
    UNICODE); ``binary``: the text is not printable UTF-8 (no camera or app
    writes bytes there); ``entropy``: bits per byte of the text; ``padded``:
    blank padding after the text, as cameras write.
    """
    out = {"nonblank": 0.0, "log_len": 0.0, "starlight_framed": 0.0, "binary": 0.0, "entropy": 0.0, "padded": 0.0}
    if comment is None:
        return out
    payload, _ = decode_user_comment(comment)
    stripped = payload.strip(_BLANK)
    if not stripped:
        return out
    body = comment[len(ASCII_HEADER):]
    try:
        printable = looks_printable(stripped.decode("utf-8"))
    except UnicodeDecodeError:
        printable = False
    # Padding: more blank bytes after the text than a terminator and one trailing space.
    padded = len(body) - len(body.rstrip(_BLANK)) > 2
    framed = comment.startswith(ASCII_HEADER) and body.endswith(b"\x00") and b"\x00" not in body[:-1] and not padded
    out.update(nonblank=1.0, log_len=math.log1p(len(stripped)), binary=float(not printable),
               entropy=byte_entropy(stripped[:4096]), starlight_framed=float(framed), padded=float(padded))
    return out


def trailer_evidence(data: bytes) -> dict[str, float]:
    """What the bytes after the end of the image are: known structures, and the bytes none explains.

    ``known``: how many known structures (:func:`~stegwatch.format.structure.trailer_parts`:
    a second JPEG, MP4 boxes, Samsung SEF, PNG, XMP, padding); for the
    unexplained bytes: ``log_len`` (log1p of their count), ``entropy`` (bits
    per byte of the first 4 KB), ``text`` (fraction of printable ASCII in the
    first 512 bytes) and ``terminated`` (they end in one NUL, as Starlight's
    framing does).
    """
    parts = trailer_parts(data)
    unexplained = [p for p in parts if p.kind == "unexplained"]
    out = {"known": float(len(parts) - len(unexplained)), "log_len": 0.0, "entropy": 0.0, "text": 0.0, "terminated": 0.0}
    if unexplained:
        part = unexplained[0]
        head = data[part.start: part.start + 4096]
        out.update(log_len=math.log1p(sum(p.length for p in unexplained)), entropy=byte_entropy(head),
                   text=_printable_head(head[:512])[0],
                   terminated=float(data[part.end - 1] == 0 and (part.length < 2 or data[part.end - 2] != 0)))
    return out


def _meta(carrier: CarrierFile) -> np.ndarray:
    has_exif = 1.0 if carrier.image.info.get("exif") else 0.0
    try:
        comment = read_user_comment(carrier.image)
    except ValueError:
        comment = None
    found = comment_evidence(comment)
    data = carrier.data
    start, skipped = trailer_start(data)
    start = len(data) if start is None else start  # no trailer; offsets, not a copy of a large one
    printable = 0.0
    if start < len(data):
        head = data[start:start + 256].decode("utf-8", errors="replace")
        printable = sum(ch.isprintable() for ch in head) / max(1, len(head))
    trailer = trailer_evidence(data)
    return np.asarray([has_exif, found["nonblank"], found["log_len"], math.log1p(len(data) - start), printable,
                       float(skipped), float(data.startswith(AI42, start)),
                       found["starlight_framed"], found["binary"], found["entropy"], found["padded"],
                       trailer["known"], trailer["log_len"], trailer["entropy"], trailer["text"], trailer["terminated"]])


def _alpha(carrier: CarrierFile) -> np.ndarray:
    image = carrier.image
    if image.mode not in ("RGBA", "LA", "PA"):
        return np.zeros(len(FEATURE_NAMES["alpha"]))
    plane = np.asarray(image.getchannel("A"))
    ai42 = bool(get_method("alpha").extract(carrier))
    return np.asarray([1.0, math.log1p(len(np.unique(plane))), float(np.mean(plane & 1)),
                       lsb_flat_inconsistency(plane), chi_square_attack(plane), float(ai42),
                       float(np.mean(plane == 255))])


def _fraction_true(mask: np.ndarray) -> float:
    return np.count_nonzero(mask) / mask.size


def _lsb(samples: np.ndarray) -> np.ndarray:
    flat = samples.reshape(-1)
    lsb = samples & 1
    agreement = _fraction_true(lsb[:, 1:] == lsb[:, :-1]) if samples.shape[1] > 1 else 1.0
    bit1 = _fraction_true(lsb == ((samples >> 1) & 1))
    lsb_mean = _fraction_true(lsb)
    # One pass over the samples for all ten prefixes; the last prefix is the whole sequence.
    ps = np.asarray([chi_square_from_histogram(h) for h in prefix_histograms(flat, prefix_bounds(flat.size, 10))])
    prefix_p = chi_square_attack(flat[: max(64, flat.size // 20)])
    del flat, lsb  # free these full-size copies before SPA and WS make their own (peak memory per pixel)
    channels = [samples[..., c] for c in range(samples.shape[2])]
    return np.asarray([ps[-1], prefix_p, embedded_fraction(ps),
                       float(np.mean([sample_pair_analysis(c) for c in channels])),
                       float(np.mean([weighted_stego(c) for c in channels])),
                       agreement, bit1, lsb_mean])


def _palette_colours(image: Image.Image, indices: np.ndarray) -> np.ndarray:
    """The palette as (N, 3) with N even and covering every index (missing entries black, as decoders show them)."""
    palette = np.asarray(image.getpalette() or [0, 0, 0], dtype=float)
    entries = max(len(palette) // 3, int(indices.max()) + 1)
    entries += entries % 2
    colours = np.zeros((entries, 3))
    colours[: len(palette) // 3] = palette[: 3 * (len(palette) // 3)].reshape(-1, 3)
    return colours


def _palette(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    if image.mode != "P":
        return np.zeros(len(FEATURE_NAMES["palette"])), np.zeros(len(FEATURE_NAMES["palette_lsb"]))
    indices = np.asarray(image)
    palette = _palette_colours(image, indices)
    used = np.unique(indices)
    twins = used ^ 1  # within the palette: it has an even number of entries covering every index
    twin_distance = float(np.mean(np.linalg.norm(palette[used] - palette[twins], axis=1))) / 441.7
    twin_used = float(np.mean(np.isin(used ^ 1, used)))
    lsb = indices & 1
    agreement = float(np.mean(lsb[:, 1:] == lsb[:, :-1])) if indices.shape[1] > 1 else 1.0
    _, fraction = sequential_chi_square(indices.reshape(-1), steps=10)
    return (
        np.asarray([1.0, math.log2(max(1, used.size)), twin_distance, chi_square_attack(indices), twin_used]),
        np.asarray([float(np.mean(lsb)), lsb_flat_inconsistency(indices), agreement, fraction]),
    )


_FORMATS = ("PNG", "JPEG", "GIF", "BMP")
_MODES = ("RGB", "RGBA", "L", "P")


def _format(carrier: CarrierFile) -> np.ndarray:
    image = carrier.image
    kind, _ = end_of_image(carrier.data)
    fmt = image.format if image.format in _FORMATS else kind
    one_hot_format = [float(fmt == f) for f in _FORMATS] + [float(fmt not in _FORMATS)]
    one_hot_mode = [float(image.mode == m) for m in _MODES] + [float(image.mode not in _MODES)]
    pixels = image.width * image.height
    return np.asarray(one_hot_format + one_hot_mode + [math.log2(image.width), math.log2(image.height),
                                                       len(carrier.data) / pixels])


def _printable_head(head: bytes) -> tuple[float, int]:
    """Fraction of printable ASCII (or tab/newline/return) bytes, and the longest run of printable ASCII."""
    values = np.frombuffer(head, dtype=np.uint8)
    ascii_text = (values >= 32) & (values < 127)
    printable = np.count_nonzero(ascii_text | (values == 9) | (values == 10) | (values == 13)) / max(1, values.size)
    if not ascii_text.any():
        return printable, 0
    edges = np.diff(np.concatenate(([0], ascii_text.view(np.int8), [0])))
    return printable, int(np.max(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)))


def _content(carrier: CarrierFile, samples: np.ndarray) -> np.ndarray:
    bits = (samples.reshape(-1)[: 8 * 4096] & 1).astype(np.uint8)
    best_printable, best_run, nul_early, entropy = 0.0, 0.0, 0.0, 0.0
    for order in BIT_ORDERS:
        data = from_bits(bits, order)
        printable, longest = _printable_head(data[:512])
        best_printable = max(best_printable, printable)
        best_run = max(best_run, math.log1p(longest))
        nul_early = max(nul_early, float(b"\x00" in data))
        entropy = max(entropy, byte_entropy(data[:1024]))
    rgb = [x for x in get_method("lsb.rgb").extract(carrier) if x.payload_shaped]
    index = [x for x in get_method("palette").extract(carrier) if x.payload_shaped]
    text_len = max((len(x.payload) for x in rgb + index), default=0)
    return np.asarray([best_printable, best_run, nul_early, entropy, float(bool(rgb)), float(bool(index)),
                       math.log1p(text_len)])


def _coefficients(carrier: CarrierFile) -> DctImage | None:
    """A JPEG's coefficients, read once for every stream that needs them (None for other files and unreadable ones)."""
    from stegwatch.stego.dct import read_dct

    if not _is_jpeg(carrier):
        return None
    try:
        return read_dct(carrier.data)
    except ValueError:
        return None


def _dct(image: DctImage | None) -> np.ndarray:
    """The ``dct`` stream of a JPEG's coefficients (:func:`_coefficients`; zeros for None)."""
    from stegwatch.stego.dct import ac_mask
    from stegwatch.stego.jsteg import usable_positions

    if image is None:
        return np.zeros(len(FEATURE_NAMES["dct"]))
    luma = image.Y
    ac = luma[ac_mask(luma.shape)]  # int16, as read: every count below is the same as in int64, at a quarter the memory
    hist = np.asarray([np.count_nonzero(ac == v) for v in range(-3, 4)], dtype=float) / max(1, ac.size)
    h1 = np.count_nonzero(np.abs(ac) == 1)
    h2 = np.count_nonzero(np.abs(ac) == 2)
    # JSteg's own path: the AC coefficients that are neither 0 nor 1, blocks row-major, in the order it embeds.
    leading = _leading_rows(luma, luma.shape[1] * 64)  # whole block rows, from the top: JSteg's path starts there
    path = leading.reshape(-1)[usable_positions(leading)]
    counted = prefix_counts(path)
    chi2, pairs = sequential_chi_square_evidence(counted), sequential_pairs_likelihood_ratio(counted)
    f5_beta, slopes = jpeg_calibrations(leading, image.luma_qt)
    return np.asarray([1.0, float(image.luma_qt[0, 0]) / 64.0, chi_square_attack(ac, exclude=(0, 1)), *hist,
                       h1 / max(1, h2), float(np.mean(ac == 0)), f5_beta,
                       chi2.evidence, chi2.fraction, pairs.evidence, pairs.fraction, *slopes, outguess_slope_drop(slopes)])


#: The sequential attacks read at most this many samples of each embedding path (and the F5 and OutGuess calibrations about as
#: many coefficients), from the start: a payload embedded from the top-left shows there, and memory stays bounded
#: on the largest accepted image (4096 x 4096 RGBA). Every file of the default corpus is far below it.
MAX_PATH_SAMPLES = 1 << 22


def _leading_rows(plane: np.ndarray, per_row: int) -> np.ndarray:
    """The first rows of ``plane`` holding at most :data:`MAX_PATH_SAMPLES` samples (``per_row`` per row; 3 rows at least)."""
    return plane[: max(3, MAX_PATH_SAMPLES // max(1, per_row))]


def _is_jpeg(carrier: CarrierFile) -> bool:
    """A JPEG's pixels are decoded, not stored: no LSB payload survives in them, so the pixel attacks skip it."""
    return carrier.data.startswith(b"\xff\xd8")


def _path_attacks(values: np.ndarray, ws: tuple[np.ndarray, np.ndarray]) -> list[float]:
    """The three sequential attacks on one path: chi-square, pairs likelihood ratio, WS (evidence, fraction each)."""
    counted = prefix_counts(values)
    found: list[SequentialEvidence] = [sequential_chi_square_evidence(counted), sequential_pairs_likelihood_ratio(counted),
                                       sequential_ws_evidence(*ws)]
    return [v for e in found for v in (e.evidence, e.fraction)]


def _sequential(carrier: CarrierFile) -> np.ndarray:
    """Sequential chi-square and WS attacks along the three LSB-replacement paths, and WS over the whole RGB path
    (zeros where a path is absent). Every path is read up to :data:`MAX_PATH_SAMPLES` samples (the first rows of a
    larger image), so on images over about 1.4 megapixels ``rgb_ws_whole`` is WS over their top rows: as unbiased for
    a payload scattered by a key, from fewer samples."""
    out = np.zeros(len(FEATURE_NAMES["sequential"]))
    if _is_jpeg(carrier):
        return out
    image = carrier.image
    rgb = rgb_samples(image)
    if rgb is not None:
        rgb = _leading_rows(rgb, image.width * 3)
        # Transparent and translucent pixels' colours were premultiplied or composited: only opaque pixels weigh.
        opaque = _leading_rows(np.asarray(image.getchannel("A")) == 255, image.width * 3) if image.mode == "RGBA" else None
        terms = ws_terms(rgb, mask=opaque)
        out[0:6] = _path_attacks(rgb.reshape(-1), terms)
        out[FEATURE_NAMES["sequential"].index("rgb_ws_whole")] = ws_estimate(*terms)
    alpha = alpha_plane(image)
    if alpha is not None:
        alpha = _leading_rows(alpha, image.width)
        out[6:12] = _path_attacks(alpha.reshape(-1), ws_terms(alpha))
    indices = index_plane(image)
    if indices is not None:
        indices = _leading_rows(indices, image.width)
        out[12:18] = _path_attacks(indices.reshape(-1), palette_ws_terms(indices, _palette_colours(image, indices)))
    return out


def _matching(carrier: CarrierFile, samples: np.ndarray) -> np.ndarray:
    """HCF-COM and Ker's calibrated and adjacency forms, averaged over the channels (not for JPEG or palette images)."""
    if _is_jpeg(carrier) or carrier.image.mode == "P":
        return np.zeros(len(FEATURE_NAMES["matching"]))
    per_channel = []
    for c in range(samples.shape[2]):
        channel = np.ascontiguousarray(samples[..., c])
        com, down = hcf_com(channel), downsample_2x2(channel)  # each computed once for the three statistics
        per_channel.append((com, calibrated_hcf_com(channel, downsampled=down, com=com),
                            adjacency_hcf_com(channel, downsampled=down)))
    return np.asarray([float(np.mean(values)) for values in zip(*per_channel, strict=True)])


def _rich(jpeg: list[DctImage], luma: np.ndarray) -> dict[str, np.ndarray]:
    """The ``spam`` and ``dctr`` streams (float32 values): SPAM of the luminance; DCTR of a JPEG's (zeros otherwise).

    ``jpeg`` is empty, or holds a JPEG's coefficients (:func:`_coefficients`)
    as the caller's only reference: this function takes them out of the list,
    so that every channel's coefficients, and then the luminance, are freed
    before DCTR and SPAM run (peak memory on the largest files). The
    luminance is read from the coefficients (dequantized, inverse DCT): DCTR
    takes it unrounded with the quality of the file's luminance table, SPAM
    takes it rounded and clipped to 8 bits (the pixels a decoder gives,
    without the colour conversion round trip of ``luma``). Any other file's
    SPAM is of ``luma``.
    """
    from stegwatch.stego.dct import ijg_quality

    dctr = np.zeros(len(FEATURE_NAMES["dctr"]))
    if jpeg:
        coefficients = jpeg.pop()
        quality = ijg_quality(coefficients.luma_qt.reshape(-1))
        luminance = rich.decompressed_luminance(coefficients)
        del coefficients
        dctr = rich.dctr(luminance, quality)
        luma = np.clip(np.rint(luminance, out=luminance), 0, 255, out=luminance).astype(np.uint8)
        del luminance
    return {"spam": rich.spam(luma).astype(np.float32), "dctr": dctr.astype(np.float32)}


def extract_streams(carrier: CarrierFile) -> dict[str, np.ndarray]:
    """Every stream's feature vector for one decoded file (float64), computed with one BLAS thread
    (:func:`stegwatch.parallel.one_blas_thread`: the same values on any number of cores)."""
    with one_blas_thread():
        return _extract_streams(carrier)


def _extract_streams(carrier: CarrierFile) -> dict[str, np.ndarray]:
    image = carrier.image
    samples = _samples(image)
    luma = np.asarray(image.convert("L"))
    palette, palette_lsb = _palette(image)
    coefficients = _coefficients(carrier)  # read once for the dct, dctr and spam streams
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        dct = _dct(coefficients)
        jpeg = [] if coefficients is None else [coefficients]
        del coefficients  # _rich takes the only reference, and frees them before DCTR
        rich_streams = _rich(jpeg, luma)  # first: no other stream's temporaries live beside the coefficients
        values = {
            "pixel": _pixel(luma),
            "meta": _meta(carrier),
            "alpha": _alpha(carrier),
            "lsb": _lsb(samples),
            "palette": palette,
            "palette_lsb": palette_lsb,
            "format": _format(carrier),
            "content": _content(carrier, samples),
            "dct": dct,
            "sequential": _sequential(carrier),
            "matching": _matching(carrier, samples),
            **rich_streams,
        }
    for name, vector in values.items():
        assert vector.shape == (len(FEATURE_NAMES[name]),), name
    return {name: np.nan_to_num(v.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0) for name, v in values.items()}


def feature_vector(streams: dict[str, np.ndarray], keep: tuple[str, ...] = STREAMS) -> np.ndarray:
    return np.concatenate([streams[name] for name in keep])


__all__ = ["FEATURE_NAMES", "FEATURE_VERSION", "RICH_STREAMS", "STREAMS", "extract_streams", "feature_names", "feature_vector"]
