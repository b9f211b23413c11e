"""PNG figures with matplotlib's Agg backend (no display), for reports and dashboards."""

from __future__ import annotations

import io
from collections.abc import Callable


def figure_png(draw: Callable, size: tuple[float, float] = (7.5, 3.8), integer_x: bool = False) -> bytes:
    """Call ``draw(axis)`` on a fresh figure and return it as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axis = plt.subplots(figsize=size, dpi=100)
    draw(axis)
    axis.grid(alpha=0.3)
    if integer_x:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
