import json

import jsonschema
import pytest
from pydantic import ValidationError

from stegwatch.format.records import EmbeddingType, ManifestEntry, Sidecar, export_schema

ENTRY = {
    "file_path": "stego/palette/palette-00001.png",
    "label": "stego",
    "method": "palette",
    "category": "pixel",
    "cover_id": "skimage:astronaut",
    "payload_bytes": 12,
    "payload_bpp": 0.0015,
    "payload_sha256": "ab" * 32,
    "sha256": "cd" * 32,
    "format": "PNG",
    "mode": "P",
    "width": 256,
    "height": 256,
}


def test_sidecar_json_form_matches_the_format_page():
    sidecar = Sidecar(
        embedding=EmbeddingType(category="pixel", technique="palette", ai42=False, bit_order="lsb-first"),
        clean_file="clean/photo-0012.png",
    )
    assert sidecar.to_json_dict() == {
        "embedding": {"category": "pixel", "technique": "palette", "ai42": False, "bit_order": "lsb-first"},
        "clean_file": "clean/photo-0012.png",
    }


def test_bit_order_is_written_only_for_ordered_techniques():
    alpha = EmbeddingType(category="pixel", technique="alpha", ai42=True, bit_order="lsb-first")
    assert "bit_order" not in alpha.to_json_dict()
    assert EmbeddingType(category="pixel", technique="lsb.rgb", ai42=False, bit_order="msb-first").to_json_dict()["bit_order"] == "msb-first"


def test_sidecar_without_bit_order_reads_as_unknown_order():
    sidecar = Sidecar.model_validate({"embedding": {"category": "pixel", "technique": "lsb.rgb", "ai42": False}})
    assert sidecar.embedding.bit_order is None


@pytest.mark.parametrize("name", ["manifest", "sidecar", "embedding"])
def test_exported_schemas_are_valid_json_schema(name):
    schema = export_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)


def test_manifest_schema_accepts_a_real_entry_and_rejects_a_broken_one():
    schema = export_schema("manifest")
    entry = ManifestEntry.model_validate(ENTRY)
    jsonschema.validate(json.loads(entry.to_json_line()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**ENTRY, "label": "maybe"}, schema)


def test_unknown_schema_name_is_refused():
    with pytest.raises(KeyError):
        export_schema("nope")


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.png", "clean/../../x.png", "C:\\x.png", ""])
def test_manifest_entry_refuses_unsafe_paths(bad):
    with pytest.raises(ValidationError):
        ManifestEntry.model_validate({**ENTRY, "file_path": bad})


def test_stego_entry_needs_its_payload_fields():
    with pytest.raises(ValidationError, match="payload_bytes"):
        ManifestEntry.model_validate({**ENTRY, "payload_bytes": None})
    with pytest.raises(ValidationError, match="method null"):
        ManifestEntry.model_validate({**ENTRY, "label": "clean"})
