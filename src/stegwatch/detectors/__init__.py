"""Detectors behind one protocol and one registry: V3 (classical statistics) and V4 (learned, ONNX).

>>> from stegwatch.detectors import load_detector
>>> detector = load_detector("v4")            # or "v3", or a path to model.onnx / v3_calibration.json
>>> detections = detector.detect(["a.png", "b.jpg"])

A new detector is one module (a class following :class:`Detector` and a
``KIND``) plus one line below, or a :func:`register` call from your own code.
"""

from __future__ import annotations

from pathlib import Path

from stegwatch.detectors import v3, v4
from stegwatch.detectors.base import Detection, Detector
from stegwatch.detectors.registry import KINDS, DetectorKind, kind_of, load_detector, model_path, register

MODELS_DIR = Path(__file__).parent / "models"

register(v3.KIND)
register(v4.KIND)

__all__ = ["KINDS", "MODELS_DIR", "Detection", "Detector", "DetectorKind", "kind_of", "load_detector", "model_path", "register"]
