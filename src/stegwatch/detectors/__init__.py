"""Detectors behind one protocol: V3 (classical statistics) and V4 (learned, ONNX).

>>> from stegwatch.detectors import load_detector
>>> detector = load_detector("v4")            # or "v3", or a path to model.onnx / v3_calibration.json
>>> detections = detector.detect(["a.png", "b.jpg"])
"""

from __future__ import annotations

from pathlib import Path

from stegwatch.detectors.base import Detection, Detector

MODELS_DIR = Path(__file__).parent / "models"
SHIPPED = {"v3": MODELS_DIR / "v3" / "v3_calibration.json", "v4": MODELS_DIR / "v4" / "model.onnx"}


def load_detector(spec: str | Path, threshold: float | None = None) -> Detector:
    """``v3``, ``v4`` (the shipped models), a ``.onnx`` file (V4-style) or a V3 calibration ``.json``."""
    from stegwatch.detectors.v3 import V3Detector
    from stegwatch.detectors.v4 import V4Detector

    path = SHIPPED.get(str(spec), Path(spec))
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}" + (" (the package ships none yet: run `stegwatch train`)" if str(spec) in SHIPPED else ""))
    if path.suffix == ".onnx":
        return V4Detector.load(path, threshold)
    if path.suffix == ".json":
        return V3Detector.load(path, threshold)
    raise ValueError(f"unknown model {spec!r}: use v3, v4, a .onnx file or a V3 calibration .json")


__all__ = ["MODELS_DIR", "Detection", "Detector", "load_detector"]
