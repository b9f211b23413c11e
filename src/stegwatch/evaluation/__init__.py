"""Evaluation: metrics as pure functions, exact intervals, cross-validation, FP regression."""
