"""Blobs in S3-compatible object storage (``PARAPHEUR_STORAGE_URL=s3://bucket/prefix``), for instances whose
web and worker processes run on several machines.

Same interface and guarantees as :class:`parapheur.storage.FileStore`: an object is named by the sha256
of its bytes (``<prefix>/ab/cd/abcd…``) and never overwritten; a PUT is atomic (the object appears whole or
not at all) and carries its SHA-256, which the service checks before accepting it; reads are checked
against the name too. Credentials and region come from the standard AWS chain (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, profiles, instance roles); the endpoint of a non-AWS
service from ``PARAPHEUR_S3_ENDPOINT_URL`` (or boto3's own ``AWS_ENDPOINT_URL``).

``path`` (used to stream downloads with ``send_file``) keeps a local copy in a cache folder: blobs are
immutable, so a cached copy never goes stale and may be deleted at any time to reclaim space.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

from .services.errors import Unavailable
from .storage import CHUNK, BlobNotFound, spool

_MISSING = {"404", "NoSuchKey", "NotFound"}


class StorageUnavailable(Unavailable):
    """The object store did not answer: the action changed nothing."""

    code = "storage_unavailable"


class BlobCorrupted(ValueError):
    """The bytes read back do not match their name."""


class S3Store:
    #: streams larger than this go up in parts (each part checksummed; the object appears once complete)
    MULTIPART_THRESHOLD = 64 * 1024 * 1024
    MULTIPART_CHUNK = 16 * 1024 * 1024

    def __init__(self, url: str, *, endpoint_url: str | None = None, cache_dir: str | os.PathLike | None = None,
                 client=None):
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.endpoint_url = endpoint_url
        root = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "parapheur-blobs"
        self.cache = root / self.bucket / (self.prefix or "_")
        self._client_value = client
        self._client_pid = os.getpid() if client is not None else None

    # -- plumbing -------------------------------------------------------------------------------------

    @property
    def client(self):
        """A boto3 client for this process (workers fork: a client is never shared across a fork)."""
        if self._client_value is None or self._client_pid != os.getpid():
            import boto3
            from botocore.config import Config

            session = boto3.session.Session()
            self._client_value = session.client(
                "s3", endpoint_url=self.endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60,
                              s3={"addressing_style": "path"} if self.endpoint_url else None))
            self._client_pid = os.getpid()
        return self._client_value

    def _key(self, digest: str) -> str:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a sha256 hex digest: {digest!r}")
        name = f"{digest[:2]}/{digest[2:4]}/{digest}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def _cache_path(self, digest: str) -> Path:
        self._key(digest)  # validates
        return self.cache / digest[:2] / digest[2:4] / digest

    def _call(self, method: str, digest: str | None = None, **kwargs):
        """Call the service; a missing object is BlobNotFound, an unreachable service StorageUnavailable."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _MISSING and digest is not None:
                raise BlobNotFound(digest) from None
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if status >= 500 or code in {"SlowDown", "ServiceUnavailable", "RequestTimeout"}:
                raise _unavailable() from error
            raise
        except BotoCoreError as error:  # connection refused, timeouts, DNS…
            raise _unavailable() from error

    # -- the store interface --------------------------------------------------------------------------

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            self._call("put_object", Key=self._key(digest), Body=data,
                       ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode())
        return digest

    def put_stream(self, stream: BinaryIO) -> tuple[str, int]:
        """Store a stream without holding it in memory: it is spooled to the cache folder while hashed
        (the name is its sha256), uploaded, and the spooled copy kept as the cached copy."""
        tmp, name, size = spool(stream, self.cache, fsync=False)
        try:
            if not self.exists(name):
                self._upload_file(tmp, name)
            cached = self._cache_path(name)
            cached.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, cached)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return name, size

    def _upload_file(self, filename: str, digest: str) -> None:
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        size = os.path.getsize(filename)
        config = TransferConfig(multipart_threshold=self.MULTIPART_THRESHOLD, multipart_chunksize=self.MULTIPART_CHUNK)
        if size < config.multipart_threshold:  # one PUT, checked by the service against our sha256
            with open(filename, "rb") as handle:
                self._call("put_object", Key=self._key(digest), Body=handle,
                           ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode())
            return
        try:  # multipart: each part carries its own checksum; the object appears only once complete
            self.client.upload_file(filename, self.bucket, self._key(digest), Config=config,
                                    ExtraArgs={"ChecksumAlgorithm": "SHA256"})
        except (BotoCoreError, ClientError) as error:
            raise _unavailable() from error

    def get(self, digest: str) -> bytes:
        cached = self._cache_path(digest)
        if cached.exists():
            return cached.read_bytes()
        body = self._call("get_object", digest, Key=self._key(digest))["Body"]
        try:
            data = body.read()
        finally:
            body.close()
        if hashlib.sha256(data).hexdigest() != digest:
            raise BlobCorrupted(digest)
        return data

    def exists(self, digest: str) -> bool:
        try:
            self._call("head_object", digest, Key=self._key(digest))
        except BlobNotFound:
            return False
        return True

    def path(self, digest: str) -> Path:
        """A local copy of the blob (downloaded once into the cache folder, checked against its name)."""
        cached = self._cache_path(digest)
        if cached.exists():
            return cached
        cached.parent.mkdir(parents=True, exist_ok=True)
        body = self._call("get_object", digest, Key=self._key(digest))["Body"]
        fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".download-")
        try:
            check = hashlib.sha256()
            with os.fdopen(fd, "wb") as handle:
                for chunk in iter(lambda: body.read(CHUNK), b""):
                    check.update(chunk)
                    handle.write(chunk)
            if check.hexdigest() != digest:
                raise BlobCorrupted(digest)
            os.replace(tmp, cached)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            body.close()
        return cached


def _unavailable() -> StorageUnavailable:
    return StorageUnavailable(
        "Le stockage des documents ne répond pas : réessayez dans quelques minutes. Rien n'a été modifié.",
        "The document storage does not answer: try again in a few minutes. Nothing was changed.")
