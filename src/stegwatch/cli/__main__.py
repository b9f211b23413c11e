"""``python -m stegwatch.cli``: the same as the ``stegwatch`` command."""

from stegwatch.cli import run

run()
