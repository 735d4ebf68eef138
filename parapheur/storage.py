"""Content-addressed blob store: bytes are named by their sha256 and never overwritten.

A blob is written to a temporary file, flushed, fsynced and renamed into place (and the folder fsynced,
so the rename itself survives a power cut): a crash leaves either no blob or a whole one. Callers commit
the revision row that names a blob only after ``put`` returns, so a row never names a missing blob; a
crash between the two leaves an unreferenced blob, which is harmless.

Two stores share one interface (``put``, ``put_stream``, ``get``, ``exists``, ``path``): ``FileStore``
(a local or shared folder, the default) and ``storage_s3.S3Store`` (``s3://bucket/prefix``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024


class BlobNotFound(KeyError):
    pass


def spool(stream: BinaryIO, directory: Path, *, fsync: bool) -> tuple[str, str, int]:
    """Copy ``stream`` to a temporary file in ``directory`` while hashing it, never holding it whole in
    memory; return (temporary path, sha256, size). The caller renames the file into place or removes it."""
    directory.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as handle:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                handle.write(chunk)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp, digest.hexdigest(), size


class FileStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a sha256 hex digest: {digest!r}")
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if not path.exists():
            self._write_atomic(path, [data])
        return digest

    def put_stream(self, stream: BinaryIO) -> tuple[str, int]:
        """Store a stream without holding it in memory; return (sha256, size)."""
        tmp, digest, size = spool(stream, self.root, fsync=True)
        try:
            path = self._path(digest)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest, size

    def _write_atomic(self, path: Path, chunks) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, digest: str) -> bytes:
        try:
            return self._path(digest).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def path(self, digest: str) -> Path:
        """A local path to the blob (for streaming a download)."""
        path = self._path(digest)
        if not path.exists():
            raise BlobNotFound(digest)
        return path

    def exists(self, digest: str) -> bool:
        return self._path(digest).exists()


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX: the directory entry lives in the folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not supported here (e.g. some network file systems): the file itself is synced
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def open_store(url: str, *, cache_dir: str | os.PathLike | None = None, endpoint_url: str | None = None):
    """The store named by ``PARAPHEUR_STORAGE_URL``: a folder, or s3://bucket/prefix.

    ``cache_dir`` (S3 only) holds local copies for ``path``; ``endpoint_url`` (S3 only) names an
    S3-compatible service (MinIO, Garage, Scaleway, OVH…); AWS itself needs none."""
    if url.startswith("s3://"):
        from .storage_s3 import S3Store

        return S3Store(url, endpoint_url=endpoint_url, cache_dir=cache_dir)
    return FileStore(url)


def store():
    """The current app's blob store (one per app, created on first use)."""
    from flask import current_app

    existing = current_app.extensions.get("parapheur.store")
    if existing is None:
        config = current_app.config
        endpoint = config.get("S3_ENDPOINT_URL") or None
        existing = current_app.extensions["parapheur.store"] = open_store(
            config["STORAGE_URL"], endpoint_url=endpoint,
            cache_dir=config.get("BLOB_CACHE_DIR") or Path(config["INSTANCE_DIR"]) / "cache" / "blobs")
    return existing
