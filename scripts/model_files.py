"""File helpers shared by the model build scripts (build_models.py, convert_nsfwjs.py).

Both must write byte-reproducible ONNX files and the same models/SHA256SUMS,
so these live in one place.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import onnx


def pin_free_fields(m: onnx.ModelProto, producer: str, producer_version: str) -> None:
    """Clear/fix every protobuf field that could vary between runs or hosts."""
    m.producer_name = producer
    m.producer_version = producer_version
    m.doc_string = ""
    m.graph.doc_string = ""
    m.graph.name = "edgetag"
    for n in m.graph.node:
        n.doc_string = ""
    for t in m.graph.initializer:
        t.doc_string = ""
    del m.metadata_props[:]


def sha256_file(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def write_bytes(p: Path, data: bytes) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


def write_sha256sums(models_dir: Path) -> None:
    """models/SHA256SUMS: `cd models && sha256sum -c SHA256SUMS`.

    Covers the data files (models, manifests, labels), not the READMEs or the
    per-model .sha256 files, so editing docs never makes it stale.
    """
    files = sorted(p for p in models_dir.rglob("*") if p.is_file() and p.suffix in (".onnx", ".json"))
    lines = [f"{sha256_file(p)}  {p.relative_to(models_dir).as_posix()}" for p in files]
    (models_dir / "SHA256SUMS").write_text("\n".join(lines) + "\n")
