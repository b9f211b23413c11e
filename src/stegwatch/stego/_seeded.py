"""Run a program with ``/dev/urandom`` replaced by bytes we choose.

Used as ``unshare --user --map-root-user --mount -- python -m
stegwatch.stego._seeded SEED_FILE -- PROGRAM ARGS...``: inside its own mount
namespace (visible to nothing else) it bind-mounts ``SEED_FILE`` over
``/dev/urandom`` and then becomes ``PROGRAM``. steghide draws from
``/dev/urandom`` while embedding; with seeded bytes the same inputs give the
same file, which a deterministic corpus needs.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

SEED_BYTES = 1 << 20


def write_seed_file(path: Path, seed_text: str) -> None:
    digest = np.frombuffer(hashlib.sha256(seed_text.encode()).digest(), dtype=np.uint32)
    path.write_bytes(np.random.default_rng(digest).bytes(SEED_BYTES))


@functools.cache
def namespaces_available() -> bool:
    """Can this machine give a process a private mount namespace (user namespaces)?"""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        result = subprocess.run([unshare, "--user", "--map-root-user", "--mount", "--", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def seeded_command(seed_file: Path, command: list[str]) -> list[str]:
    """``command`` wrapped so that it reads ``seed_file`` as /dev/urandom."""
    return ["unshare", "--user", "--map-root-user", "--mount", "--", sys.executable, "-m", __name__, str(seed_file), "--", *command]


def _main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: python -m stegwatch.stego._seeded SEED_FILE -- PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    seed_file, command = argv[1], argv[3:]
    subprocess.run(["mount", "--bind", seed_file, "/dev/urandom"], check=True)
    os.execvp(command[0], command)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
