import json

import numpy as np
import pytest
from typer.testing import CliRunner

from stegwatch.cli import app
from stegwatch.evaluation.dataset import balance, dataset_metrics, independent_photographs, near_duplicates, normalized_entropy

runner = CliRunner()


def test_balance_and_entropy():
    even = balance({"a": 50, "b": 50})
    assert even["max_deviation"] == 0 and not even["flagged"]
    skewed = balance({"a": 70, "b": 30})
    assert skewed["max_deviation"] == pytest.approx(0.2) and skewed["flagged"]
    assert normalized_entropy({"a": 10, "b": 10, "c": 10}) == pytest.approx(1.0)
    assert normalized_entropy({"a": 10}) == 0.0
    assert 0 < normalized_entropy({"a": 90, "b": 5, "c": 5}) < 1


def test_near_duplicates_within_and_across_groups():
    hashes = np.asarray([0b0, 0b1, 0xFFFF, 0xFFFF ^ 0b11, 0xF0F0F0F0], dtype=np.uint64)
    groups = np.asarray(["x", "x", "y", "z", "w"])
    result = near_duplicates(hashes, groups, max_distance=2)
    assert result["within_cover_rate"] == pytest.approx(2 / 5)
    assert result["across_cover_rate"] == pytest.approx(2 / 5) and result["across_cover_files"] == 2


def test_dataset_metrics_on_the_smoke_corpus(smoke_corpus):
    result = runner.invoke(app, ["dataset-metrics", str(smoke_corpus), "--json", "--workers", "1"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["files"] == sum(metrics["counts"]["label"].values())
    assert 0 < metrics["entropy"]["method"] <= 1 and 0 < metrics["entropy"]["category"] <= 1
    assert metrics["label_validity"]["stego_passed"] == metrics["label_validity"]["stego_checked"] > 0
    # A stego file is a near-duplicate of its cover, which shares its cover_id.
    assert metrics["near_duplicates"]["within_cover_rate"] > 0.3
    assert metrics["distinct_cover_sources"] >= 3
    # The smoke preset crops every built-in photograph (40 crops, round-robin over 20 scenes).
    from stegwatch.corpus.sources import builtin_sources

    assert metrics["independent_photographs"] == len(builtin_sources()) >= 18
    human = runner.invoke(app, ["dataset-metrics", str(smoke_corpus), "--no-validate", "--workers", "1"])
    assert human.exit_code == 0 and "normalized entropy" in human.stdout


def test_independent_photographs_counts_listed_photographs_only():
    from types import SimpleNamespace as Entry

    entries = [
        Entry(label="clean", category="photo", cover_id="photo:ski-chelsea-cat"),
        Entry(label="clean", category="photo", cover_id="photo:ski-chelsea-cat"),  # two crops, one photograph
        Entry(label="clean", category="photo", cover_id="photo:gc-erase-bee"),
        Entry(label="clean", category="photo", cover_id="user:holiday-1234abcd"),  # origin unknown
        Entry(label="clean", category="patterns", cover_id="synthetic:patterns-00001"),
        Entry(label="clean", category="natural_noise", cover_id="photo:lomiri-wall-clock"),  # not a photo file
        Entry(label="stego", category="pixel", cover_id="photo:palapeli-citrus-slices"),
    ]
    assert independent_photographs(entries) == 2


def test_dataset_metrics_counts_a_bad_manifest_line(corpus_copy):
    manifest = corpus_copy / "manifest.jsonl"
    manifest.write_text(manifest.read_text() + "{not json\n")
    metrics = dataset_metrics(corpus_copy, validate=False, duplicates=False, container=False)
    assert metrics["manifest_errors"] == 1 and metrics["files"] == len(manifest.read_text().splitlines()) - 1


def test_container_auc_sees_a_container_or_framing_shortcut_and_not_a_matched_one():
    from types import SimpleNamespace

    from stegwatch.evaluation.dataset import container_auc

    rng = np.random.default_rng(0)

    def table(stego_formats, bare_stego=False, method="lsb.rgb"):
        entries, attributes = [], {}
        for i in range(400):
            stego = i % 2 == 1
            fmt = stego_formats[(i // 2) % len(stego_formats)] if stego else ("PNG", "BMP")[int(rng.integers(2))]
            path = f"f{i}"
            entries.append(SimpleNamespace(file_path=path, label="stego" if stego else "clean",
                                           method=method if stego else None, cover_id=f"c{i // 2}"))
            # Half the files carry framing (a text chunk and a trailer); with bare_stego, only clean ones do.
            framed = (rng.random() < 0.5 and not (stego and bare_stego)) or (stego and method == "eoi")
            attributes[path] = {"format": fmt, "mode": "RGB", "width": 256, "height": 256, "jpeg_quality": None,
                                "palette_size": 0, "has_alpha": False, "bit_depth": 8,
                                "metadata_segments": int(framed), "trailer_bytes": 512 * int(framed)}
        return entries, attributes

    shortcut = container_auc(*table(["BMP"]))["lsb.rgb"]
    framing = container_auc(*table(["PNG", "BMP"], bare_stego=True))["lsb.rgb"]
    matched = container_auc(*table(["PNG", "BMP"]))["lsb.rgb"]
    # eoi writes a trailer: there the framing is the embedding, and the check leaves it out.
    eoi = container_auc(*table(["PNG"], method="eoi"))["eoi"]
    assert shortcut > 0.7
    assert framing > 0.7
    assert matched < 0.6
    assert eoi < 0.6


def test_container_auc_on_a_corpus_of_few_cover_groups_uses_fewer_folds_or_none():
    from types import SimpleNamespace

    from stegwatch.evaluation.dataset import container_auc

    def table(groups):
        entries, attributes = [], {}
        for i in range(40):
            stego = i % 2 == 1
            path = f"f{i}"
            entries.append(SimpleNamespace(file_path=path, label="stego" if stego else "clean",
                                           method="lsb.rgb" if stego else None, cover_id=f"c{i % (2 * groups) // 2}"))
            attributes[path] = {"format": "BMP" if stego else "PNG", "mode": "RGB", "width": 64, "height": 64,
                                "jpeg_quality": None, "palette_size": 0, "has_alpha": False, "bit_depth": 8,
                                "metadata_segments": 0, "trailer_bytes": 0}
        return entries, attributes

    assert container_auc(*table(3))["lsb.rgb"] > 0.7  # three groups: three folds, the shortcut still seen
    assert container_auc(*table(1))["lsb.rgb"] is None  # one group: nothing to hold out


def test_the_jpeg_header_a_writer_leaves_is_a_container_attribute_the_auc_sees():
    """jpeglib's writer adds a second JFIF segment and numbers components from 0: the container check must see that."""
    from types import SimpleNamespace

    from stegwatch.evaluation.dataset import container_auc, jpeg_header
    from stegwatch.stego.dct import DctImage, read_dct, write_dct

    from .conftest import jpeg_bytes, random_rgb

    pillow = jpeg_bytes(random_rgb(1, 64, 64))
    assert jpeg_header(pillow) == (1, 1)
    # What libjpeg writes on its own (generator 7's JSteg/F5/J-UNIWARD files carried it), and what write_dct now gives.
    assert jpeg_header(write_dct(DctImage(read_dct(pillow).jpeg))) == (2, 0)
    assert jpeg_header(write_dct(read_dct(pillow))) == (1, 1)
    assert jpeg_header(b"\x89PNG\r\n\x1a\n") == (0, -1)

    entries, attributes = [], {}
    for i in range(200):
        stego = i % 2 == 1
        entries.append(SimpleNamespace(file_path=f"f{i}", label="stego" if stego else "clean",
                                       method="jsteg" if stego else None, cover_id=f"c{i // 2}"))
        attributes[f"f{i}"] = {"format": "JPEG", "mode": "RGB", "width": 256, "height": 256, "jpeg_quality": 85,
                               "palette_size": 0, "has_alpha": False, "bit_depth": 8, "jfif_segments": 2 if stego else 1,
                               "first_component_id": 0 if stego else 1, "metadata_segments": 0, "trailer_bytes": 0}
    assert container_auc(entries, attributes)["jsteg"] > 0.9
