"""The filesystem blob store: content-addressed, atomic, never overwritten."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from parapheur.storage import BlobNotFound, FileStore


def test_blobs_are_named_by_their_sha256_and_stored_once(tmp_path):
    blobs = FileStore(tmp_path / "blobs")
    data = b"%PDF-1.7 contenu"
    digest = blobs.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert blobs.put(data) == digest and blobs.get(digest) == data and blobs.exists(digest)
    assert blobs.path(digest).read_bytes() == data
    streamed, size = blobs.put_stream(io.BytesIO(b"x" * 3_000_000))
    assert size == 3_000_000 and blobs.get(streamed) == b"x" * 3_000_000
    assert not [p for p in (tmp_path / "blobs").rglob(".*")]  # no temporary file left behind


def test_a_missing_blob_or_a_bad_name_is_refused(tmp_path):
    blobs = FileStore(tmp_path / "blobs")
    missing = "0" * 64
    assert not blobs.exists(missing)
    with pytest.raises(BlobNotFound):
        blobs.get(missing)
    with pytest.raises(BlobNotFound):
        blobs.path(missing)
    with pytest.raises(ValueError):
        blobs.get("../../etc/passwd")


def test_a_write_that_fails_half_way_leaves_no_blob_and_no_temporary_file(tmp_path, monkeypatch):
    blobs = FileStore(tmp_path / "blobs")

    def crash(*_args):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        blobs.put(b"never stored")
    with pytest.raises(OSError):
        blobs.put_stream(io.BytesIO(b"never stored either"))
    monkeypatch.undo()
    assert not blobs.exists(hashlib.sha256(b"never stored").hexdigest())
    assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []
