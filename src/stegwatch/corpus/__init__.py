"""Corpora: cover sources, negatives, payloads, building and validating."""
