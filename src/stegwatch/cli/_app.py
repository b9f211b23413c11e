"""What every verb shares: the typer apps, the consoles, common options, progress bars and the error frame."""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from stegwatch import __version__
from stegwatch.errors import ConfigError, StegwatchError

app = typer.Typer(
    name="stegwatch",
    help="Honest eyes for image-steganography detectors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
corpus_app = typer.Typer(help="Build labelled benchmark corpora in the Starlight format.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")
card_app = typer.Typer(help="Documents rendered from model cards.", no_args_is_help=True)
app.add_typer(card_app, name="model-card")
history_app = typer.Typer(help="The monitor run history.", no_args_is_help=True)
app.add_typer(history_app, name="history")
baseline_app = typer.Typer(
    help="The V3-vs-V4 baseline report (stegwatch baseline --models v3 v4 --corpus DIR), "
    "and monitor baselines (stegwatch baseline accept RUN).",
    invoke_without_command=True,
)
app.add_typer(baseline_app, name="baseline")

#: Tables and summaries for people (stdout); machine output (--json, --jsonl, --csv) is printed plainly. Console text
#: is rich markup: every value that comes from outside (a path, a payload preview, an error naming a file, a log's
#: run name) goes through :func:`escape`, so a ``[/]`` in a file name or a payload is shown, not parsed.
out = Console()
#: Progress bars, warnings, log records and error messages (stderr).
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        out.print(f"stegwatch {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """stegwatch: corpora, detectors, evaluation and monitoring for steganalysis."""


ExecutorOption = Annotated[str, typer.Option("--executor", help="local (process pool) or dask (a Dask distributed cluster).")]
SchedulerOption = Annotated[Optional[str], typer.Option("--scheduler", help="Dask scheduler address (default with --executor dask: a LocalCluster here).")]

#: Help of every option that takes one detector: any registered kind, by key or by model file.
MODEL_HELP = "A registered detector key (its shipped model), or a model file of a registered kind."
TRAIN_EXTRA_HELP = ("A training-only corpus (e.g. build/training-corpus, from `corpus build --preset training`) whose train split "
                    "joins every fit (repeatable): its files are never scored, and those of held-out covers are left out.")
CheckpointsOption = Annotated[Optional[Path], typer.Option(
    "--checkpoints", help="A folder to keep each refit in and take it from when the same refit (same settings, training rows "
    "and fitting code) comes again: a stopped run resumes, and ablate's full model reuses evaluate's fold refits. "
    "Loaded with pickle: give only a folder your own runs wrote.")]

#: Parameter names of the options that send machine-readable output to stdout.
MACHINE_OUTPUT = ("as_json", "jsonl", "csv_out")


def configure_logging(level: int) -> None:
    """Send the library's log records (``stegwatch.*``) to stderr through rich; the handler is added once per process."""
    logger = logging.getLogger("stegwatch")
    if not any(isinstance(handler, RichHandler) for handler in logger.handlers):
        logger.addHandler(RichHandler(console=err, show_path=False, markup=False, rich_tracebacks=False))
    logger.setLevel(level)


def error_message(exc: BaseException) -> str:
    """The error's message on one line (a KeyError's message is its argument, not the argument's repr)."""
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    return " ".join(str(text).split())


def verb(*builtins: type[Exception]) -> Callable[[Callable], Callable]:
    """The frame of every verb: logging set up, errors mapped to one line on stderr and an exit code.

    A :class:`~stegwatch.errors.StegwatchError` exits with its ``exit_code``;
    the builtin exceptions named here (those the verb's library call still
    raises for a bad file or value) exit 2. Apply it under ``@app.command``,
    so that in-process invocations (``CliRunner().invoke(app, ...)``) get
    the same exit codes as the console script.
    """

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            quiet = any(kwargs.get(name) for name in MACHINE_OUTPUT)
            configure_logging(logging.WARNING if quiet else logging.INFO)
            try:
                return function(*args, **kwargs)
            except StegwatchError as exc:
                fail(error_message(exc), exc.exit_code)
            except builtins as exc:
                fail(error_message(exc), 2)

        wrapper.stegwatch_verb = True
        return wrapper

    return decorate


def fail(message: str, exit_code: int = 2) -> None:
    """Print ``error: message`` on stderr and exit with ``exit_code``."""
    err.print(f"error: {message}", style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(exit_code)


def workers_or_all(value: int | None) -> int:
    """The ``--workers`` value, or every core when it is not given (or not positive)."""
    return value if value and value > 0 else (os.cpu_count() or 1)


def scheduler_for(executor: str, scheduler: str | None) -> str | None:
    """None for the local process pool; a Dask scheduler address (or a LocalCluster) for ``dask``."""
    from stegwatch.parallel import LOCAL_CLUSTER

    if executor not in ("local", "dask"):
        raise ConfigError("--executor must be local or dask")
    if executor == "local":
        if scheduler:
            raise ConfigError("--scheduler needs --executor dask")
        return None
    return scheduler or LOCAL_CLUSTER


@contextmanager
def progress_bar(label: str, enabled: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr; yields a (done, total) callback, or None where no bar is shown."""
    if not enabled or not err.is_terminal and os.environ.get("STEGWATCH_PROGRESS") != "1":
        yield None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def print_json(data, **options) -> None:
    """``data`` as JSON on stdout: indented and sorted unless ``options`` say otherwise."""
    print(json.dumps(data, **({"indent": 2, "sort_keys": True} | options)))


def counts_table(title: str, column: str, counts: dict[str, int]) -> Table:
    """Files per value, sorted by value, with a total row."""
    table = Table(title=title)
    table.add_column(column)
    table.add_column("files", justify="right")
    for key, value in sorted(counts.items()):
        table.add_row(escape(str(key)), str(value))
    table.add_row("[bold]total[/bold]", f"[bold]{sum(counts.values())}[/bold]")
    return table
