"""stegwatch's errors: one base class, raised by the library, mapped to exit codes in one place (the CLI).

Every error carries a message a person can act on (what was wrong, and with
which file or setting). The CLI prints it on one line and exits with
``exit_code``: 2 for "the command could not run" (bad arguments, a bad
corpus, model or configuration), as documented in the README.
"""

from __future__ import annotations


class StegwatchError(Exception):
    """Base of every error stegwatch raises on purpose; ``str(error)`` is the one-line message."""

    exit_code = 2


class CorpusError(StegwatchError):
    """A corpus cannot be built or used (conflicting settings, an empty corpus, a bad ``--covers`` folder)."""


class ManifestError(CorpusError):
    """A manifest line, or a sidecar, that cannot be accepted: ``where`` it is and the ``reason``."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class EmptyCorpus(ManifestError):
    """A corpus with nothing to work on: an empty manifest, or no file that can be read."""


class EmbedError(StegwatchError):
    """The payload does not fit, or the cover cannot carry this method."""


class ModelError(StegwatchError):
    """A detector model is missing, of an unknown kind, or cannot do what was asked (e.g. be retrained)."""


class ConfigError(StegwatchError):
    """A configuration file (rules, alerts, serve) or an option value is invalid."""


class BaselineNotFound(StegwatchError):
    """A monitor baseline named by run id or file does not exist."""


__all__ = ["BaselineNotFound", "ConfigError", "CorpusError", "EmbedError", "EmptyCorpus", "ManifestError", "ModelError", "StegwatchError"]
