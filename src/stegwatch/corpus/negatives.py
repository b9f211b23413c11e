"""Negatives: clean images chosen to look suspicious, so a detector learns what steganography is not.

One generator per category. Each takes a random generator and a photo crop
(RGB or L; categories that are synthetic by nature ignore it) and returns the
encoded file. Categories and the rule each one teaches are in
:data:`CONSTRAINTS`.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import piexif
from PIL import Image, ImageDraw, ImageFilter

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


_CAMERAS = (
    (b"Canon", b"Canon EOS 80D", b"Firmware Version 1.0.2"),
    (b"NIKON CORPORATION", b"NIKON D750", b"Ver.1.13"),
    (b"SONY", b"ILCE-7M3", b"ILCE-7M3 v3.01"),
    (b"Apple", b"iPhone 12", b"16.4.1"),
    (b"FUJIFILM", b"X-T3", b"Digital Camera X-T3 Ver4.10"),
    (b"samsung", b"SM-G991B", b"G991BXXU5CVLL"),
)


def camera_exif(rng: np.random.Generator, base: Image.Image) -> Negative:
    make, model, software = _CAMERAS[int(rng.integers(len(_CAMERAS)))]
    # What cameras really write: a character-code header then blanks (spaces or NULs).
    header = [b"ASCII\x00\x00\x00", b"UNICODE\x00", b"\x00" * 8][int(rng.integers(3))]
    blank = (b" " if rng.random() < 0.5 else b"\x00")
    if header.startswith(b"UNICODE"):
        blank = b"\x00" + blank  # UTF-16, big-endian like the rest of piexif's EXIF
    comment = header + blank * int(rng.choice([0, 16, 64, 256]))
    day = f"2024:{int(rng.integers(1, 13)):02d}:{int(rng.integers(1, 29)):02d} {int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}:{int(rng.integers(0, 60)):02d}"
    exif = user_comment_exif(
        comment,
        extra_ifd0={piexif.ImageIFD.Make: make, piexif.ImageIFD.Model: model, piexif.ImageIFD.Software: software, piexif.ImageIFD.DateTime: day.encode()},
        extra_exif={
            piexif.ExifIFD.DateTimeOriginal: day.encode(),
            piexif.ExifIFD.ExposureTime: (1, int(rng.choice([30, 60, 125, 250, 1000]))),
            piexif.ExifIFD.FNumber: (int(rng.choice([18, 28, 40, 56, 80])), 10),
            piexif.ExifIFD.ISOSpeedRatings: int(rng.choice([100, 200, 400, 800, 3200])),
            piexif.ExifIFD.FocalLength: (int(rng.integers(18, 200)), 1),
        },
    )
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
}


