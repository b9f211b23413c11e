"""The ``stegwatch`` command: a thin layer of verbs over the library.

One module per verb group: :mod:`~stegwatch.cli.corpus` (``corpus build``,
``validate-streams``, ``extract``, ``methods``), :mod:`~stegwatch.cli.detect`
(``train``, ``scan``, ``model-card render``, ``schema``),
:mod:`~stegwatch.cli.evaluate` (``evaluate``, ``fp-regression``,
``dataset-metrics``, ``logs``, ``ablate``), :mod:`~stegwatch.cli.monitor`
(``monitor``, ``history export``, ``baseline accept``),
:mod:`~stegwatch.cli.serve` and :mod:`~stegwatch.cli.reports` (``baseline``).
Each verb parses its arguments, calls the library and renders the result.

Exit codes: 0 the job completed and found nothing wrong; 1 the job completed
and found a problem (a label that failed, an unreadable file, a failed job);
2 the command could not run (bad arguments, a conflicting output folder, no
manifest, a missing model, a bad configuration). Errors the library raises
(:class:`~stegwatch.errors.StegwatchError`) are printed on one line,
``error: <message>``, on stderr, and exit with the error's ``exit_code``.
"""

from __future__ import annotations

import sys

from stegwatch.cli import corpus, detect, evaluate, monitor, reports, serve  # noqa: F401  (each registers its verbs)
from stegwatch.cli._app import app

#: Options that take several values after one flag (``--models v3 v4``).
MULTI_VALUE_OPTIONS = ("--models", "--ablations", "--evaluations")


def expand_models(argv: list[str]) -> list[str]:
    """``--models v3 v4`` (several values after one flag) -> ``--models v3 --models v4``, as typer needs."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        out.append(argv[i])
        if argv[i] in MULTI_VALUE_OPTIONS:
            flag = argv[i]
            i += 1
            first = True
            while i < len(argv) and not argv[i].startswith("-"):
                if not first:
                    out.append(flag)
                out.append(argv[i])
                first = False
                i += 1
            continue
        i += 1
    return out


def run() -> None:
    """The console script: the CLI, with ``--models`` taking several values."""
    app(expand_models(sys.argv[1:]), prog_name="stegwatch")


__all__ = ["MULTI_VALUE_OPTIONS", "app", "expand_models", "run"]
