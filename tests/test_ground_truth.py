"""Ground truth that generalizes (issue 14): container-matched pairs, unframed payloads, the monitoring split."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from PIL import Image

from stegwatch.format.files import load_carrier
from stegwatch.format.manifest import read_manifest, read_sidecar, resolve_in_root
from stegwatch.format.records import MONITOR_PERCENT, split_of
from stegwatch.stego import METHODS
from stegwatch.stego.base import from_bits

#: Methods whose stego file is the cover's own JPEG with new coefficients or metadata (same quantization tables).
SAME_TABLES = {"jsteg", "f5", "nsf5", "juniward", "exif", "eoi", "outguess"}


def _container(path) -> dict:
    with Image.open(path) as image:
        tables = getattr(image, "quantization", None)
        return {"format": image.format, "mode": image.mode, "size": image.size,
                "palette": len(image.getpalette() or []) // 3 if image.mode == "P" else 0,
                "tables": {k: list(v) for k, v in tables.items()} if tables else None}


def test_every_stego_file_has_its_own_cover_in_the_clean_set_with_the_same_container(smoke_corpus):
    entries = read_manifest(smoke_corpus).entries
    clean = {e.file_path: e for e in entries if e.label == "clean"}
    checked = defaultdict(int)
    for entry in entries:
        if entry.label != "stego":
            continue
        path = resolve_in_root(smoke_corpus, entry.file_path)
        sidecar = read_sidecar(path)
        assert sidecar.clean_file in clean, f"{entry.file_path}: its cover {sidecar.clean_file} is not a clean file of the corpus"
        cover_entry = clean[sidecar.clean_file]
        assert cover_entry.cover_id == entry.cover_id
        stego, cover = _container(path), _container(resolve_in_root(smoke_corpus, sidecar.clean_file))
        assert (stego["format"], stego["mode"], stego["size"]) == (cover["format"], cover["mode"], cover["size"]), entry.file_path
        assert stego["palette"] == cover["palette"], entry.file_path
        if entry.method in SAME_TABLES:
            assert stego["tables"] == cover["tables"], entry.file_path
        checked[entry.method] += 1
    assert set(checked) == {e.method for e in entries if e.label == "stego"}


def test_no_method_is_richer_in_a_container_than_the_clean_files_that_could_carry_it(smoke_corpus):
    entries = read_manifest(smoke_corpus).entries
    for key in ("alpha", "palette", "lsb.rgb"):
        method = METHODS[key]
        stego = [e for e in entries if e.method == key]
        carriers = [e for e in entries if e.label == "clean" and method.accepts(e.format, e.mode)]
        assert stego and all(method.accepts(e.format, e.mode) for e in stego)
        assert len(carriers) >= 3, f"too few clean {key} carriers to pair with"


def test_a_share_of_lsb_stego_is_unframed_random_bytes_proven_by_its_bits(smoke_corpus):
    entries = read_manifest(smoke_corpus).entries
    for key in ("lsb.rgb", "alpha", "palette"):
        files = [e for e in entries if e.method == key]
        unframed = [e for e in files if e.payload_kind == "unframed"]
        assert len(unframed) >= len(files) / 3, key
        assert {round(e.payload_bpp, 1) for e in unframed} - {0.0}, key  # several rates, not one
        framed_text = [e for e in files if e.payload_kind == "text"]
        assert framed_text, f"{key}: the Starlight-framed text payloads stay"
        for entry in unframed:
            path = resolve_in_root(smoke_corpus, entry.file_path)
            sidecar = read_sidecar(path)
            assert sidecar.model_extra["framing"] == "none"
            carrier = load_carrier(path)
            raw = METHODS[key].raw_stream(carrier.image)
            order = sidecar.embedding.bit_order or "lsb-first"
            payload = from_bits((raw.reshape(-1)[: 8 * entry.payload_bytes] & 1), order)
            assert hashlib.sha256(payload).hexdigest() == entry.payload_sha256
            # nothing framed to extract: no marker, no terminator-delimited text
            assert not any(x.payload_shaped for x in METHODS[key].extract(carrier))


def test_the_monitoring_split_is_by_cover_group(smoke_corpus):
    entries = read_manifest(smoke_corpus).entries
    by_cover = defaultdict(set)
    for entry in entries:
        assert entry.split == split_of(entry.cover_id)
        by_cover[entry.cover_id].add(entry.split)
    assert all(len(splits) == 1 for splits in by_cover.values()), "a cover group in both splits"
    share = sum(split_of(f"cover-{i}") == "monitor" for i in range(10_000)) / 10_000
    assert abs(share - MONITOR_PERCENT / 100) < 0.02
