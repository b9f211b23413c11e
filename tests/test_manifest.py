import json
import os

import pytest

from stegwatch.format.manifest import ManifestError, RootResolver, read_manifest, resolve_in_root, write_manifest
from stegwatch.format.records import ManifestEntry

from .test_records import ENTRY


def _write_lines(root, lines):
    (root / "manifest.jsonl").write_text("".join(line + "\n" for line in lines))


def test_round_trip_sorted(tmp_path):
    entries = [
        ManifestEntry.model_validate({**ENTRY, "file_path": name})
        for name in ("stego/b.png", "stego/a.png")
    ]
    write_manifest(tmp_path, entries)
    read = read_manifest(tmp_path, strict=True)
    assert [e.file_path for e in read.entries] == ["stego/a.png", "stego/b.png"]


def test_bad_lines_are_reported_with_their_line_number_and_the_rest_loads(tmp_path):
    good = json.dumps(ENTRY)
    _write_lines(
        tmp_path,
        [good, json.dumps({**ENTRY, "file_path": "/etc/passwd"}), "{not json", json.dumps({**ENTRY, "file_path": "../x.png"})],
    )
    read = read_manifest(tmp_path)
    assert len(read.entries) == 1
    where = [e.where for e in read.errors]
    assert where == [f"{tmp_path / 'manifest.jsonl'}:{n}" for n in (2, 3, 4)]
    assert "absolute" in read.errors[0].reason
    assert "escapes" in read.errors[2].reason
    with pytest.raises(ManifestError, match=":2"):
        read_manifest(tmp_path, strict=True)


def test_symlink_pointing_out_of_the_corpus_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"x")
    root = tmp_path / "corpus"
    (root / "stego").mkdir(parents=True)
    os.symlink(outside / "secret.png", root / "stego" / "link.png")
    os.symlink(outside, root / "linkdir")
    with pytest.raises(ValueError, match="outside"):
        resolve_in_root(root, "stego/link.png")
    with pytest.raises(ValueError, match="outside"):
        resolve_in_root(root, "linkdir/secret.png")
    _write_lines(root, [json.dumps({**ENTRY, "file_path": "stego/link.png"})])
    read = read_manifest(root)
    assert not read.entries and "outside" in read.errors[0].reason


def test_a_sidecar_linking_out_of_the_corpus_is_refused_and_one_inside_is_read(tmp_path):
    from stegwatch.format.manifest import read_sidecar

    root = tmp_path / "corpus"
    (root / "stego").mkdir(parents=True)
    (tmp_path / "side.json").write_text("{}")
    (root / "stego" / "x.png").write_bytes(b"x")
    os.symlink(tmp_path / "side.json", root / "stego" / "x.png.json")
    with pytest.raises(ManifestError, match="outside the corpus root"):
        read_sidecar(root / "stego" / "x.png", root)
    (root / "stego" / "y.png").write_bytes(b"y")
    assert read_sidecar(root / "stego" / "y.png", root) is None  # none beside it: nothing to refuse


def test_symlink_inside_the_corpus_is_fine(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.png").write_bytes(b"x")
    os.symlink(tmp_path / "a" / "f.png", tmp_path / "g.png")
    assert resolve_in_root(tmp_path, "g.png") == (tmp_path / "a" / "f.png").resolve()


def _pathlib_resolve(root, relative):
    """The plain definition the resolver must equal: resolve everything, then check containment."""
    base = root.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base):
        raise ValueError("outside")
    return target


def test_one_resolver_for_many_paths_equals_resolving_each_path_in_full(tmp_path):
    # A tree with every kind of link: folder links in and out of the root, file links in and out,
    # a link to a link, a missing file, and a root reached through a link itself.
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "secret.png").write_bytes(b"x")
    real = tmp_path / "real"
    (real / "a" / "b").mkdir(parents=True)
    (real / "a" / "b" / "f.png").write_bytes(b"x")
    (real / "a" / "g.png").write_bytes(b"x")
    os.symlink(real / "a", real / "in_dir")
    os.symlink(outside, real / "out_dir")
    os.symlink(real / "a" / "g.png", real / "a" / "b" / "in_file.png")
    os.symlink(outside / "secret.png", real / "a" / "out_file.png")
    os.symlink(real / "a" / "b" / "in_file.png", real / "link_to_link.png")
    os.symlink(real, tmp_path / "root_link")
    relatives = ["a/b/f.png", "a/g.png", "in_dir/b/f.png", "in_dir/g.png", "out_dir/secret.png", "out_dir/deep/x.png",
                 "a/b/in_file.png", "a/out_file.png", "in_dir/out_file.png", "link_to_link.png", "a/missing.png",
                 "nope/missing.png", "./a/g.png", "a//b/f.png", "in_dir/b/in_file.png"]
    for root in (real, tmp_path / "root_link"):
        resolver = RootResolver(root)
        for relative in relatives * 2:  # the second pass is served from the resolver's folder cache
            try:
                expected = _pathlib_resolve(root, relative)
            except ValueError:
                with pytest.raises(ValueError, match="outside"):
                    resolver(relative)
            else:
                assert resolver(relative) == expected
                assert resolve_in_root(root, relative) == expected


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(ManifestError, match="no manifest.jsonl"):
        read_manifest(tmp_path)


def _pathlib_form(value: str) -> str:
    """The textbook normalization: pathlib's parts, with backslashes read as slashes."""
    from pathlib import PurePosixPath

    return str(PurePosixPath(*PurePosixPath(value.replace("\\", "/")).parts))


@pytest.mark.parametrize("value", ["a.png", "stego/alpha/x.png", "a//b/./c.png", "./a.png", "a/b/", "a\\b\\c.png",
                                   ".", "a/.", "x/ y .png", "...", "a/.../b", "é/ü.png", "a/b.png/."])
def test_check_relative_path_gives_pathlib_s_posix_form(value):
    from stegwatch.format.records import check_relative_path

    assert check_relative_path(value) == _pathlib_form(value)


@pytest.mark.parametrize("value", ["", "/etc/passwd", "\\\\server\\share", "C:\\x.png", "c:x.png", "../x.png",
                                   "a/../../x.png", "a\\..\\x.png", "a/..", "nul\x00.png"])
def test_check_relative_path_refuses_what_could_leave_the_root(value):
    from stegwatch.format.records import check_relative_path

    with pytest.raises(ValueError):
        check_relative_path(value)


def test_check_relative_path_agrees_with_pathlib_on_random_paths():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from stegwatch.format.records import check_relative_path

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.sampled_from(["a", "b.png", ".", "..", "", " ", "\\", "x.y", "é"]), min_size=1, max_size=6))
    def agree(parts):
        value = "/".join(parts)
        try:
            got = check_relative_path(value)
        except ValueError:
            assert not value or value.startswith(("/", "\\")) or ".." in _pathlib_form(value).split("/") \
                or (len(value) > 1 and value[1] == ":")
            return
        assert got == _pathlib_form(value)

    agree()
