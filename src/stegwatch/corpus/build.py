"""Building a labelled corpus in the Starlight format.

A build is a fixed list of jobs (one per output file) derived from the preset,
the seed and the user's cover folders. Each job draws its randomness from
``numpy.random.default_rng([seed, kind, ...])``, so a job's output depends on
nothing but its own identity: the same seed gives byte-identical files with
any number of workers. Finished jobs are appended to a journal inside the
corpus; a re-run verifies them by hash and does only what is missing, so an
interrupted build resumes and a finished one changes nothing.

Every stego file is extracted back right after embedding: a label that cannot
be proven is never written, and the job moves on to another cover, so every
seed reaches the preset's counts.

The ``training`` preset (issue 16) uses the same jobs for a different end:
thousands of exact cover/stego pairs of the methods V4 learns from rich
features, from the ``train`` split's photographs only. Stego job ``i`` of
every method embeds into the ``i``-th cover of its pool (photo crop ``i`` for
the spatial methods, JPEG cover ``i`` for the JPEG ones), so one clean crop
carries one stego file of each method, and each stego line names its cover
(``cover_file``).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from stegwatch.corpus import negatives as negatives_module
from stegwatch.parallel import map_unordered
from stegwatch.corpus.payloads import bytes_for_rate, random_payload, text_length, text_payload
from stegwatch.corpus.sources import (REDUCED_LONG_SIDE, REDUCTION_VERSION, PhotoSource, UserCover, independent_photograph_ids,
                                      listed_sources, photo_crop, prepare_sources, scan_user_covers, source_pixels)
from stegwatch.errors import CorpusError
from stegwatch.format.framing import with_framing_of
from stegwatch.format.files import DEFAULT_LIMITS, FORMAT_EXTENSIONS, CarrierFile, ReadLimits, carrier_from_bytes, decode_image, read_file_bytes, write_bytes_atomic, write_text_atomic
from stegwatch.format.manifest import MANIFEST_NAME, sidecar_text, write_manifest
from stegwatch.format.records import FileError, ManifestEntry, Sidecar, split_of
from stegwatch.stego import METHODS, EmbedError, EmbedOptions, StegoFile, StegoMethod
from stegwatch.stego.base import BIT_ORDERS, encode_image, to_palette
from stegwatch.stego.dct import count_changes, dct_rate_bytes, luma_nzac

STATE_DIR = ".stegwatch-build"
JOURNAL = "journal.jsonl"
PLAN = "plan.json"
#: Folder of the state folder holding the reduced photographs (see ``sources.prepare_sources``).
COVER_CACHE = "covers"
#: Bump when a change to the generators changes the files a seed produces.
GENERATOR_VERSION = 9

#: Target rates (bits per pixel) of the random-payload rate sweep.
RATES_BPP = (0.05, 0.1, 0.2, 0.4)
#: Payload variants per method: "text", or a rate (bpp for pixel methods, bits per
#: non-zero AC coefficient for JPEG methods). Half of lsb.rgb is a rate sweep.
#: Random payloads written with no marker and no terminator (``EmbedOptions(framed=False)``):
#: nothing extractable looks like a message, only the embedding's statistics can find them.
UNFRAMED = tuple(f"unframed:{rate}" for rate in RATES_BPP)
PAYLOAD_VARIANTS: dict[str, tuple[str | float, ...]] = {
    # Starlight-framed text, framed random bytes at each rate, and unframed random bytes (over a third).
    # Interleaved, so that even a small corpus holds every kind.
    "lsb.rgb": ("text", UNFRAMED[0], RATES_BPP[0], "text", UNFRAMED[1], RATES_BPP[1], "text", UNFRAMED[2], RATES_BPP[2],
                UNFRAMED[3], RATES_BPP[3]),
    "alpha": ("text", UNFRAMED[0], "text", UNFRAMED[1], "text", UNFRAMED[2], UNFRAMED[3]),
    "palette": ("text", UNFRAMED[0], "text", UNFRAMED[1], "text", UNFRAMED[2], UNFRAMED[3]),
    "lsbm": RATES_BPP,
    "lsbr": RATES_BPP,
    "jsteg": (0.05, 0.1, 0.2, 0.4),
    "f5": (0.05, 0.1, 0.2, 0.4),
    "nsf5": (0.05, 0.1, 0.2, 0.4),
    "juniward": (0.1, 0.2, 0.3, 0.4),
    # The real tools' capacity ends near 0.25 bpnzac on 256x256 covers.
    "outguess": (0.05, 0.1, 0.2),
    "steghide": (0.05, 0.1, 0.2),
}
#: JPEG qualities of the JPEG covers, used in turn.
JPEG_QUALITIES = (75, 85, 95)
#: Covers a stego job tries before it gives up (a cover can be too small or the wrong kind).
MAX_COVER_ATTEMPTS = 100
#: Shortest payload worth embedding; covers too small for it are skipped for that job.
MIN_PAYLOAD = 16
# Image sizes of photo crops and their weights: mostly 256x256.
_SIZES = (256, 128, 512)
_SIZE_WEIGHTS = (0.8, 0.1, 0.1)
# File formats of the clean photo crops, so that no format belongs to one class only.
# Containers (format, mode) of the clean photo crops and their weights. Every pixel and metadata
# method finds covers of its own container among them, and its stego keeps that container, so
# that no container belongs to one class (BOSSbase-style cover/stego pairs).
_PHOTO_CONTAINERS = (("PNG", "RGB"), ("BMP", "RGB"), ("JPEG", "RGB"), ("PNG", "RGBA"), ("PNG", "P"), ("GIF", "P"))
_PHOTO_CONTAINER_WEIGHTS = (0.40, 0.10, 0.10, 0.16, 0.12, 0.12)
# Photo crop i has container _CONTAINER_SCHEDULE[i % 50]: known without making the crop, so a
# stego job can list the covers of its container cheaply. A fixed shuffle spreads them out.
_CONTAINER_SCHEDULE = tuple(np.random.default_rng(20261130).permutation(
    np.repeat(np.arange(len(_PHOTO_CONTAINERS)), np.rint(50 * np.asarray(_PHOTO_CONTAINER_WEIGHTS)).astype(int))).tolist())
_KIND_CODE = {"photo": 1, "negative": 2, "stego": 3, "user": 4, "jpeg": 5}

#: The methods V4 must learn from rich features (issue 16): LSB matching, LSB replacement with
#: random payloads, and every JPEG method. The others are found by what they write (a marker, a
#: message, metadata, a trailer), which extraction and V3's targeted statistics already see.
LEARNED_METHODS = ("lsbm", "lsbr", "lsb.rgb", "jsteg", "f5", "nsf5", "juniward", "outguess", "steghide")
#: Payload variants of ``lsb.rgb`` in a training build: random bytes at every rate, framed and
#: unframed (text payloads are found by extraction; rich features must learn the random ones).
TRAINING_LSB_RGB_VARIANTS: tuple[str | float, ...] = tuple(v for pair in zip(UNFRAMED, RATES_BPP) for v in pair)

#: Method categories whose payload is framing (EXIF, a trailer). Every stego file gets its cover's
#: framing back after embedding (:func:`~stegwatch.format.framing.with_framing_of`), as an adversary
#: keeps it at no cost: the tools write bare files, and bare stego beside framed clean files would
#: teach "framing means clean" (issue 16). A stego file's own EXIF and trailer win over its cover's.
WRITES_FRAMING = ("metadata", "eoi")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preset:
    """How many files of each kind a corpus holds."""

    name: str
    photos: int
    negatives_per_category: int
    stego_per_method: int
    jpeg_covers: int
    dct_stego_per_method: int
    description: str
    #: Photographs to crop from: "listed" (every listed photograph present: built-in and Debian)
    #: or "builtin" (only those inside the Python wheels, the same on every machine).
    covers: str = "listed"
    # Fields added for training builds (issue 16). At their defaults they change nothing, and a
    # plan fingerprint leaves them out (see _preset_fingerprint), so older corpora stay valid.
    #: Method keys that get stego jobs; None: every registered method.
    methods: tuple[str, ...] | None = None
    #: "train" or "monitor": only listed photographs of that split (``split_of(cover_id)``); no
    #: ``--covers``. None: every photograph.
    cover_split: str | None = None
    #: Containers (format, mode) of the photo crops, used in turn; None: the default mix.
    #: When every one is RGB, crops come from colour photographs only (a grayscale crop stays
    #: grayscale and no RGB method could carry it).
    photo_containers: tuple[tuple[str, str], ...] | None = None
    #: (method key, payload variants) replacing :data:`PAYLOAD_VARIANTS` for those methods.
    payload_variants: tuple[tuple[str, tuple[str | float, ...]], ...] = ()
    #: Exact pairs with shared covers: stego job ``i`` tries the ``i``-th cover its method can take
    #: first (other covers only when that one cannot carry the payload), and its manifest line
    #: names the cover in ``cover_file``.
    shared_covers: bool = False

    def stego_count(self, method: StegoMethod) -> int:
        if self.methods is not None and method.key not in self.methods:
            return 0
        return self.dct_stego_per_method if method.category == "dct" else self.stego_per_method

    def variants_for(self, method_key: str) -> tuple[str | float, ...]:
        """Payload variants of ``method_key``'s stego jobs (cycled with the bit orders by job index)."""
        return dict(self.payload_variants).get(method_key) or PAYLOAD_VARIANTS.get(method_key, ("text",))

    def photo_container(self, index: int) -> tuple[str, str]:
        """(format, mode) of photo crop ``index``: known without making the crop."""
        if self.photo_containers:
            return self.photo_containers[index % len(self.photo_containers)]
        return _PHOTO_CONTAINERS[_CONTAINER_SCHEDULE[index % len(_CONTAINER_SCHEDULE)]]

    @property
    def colour_photos_only(self) -> bool:
        return bool(self.photo_containers) and all(mode == "RGB" for _, mode in self.photo_containers or ())


def _training_preset(name: str, pairs: int, covers: str, description: str) -> Preset:
    """A training build: ``pairs`` cover/stego pairs of each of :data:`LEARNED_METHODS`, train split only.

    ``pairs`` RGB PNG crops (each carrying one ``lsbm``, one ``lsbr`` and one
    ``lsb.rgb`` file) and ``pairs`` JPEG covers (each carrying one file of every JPEG
    method); no negatives, no Starlight-only methods.
    """
    return Preset(name, photos=pairs, negatives_per_category=0, stego_per_method=pairs, jpeg_covers=pairs,
                  dct_stego_per_method=pairs, description=description, covers=covers, methods=LEARNED_METHODS,
                  cover_split="train", photo_containers=(("PNG", "RGB"),),
                  payload_variants=(("lsb.rgb", TRAINING_LSB_RGB_VARIANTS),), shared_covers=True)


PRESETS = {
    "smoke": Preset("smoke", photos=40, negatives_per_category=8, stego_per_method=12, jpeg_covers=24,
                    dct_stego_per_method=8, description="a few hundred files in seconds, for tests", covers="builtin"),
    "default": Preset("default", photos=3100, negatives_per_category=300, stego_per_method=600, jpeg_covers=1200,
                      dct_stego_per_method=320,
                      description="8,800 clean files (3,100 photo crops, 1,200 JPEG covers, 300 per negatives "
                      "category), 600 stego files per pixel or metadata method and 320 per JPEG method; "
                      "covers from every listed photograph present", covers="listed"),
    "training": _training_preset(
        "training", 3000, "listed",
        "3,000 exact cover/stego pairs of each learned method (lsbm, lsbr, lsb.rgb random payloads, jsteg, f5, nsf5, "
        "juniward, outguess, steghide): 3,000 RGB PNG crops and 3,000 JPEG covers shared across methods, from "
        "the train split's listed photographs only"),
    "training-smoke": _training_preset(
        "training-smoke", 6, "builtin",
        "the training build in miniature (6 pairs per learned method, built-in train-split photographs), for tests"),
}


def preset_named(name: str) -> Preset:
    """The preset called ``name``; :class:`CorpusError` names the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise CorpusError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None


class BuildConflict(CorpusError):
    """The output folder holds a corpus built with other settings."""


@dataclass(frozen=True)
class Job:
    kind: str  # photo, jpeg, user, negative or stego (the keys of _RUNNERS)
    name: str  # negatives category, method key, or "" for photos and user covers
    index: int

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}:{self.index}"


@dataclass(frozen=True)
class BuildContext:
    """Everything a job needs; picklable, so workers receive it once per chunk."""

    seed: int
    preset: Preset
    sources: tuple[PhotoSource, ...]
    user_covers: tuple[UserCover, ...]
    out: Path
    limits: ReadLimits = DEFAULT_LIMITS
    #: The photographs photo crops come from when they differ from ``sources`` (colour ones only,
    #: see ``Preset.colour_photos_only``); empty: ``sources``.
    photo_sources: tuple[PhotoSource, ...] = ()


@dataclass
class JobResult:
    job_id: str
    entries: list[dict] = field(default_factory=list)
    error: str | None = None


@dataclass
class BuildReport:
    """What a build did: counts, size, time, errors."""

    out: str
    preset: str
    seed: int
    entries: list[ManifestEntry]
    jobs_total: int
    jobs_run: int
    jobs_reused: int
    seconds: float
    bytes_on_disk: int
    #: User cover files that could not be used (path, reason); the build goes on without them.
    cover_errors: list[FileError] = field(default_factory=list)
    #: Jobs of any kind that failed (job id, reason): files the corpus should hold and does not.
    failed_jobs: list[FileError] = field(default_factory=list)
    #: Methods left out because a program they need is missing: method -> what to do.
    skipped_methods: dict[str, str] = field(default_factory=dict)
    #: Listed cover photographs not usable here, per package: files missing, files with
    #: other bytes, and the install command (see ``covers.CoverScan.missing_by_package``).
    missing_covers: dict[str, dict] = field(default_factory=dict)

    @property
    def independent_photographs(self) -> int:
        """Distinct listed photographs (``cover_id`` ``photo:...``) that the clean photo crops come from."""
        return len(independent_photograph_ids(self.entries))

    @property
    def errors(self) -> list[FileError]:
        """Every problem: unusable user covers, then failed jobs."""
        return [*self.cover_errors, *self.failed_jobs]

    @property
    def pairs_by_method(self) -> dict[str, int]:
        """Stego files per method whose ``cover_file`` is a clean file of this build in the same container."""
        return cover_stego_pairs(self.entries)

    def counts(self, *field_names: str) -> Counter:
        """Files per value of ``field_names`` (several fields: values joined by ``": "``)."""
        return Counter(": ".join(str(getattr(e, name)) for name in field_names) for e in self.entries)

    def to_json_dict(self) -> dict:
        return {
            "out": self.out,
            "preset": self.preset,
            "seed": self.seed,
            "files": len(self.entries),
            "by_label": dict(self.counts("label")),
            "by_method": dict(Counter(e.method for e in self.entries if e.method)),
            "by_category": dict(self.counts("category")),
            "jobs_total": self.jobs_total,
            "jobs_run": self.jobs_run,
            "jobs_reused": self.jobs_reused,
            "seconds": round(self.seconds, 3),
            "bytes_on_disk": self.bytes_on_disk,
            "errors": [e.model_dump() for e in self.errors],
            "skipped_methods": self.skipped_methods,
            "independent_photographs": self.independent_photographs,
            "missing_covers": self.missing_covers,
            "pairs_by_method": self.pairs_by_method,
        }


def cover_stego_pairs(entries: list[ManifestEntry]) -> dict[str, int]:
    """Exact cover/stego pairs per method: stego entries whose ``cover_file`` names a clean entry of
    ``entries`` with the same cover group, format, mode, width and height."""
    clean = {e.file_path: e for e in entries if e.label == "clean"}
    pairs: Counter = Counter()
    for entry in entries:
        cover = clean.get(entry.cover_file or "") if entry.label == "stego" else None
        if cover is not None and (cover.cover_id, cover.format, cover.mode, cover.width, cover.height) == (
                entry.cover_id, entry.format, entry.mode, entry.width, entry.height):
            pairs[entry.method] += 1
    return dict(sorted(pairs.items()))


def job_rng(seed: int, job: Job, *extra: int) -> np.random.Generator:
    name_code = int.from_bytes(hashlib.sha256(job.name.encode()).digest()[:4], "big")
    return np.random.default_rng([seed, _KIND_CODE[job.kind], name_code, job.index, *extra])


def plan_jobs(preset: Preset, n_user_covers: int) -> list[Job]:
    jobs = [Job("photo", "", i) for i in range(preset.photos)]
    jobs += [Job("jpeg", "", i) for i in range(preset.jpeg_covers)]
    jobs += [Job("user", "", i) for i in range(n_user_covers)]
    jobs += [
        Job("negative", category, i)
        for category in negatives_module.GENERATORS
        for i in range(preset.negatives_per_category)
    ]
    jobs += [Job("stego", key, i) for key, method in METHODS.items() for i in range(preset.stego_count(method))]
    return jobs


# --- clean photo covers -------------------------------------------------------------


@dataclass(frozen=True)
class CoverFile:
    """A clean cover file as it sits in the corpus, and where it descends from."""

    file_path: str
    data: bytes
    cover_id: str
    cover_source: str


def photo_file(ctx: BuildContext, index: int) -> CoverFile:
    """The clean photo crop number ``index`` (deterministic)."""
    job = Job("photo", "", index)
    rng = job_rng(ctx.seed, job)
    sources = ctx.photo_sources or ctx.sources
    source = sources[index % len(sources)]
    size = int(rng.choice(_SIZES, p=_SIZE_WEIGHTS))
    image, _ = photo_crop(source, rng, size)
    fmt, mode = ctx.preset.photo_container(index)
    image = negatives_module.in_container(image, mode, rng)
    data = encode_image(image, fmt, jpeg_quality=JPEG_QUALITIES[int(rng.integers(len(JPEG_QUALITIES)))])
    return CoverFile(f"clean/photo-{index:05d}{FORMAT_EXTENSIONS[fmt]}", data, source.cover_id, source.cover_source)


def cover_candidates(ctx: BuildContext, method: StegoMethod) -> list[CleanRef]:
    """The clean files a stego job of ``method`` may take as its cover.

    Every clean file of the corpus (photo crops, JPEG covers, user covers and
    negatives) that could carry the method, so that the stego files'
    containers are drawn from the same clean files a detector compares them
    with. A photo crop, a JPEG cover or a user cover whose container the
    method cannot keep is left out here, a negative when it is loaded.
    """
    photos = [("photo", "", i) for i in range(ctx.preset.photos) if method.accepts(*ctx.preset.photo_container(i))]
    jpegs = [("jpeg", "", i) for i in range(ctx.preset.jpeg_covers)] if "JPEG" in method.carriers else []
    users = [("user", "", i) for i, cover in enumerate(ctx.user_covers) if cover.format in method.carriers
             or (cover.format == "MPO" and "JPEG" in method.carriers)]
    negatives = [("negative", category, i) for category in negatives_module.GENERATORS for i in range(ctx.preset.negatives_per_category)]
    return photos + jpegs + users + negatives


def jpeg_file(ctx: BuildContext, index: int) -> CoverFile:
    """The clean JPEG cover number ``index``: a photo crop at one of :data:`JPEG_QUALITIES`.

    Grayscale photographs give grayscale JPEGs, and a fifth of the colour ones
    are made grayscale too.
    """
    job = Job("jpeg", "", index)
    rng = job_rng(ctx.seed, job)
    source = ctx.sources[index % len(ctx.sources)]
    size = int(rng.choice(_SIZES, p=_SIZE_WEIGHTS))
    image, _ = photo_crop(source, rng, size)
    if rng.random() < 0.2:
        image = image.convert("L")
    quality = JPEG_QUALITIES[index % len(JPEG_QUALITIES)]
    data = encode_image(image, "JPEG", jpeg_quality=quality)
    return CoverFile(f"clean/jpeg/photo-{index:05d}-q{quality}.jpg", data, source.cover_id, source.cover_source)


def user_file(ctx: BuildContext, index: int) -> CoverFile:
    cover = ctx.user_covers[index]
    data = read_file_bytes(cover.path, ctx.limits)
    name = f"{cover.path.stem}-{cover.sha256[:8]}{cover.extension}"
    return CoverFile(f"clean/user/{name}", data, cover.cover_id, "user")


# --- entries ------------------------------------------------------------------------


def _entry(ctx: BuildContext, file_path: str, data: bytes, **fields: object) -> dict:
    image = decode_image(data, file_path, ctx.limits)
    fields.setdefault("split", split_of(str(fields["cover_id"])))
    entry = ManifestEntry(
        file_path=file_path,
        sha256=hashlib.sha256(data).hexdigest(),
        format=image.format or "UNKNOWN",
        mode=image.mode,
        width=image.width,
        height=image.height,
        **fields,
    )
    return entry.model_dump(mode="json")


def _write(ctx: BuildContext, file_path: str, data: bytes) -> None:
    write_bytes_atomic(ctx.out / file_path, data, durable=False)


_CLEAN_FILES: dict[str, Callable[[BuildContext, int], CoverFile]] = {
    "photo": photo_file,
    "jpeg": jpeg_file,
    "user": user_file,
}


def run_photo(ctx: BuildContext, job: Job) -> list[dict]:
    cover = _CLEAN_FILES[job.kind](ctx, job.index)
    _write(ctx, cover.file_path, cover.data)
    return [
        _entry(ctx, cover.file_path, cover.data, label="clean", method=None, category="photo",
               cover_id=cover.cover_id, cover_source=cover.cover_source)
    ]


def negative_file(ctx: BuildContext, category: str, index: int) -> CoverFile:
    """The clean negative number ``index`` of ``category`` (deterministic)."""
    rng = job_rng(ctx.seed, Job("negative", category, index))
    size = int(rng.choice(_SIZES, p=_SIZE_WEIGHTS))
    if category in negatives_module.SYNTHETIC:
        base = Image.new("RGB", (size, size))
        cover_id, cover_source = f"synthetic:{category}-{index:05d}", "synthetic"
    else:
        source = ctx.sources[int(rng.integers(len(ctx.sources)))]
        base, _ = photo_crop(source, rng, size)
        cover_id, cover_source = source.cover_id, source.cover_source
    negative = negatives_module.GENERATORS[category](rng, base)
    file_path = f"negatives/{category}/{category}-{index:05d}{FORMAT_EXTENSIONS[negative.format]}"
    return CoverFile(file_path, negative.data, cover_id, cover_source)


def run_negative(ctx: BuildContext, job: Job) -> list[dict]:
    negative = negative_file(ctx, job.name, job.index)
    _write(ctx, negative.file_path, negative.data)
    return [
        _entry(ctx, negative.file_path, negative.data, label="clean", method=None, category=job.name,
               constraint=negatives_module.CONSTRAINTS[job.name], cover_id=negative.cover_id, cover_source=negative.cover_source)
    ]


#: A clean file of the corpus, named by the job that makes it: (kind, name, index).
CleanRef = tuple[str, str, int]


def clean_file(ctx: BuildContext, ref: CleanRef) -> CoverFile:
    """The clean file ``ref`` names, made again (deterministic): the same bytes as the corpus holds."""
    kind, name, index = ref
    return negative_file(ctx, name, index) if kind == "negative" else _CLEAN_FILES[kind](ctx, index)


def stego_variant(method: StegoMethod, index: int, preset: Preset | None = None) -> tuple[str | None, str | float]:
    """(bit order, payload variant) for stego job ``index``, cycling evenly.

    The variants are ``preset``'s for the method (default: :data:`PAYLOAD_VARIANTS`). The carrier
    format is not chosen here: the stego file keeps its cover's container.
    """
    orders = BIT_ORDERS if method.ordered else (None,)
    choices = preset.variants_for(method.key) if preset is not None else PAYLOAD_VARIANTS.get(method.key, ("text",))
    # Bit orders alternate job by job, so any even count of jobs holds both equally.
    variants = list(itertools.product(choices, orders))
    variant, order = variants[index % len(variants)]
    return order, variant


def _rate_of(variant: str | float) -> tuple[float | None, bool]:
    """(payload rate or None for text, framed?) of a payload variant."""
    if variant == "text":
        return None, True
    if isinstance(variant, str) and variant.startswith("unframed:"):
        return float(variant.split(":", 1)[1]), False
    return float(variant), True


def _payload_for(rng: np.random.Generator, method: StegoMethod, variant: str | float, carrier: CarrierFile) -> bytes:
    rate, framed = _rate_of(variant)
    if rate is None:
        return text_payload(rng, min(text_length(rng), method.capacity(carrier)))
    if method.category == "dct":
        return random_payload(rng, dct_rate_bytes(rate, luma_nzac(carrier)))
    n_bytes = bytes_for_rate(rate, carrier.image.width, carrier.image.height)
    # Framed payloads must not hold the NUL terminator; unframed ones are any bytes at all.
    return random_payload(rng, n_bytes) if framed else rng.integers(0, 256, n_bytes, dtype=np.uint8).tobytes()


class LabelNotProven(ValueError):
    """A stego file whose label cannot be proven (its payload does not read back, or its change count differs)."""


def _prove(method: StegoMethod, stego: StegoFile, cover: CoverFile, payload: bytes, job: Job, limits: ReadLimits,
           framed: bool = True) -> None:
    """Raise :class:`LabelNotProven` unless the label can be proven: by extraction, by reading the raw bits back
    (unframed), or by change rate for simulators."""
    if method.simulated:
        claimed = (stego.sidecar_extra or {})["simulation"]["changed_coefficients"]
        changed, _ = count_changes(cover.data, stego.data)
        if changed != claimed or changed == 0:
            raise LabelNotProven(f"{method.key}: {changed} coefficients changed, the simulation claims {claimed}")
        return
    carrier = carrier_from_bytes(stego.data, job.id, limits)
    if not framed:
        if method.read_unframed(carrier, len(payload), stego.embedding.bit_order or "lsb-first") != payload:
            raise LabelNotProven(f"{method.key}: embedded bits could not be read back")
        return
    found = method.extract(carrier, bit_order=stego.embedding.bit_order, key=stego.key)
    if not any(x.payload == payload for x in found):
        raise LabelNotProven(f"{method.key}: embedded payload could not be extracted back")


def run_stego(ctx: BuildContext, job: Job) -> list[dict]:
    method = METHODS[job.name]
    rng = job_rng(ctx.seed, job)
    bit_order, variant = stego_variant(method, job.index, ctx.preset)
    key = str(int(rng.integers(1, 2**31))) if method.keyed or method.simulated else None
    is_dct = method.category == "dct"
    candidates = cover_candidates(ctx, method)
    if not candidates:
        raise ValueError(f"no cover in this corpus has a container {method.key} can carry")
    reasons: list[str] = []
    order = rng.permutation(len(candidates))
    if ctx.preset.shared_covers:
        # Job i's own cover first: the i-th cover of the pool, shared by job i of every method.
        own = job.index % len(candidates)
        order = np.concatenate(([own], order[order != own]))
    for pick in order[:MAX_COVER_ATTEMPTS]:
        cover = clean_file(ctx, candidates[int(pick)])
        carrier = carrier_from_bytes(cover.data, cover.file_path, ctx.limits)
        if not method.accepts(carrier.format, carrier.image.mode):
            reasons.append(f"{cover.file_path}: {method.key} cannot keep a {carrier.format} {carrier.image.mode} container")
            continue
        # The stego file keeps its cover's container: same format (and mode, and JPEG tables where the method allows).
        options = EmbedOptions(bit_order=bit_order or "msb-first", carrier=carrier.format, key=key,
                               framed=_rate_of(variant)[1])
        payload = _payload_for(rng, method, variant, carrier)
        if not MIN_PAYLOAD <= len(payload) <= method.capacity(carrier):
            reasons.append(f"{cover.file_path}: {len(payload)} bytes do not fit")
            continue
        try:
            stego = method.embed(carrier, payload, options)
            stego = replace(stego, data=with_framing_of(cover.data, stego.data))
            # outguess, for one, sometimes writes a file it cannot read back: that cover is skipped like one too small.
            _prove(method, stego, cover, payload, job, ctx.limits, options.framed)
        except (EmbedError, LabelNotProven) as exc:
            reasons.append(f"{cover.file_path}: {exc}")
            continue
        break
    else:
        raise ValueError(f"no cover could carry a {method.key} payload; last: {reasons[-1] if reasons else 'none'}")
    framed = options.framed
    file_path = f"stego/{method.key}/{method.key}-{job.index:05d}{stego.extension}"
    extra = (stego.sidecar_extra or {}) | ({} if framed else {"framing": "none", "payload_bytes": len(payload)})
    sidecar = Sidecar(embedding=stego.embedding, clean_file=cover.file_path, key=stego.key, **extra)
    _write(ctx, file_path, stego.data)
    write_text_atomic(ctx.out / (file_path + ".json"), sidecar_text(sidecar), durable=False)
    image = carrier.image
    fields: dict[str, object] = {}
    if is_dct:
        fields["payload_bpnzac"] = round(8 * len(payload) / max(1, luma_nzac(carrier)), 6)
    if ctx.preset.shared_covers:
        fields["cover_file"] = cover.file_path
    return [
        _entry(
            ctx, file_path, stego.data, label="stego", method=method.key, category=method.category,
            cover_id=cover.cover_id, cover_source=cover.cover_source,
            payload_bytes=len(payload),
            payload_bpp=round(8 * len(payload) / (image.width * image.height), 6),
            payload_sha256=None if method.simulated else hashlib.sha256(payload).hexdigest(),
            payload_kind="text" if variant == "text" else ("random" if framed else "unframed"),
            bit_order=stego.embedding.bit_order,
            carrier=stego.format,
            **fields,
        )
    ]


_RUNNERS: dict[str, Callable[[BuildContext, Job], list[dict]]] = {
    "photo": run_photo,
    "jpeg": run_photo,
    "user": run_photo,
    "negative": run_negative,
    "stego": run_stego,
}


def run_job(ctx: BuildContext, job: Job) -> JobResult:
    """Make one job's files; a failure becomes an error on the result, never an exception."""
    try:
        return JobResult(job.id, _RUNNERS[job.kind](ctx, job))
    except Exception as exc:  # one bad job must not stop the batch; the error names it
        return JobResult(job.id, error=f"{type(exc).__name__}: {exc}")


# --- journal ------------------------------------------------------------------------


def _load_journal(out: Path) -> dict[str, list[dict]]:
    """Finished jobs whose files are all still there, byte for byte."""
    path = out / STATE_DIR / JOURNAL
    done: dict[str, list[dict]] = {}
    if not path.exists():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            done[record["job"]] = record["entries"]
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut short by an interruption: that job runs again
    verified = {}
    for job_id, entries in done.items():
        if all(_file_matches(out, e) for e in entries):
            verified[job_id] = entries
    return verified


def _file_matches(out: Path, entry: dict) -> bool:
    path = out / entry["file_path"]
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        return False
    return entry["label"] != "stego" or path.with_name(path.name + ".json").exists()


#: Preset fields added after corpora were built with the others, and their defaults.
_LATER_PRESET_FIELDS = {"methods": None, "cover_split": None, "photo_containers": None, "payload_variants": (),
                        "shared_covers": False}


def _preset_fingerprint(preset: Preset) -> dict:
    """The preset as its plan records it; later fields at their defaults are left out, so a corpus
    built before they existed is still recognized as built with the same settings."""
    data = asdict(preset)
    for name, default in _LATER_PRESET_FIELDS.items():
        if getattr(preset, name) == default:
            del data[name]
    return data


def _plan_fingerprint(preset: Preset, seed: int, user_covers: list[UserCover], sources: tuple[PhotoSource, ...]) -> dict:
    """What the plan file records, in its JSON form (tuples as lists), so it compares equal to the file read back."""
    return json.loads(json.dumps({
        "generator_version": GENERATOR_VERSION,
        "preset": _preset_fingerprint(preset),
        "seed": seed,
        "user_covers": [c.sha256 for c in user_covers],
        # The photographs used and how they were reduced: other covers make other files.
        "cover_files": [f"{s.cover_id} {s.sha256}" for s in sources],
        "cover_reduction": {"long_side": REDUCED_LONG_SIDE, "version": REDUCTION_VERSION},
    }))


ProgressCallback = Callable[[int, int], None]


def build_corpus(
    out: str | Path,
    *,
    preset: str | Preset = "smoke",
    seed: int = 0,
    covers: list[str | Path] | tuple[str | Path, ...] = (),
    workers: int = 1,
    limits: ReadLimits = DEFAULT_LIMITS,
    progress: ProgressCallback | None = None,
) -> BuildReport:
    """Build (or resume, or confirm) a corpus in ``out``.

    Parameters
    ----------
    out : folder of the corpus; created if missing.
    preset : ``smoke``, ``default`` or a :class:`Preset`.
    seed : the seed every file's randomness derives from.
    covers : extra folders of cover images; each file is its own ``cover_id``.
    workers : processes to use (1 runs in this process).
    progress : called with (jobs done, jobs total) as work finishes.

    Returns
    -------
    BuildReport with the manifest entries, counts, time and every error
    (``cover_errors``: unreadable user covers, each naming its file;
    ``failed_jobs``: jobs that made no file, each naming its job).

    Raises
    ------
    CorpusError for an unknown preset; BuildConflict when ``out`` holds a
    corpus built with other settings.
    """
    started = time.perf_counter()
    preset_obj = preset_named(preset) if isinstance(preset, str) else preset
    if preset_obj.cover_split and covers:
        raise CorpusError(f"preset {preset_obj.name!r} draws from the listed photographs of the "
                          f"{preset_obj.cover_split!r} split only; it takes no --covers")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = out / STATE_DIR
    state.mkdir(exist_ok=True)
    listed = listed_sources(builtin_only=preset_obj.covers == "builtin")
    sources = listed.sources
    if preset_obj.cover_split:
        # The other split's photographs never reach this build (training never sees monitor covers).
        sources = tuple(s for s in sources if split_of(s.cover_id) == preset_obj.cover_split)
    if not sources:
        raise CorpusError("no listed photographs found: are scikit-image, scikit-learn and matplotlib installed?")
    user_covers, unusable = scan_user_covers([Path(c) for c in covers], limits)
    cover_errors = [FileError(path=p, reason=r) for p, r in unusable]
    failed_jobs: list[FileError] = []

    fingerprint = _plan_fingerprint(preset_obj, seed, user_covers, sources)
    plan_path = state / PLAN
    if plan_path.exists():
        previous = json.loads(plan_path.read_text(encoding="utf-8"))
        if previous != fingerprint:
            raise BuildConflict(
                f"{out} holds a corpus built with other settings (preset, seed, covers or cover photographs); "
                "build into an empty folder"
            )
    else:
        write_text_atomic(plan_path, json.dumps(fingerprint, indent=2, sort_keys=True) + "\n")

    jobs = plan_jobs(preset_obj, len(user_covers))
    done = _load_journal(out)
    skipped = {
        key: f"{', '.join(method.missing_tools())} not installed; install with: {method.install_hint}"
        for key, method in METHODS.items()
        if method.missing_tools()
    }
    todo = [job for job in jobs if job.id not in done and not (job.kind == "stego" and job.name in skipped)]
    reused = sum(1 for job in jobs if job.id in done)
    # Each photograph is reduced once per build and crops read a memory map of it. The reduced
    # pixels (about 450 MB for the default covers) stay while jobs run, so a resumed build reuses
    # them, and go when the build ends.
    cover_cache = state / COVER_CACHE
    photo_sources: tuple[PhotoSource, ...] = ()
    if todo:
        sources = prepare_sources(sources, cover_cache, workers=workers)
        if preset_obj.colour_photos_only:
            photo_sources = tuple(s for s in sources if source_pixels(s).ndim == 3)
            if not photo_sources:
                raise CorpusError(f"preset {preset_obj.name!r} crops colour photographs and none is present")
    ctx = BuildContext(seed=seed, preset=preset_obj, sources=sources, user_covers=tuple(user_covers), out=out, limits=limits,
                       photo_sources=photo_sources)
    finished = len(jobs) - len(todo)  # skipped jobs count as settled for the progress bar
    if progress:
        progress(finished, len(jobs))
    if todo:
        with (state / JOURNAL).open("a", encoding="utf-8") as journal:
            for results in map_unordered(functools.partial(run_job, ctx), todo, workers=workers):
                for result in results:
                    if result.error:
                        failed_jobs.append(FileError(path=result.job_id, reason=result.error))
                    else:
                        done[result.job_id] = result.entries
                        journal.write(json.dumps({"job": result.job_id, "entries": result.entries}, sort_keys=True) + "\n")
                journal.flush()
                finished += len(results)
                if progress:
                    progress(finished, len(jobs))
    shutil.rmtree(cover_cache, ignore_errors=True)

    entries = [ManifestEntry.model_validate(e) for job in jobs for e in done.get(job.id, [])]
    check_cover_split(entries, preset_obj)
    _write_manifest_if_changed(out, entries)
    size = sum((out / e.file_path).stat().st_size for e in entries)
    return BuildReport(
        out=str(out), preset=preset_obj.name, seed=seed, entries=sorted(entries, key=lambda e: e.file_path),
        jobs_total=len(jobs), jobs_run=len(todo), jobs_reused=reused,
        seconds=time.perf_counter() - started, bytes_on_disk=size, cover_errors=cover_errors, failed_jobs=failed_jobs,
        skipped_methods=skipped, missing_covers=listed.missing_by_package(),
    )


#: Where ``preset_corpus`` keeps the corpus of each preset.
PRESET_CORPUS_ROOT = Path("build")


def preset_corpus(
    preset: str,
    *,
    seed: int = 0,
    workers: int = 1,
    progress: ProgressCallback | None = None,
    root: str | Path = PRESET_CORPUS_ROOT,
) -> Path:
    """Build (or reuse) the corpus of ``preset`` in ``root/<preset>-corpus`` and return its folder.

    The seed defaults to 0, the seed the shipped models were trained on, so
    ``stegwatch train --preset default`` reproduces them whatever seed the
    training itself is given.
    """
    folder = Path(root) / f"{preset}-corpus"
    report = build_corpus(folder, preset=preset, seed=seed, workers=workers, progress=progress)
    for failure in report.failed_jobs:
        log.warning("corpus %s: job %s made no file: %s", folder, failure.path, failure.reason)
    return folder


def check_cover_split(entries: list[ManifestEntry], preset: Preset) -> None:
    """Raise :class:`CorpusError` (before any manifest is written) if a file of a build restricted to
    one split (``preset.cover_split``) descends from a cover group of another split."""
    if not preset.cover_split:
        return
    strays = [e.file_path for e in entries
              if split_of(e.cover_id) != preset.cover_split or (e.split or preset.cover_split) != preset.cover_split]
    if strays:
        raise CorpusError(f"preset {preset.name!r} takes covers of the {preset.cover_split!r} split only, but "
                          f"{len(strays)} files descend from other covers: {', '.join(strays[:5])}")


def _write_manifest_if_changed(out: Path, entries: list[ManifestEntry]) -> None:
    path = out / MANIFEST_NAME
    new_text = "".join(e.to_json_line() + "\n" for e in sorted(entries, key=lambda e: e.file_path))
    if path.exists() and path.read_text(encoding="utf-8") == new_text:
        return
    write_manifest(out, entries)


__all__ = ["LEARNED_METHODS", "PRESETS", "PRESET_CORPUS_ROOT", "BuildConflict", "BuildReport", "Preset", "build_corpus",
           "check_cover_split", "cover_stego_pairs", "preset_corpus", "preset_named"]
