"""Where a result came from: run ids, the git commit, the command as typed, the machine.

Every run record (metrics, model cards, ablations, benchmarks) takes its
identity from here, so that a number in a generated document can be traced to
the run that made it.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

#: Libraries whose versions decide stegwatch's numbers; recorded with every run.
LIBRARIES = ("numpy", "scipy", "scikit-learn", "pillow", "onnxruntime", "jpeglib", "conseal")
#: Programs whose command lines are recorded as typed (a script named here is recorded under ``scripts/``).
PROGRAMS = {"stegwatch": "stegwatch", "monitor_performance.py": "scripts/monitor_performance.py"}


def new_run_id(now: datetime | None = None, suffix: str | None = None) -> str:
    """``YYYYmmddTHHMMSSZ-xxxxxxxx``: sortable by time, unique by a random (or given) suffix."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{suffix or uuid.uuid4().hex[:8]}"


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_commit() -> str | None:
    """The commit checked out in the working folder, or None outside a git checkout."""
    return _git("rev-parse", "HEAD") or None


def git_dirty() -> bool:
    """True when the library code differs from that commit (shipped model files aside)."""
    return bool(_git("status", "--porcelain", "--untracked-files=no", "--", "src", ":!src/stegwatch/detectors/models"))


def machine_info(libraries: tuple[str, ...] = LIBRARIES) -> dict:
    """Cores, Python, platform and the versions of the libraries that decide the numbers."""
    versions = {}
    for package in libraries:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "libraries": versions}


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed, for run records; empty when stegwatch was not started from one of its own programs."""
    argv = sys.argv if argv is None else argv
    program = PROGRAMS.get(Path(argv[0]).name) if argv else None
    return f"{program} {' '.join(argv[1:])}".rstrip() if program else ""
