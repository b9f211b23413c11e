"""The Starlight data format: typed records, manifests, sidecars and safe file reading."""

from stegwatch.format.files import (
    DEFAULT_LIMITS,
    CarrierFile,
    ReadLimits,
    UnreadableFile,
    load_carrier,
)
from stegwatch.format.manifest import (
    MANIFEST_NAME,
    EmptyCorpus,
    ManifestError,
    ManifestRead,
    sidecar_path,
    read_manifest,
    read_sidecar,
    RootResolver,
    resolve_in_root,
    write_manifest,
    write_sidecar,
)
from stegwatch.format.records import (
    BitOrder,
    EmbeddingType,
    FileError,
    ManifestEntry,
    Sidecar,
    export_schema,
)

__all__ = [
    "MANIFEST_NAME",
    "ManifestRead",
    "sidecar_path",
    "DEFAULT_LIMITS",
    "EmptyCorpus",
    "BitOrder",
    "CarrierFile",
    "EmbeddingType",
    "FileError",
    "ManifestEntry",
    "ManifestError",
    "ReadLimits",
    "Sidecar",
    "UnreadableFile",
    "export_schema",
    "load_carrier",
    "read_manifest",
    "read_sidecar",
    "RootResolver",
    "resolve_in_root",
    "write_manifest",
    "write_sidecar",
]
