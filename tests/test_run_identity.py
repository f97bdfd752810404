"""Batch identity by content: the same rows with CRLF line ends, a byte order mark, gzip or
trailing blank lines are the same batch (loaded once); ``identity: bytes`` takes the bytes."""

from __future__ import annotations

import codecs
import gzip
import json

import pytest
from runkit import orders

from pipewarden import run as run_mod
from pipewarden.run import content_batch_id, file_batch_id, run_pipeline

LF = "".join(json.dumps(r) + "\n" for r in orders(0, 1000)).encode()


def variants(lf: bytes) -> dict[str, bytes]:
    """The same rows as ``lf`` (LF line ends, one final newline) in other forms."""
    return {
        "crlf.jsonl": lf.replace(b"\n", b"\r\n"),
        "cr.jsonl": lf.replace(b"\n", b"\r"),
        "bom.jsonl": codecs.BOM_UTF8 + lf,
        "trailing.jsonl": lf + b"\n\r\n\n",
        "no_final_newline.jsonl": lf[:-1],
        "gz.jsonl.gz": gzip.compress(lf.replace(b"\n", b"\r\n")),
    }


VARIANTS = variants(LF)


@pytest.mark.parametrize("block", [1 << 20, 1, 2, 3, 7])
def test_content_id_normalises_line_ends_across_reads(tmp_path, monkeypatch, block):
    monkeypatch.setattr(run_mod, "_ID_BLOCK", block)
    lf = LF[: LF.index(b"\n", 2000) + 1]
    (tmp_path / "a").write_bytes(lf)
    ref = content_batch_id(str(tmp_path / "a"))
    assert ref == file_batch_id(str(tmp_path / "a"))  # an LF file: the same id either way
    for name, data in variants(lf).items():
        (tmp_path / name).write_bytes(data)
        assert content_batch_id(str(tmp_path / name)) == ref, name
    (tmp_path / "blank_inside").write_bytes(lf.replace(b"\n", b"\n\n", 1))
    assert content_batch_id(str(tmp_path / "blank_inside")) != ref
    # a file is hashed once when it is in the content's form: then both ids are the same
    for name in ["a", "blank_inside", *variants(lf)]:
        path = str(tmp_path / name)
        cid, same = run_mod._content_id(path)
        assert same == (cid == file_batch_id(path)), name
        assert same == (name in ("a", "blank_inside")), name


def test_the_same_rows_in_another_form_load_once(project):
    project.config(extra="primary_key: order_id\n")
    (project.root / "pipeline.yaml").write_text(
        project.cfg.read_text().replace('path: "in/*.jsonl"', 'path: "in/*"')
    )
    (project.root / "in" / "a.jsonl").write_bytes(LF)
    first = run_pipeline(project.cfg, fmt="json")
    assert first["batches"][0]["rows_loaded"] == 1000
    for name, data in VARIANTS.items():
        (project.root / "in" / name).write_bytes(data)
    rep = run_pipeline(project.cfg, fmt="json")
    assert [b["status"] for b in rep["batches"]] == ["skipped"] * 7, rep["batches"]
    assert project.counts()["orders"] == 1000


def test_identity_bytes_takes_the_exact_bytes(project):
    (project.root / "pipeline.yaml").write_text(
        project.cfg.read_text().replace("chunk_rows: 4\n", "chunk_rows: 400\n  identity: bytes\n")
    )
    (project.root / "in" / "a.jsonl").write_bytes(LF)
    (project.root / "in" / "b.jsonl").write_bytes(VARIANTS["crlf.jsonl"])
    rep = run_pipeline(project.cfg, fmt="json")
    assert [b["status"] for b in rep["batches"]] == ["loaded", "loaded"]
    assert project.counts()["orders"] == 2000


def test_a_store_loaded_by_bytes_recognises_its_batches_by_content(project):
    """Batches recorded under their byte id (identity: bytes, or before content identity)
    are found: switching to content loads nothing again, even for a CRLF file."""
    cfg_text = project.cfg.read_text()
    project.cfg.write_text(
        cfg_text.replace("chunk_rows: 4\n", "chunk_rows: 400\n  identity: bytes\n")
    )
    (project.root / "in" / "b.jsonl").write_bytes(VARIANTS["crlf.jsonl"])
    assert run_pipeline(project.cfg, fmt="json")["batches"][0]["status"] == "loaded"
    project.cfg.write_text(cfg_text)
    rep = run_pipeline(project.cfg, fmt="json")
    assert rep["batches"][0]["status"] == "skipped" and project.counts()["orders"] == 1000
