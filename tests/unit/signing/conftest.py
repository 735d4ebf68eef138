"""Fixtures of the signing suite: test PDFs built by hand, an instance PKI, signers."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from signing.keys import CachedKeySigner
from signing.pki import InstancePKI, create_instance_pki, issue_personal_certificate
from signing.stamp import StampText
from signing.validation import TrustConfig

LOREM = (
    "Article {n}. Le conseil municipal, après en avoir délibéré, décide à l'unanimité "
    "d'approuver la convention jointe et autorise le maire à la signer."
)


def make_pdf(pages: int = 10, lines: int = 42, *, compress: bool = False,
             page_size: tuple[int, int] = (595, 842), footer: bool = False) -> bytes:
    """A classic-xref PDF with ``lines`` lines of Helvetica text on each page (≈5 KB/page)."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below
    pages_obj = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids = []
    width, height = page_size
    for page in range(pages):
        text = [b"BT /F1 10 Tf 12 TL 56 %d Td" % (height - 72)]
        text.append(b"(Page %d / %d) '" % (page + 1, pages))
        for line in range(lines):
            sentence = LOREM.format(n=page * lines + line + 1).encode("cp1252")
            text.append(b"(" + sentence[:95] + b") '")
        text.append(b"ET")
        if footer:
            text.append(b"BT /F1 8 Tf 280 20 Td (Page %d) Tj ET" % (page + 1))
        stream = b"\n".join(text)
        if compress:
            stream = zlib.compress(stream)
            content = add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream
                          + b"\nendstream")
        else:
            content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        kids.append(add(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 %d 0 R >> >>"
            b" /Contents %d 0 R >>" % (pages_obj, width, height, font, content)
        ))
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_obj
    objects[pages_obj - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids), pages)

    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, catalog, xref)
    return bytes(out)


@pytest.fixture(scope="session")
def pdf10() -> bytes:
    """A 10-page text PDF of about 50 KB."""
    return make_pdf(10)


@pytest.fixture(scope="session")
def instance_pki() -> InstancePKI:
    """An instance PKI, as `parapheur init` creates it."""
    return create_instance_pki("Commune de Saint-Étienne-lès-Test")


@pytest.fixture(scope="session")
def personal_signer(instance_pki: InstancePKI) -> CachedKeySigner:
    """An advanced-level signer: a personal certificate issued by the instance CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_personal_certificate(instance_pki, "Hélène Lefèvre", "helene.lefevre@example.fr",
                                      key.public_key())
    return instance_pki.personal_signer(cert, key)


@pytest.fixture(scope="session")
def test_tsa(test_pki):
    """The test PKI's TSA, one timestamper object for the session (it caches its size probe)."""
    return test_pki.timestamper()


@pytest.fixture(scope="session")
def trust_both(instance_pki, test_pki) -> TrustConfig:
    """Trust the instance root and the test PKI root (fetching revocation data on loopback)."""
    return TrustConfig(trust_roots=[instance_pki.root_cert, *test_pki.trust_roots],
                       other_certs=[test_pki.intermediate_cert], crls=[instance_pki.crl_der],
                       allow_fetching=True)


@pytest.fixture
def stamp() -> StampText:
    """Stamp text with accents."""
    return StampText("Hélène Lefèvre", "Signature du maire — délégation", dt.datetime.now(dt.UTC))


@pytest.fixture(scope="session")
def encrypted_pdf(tmp_path_factory, pdf10: bytes) -> bytes:
    """``pdf10`` encrypted by qpdf (AES-256, user password 'secret')."""
    qpdf = shutil.which("qpdf")
    if qpdf is None:
        pytest.skip("qpdf is not installed")
    directory: Path = tmp_path_factory.mktemp("encrypted")
    source, target = directory / "in.pdf", directory / "out.pdf"
    source.write_bytes(pdf10)
    subprocess.run([qpdf, "--encrypt", "secret", "owner", "256", "--", str(source), str(target)],
                   check=True, capture_output=True)
    return target.read_bytes()
