"""Running external steganography programs safely.

No shell, a timeout on every call, arguments as a list, files in a private
temporary folder with names we choose (so no path can be read as an option),
and a small fixed environment. A failure becomes :class:`EmbedError` or an
empty extraction, with the tool's own last words as the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from stegwatch.stego.base import EmbedError

TIMEOUT_SECONDS = 60


class ToolMissing(EmbedError):
    """An external program the method needs is not installed."""


def run_tool(args: list[str], *, timeout: float = TIMEOUT_SECONDS) -> subprocess.CompletedProcess[bytes]:
    program = shutil.which(args[0])
    if program is None:
        raise ToolMissing(f"{args[0]} is not installed")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": tempfile.gettempdir()}
    return subprocess.run(
        [program, *args[1:]], capture_output=True, timeout=timeout, check=False, env=env, stdin=subprocess.DEVNULL
    )


def last_words(result: subprocess.CompletedProcess[bytes]) -> str:
    """The tool's error: its lines that name one, else its last line."""
    text = (result.stderr or result.stdout or b"").decode("utf-8", errors="replace").strip()
    if not text:
        return f"exit status {result.returncode}"
    lines = text.splitlines()
    telling = [line for line in lines if any(w in line.lower() for w in ("error", "larger", "too", "could not", "cannot", "bogus"))]
    return "; ".join(telling[-2:]) if telling else lines[-1]


def embed_with_tool(tool: str, args: Callable[[Path], list[str]], cover_jpeg: bytes, payload: bytes,
                    prepare: Callable[[Path], None] | None = None) -> bytes:
    """Run ``args(folder)`` over ``folder/cover.jpg`` and ``folder/message``; return ``folder/stego.jpg``.

    ``prepare(folder)`` may add files first. Failures become :class:`EmbedError`.
    """

    def work(folder: Path) -> bytes:
        if prepare:
            prepare(folder)
        try:
            result = run_tool(args(folder))
        except subprocess.TimeoutExpired:
            raise EmbedError(f"{tool}: timed out after {TIMEOUT_SECONDS} s") from None
        stego = folder / "stego.jpg"
        if result.returncode != 0 or not stego.exists() or stego.stat().st_size == 0:
            raise EmbedError(f"{tool}: {last_words(result)}")
        return stego.read_bytes()

    return with_files({"cover.jpg": cover_jpeg, "message": payload}, work)  # type: ignore[return-value]


def extract_with_tool(args: Callable[[Path], list[str]], stego_jpeg: bytes) -> bytes | None:
    """Run ``args(folder)`` over ``folder/stego.jpg``; the bytes it wrote to ``folder/out``, or None."""

    def work(folder: Path) -> bytes | None:
        try:
            result = run_tool(args(folder))
        except (subprocess.TimeoutExpired, ToolMissing):
            return None
        out = folder / "out"
        return out.read_bytes() if result.returncode == 0 and out.exists() else None

    if not stego_jpeg.startswith(b"\xff\xd8"):
        return None
    return with_files({"stego.jpg": stego_jpeg}, work)  # type: ignore[return-value]


def with_files(files: dict[str, bytes], work: Callable[[Path], object]) -> object:
    """Write ``files`` into a fresh private folder, call ``work(folder)``, then remove the folder."""
    with tempfile.TemporaryDirectory(prefix="stegwatch-tool-") as folder:
        base = Path(folder)
        for name, data in files.items():
            (base / name).write_bytes(data)
        return work(base)
