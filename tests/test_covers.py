"""The curated cover list, finding and verifying its files, and crops from the photographs."""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from stegwatch.cli import app
from stegwatch.corpus.build import PRESETS, STATE_DIR, BuildConflict, build_corpus
from stegwatch.corpus.covers import (
    COLUMNS,
    DOC_COMMAND,
    KINDS,
    ListedCover,
    covers_document,
    covers_summary,
    read_cover_list,
    scan_covers,
    setup_packages,
)
from stegwatch.corpus.qt_resources import ResourceError, read_qt_resource
from stegwatch.corpus.sources import (
    MIN_CROP_SIZE,
    ListedSources,
    builtin_sources,
    fitted_crop_size,
    listed_sources,
    prepare_sources,
    render_crop,
    render_crop_from_pixels,
    sample_crop,
    source_pixels,
)

from .conftest import png_bytes, random_rgb

COVERS = read_cover_list()
PACKAGES = sorted({c.package for c in COVERS})


# --- the list -----------------------------------------------------------------------------


def test_cover_list_is_well_formed():
    header = (Path(__file__).parents[1] / "src/stegwatch/corpus/covers.tsv").read_text().splitlines()[0]
    assert tuple(header.split("\t")) == COLUMNS
    scenes = [c.scene_id for c in COVERS]
    assert len(scenes) == len(set(scenes)), "a scene is listed twice"
    assert len({c.sha256 for c in COVERS}) == len(COVERS), "a file is listed twice"
    assert len({(c.package, c.path) for c in COVERS}) == len(COVERS)
    for cover in COVERS:
        assert re.fullmatch(r"[0-9a-f]{64}", cover.sha256), cover
        assert cover.kind in KINDS, cover
        assert cover.licence and cover.version and cover.package, cover
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*", cover.scene_id), cover
        assert not cover.path.startswith("/") and ".." not in cover.path.split("/"), cover
    photos = [c for c in COVERS if c.kind == "photo"]
    assert len(photos) >= 150
    assert sum(c.builtin for c in photos) >= 18
    # The set-up installs every package that ships a listed photograph, and only those.
    assert set(setup_packages()) == {c.package for c in photos if not c.builtin}


@pytest.mark.parametrize("package", PACKAGES)
def test_listed_files_present_here_have_the_listed_sha256(package):
    rows = tuple(c for c in COVERS if c.package == package)
    scan = scan_covers(rows, kinds=KINDS)
    wrong = [f"{m.cover.path}: {m.reason}" for m in scan.missing if m.reason != "not found"]
    assert not wrong, wrong
    if not scan.found:
        pytest.skip(f"{package} is not installed ({rows[0].install_command})")


# --- finding and verifying ----------------------------------------------------------------


def _rcc(files: dict[str, bytes], compress: bool) -> bytes:
    """A Qt resource bundle (format version 1) holding ``files`` (absolute resource names)."""
    tree: dict = {}
    for name, data in files.items():
        *folders, leaf = [p for p in name.split("/") if p]
        node = tree
        for folder in folders:
            node = node.setdefault(folder, {})
        node[leaf] = data
    order = [("", tree)]  # breadth first, so each folder's children are consecutive
    children_first: dict[int, int] = {}
    i = 0
    while i < len(order):
        if isinstance(order[i][1], dict):
            children_first[i] = len(order)
            order.extend(sorted(order[i][1].items()))
        i += 1
    names, payload, nodes = b"", b"", b""
    for index, (name, content) in enumerate(order):
        name_offset = len(names)
        names += struct.pack(">HI", len(name), 0) + name.encode("utf-16-be")
        if isinstance(content, dict):
            nodes += struct.pack(">iHii", name_offset, 2, len(content), children_first[index])
        else:
            blob = struct.pack(">I", len(content)) + zlib.compress(content) if compress else content
            nodes += struct.pack(">iHhhi", name_offset, 1 if compress else 0, 0, 0, len(payload))
            payload += struct.pack(">I", len(blob)) + blob
    tree_offset = 20
    data_offset = tree_offset + len(nodes)
    names_offset = data_offset + len(payload)
    return b"qres" + struct.pack(">iiii", 1, tree_offset, data_offset, names_offset) + nodes + payload + names


@pytest.mark.parametrize("compress", [False, True])
def test_qt_resources_are_read_out_of_a_bundle(compress):
    files = {"/gcompris/a/one.webp": b"first", "/gcompris/b/two.png": b"second" * 50, "/top.txt": b"t"}
    bundle = _rcc(files, compress)
    for name, data in files.items():
        assert read_qt_resource(bundle, name) == data
    with pytest.raises(ResourceError, match="not in the bundle"):
        read_qt_resource(bundle, "/gcompris/a/three.webp")
    with pytest.raises(ResourceError, match="not a Qt resource"):
        read_qt_resource(b"PK\x03\x04", "/x")


def _write_list(path: Path, rows: list[ListedCover]) -> Path:
    lines = ["\t".join(COLUMNS)] + ["\t".join(getattr(r, c) for c in COLUMNS) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _row(package: str, path: str, data: bytes, scene: str, kind: str = "photo") -> ListedCover:
    return ListedCover(package=package, version="1.0-1", path=path, sha256=hashlib.sha256(data).hexdigest(),
                       licence="CC0-1.0", scene_id=scene, kind=kind)


def test_loader_uses_verified_files_and_reports_missing_and_wrong_ones(tmp_path):
    root = tmp_path / "unpacked"
    (root / "usr/share/pics").mkdir(parents=True)
    good, changed = png_bytes(random_rgb(1, 64, 48)), png_bytes(random_rgb(2, 64, 48))
    (root / "usr/share/pics/good.png").write_bytes(good)
    (root / "usr/share/pics/changed.png").write_bytes(changed)
    webp = random_rgb(3, 40, 30)
    buffer = io.BytesIO()
    webp.save(buffer, "WEBP", lossless=True)
    (root / "usr/share/game/rcc").mkdir(parents=True)
    (root / "usr/share/game/rcc/x.rcc").write_bytes(_rcc({"/game/x/photo.webp": buffer.getvalue()}, compress=True))
    listing = _write_list(tmp_path / "covers.tsv", [
        _row("pics-data", "usr/share/pics/good.png", good, "good-scene"),
        _row("pics-data", "usr/share/pics/changed.png", good, "changed-scene"),  # listed with other bytes
        _row("pics-data", "usr/share/pics/gone.png", good, "gone-scene"),
        _row("other-data", "usr/share/other/b.jpg", good, "other-scene"),
        _row("game-data", "usr/share/game/rcc/x.rcc::/game/x/photo.webp", buffer.getvalue(), "rcc-scene"),
        _row("stamps", "usr/share/stamps/cut.png", good, "stamp", kind="alpha_cutout"),
    ])
    found = listed_sources(cover_list=listing, roots=(root,))
    assert [s.cover_id for s in found.sources] == ["photo:good-scene", "photo:rcc-scene"]
    assert [s.cover_source for s in found.sources] == ["pics-data", "game-data"]
    assert found.sources[1].member == "/game/x/photo.webp"
    assert np.asarray(source_pixels(found.sources[1])).shape == (30, 40, 3)
    reasons = {m.cover.scene_id: m.reason for m in found.scan.missing}
    assert reasons["gone-scene"] == reasons["other-scene"] == "not found"
    assert reasons["changed-scene"].startswith("sha256")
    assert "stamp" not in reasons  # alpha cut-outs are not photographs to crop
    assert found.missing_by_package() == {
        "other-data": {"missing": 1, "mismatched": 0, "install": "sudo apt-get install --no-install-recommends other-data"},
        "pics-data": {"missing": 1, "mismatched": 1, "install": "sudo apt-get install --no-install-recommends pics-data"},
    }
    # STEGWATCH_COVERS_ROOT names the folders searched before /.
    from stegwatch.corpus.covers import cover_roots

    assert cover_roots({"STEGWATCH_COVERS_ROOT": f"{root}:/elsewhere"}) == (root, Path("/elsewhere"), Path("/"))


def test_smoke_preset_uses_the_builtin_photographs_whatever_is_installed(smoke_corpus):
    assert PRESETS["smoke"].covers == "builtin" and PRESETS["default"].covers == "listed"
    builtin = builtin_sources()
    assert builtin and all(s.cover_source.startswith("pypi:") for s in builtin)
    # With no Debian package found at all, the built-in set is the same.
    nowhere = listed_sources(builtin_only=True, roots=(Path("/nonexistent"),)).sources
    assert nowhere == builtin
    plan = json.loads((smoke_corpus / STATE_DIR / "plan.json").read_text())
    assert plan["cover_files"] == [f"{s.cover_id} {s.sha256}" for s in builtin]
    assert not (smoke_corpus / STATE_DIR / "covers").exists()  # the reduced photographs go when the build ends


def test_a_corpus_built_from_other_photographs_is_refused(corpus_copy, monkeypatch):
    import stegwatch.corpus.build as build_module

    fewer = ListedSources(builtin_sources()[1:], scan_covers(builtin_only=True))
    monkeypatch.setattr(build_module, "listed_sources", lambda **_: fewer)
    with pytest.raises(BuildConflict, match="cover photographs"):
        build_corpus(corpus_copy, preset="smoke", seed=7)


# --- reduction and crops ------------------------------------------------------------------


def test_prepare_reduces_large_photographs_once(tmp_path):
    big = Image.fromarray(np.random.default_rng(0).integers(0, 256, (1800, 2400, 3), dtype=np.uint8))
    (tmp_path / "big.png").write_bytes(png_bytes(big))
    from stegwatch.corpus.sources import PhotoSource

    source = PhotoSource(name="big", cover_id="photo:big", cover_source="test", path=tmp_path / "big.png", sha256="ab" * 32)
    small = builtin_sources()[0]
    prepared = prepare_sources((source, small), tmp_path / "cache")
    assert source_pixels(prepared[0]).shape == (1200, 1600, 3)
    assert (source_pixels(prepared[1]) == source_pixels(small)).all()  # small ones are untouched
    stamp = prepared[0].path.stat().st_mtime_ns
    assert prepare_sources((source,), tmp_path / "cache")[0].path.stat().st_mtime_ns == stamp
    assert (prepared[0].cover_id, prepared[0].cover_source) == ("photo:big", "test")


def test_crops_read_from_a_region_equal_crops_of_the_whole_photograph():
    source = next(s for s in builtin_sources() if s.name == "ski-astronaut-collins")
    pixels = source_pixels(source)
    whole = Image.fromarray(np.asarray(pixels))
    rng = np.random.default_rng(3)
    for size in (128, 256, 512):
        for _ in range(4):
            spec = sample_crop(rng, whole.width, whole.height, size)
            assert np.array_equal(np.asarray(render_crop(whole, spec)), np.asarray(render_crop_from_pixels(pixels, spec)))


def test_crop_sizes_fit_small_photographs():
    assert fitted_crop_size(256, 1000) == 256
    assert fitted_crop_size(512, 300) == 512  # enlarged at most twice: as drawn
    assert fitted_crop_size(512, 200) == 256
    assert fitted_crop_size(256, 100) == MIN_CROP_SIZE
    assert fitted_crop_size(128, 40) == MIN_CROP_SIZE  # never below the smallest size


# --- the document -------------------------------------------------------------------------


def test_covers_document_names_its_command_and_counts():
    summary = covers_summary(scan_covers(kinds=KINDS), versions=False)
    assert summary["photos_listed"] == sum(c.kind == "photo" for c in COVERS)
    assert summary["photos_present"] >= len(builtin_sources())
    text = covers_document(summary)
    assert DOC_COMMAND in text
    assert f"**{summary['photos_listed']} independent photographs listed**" in text
    for package in PACKAGES:
        assert f"`{package}`" in text


def test_covers_command_prints_json():
    result = CliRunner().invoke(app, ["covers", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert {p["package"] for p in summary["packages"]} == set(PACKAGES)
