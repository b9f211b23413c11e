"""Negatives: clean images chosen to look suspicious, so a detector learns what steganography is not.

One generator per category. Each takes a random generator and a photo crop
(RGB or L; categories that are synthetic by nature ignore it) and returns the
encoded file. Categories and the rule each one teaches are in
:data:`CONSTRAINTS`.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import piexif
from PIL import Image, ImageDraw, ImageFilter, features
from PIL.PngImagePlugin import PngInfo

from stegwatch.corpus import _lookalike_parts as parts
from stegwatch.corpus._lookalike_parts import pick
from stegwatch.stego.base import encode_image, to_palette
from stegwatch.stego.exif import user_comment_exif

CONSTRAINTS: dict[str, str] = {
    "rgb_no_alpha": "RGB images cannot have alpha steganography",
    "uniform_alpha": "A constant alpha channel (0, 128 or 255) carries no message",
    "natural_noise": "Sensor noise and JPEG round-trip artefacts are not embedding noise",
    "patterns": "Geometric patterns, gradients and textures are structure, not a payload",
    "special_cases": "Tiny, grayscale, palette and single-colour images are ordinary clean files",
    "dithered_gif": "Dithering from palette reduction is not palette-index embedding",
    "noise_lsb": "Natural variation in the least significant bits is not LSB embedding",
    "repetitive_hex": "Repetitive visible patterns are not an encoded message",
    "camera_exif": "Ordinary camera EXIF, a blank UserComment included, is not an exif payload",
    "natural_alpha": "Soft and anti-aliased alpha masks vary naturally in their least significant bits",
    "jpeg_trailer": "A complete second JPEG after FFD9 (multi-picture, motion photo) is not an eoi payload",
    "metadata_text": "Camera, editor and user metadata text (EXIF, COM, XMP, GPS, PNG text chunks) is not an exif payload",
    "trailer_lookalike": "Motion-photo video, vendor blocks, padding and exporter leftovers after the end of an image, "
    "and GIF comments, are not an eoi payload",
    "pipeline_alpha": "Alpha from cut-outs, premultiplication and compositing varies in its least significant bits "
    "without carrying a message",
    "quantized_palette": "Palettes from real quantizers, dithered or reordered so index LSBs look random, are not "
    "palette embedding",
}

#: Categories whose images are generated without a photograph.
SYNTHETIC = frozenset({"patterns"})


@dataclass(frozen=True)
class Negative:
    data: bytes
    format: str
    variant: str


Generator = Callable[[np.random.Generator, Image.Image], Negative]


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def _add_noise(pixels: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    noisy = pixels.astype(np.float32) + rng.normal(0.0, sigma, size=pixels.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def rgb_no_alpha(rng: np.random.Generator, base: Image.Image) -> Negative:
    return Negative(encode_image(_rgb(base), "PNG"), "PNG", "rgb")


def uniform_alpha(rng: np.random.Generator, base: Image.Image) -> Negative:
    level = int(rng.choice([0, 128, 255]))
    rgba = _rgb(base).convert("RGBA")
    rgba.putalpha(level)
    return Negative(encode_image(rgba, "PNG"), "PNG", f"alpha={level}")


def natural_noise(rng: np.random.Generator, base: Image.Image) -> Negative:
    sigma = float(rng.uniform(1.0, 6.0))
    noisy = Image.fromarray(_add_noise(np.asarray(base), rng, sigma), base.mode)
    rounds = int(rng.integers(1, 4))
    for _ in range(rounds):
        quality = int(rng.integers(60, 96))
        noisy = Image.open(io.BytesIO(encode_image(noisy, "JPEG", jpeg_quality=quality)))
        noisy.load()
    if rng.random() < 0.5:
        return Negative(encode_image(noisy, "JPEG", jpeg_quality=int(rng.integers(75, 96))), "JPEG", f"sigma={sigma:.1f},jpeg")
    return Negative(encode_image(noisy, "PNG"), "PNG", f"sigma={sigma:.1f},png-after-{rounds}-jpeg")


def patterns(rng: np.random.Generator, base: Image.Image) -> Negative:
    size = base.width
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    kind = str(rng.choice(["gradient", "radial", "checker", "stripes", "waves", "shapes"]))
    colours = rng.integers(0, 256, size=(2, 3)).astype(np.float32)
    if kind == "gradient":
        angle = rng.uniform(0, np.pi)
        t = (np.cos(angle) * x + np.sin(angle) * y)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif kind == "radial":
        cx, cy = rng.uniform(0.2, 0.8, size=2)
        t = np.clip(np.hypot(x - cx, y - cy) * 1.5, 0, 1)
    elif kind == "checker":
        period = int(rng.integers(2, 33))
        t = ((np.arange(size)[:, None] // period + np.arange(size)[None, :] // period) % 2).astype(np.float32)
    elif kind == "stripes":
        period = int(rng.integers(2, 25))
        t = ((np.arange(size)[None, :] // period) % 2 * np.ones((size, 1))).astype(np.float32)
    elif kind == "waves":
        t = np.zeros((size, size), np.float32)
        for _ in range(3):
            fx, fy = rng.uniform(1, 20, size=2)
            t += np.sin(2 * np.pi * (fx * x + fy * y) + rng.uniform(0, 2 * np.pi))
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    else:
        canvas = Image.new("RGB", (size, size), tuple(int(c) for c in colours[0]))
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(3, 12))):
            box = sorted(rng.integers(0, size, 2).tolist()) + sorted(rng.integers(0, size, 2).tolist())
            fill = tuple(int(c) for c in rng.integers(0, 256, 3))
            shape = (box[0], box[2], box[1], box[3])
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(shape, fill=fill)
        return Negative(encode_image(canvas, "PNG"), "PNG", kind)
    pixels = colours[0] + t[..., None] * (colours[1] - colours[0])
    return Negative(encode_image(Image.fromarray(np.rint(pixels).astype(np.uint8), "RGB"), "PNG"), "PNG", kind)


def special_cases(rng: np.random.Generator, base: Image.Image) -> Negative:
    kind = str(rng.choice(["tiny", "grayscale", "palette", "single_colour"]))
    if kind == "tiny":
        side = int(rng.integers(1, 17))
        image = _rgb(base).resize((side, side), Image.Resampling.BOX)
    elif kind == "grayscale":
        image = base.convert("L")
    elif kind == "palette":
        image = to_palette(base, dither=bool(rng.random() < 0.5))
    else:
        side = int(rng.choice([1, 8, 64, 256]))
        image = Image.new("RGB", (side, side), tuple(int(c) for c in rng.integers(0, 256, 3)))
    return Negative(encode_image(image, "PNG"), "PNG", kind)


def dithered_gif(rng: np.random.Generator, base: Image.Image) -> Negative:
    colours = int(rng.choice([256, 64, 16]))
    image = _rgb(base).quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    return Negative(encode_image(image, "GIF"), "GIF", f"colours={colours}")


def noise_lsb(rng: np.random.Generator, base: Image.Image) -> Negative:
    # Strong sensor-like noise (sigma 2-4 grey levels) leaves the LSB plane close to random.
    sigma = float(rng.uniform(2.0, 4.0))
    image = Image.fromarray(_add_noise(np.asarray(base), rng, sigma), base.mode)
    return Negative(encode_image(image, "PNG"), "PNG", f"sigma={sigma:.1f}")


def repetitive_hex(rng: np.random.Generator, base: Image.Image) -> Negative:
    size = base.width
    rgb = np.asarray(_rgb(base))
    if rng.random() < 0.5:
        tile = int(rng.integers(4, 33))
        top, left = (int(v) for v in rng.integers(0, size - tile + 1, 2))
        patch = rgb[top : top + tile, left : left + tile]
        variant = f"photo-tile-{tile}"
    else:
        word = rng.choice([b"\xde\xad\xbe\xef", b"\xca\xfe\xba\xbe", b"\x00\xff", b"\x55\xaa\x55", b"0123456789abcdef"])
        width = int(rng.integers(2, 17))
        flat = np.resize(np.frombuffer(bytes(word), np.uint8), width * width * 3)
        patch = flat.reshape(width, width, 3)
        variant = f"bytes-{bytes(word).hex()}"
    reps = (size // patch.shape[0] + 1, size // patch.shape[1] + 1, 1)
    tiled = np.tile(patch, reps)[:size, :size]
    return Negative(encode_image(Image.fromarray(np.ascontiguousarray(tiled), "RGB"), "PNG"), "PNG", variant)


def _camera_tags(rng: np.random.Generator, make: bytes, model: bytes, software: bytes) -> tuple[dict, dict]:
    """IFD0 and Exif IFD tags a camera writes: make, model, dates, exposure."""
    day = f"2024:{int(rng.integers(1, 13)):02d}:{int(rng.integers(1, 29)):02d} {int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}:{int(rng.integers(0, 60)):02d}"
    ifd0 = {piexif.ImageIFD.Make: make, piexif.ImageIFD.Model: model, piexif.ImageIFD.Software: software, piexif.ImageIFD.DateTime: day.encode()}
    exif = {
        piexif.ExifIFD.DateTimeOriginal: day.encode(),
        piexif.ExifIFD.ExposureTime: (1, int(rng.choice([30, 60, 125, 250, 1000]))),
        piexif.ExifIFD.FNumber: (int(rng.choice([18, 28, 40, 56, 80])), 10),
        piexif.ExifIFD.ISOSpeedRatings: int(rng.choice([100, 200, 400, 800, 3200])),
        piexif.ExifIFD.FocalLength: (int(rng.integers(18, 200)), 1),
    }
    return ifd0, exif


def camera_exif(rng: np.random.Generator, base: Image.Image) -> Negative:
    make, model, software = pick(rng, parts.CAMERAS)
    # What cameras really write: a character-code header then blanks (spaces or NULs).
    header = [b"ASCII\x00\x00\x00", b"UNICODE\x00", b"\x00" * 8][int(rng.integers(3))]
    blank = (b" " if rng.random() < 0.5 else b"\x00")
    if header.startswith(b"UNICODE"):
        blank = b"\x00" + blank  # UTF-16, big-endian like the rest of piexif's EXIF
    comment = header + blank * int(rng.choice([0, 16, 64, 256]))
    ifd0, exif_ifd = _camera_tags(rng, make, model, software)
    exif = user_comment_exif(comment, extra_ifd0=ifd0, extra_exif=exif_ifd)
    data = encode_image(base, "JPEG", jpeg_quality=int(rng.integers(85, 97)), exif=exif)
    return Negative(data, "JPEG", model.decode())


def natural_alpha(rng: np.random.Generator, base: Image.Image) -> Negative:
    size = base.width
    kind = str(rng.choice(["blurred_shape", "antialiased_shape", "vignette", "fade"]))
    if kind in ("blurred_shape", "antialiased_shape"):
        scale = 4 if kind == "antialiased_shape" else 1
        mask = Image.new("L", (size * scale, size * scale), 0)
        draw = ImageDraw.Draw(mask)
        x0, y0 = (int(v) for v in rng.integers(0, size * scale // 3, 2))
        x1, y1 = (int(v) for v in rng.integers(2 * size * scale // 3, size * scale, 2))
        (draw.ellipse if rng.random() < 0.5 else draw.rounded_rectangle)((x0, y0, x1, y1), fill=255)
        if kind == "antialiased_shape":
            mask = mask.resize((size, size), Image.Resampling.LANCZOS)
        else:
            mask = mask.filter(ImageFilter.GaussianBlur(float(rng.uniform(2, 12))))
    else:
        y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
        t = np.hypot(x - 0.5, y - 0.5) * 2 if kind == "vignette" else x
        mask = Image.fromarray(np.rint(255 * np.clip(1 - t, 0, 1)).astype(np.uint8), "L")
    rgba = _rgb(base).convert("RGBA")
    rgba.putalpha(mask)
    return Negative(encode_image(rgba, "PNG"), "PNG", kind)


def jpeg_trailer(rng: np.random.Generator, base: Image.Image) -> Negative:
    primary = encode_image(base, "JPEG", jpeg_quality=int(rng.integers(80, 96)))
    kind = str(rng.choice(["thumbnail", "motion_frame"]))
    if kind == "thumbnail":
        second = base.resize((max(1, base.width // 4), max(1, base.height // 4)), Image.Resampling.LANCZOS)
    else:
        second = Image.fromarray(_add_noise(np.asarray(base), rng, 1.5), base.mode)
    return Negative(primary + encode_image(second, "JPEG", jpeg_quality=80), "JPEG", kind)


# --- Look-alikes a real scanner meets (issue 14) -------------------------------------------------

#: What a ``metadata_text`` file can carry; each file has one or more.
METADATA_KINDS = ("camera_description", "camera_user_comment", "xp_comment", "software_comment", "caption", "xmp", "gps")


@dataclass
class _Metadata:
    """Metadata to write into one file, whatever its format."""

    ifd0: dict = field(default_factory=dict)
    exif: dict = field(default_factory=dict)
    gps: dict = field(default_factory=dict)
    comment: bytes | None = None  # JPEG COM segment; PNG tEXt Comment
    texts: list[tuple[str, str]] = field(default_factory=list)  # PNG text chunks (key, value)
    xmp: bytes | None = None
    places: list[str] = field(default_factory=list)  # where each kind went, for the variant name

    def exif_bytes(self) -> bytes | None:
        if not (self.ifd0 or self.exif or self.gps):
            return None
        return piexif.dump({"0th": self.ifd0, "Exif": self.exif, "GPS": self.gps})


def _add_camera(meta: _Metadata, rng: np.random.Generator) -> None:
    if piexif.ImageIFD.Make not in meta.ifd0:
        ifd0, exif = _camera_tags(rng, *pick(rng, parts.CAMERAS))
        meta.ifd0.update(ifd0)
        meta.exif.update(exif)


def _user_comment(rng: np.random.Generator, text: str) -> bytes:
    """A UserComment as cameras and apps write it: a character-code header, the text, sometimes blank padding."""
    unicode = rng.random() < 0.4 or not text.isascii()
    header, body = (b"UNICODE\x00", text.encode("utf-16-be")) if unicode else (b"ASCII\x00\x00\x00", text.encode("ascii"))
    pad = int(rng.choice([0, 0, 1, 8, 24]))
    unit = b" " if rng.random() < 0.5 else b"\x00"
    if unicode:
        unit = b"\x00" + unit
    return header + body + unit * pad


def _xp(text: str) -> bytes:
    """Windows XP* tags: UTF-16LE with a terminating NUL."""
    return text.encode("utf-16-le") + b"\x00\x00"


def _plan_metadata(rng: np.random.Generator, kind: str, fmt: str, meta: _Metadata, quality: int) -> None:
    if kind == "camera_description":
        _add_camera(meta, rng)
        text = pick(rng, parts.CAMERA_DESCRIPTIONS)
        if rng.random() < 0.5:  # Olympus, Sony and others pad to a fixed width
            text = text.ljust(32)
        meta.ifd0[piexif.ImageIFD.ImageDescription] = text.encode()
        meta.places.append(kind)
    elif kind == "camera_user_comment":
        _add_camera(meta, rng)
        text = pick(rng, parts.CAMERA_USER_COMMENTS)
        meta.exif[piexif.ExifIFD.UserComment] = _user_comment(rng, text)
        meta.places.append(kind)
    elif kind == "xp_comment":
        text = parts.caption(rng) if rng.random() < 0.5 else pick(rng, parts.SOFTWARE)
        meta.ifd0[piexif.ImageIFD.XPComment] = _xp(text)
        if rng.random() < 0.4:
            meta.ifd0[piexif.ImageIFD.XPKeywords] = _xp(parts.caption(rng)[:40])
        meta.places.append(kind)
    elif kind == "software_comment":
        comment = pick(rng, parts.editor_comments(quality))
        software = pick(rng, parts.SOFTWARE)
        if fmt == "JPEG":
            meta.comment = comment
            if rng.random() < 0.5:
                meta.ifd0[piexif.ImageIFD.Software] = software.encode()
            meta.places.append("software_comment@COM")
        else:
            meta.texts.append(("Software", software))
            if rng.random() < 0.6:
                meta.texts.append(("Comment", comment.rstrip(b"\x00").decode("latin-1")))
            if rng.random() < 0.3:
                meta.texts.append(("Creation Time", parts.exif_datetime(rng)))
            meta.places.append("software_comment@tEXt")
    elif kind == "caption":
        text = parts.caption(rng)
        # Only a place no other kind has filled, so the variant name says what the file holds.
        free = {
            "ImageDescription": piexif.ImageIFD.ImageDescription not in meta.ifd0,
            "UserComment": piexif.ExifIFD.UserComment not in meta.exif,
            "XPTitle": True,
            "COM" if fmt == "JPEG" else "iTXt": meta.comment is None,
        }
        where = pick(rng, [place for place, ok in free.items() if ok])
        if where == "ImageDescription":
            meta.ifd0[piexif.ImageIFD.ImageDescription] = text.encode()  # phones write UTF-8 here
        elif where == "UserComment":
            meta.exif[piexif.ExifIFD.UserComment] = _user_comment(rng, text)
        elif where == "XPTitle":
            meta.ifd0[piexif.ImageIFD.XPTitle] = _xp(text)
        elif where == "COM":
            meta.comment = text.encode()
        else:
            meta.texts.append((pick(rng, ("Description", "Title", "Comment")), text))
        meta.places.append(f"caption@{where}")
    elif kind == "xmp":
        meta.xmp = parts.xmp_packet(rng, title=parts.caption(rng) if rng.random() < 0.6 else None)
        meta.places.append(kind)
    elif kind == "gps":
        _add_camera(meta, rng)
        meta.gps.update(parts.gps_ifd(rng))
        meta.places.append(kind)


def in_container(image: Image.Image, mode: str, rng: np.random.Generator) -> Image.Image:
    """A photo crop in ``mode`` as ordinary software makes it.

    RGBA: opaque, or with a soft (feathered) mask as cut-outs and vignettes
    have; P: a full 256-entry palette from median cut, dithered or not. A
    grayscale crop stays grayscale in the RGB containers.
    """
    if mode == "RGBA":
        rgba = image.convert("RGBA")
        if rng.random() < 0.5:
            return rgba
        height, width = rgba.height, rgba.width
        y, x = np.mgrid[0:height, 0:width]
        cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
        radius = rng.uniform(0.35, 0.7) * min(height, width)
        distance = np.hypot((y - cy) / radius, (x - cx) / radius)
        alpha = np.clip((1.3 - distance) / 0.6, 0.0, 1.0)
        rgba.putalpha(Image.fromarray(np.rint(255 * alpha).astype(np.uint8), "L"))
        return rgba
    if mode == "P":
        return to_palette(image, dither=bool(rng.random() < 0.5))
    return image


#: Containers (format, mode) of ``metadata_text`` files and their weights: about those of the files an ``exif``
#: payload is written into (photo crops in PNG keep their mode, opaque or cut-out RGBA and palettes included; JPEG
#: covers), so that no container tells metadata text from a payload (without it, every RGBA or palette PNG with a
#: UserComment was stego, and V4 leaned on the ``format`` stream to find ``exif``).
METADATA_CONTAINERS = (("PNG", "RGB"), ("PNG", "RGBA"), ("PNG", "P"), ("JPEG", "RGB"))
METADATA_CONTAINER_WEIGHTS = (0.40, 0.20, 0.08, 0.32)


def metadata_text(rng: np.random.Generator, base: Image.Image) -> Negative:
    """Camera strings, editor comments, user captions, XMP and GPS: metadata text that is not a payload.

    JPEG (EXIF in APP1, COM, XMP in APP1) or PNG (``eXIf``, ``tEXt``/``iTXt``,
    XMP in ``iTXt XML:com.adobe.xmp``), in the containers of
    :data:`METADATA_CONTAINERS`. Each file has one kind of
    :data:`METADATA_KINDS`, sometimes more.
    """
    fmt, mode = METADATA_CONTAINERS[int(rng.choice(len(METADATA_CONTAINERS), p=METADATA_CONTAINER_WEIGHTS))]
    base = in_container(base, mode, rng)
    quality = int(rng.integers(75, 97))
    first = int(rng.integers(len(METADATA_KINDS)))
    kinds = [k for i, k in enumerate(METADATA_KINDS) if i == first or rng.random() < 0.2]
    meta = _Metadata()
    for kind in kinds:
        _plan_metadata(rng, kind, fmt, meta, quality)
    params: dict[str, object] = {}
    exif = meta.exif_bytes()
    if exif:
        params["exif"] = exif
    if fmt == "JPEG":
        if meta.comment is not None:
            params["comment"] = meta.comment
        if meta.xmp is not None:
            params["xmp"] = meta.xmp
        data = encode_image(base, "JPEG", jpeg_quality=quality, **params)
    else:
        info = PngInfo()
        for key, value in meta.texts:
            if value.isascii() and rng.random() < 0.7:
                info.add_text(key, value)
            else:
                info.add_itxt(key, value, lang="", tkey="")
        if meta.xmp is not None:
            info.add_itxt("XML:com.adobe.xmp", meta.xmp.decode("utf-8"))
        data = encode_image(base, "PNG", pnginfo=info, **params)
    return Negative(data, fmt, f"{fmt.lower()}:{'+'.join(meta.places)}")


#: What a ``trailer_lookalike`` file carries after (or, for GIF comments, inside) its image.
TRAILER_KINDS = ("motion_photo_google", "motion_photo_samsung", "samsung_sef", "zero_padding", "ff_padding",
                 "png_duplicate_iend", "png_stray_zeros", "png_truncated_second", "gif_comment")


def _gif(rng: np.random.Generator, base: Image.Image, **params: object) -> bytes:
    colours = int(rng.choice([64, 128, 256]))
    method = Image.Quantize.FASTOCTREE if rng.random() < 0.5 else Image.Quantize.MEDIANCUT
    return encode_image(_rgb(base).quantize(colors=colours, method=method), "GIF", **params)


#: Modes of the PNG look-alikes with a trailer and their weights: those of the PNG photo crops (stego covers too).
PNG_MODES = ("RGB", "RGBA", "P")
PNG_MODE_WEIGHTS = (0.59, 0.24, 0.17)


def _png_container(rng: np.random.Generator, base: Image.Image) -> Image.Image:
    """``base`` in a PNG mode drawn as the PNG photo crops' (an ``eoi`` payload also goes after RGBA and palette PNGs)."""
    return in_container(base, PNG_MODES[int(rng.choice(len(PNG_MODES), p=PNG_MODE_WEIGHTS))], rng)


def _padding_length(rng: np.random.Generator, size: int) -> int:
    """Sector or alignment padding: to a 512-4096 byte boundary, a few bytes, or a block of 1-8 KB."""
    mode = int(rng.integers(3))
    if mode == 0:
        block = int(rng.choice([512, 2048, 4096]))
        return (-size) % block or block
    if mode == 1:
        return int(rng.integers(1, 64))
    return int(rng.integers(1024, 8193))


def trailer_lookalike(rng: np.random.Generator, base: Image.Image) -> Negative:
    """Bytes after the end of the image that are not a payload, and GIF comment extensions.

    Motion photos (Google: an MP4 after ``FFD9`` named in the XMP; Samsung: the
    MP4 inside an ``SEFH``/``SEFT`` trailer), Samsung's metadata-only trailer,
    zero or ``0xFF`` padding (JPEG, PNG, GIF), PNG data after ``IEND`` from
    broken exporters, and GIFs with a comment extension (``21 FE``).
    """
    kind = pick(rng, TRAILER_KINDS)
    quality = int(rng.integers(75, 97))
    if kind == "motion_photo_google":
        video = parts.mp4_video(rng, parts.video_length(rng))
        image = encode_image(base, "JPEG", jpeg_quality=quality, xmp=parts.motion_photo_xmp(rng, len(video)))
        return Negative(image + video, "JPEG", f"{kind}:mp4={len(video)}")
    if kind in ("motion_photo_samsung", "samsung_sef"):
        names = [n for n in parts.SEF_BLOCKS if n not in ("MotionPhoto_Data", "MotionPhoto_Version") and rng.random() < 0.5]
        video = None
        if kind == "motion_photo_samsung":
            video = parts.mp4_video(rng, parts.video_length(rng))
            names = ["MotionPhoto_Data", "MotionPhoto_Version", *names]
        names = names or ["Image_UTC_Data"]
        trailer = parts.samsung_sef(rng, names, video)
        return Negative(encode_image(base, "JPEG", jpeg_quality=quality) + trailer, "JPEG", f"{kind}:{'+'.join(names)}")
    if kind in ("zero_padding", "ff_padding"):
        fmt = pick(rng, ("JPEG", "PNG", "GIF"))
        base = _png_container(rng, base) if fmt == "PNG" else base
        image = _gif(rng, base) if fmt == "GIF" else encode_image(base, fmt, jpeg_quality=quality)
        n = _padding_length(rng, len(image))
        return Negative(image + (b"\x00" if kind == "zero_padding" else b"\xff") * n, fmt, f"{kind}:{fmt.lower()}:{n}")
    if kind.startswith("png_"):
        base = _png_container(rng, base)
        image = encode_image(base, "PNG")
        if kind == "png_duplicate_iend":
            extra = parts.IEND * int(rng.integers(1, 3))
        elif kind == "png_stray_zeros":
            extra = b"\x00" * int(rng.integers(1, 17))
        else:
            factor = int(rng.choice([2, 4, 8]))
            second = encode_image(base.resize((max(1, base.width // factor), max(1, base.height // factor))), "PNG")
            extra = second[: int(rng.integers(33, max(34, len(second) - 12)))]  # at least signature and IHDR
        return Negative(image + extra, "PNG", f"{kind}:{len(extra)}")
    source = pick(rng, ("editor", "caption", "software"))
    if source == "editor":
        text = pick(rng, parts.editor_comments(quality)).rstrip(b"\x00")
    else:
        text = (parts.caption(rng) if source == "caption" else pick(rng, parts.SOFTWARE)).encode()
    return Negative(_gif(rng, base, comment=text), "GIF", f"{kind}:{len(text)}")


#: The alpha pipelines ``pipeline_alpha`` imitates.
ALPHA_KINDS = ("cutout_supersampled", "cutout_feathered", "premultiplied", "composited")


def _shape_mask(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A hard-edged cut-out mask (L, 0 or 255): ellipses, rounded rectangles and polygons, perhaps with a hole."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    first_centre, first_radii = rng.uniform(0.3, 0.7, 2) * size, rng.uniform(0.2, 0.45, 2) * size
    for i in range(int(rng.integers(1, 4))):
        if i == 0:
            fill, (cx, cy), (rx, ry) = 255, first_centre, first_radii
        elif rng.random() < 0.25:  # a hole, inside the first shape
            fill, (cx, cy), (rx, ry) = 0, first_centre + rng.uniform(-0.3, 0.3, 2) * first_radii, rng.uniform(0.1, 0.4, 2) * first_radii
        else:
            fill, (cx, cy), (rx, ry) = 255, rng.uniform(0.25, 0.75, 2) * size, rng.uniform(0.1, 0.45, 2) * size
        shape = int(rng.integers(3))
        if shape == 0:
            draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill)
        elif shape == 1:
            draw.rounded_rectangle((cx - rx, cy - ry, cx + rx, cy + ry), radius=float(min(rx, ry) * rng.uniform(0, 0.9)), fill=fill)
        else:
            n = int(rng.integers(5, 13))
            angles = np.sort(rng.uniform(0, 2 * np.pi, n))
            radii = rng.uniform(0.5, 1.0, n)
            draw.polygon([(float(cx + rx * r * np.cos(a)), float(cy + ry * r * np.sin(a))) for a, r in zip(angles, radii)], fill=fill)
    return mask


def _soft_mask(rng: np.random.Generator, size: tuple[int, int], how: str) -> tuple[Image.Image, str]:
    """A cut-out mask of ``size``: anti-aliased (``supersampled``: drawn at 4x, downsampled) or ``feathered`` (blurred)."""
    if how == "supersampled":
        resample = pick(rng, (Image.Resampling.BOX, Image.Resampling.BILINEAR, Image.Resampling.LANCZOS))
        return _shape_mask(rng, (4 * size[0], 4 * size[1])).resize(size, resample), f"4x-{resample.name.lower()}"
    radius = float(rng.uniform(0.8, 8.0))
    return _shape_mask(rng, size).filter(ImageFilter.GaussianBlur(radius)), f"feather-{radius:.1f}"


def _any_soft_mask(rng: np.random.Generator, size: tuple[int, int]) -> tuple[Image.Image, str]:
    return _soft_mask(rng, size, "supersampled" if rng.random() < 0.5 else "feathered")


def _shifted(image: Image.Image, dx: int, dy: int) -> Image.Image:
    return image.transform(image.size, Image.Transform.AFFINE, (1, 0, -dx, 0, 1, -dy))


def pipeline_alpha(rng: np.random.Generator, base: Image.Image) -> Negative:
    """RGBA PNGs whose alpha comes from real pipelines, with the photo crop as the colour.

    Anti-aliased cut-outs (drawn at 4x and downsampled), feathered cut-outs,
    premultiplied-then-unpremultiplied colour (whose LSBs change where alpha
    < 255, with the alpha sometimes re-quantized to 4-6 bits), and layers
    composited with rounding (drop shadows, semi-transparent overlays, grainy
    brushes).
    """
    size = base.size
    rgb = _rgb(base)
    kind = pick(rng, ALPHA_KINDS)
    if kind.startswith("cutout_"):
        mask, how = _soft_mask(rng, size, kind.removeprefix("cutout_"))
        rgba = rgb.convert("RGBA")
        rgba.putalpha(mask)
        variant = f"{kind}:{how}"
    elif kind == "premultiplied":
        mask, how = _any_soft_mask(rng, size)
        alpha = np.asarray(mask).astype(np.int32)
        variant = f"{kind}:{how}"
        if rng.random() < 0.4:  # stored through a 4-6 bit alpha (RGBA4444 textures, some codecs)
            bits = int(rng.integers(4, 7))
            levels = (1 << bits) - 1
            alpha = np.rint(np.rint(alpha * levels / 255) * 255 / levels).astype(np.int32)
            variant += f",alpha-bits={bits}"
        a = alpha[..., None]
        premultiplied = (np.asarray(rgb).astype(np.int32) * a + 127) // 255
        restored = np.where(a > 0, np.minimum(255, (premultiplied * 255 + a // 2) // np.maximum(a, 1)), 0)
        rgba = Image.fromarray(np.concatenate([restored, a], axis=2).astype(np.uint8), "RGBA")
    else:
        mask, how = _any_soft_mask(rng, size)
        style = pick(rng, ("drop_shadow", "overlay", "grain"))
        if style == "drop_shadow":
            reach = min(size) // 16
            dx, dy = (int(v) for v in rng.integers(-reach, reach + 1, 2))
            opacity = float(rng.uniform(0.3, 0.8))
            blurred = _shifted(mask, dx, dy).filter(ImageFilter.GaussianBlur(float(rng.uniform(2, 10))))
            under = Image.new("RGBA", size, (*(int(c) for c in rng.integers(0, 64, 3)), 0))
            under.putalpha(blurred.point(lambda v: int(round(v * opacity))))
            top_alpha = mask
        else:
            under = rgb.filter(ImageFilter.GaussianBlur(float(rng.uniform(1, 6)))).convert("RGBA")
            y, x = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32) / max(size)
            angle = rng.uniform(0, 2 * np.pi)
            ramp = np.cos(angle) * x + np.sin(angle) * y
            ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
            under.putalpha(Image.fromarray(np.rint(255 * rng.uniform(0.2, 0.7) * ramp).astype(np.uint8), "L"))
            top = np.asarray(mask).astype(np.float32) * rng.uniform(0.4, 0.95)
            if style == "grain":  # a textured brush: alpha modulated by noise
                top = top * np.clip(rng.normal(0.85, 0.15, top.shape), 0, 1)
            top_alpha = Image.fromarray(np.clip(np.rint(top), 0, 255).astype(np.uint8), "L")
        layer = rgb.convert("RGBA")
        layer.putalpha(top_alpha)
        # Both layers over a transparent canvas, each step rounded to 8 bits as editors do.
        rgba = Image.alpha_composite(Image.alpha_composite(Image.new("RGBA", size), under), layer)
        variant = f"{kind}:{style},{how}"
    return Negative(encode_image(rgba, "PNG"), "PNG", variant)


#: Pillow's quantizers ``quantized_palette`` draws from; LIBIMAGEQUANT only where this Pillow has it.
QUANTIZERS = ("mediancut", "maxcoverage", "fastoctree", "libimagequant")
#: Palette orders: as the quantizer left it, or reordered as palette optimizers do.
PALETTE_ORDERS = ("quantizer", "frequency", "luminance", "random")


def _quantizer(name: str) -> tuple[Image.Quantize, str]:
    """Pillow's quantizer of that name; LIBIMAGEQUANT falls back to FASTOCTREE where Pillow was built without it."""
    if name == "libimagequant" and not features.check_feature("libimagequant"):
        return Image.Quantize.FASTOCTREE, "fastoctree(no-libimagequant)"
    return Image.Quantize[name.upper()], name


def reorder_palette(image: Image.Image, order: str, rng: np.random.Generator) -> Image.Image:
    """The same picture with its palette reordered (``frequency``, ``luminance`` or ``random``) and indices remapped.

    Palette optimizers do this; it leaves every pixel's colour as it was while
    making the index LSBs look random.
    """
    indices = np.asarray(image)
    palette = np.asarray(image.getpalette() or [], np.uint8).reshape(-1, 3)
    if order == "frequency":
        new_order = np.argsort(-np.bincount(indices.ravel(), minlength=len(palette)), kind="stable")
    elif order == "luminance":
        new_order = np.argsort(palette.astype(np.float32) @ np.float32([0.299, 0.587, 0.114]), kind="stable")
    elif order == "random":
        new_order = rng.permutation(len(palette))
    else:
        raise ValueError(f"unknown palette order {order!r}")
    position = np.empty(len(palette), np.uint8)
    position[new_order] = np.arange(len(palette), dtype=np.uint8)
    reordered = Image.fromarray(position[indices], "P")
    reordered.putpalette(palette[new_order].ravel().tolist())
    return reordered


def quantized_palette(rng: np.random.Generator, base: Image.Image) -> Negative:
    """Palette images from real quantizers, PNG or GIF, some with palettes reordered so index LSBs look random.

    Median cut, max coverage, fast octree or libimagequant (when available),
    with or without Floyd-Steinberg dithering, 16-256 colours; the palette
    order is the quantizer's, or by frequency, by luminance or random.
    """
    rgb = _rgb(base)
    method, method_name = _quantizer(pick(rng, QUANTIZERS))
    colours = int(rng.integers(16, 257))
    dither = bool(rng.random() < 0.5)
    order = pick(rng, PALETTE_ORDERS)
    fmt = "GIF" if rng.random() < 0.5 else "PNG"
    image = rgb.quantize(colors=colours, method=method)
    if dither:  # Pillow dithers only when it maps onto a given palette
        image = rgb.quantize(palette=image, dither=Image.Dither.FLOYDSTEINBERG)
    palette_size = len(image.getpalette() or []) // 3
    if order != "quantizer":
        image = reorder_palette(image, order, rng)
    variant = f"{fmt.lower()}:{method_name},colours={palette_size},{'fs' if dither else 'nodither'},order={order}"
    return Negative(encode_image(image, fmt), fmt, variant)


GENERATORS: dict[str, Generator] = {
    "rgb_no_alpha": rgb_no_alpha,
    "uniform_alpha": uniform_alpha,
    "natural_noise": natural_noise,
    "patterns": patterns,
    "special_cases": special_cases,
    "dithered_gif": dithered_gif,
    "noise_lsb": noise_lsb,
    "repetitive_hex": repetitive_hex,
    "camera_exif": camera_exif,
    "natural_alpha": natural_alpha,
    "jpeg_trailer": jpeg_trailer,
    "metadata_text": metadata_text,
    "trailer_lookalike": trailer_lookalike,
    "pipeline_alpha": pipeline_alpha,
    "quantized_palette": quantized_palette,
}


