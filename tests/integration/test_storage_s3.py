"""The S3-compatible blob store, against moto's S3 server on loopback: the store itself, then the key flows
(create, sign, download, read, evidence; a queued signature on a real worker) with every blob in a bucket.

The whole integration suite also runs on it: ``PARAPHEUR_TEST_STORAGE=s3 pytest tests/integration``."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import zipfile

import pytest
from sqlalchemy import select

from parapheur import audit, jobs
from parapheur.extensions import db
from parapheur.models import Document, Dossier, utcnow
from parapheur.samples import text_pdf
from parapheur.services import signing_jobs, validation
from parapheur.storage import BlobNotFound, open_store, store
from parapheur.storage_s3 import BlobCorrupted, S3Store, StorageUnavailable

from .conftest import Browser
from .factories import create_dossier, user
from .s3server import S3Server
from .workers import assert_signed_once, job_record, redis_url_fixture, run_burst  # noqa: F401 - a fixture


@pytest.fixture(scope="module")
def s3(request):
    """The suite's S3 server when it runs on S3, else one for this module."""
    if os.environ.get("PARAPHEUR_TEST_STORAGE") == "s3":
        yield request.getfixturevalue("test_storage")
        return
    with S3Server() as server:
        yield server


@pytest.fixture
def blobs(s3, tmp_path) -> S3Store:
    return open_store(s3.new_bucket(), endpoint_url=s3.endpoint, cache_dir=tmp_path / "cache")


def s3_app(make_app, s3, **overrides):
    return make_app("org", STORAGE_URL=s3.new_bucket(), S3_ENDPOINT_URL=s3.endpoint, **overrides)


# -- the store ---------------------------------------------------------------------------------------------


def test_objects_are_named_by_their_sha256_stored_once_and_read_back_checked(blobs, s3):
    data = b"%PDF-1.7 contenu"
    digest = blobs.put(data)
    assert digest == hashlib.sha256(data).hexdigest() and blobs.put(data) == digest
    assert blobs.exists(digest) and blobs.get(digest) == data
    key = f"blobs/{digest[:2]}/{digest[2:4]}/{digest}"
    assert s3.client().get_object(Bucket=blobs.bucket, Key=key)["Body"].read() == data
    path = blobs.path(digest)  # a local copy, for send_file
    assert path.read_bytes() == data and blobs.path(digest) == path
    streamed, size = blobs.put_stream(io.BytesIO(b"y" * 2_000_000))
    assert size == 2_000_000 and blobs.get(streamed) == b"y" * 2_000_000
    fresh = open_store(f"s3://{blobs.bucket}/blobs", endpoint_url=s3.endpoint, cache_dir=blobs.cache.parent.parent
                       / "other")
    assert fresh.get(streamed) == b"y" * 2_000_000  # from the bucket, not from a cache


def test_large_streams_go_up_in_parts(blobs, monkeypatch):
    monkeypatch.setattr(S3Store, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    monkeypatch.setattr(S3Store, "MULTIPART_CHUNK", 5 * 1024 * 1024)
    data = bytes(range(256)) * (6 * 1024 * 1024 // 256)
    digest, size = blobs.put_stream(io.BytesIO(data))
    assert size == len(data) and digest == hashlib.sha256(data).hexdigest()
    head = blobs.client.head_object(Bucket=blobs.bucket, Key=blobs._key(digest))
    assert head["ContentLength"] == len(data)


def test_missing_and_corrupted_objects_are_refused(blobs, s3):
    missing = "0" * 64
    assert not blobs.exists(missing)
    with pytest.raises(BlobNotFound):
        blobs.get(missing)
    with pytest.raises(BlobNotFound):
        blobs.path(missing)
    forged = hashlib.sha256(b"the real content").hexdigest()
    s3.client().put_object(Bucket=blobs.bucket, Key=blobs._key(forged), Body=b"something else")
    with pytest.raises(BlobCorrupted):
        blobs.get(forged)
    with pytest.raises(BlobCorrupted):
        blobs.path(forged)
    assert not blobs._cache_path(forged).exists()


def test_an_unreachable_service_is_unavailable_not_a_crash(tmp_path):
    import boto3
    from botocore.config import Config

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    client = boto3.session.Session().client("s3", endpoint_url=closed, region_name="us-east-1",
                                            aws_access_key_id="x", aws_secret_access_key="x",
                                            config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    down = S3Store("s3://nowhere/blobs", endpoint_url=closed, cache_dir=tmp_path, client=client)
    with pytest.raises(StorageUnavailable) as caught:
        down.put(b"data")
    assert caught.value.status == 503 and "stockage" in caught.value.message_fr


# -- the key flows, blobs in a bucket ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_create_sign_download_read_and_evidence_on_s3(make_app, s3):
    app = s3_app(make_app, s3)
    initiator = Browser(app)
    initiator.login("rh.dupont")
    pdf = text_pdf("Attestation S3", ["Texte."], pages=2)
    created = initiator.post_form("/dossiers/new", data={"title": "Attestation S3", "type": "attestation",
                                                         "documents": [(io.BytesIO(pdf), "attestation.pdf")]},
                                  content_type="multipart/form-data")
    assert created.status_code == 302
    number = int(created.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    assert initiator.post_form(f"/dossiers/{number}", f"/dossiers/{number}/act",
                               {"action": "launch"}).status_code == 302
    signer = Browser(app)
    signer.login("drh.bernard")
    assert signer.post_form(f"/dossiers/{number}", f"/dossiers/{number}/act",
                            {"action": "sign"}).status_code == 302
    with app.app_context():
        dossier = db.session.get(Dossier, number)
        assert dossier.status == "completed"
        document = db.session.scalar(select(Document).where(Document.dossier_id == number))
        current = document.current.sha256
        assert isinstance(store(), S3Store) and store().get(document.revisions[0].sha256) == pdf
    download = signer.get(f"/dossiers/{number}/documents/{document.id}/download")
    signed = download.data
    download.close()
    assert download.status_code == 200 and hashlib.sha256(signed).hexdigest() == current
    with app.app_context():
        assert validation.validate_bytes(signed).valid
    image = signer.get(f"/dossiers/{number}/documents/{document.id}/pages/1.png")
    assert image.status_code == 200 and image.data.startswith(b"\x89PNG")
    image.close()
    evidence = signer.get(f"/audit/dossiers/{number}/evidence.zip")
    assert evidence.status_code == 200
    with zipfile.ZipFile(io.BytesIO(evidence.data)) as bundle:
        assert any(signed == bundle.read(name) for name in bundle.namelist() if name.endswith(".pdf"))
    evidence.close()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.redis
def test_a_worker_signs_on_s3(make_app, s3, redis_url, tmp_path):
    app = s3_app(make_app, s3, REDIS_URL=redis_url)
    with app.app_context():
        number = create_dossier("attestation").id
        request = signing_jobs.request_signature(db.session, app, db.session.get(Dossier, number),
                                                 user("drh.bernard"), None, None, audit.Meta("drh.bernard"),
                                                 utcnow())
        db.session.commit()
        jobs.enqueue_after_commit(request.jobs)
    run_burst(app, tmp_path / "worker.log")  # another process: it reads and writes the same bucket
    assert job_record(app, request.job.id)["status"] == "done"
    assert_signed_once(app, number)
