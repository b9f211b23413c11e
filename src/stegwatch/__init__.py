"""stegwatch: honest eyes for image-steganography detectors.

The package reads left to right: ``format`` (the Starlight records and safe
file reading) -> ``stego`` (one module per embedding method behind a registry)
-> ``corpus`` (cover sources, negatives, building and validating corpora) ->
``cli`` (a thin typer layer over the library).
"""

__version__ = "0.1.0"
