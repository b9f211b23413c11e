"""stegwatch: honest eyes for image-steganography detectors.

The package reads left to right, and a module imports only from its left:
``errors``, ``stats``, ``provenance`` and ``parallel`` (shared by every layer)
-> ``format`` (the Starlight records and safe file reading) -> ``stego`` (one
module per embedding method behind a registry) -> ``corpus`` (cover sources,
negatives, building and validating corpora) -> ``features`` (statistics,
streams, the feature table and cache) -> ``detectors`` (one protocol, one
registry) -> ``evaluation`` -> ``monitoring`` -> ``serving`` -> ``reports``
-> ``cli`` (a thin typer layer over the library).
"""

__version__ = "0.1.0"
